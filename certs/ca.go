// Package certs makes throwaway X.509 certificates for TLS tests, without
// openssl: a CA, server certificates with IP and DNS names, client
// certificates (also expired ones), and, for a load generator, one client
// certificate per connection minted from a CA given on the command line.
// Keys are ECDSA P-256; key files are PKCS #8 ("PRIVATE KEY"), which Go,
// OpenSSL and mosquitto all read.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// skew backdates NotBefore, so that a certificate made now is valid on a
// machine whose clock is a little behind.
const skew = time.Minute

// CA is a certificate authority that issues certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// chain is what issued certificates carry after themselves: nothing
	// for a self-signed CA, else the CA and the certificates that followed
	// it in its PEM file (DER).
	chain [][]byte
}

// NewCA makes a self-signed CA valid from now for validity.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("certs: CA validity %v is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"mqttbench"}},
		NotBefore:             now.Add(-skew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA certificate and its private key from PEM files, such as
// ca.pem and ca-key.pem written by `mqttbench cert`. Certificates after the
// first in certFile are taken as the CA's own chain. Errors name the file,
// never the key's contents.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certs: reading CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: reading CA key: %w", err)
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s, %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// ParseCA is LoadCA on PEM bytes.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return ca, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	var ders [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, errors.New("no CERTIFICATE block in the CA certificate file")
	}
	cert, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%q is not a CA certificate (basic constraints do not say CA)", cert.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("the key does not belong to the CA certificate")
	}
	ca := &CA{Cert: cert, Key: key}
	if cert.CheckSignatureFrom(cert) != nil { // an intermediate: send it along
		ca.chain = ders
	}
	return ca, nil
}

// parseKey reads the first private key block: PKCS #8, SEC 1 (EC) or
// PKCS #1 (RSA).
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no private key block in the CA key file")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the CA key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("CA key (%s): %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("CA key of type %T cannot sign", k)
		}
		return s, nil
	}
}

// CertPEM returns the CA certificate, and the chain above it if it was
// loaded with one, as PEM.
func (ca *CA) CertPEM() []byte {
	if len(ca.chain) == 0 {
		return pemBlock("CERTIFICATE", ca.Cert.Raw)
	}
	var out []byte
	for _, der := range ca.chain {
		out = append(out, pemBlock("CERTIFICATE", der)...)
	}
	return out
}

// KeyPEM returns the CA's private key as PKCS #8 PEM. Write it with mode
// 0600.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.Key) }

// Pool returns a pool holding the CA, for RootCAs or ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

// serialLimit bounds serial numbers to 128 bits: positive and at most 20
// octets, as RFC 5280 section 4.1.2.2 requires.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, serialLimit) // crypto/rand does not fail
	return n.Add(n, big.NewInt(1))
}
