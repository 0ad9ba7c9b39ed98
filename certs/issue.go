package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"time"
)

// DefaultHosts are the names a server certificate carries when none are
// given: the loopback addresses and localhost.
var DefaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// Leaf describes a certificate to issue.
type Leaf struct {
	CommonName string
	// Hosts become subject alternative names: IP addresses as IP SANs,
	// anything else as DNS names.
	Hosts []string
	// Server and Client set the extended key usages serverAuth and
	// clientAuth; Go's TLS stack checks them.
	Server, Client bool
	// Zero NotBefore means a minute ago; zero NotAfter means when the CA
	// expires.
	NotBefore, NotAfter time.Time
}

// Issue signs a new certificate with a fresh key and returns it ready for
// a tls.Config, with no PEM encoding: the fast path for minting one client
// certificate per connection (about 0.2 ms each on one core).
func (ca *CA) Issue(l Leaf) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl, err := ca.template(l)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: signing %q: %w", l.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	chain := append([][]byte{der}, ca.chain...)
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// IssuePEM is Issue returning PEM: the certificate (and the CA's chain, if
// it has one) and the PKCS #8 private key.
func (ca *CA) IssuePEM(l Leaf) (certPEM, keyPEM []byte, err error) {
	c, err := ca.Issue(l)
	if err != nil {
		return nil, nil, err
	}
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pemBlock("CERTIFICATE", der)...)
	}
	keyPEM, err = encodeKey(c.PrivateKey.(*ecdsa.PrivateKey))
	return certPEM, keyPEM, err
}

// Server issues a server certificate for hosts (DefaultHosts if empty).
func (ca *CA) Server(hosts []string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	return ca.IssuePEM(Leaf{CommonName: hosts[0], Hosts: hosts, Server: true})
}

// Client issues a client certificate; brokers that take the identity from
// the certificate (mosquitto's use_identity_as_username) see commonName.
func (ca *CA) Client(commonName string) (certPEM, keyPEM []byte, err error) {
	return ca.IssuePEM(Leaf{CommonName: commonName, Client: true})
}

// ClientCertificate is Client on the fast path, for a tls.Config.
func (ca *CA) ClientCertificate(commonName string) (tls.Certificate, error) {
	return ca.Issue(Leaf{CommonName: commonName, Client: true})
}

// ClientExpired issues a client certificate that expired a day ago, for
// tests that expect the broker to refuse it.
func (ca *CA) ClientExpired(commonName string) (certPEM, keyPEM []byte, err error) {
	now := time.Now()
	return ca.IssuePEM(Leaf{CommonName: commonName, Client: true,
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
}

func (ca *CA) template(l Leaf) (*x509.Certificate, error) {
	notBefore, notAfter := l.NotBefore, l.NotAfter
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-skew)
	}
	if notAfter.IsZero() {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("certs: %q would expire (%s) before it starts (%s)", l.CommonName,
			notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	t := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: []string{"mqttbench"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if l.Server {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range l.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else if err := CheckHost(h); err != nil {
			return nil, err
		} else {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	return t, nil
}

// CheckHost reports whether h can go in a certificate: an IP address, or
// a DNS name of letters, digits, '-', '_' and '.', optionally starting with
// "*." for a wildcard.
func CheckHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("certs: host %q is neither an IP address nor a DNS name", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || strings.IndexFunc(label, notHostRune) >= 0 {
			return fmt.Errorf("certs: host %q is neither an IP address nor a DNS name", h)
		}
	}
	return nil
}

func notHostRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}
