package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t testing.TB, cn string) *CA {
	t.Helper()
	ca, err := NewCA(cn, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// pairer returns a function that loads the PEM results of Server, Client
// and the like as crypto/tls would, failing t on any error.
func pairer(t testing.TB) func(certPEM, keyPEM []byte, err error) tls.Certificate {
	return func(certPEM, keyPEM []byte, err error) tls.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// handshake runs a mutual-TLS handshake on 127.0.0.1 between a server
// presenting server and requiring a client certificate from pool, and a
// client presenting client and verifying the server as serverName against
// pool. It returns the server's error and, on success, the client
// certificate's common name as the server saw it.
func handshake(t *testing.T, pool *x509.CertPool, server, client tls.Certificate, serverName string) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		cn  string
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- res{err: err}
			return
		}
		_, err = tc.Write([]byte("ok"))
		done <- res{cn: tc.ConnectionState().PeerCertificates[0].Subject.CommonName, err: err}
	}()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		// Always send the certificate: with Certificates, Go's client would
		// hold back one that the server's CA list does not name.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &client, nil },
		RootCAs:              pool, ServerName: serverName,
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		c.Read(make([]byte, 2))                        //nolint:errcheck // TLS 1.3: a refused client learns it here
		c.Close()
	}
	select {
	case r := <-done:
		return r.cn, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("server handshake did not finish")
		return "", nil
	}
}

func TestHandshake(t *testing.T) {
	ca, other := mustCA(t, "test CA"), mustCA(t, "other CA")
	mustPair := pairer(t)
	server := mustPair(ca.Server(nil))
	good := mustPair(ca.Client("alice"))
	fast, err := ca.ClientCertificate("bob")
	if err != nil {
		t.Fatal(err)
	}
	expired := mustPair(ca.ClientExpired("old"))
	foreign := mustPair(other.Client("mallory"))

	for _, name := range []string{"127.0.0.1", "localhost"} {
		if cn, err := handshake(t, ca.Pool(), server, good, name); err != nil || cn != "alice" {
			t.Errorf("server name %s: %q, %v", name, cn, err)
		}
	}
	if cn, err := handshake(t, ca.Pool(), server, fast, "127.0.0.1"); err != nil || cn != "bob" {
		t.Errorf("fast-path client certificate: %q, %v", cn, err)
	}
	if _, err := handshake(t, ca.Pool(), server, expired, "127.0.0.1"); !isInvalid(err, x509.Expired) {
		t.Errorf("expired client certificate: %v, want it refused as expired", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := handshake(t, ca.Pool(), server, foreign, "127.0.0.1"); !errors.As(err, &unknown) {
		t.Errorf("client certificate of another CA: %v, want unknown authority", err)
	}
}

func isInvalid(err error, reason x509.InvalidReason) bool {
	var e x509.CertificateInvalidError
	return errors.As(err, &e) && e.Reason == reason
}

func TestServerNames(t *testing.T) {
	ca := mustCA(t, "test CA")
	mustPair := pairer(t)
	c := mustPair(ca.Server([]string{"10.0.0.1", "broker.example", "*.example.net", "::1"})).Leaf
	opts := x509.VerifyOptions{Roots: ca.Pool()}
	for _, name := range []string{"10.0.0.1", "broker.example", "a.example.net", "::1"} {
		opts.DNSName = name
		if _, err := c.Verify(opts); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"127.0.0.1", "localhost", "b.a.example.net"} {
		opts.DNSName = name
		if _, err := c.Verify(opts); err == nil {
			t.Errorf("%s verified, but the certificate does not name it", name)
		}
	}
	def := mustPair(ca.Server(nil)).Leaf
	if len(def.IPAddresses) != 2 || len(def.DNSNames) != 1 || def.DNSNames[0] != "localhost" {
		t.Errorf("default names: IPs %v, DNS %v", def.IPAddresses, def.DNSNames)
	}
	// A server certificate is not a client certificate and vice versa.
	opts = x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := def.Verify(opts); !isInvalid(err, x509.IncompatibleUsage) {
		t.Errorf("server certificate used by a client: %v", err)
	}
	for _, h := range []string{"", "a b", "bad/host", "x..y", "-" + strings.Repeat("a", 64)} {
		if _, _, err := ca.Server([]string{h}); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
}

func TestLoadCA(t *testing.T) {
	ca := mustCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, ca.CertPEM(), 0o644) //nolint:errcheck
	os.WriteFile(keyFile, keyPEM, 0o600)        //nolint:errcheck
	loaded, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate from the loaded CA verifies against the original.
	c, err := loaded.ClientCertificate("loaded")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}

	other := mustCA(t, "other CA")
	otherKey, _ := other.KeyPEM()
	leafCert, leafKey, _ := ca.Client("leaf")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600) //nolint:errcheck
		return p
	}
	for _, c := range []struct {
		desc, cert, key, want string
	}{
		{"missing certificate", filepath.Join(dir, "none.pem"), keyFile, "reading CA certificate"},
		{"missing key", certFile, filepath.Join(dir, "none.pem"), "reading CA key"},
		{"key of another CA", certFile, write("other-key.pem", otherKey), "the key does not belong to the CA certificate"},
		{"not a CA", write("leaf.pem", leafCert), write("leaf-key.pem", leafKey), `"leaf" is not a CA certificate`},
		{"no certificate", keyFile, keyFile, "no CERTIFICATE block"},
		{"no key", certFile, certFile, "no private key block"},
		{"encrypted key", certFile, write("enc.pem", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")), "the CA key is encrypted"},
	} {
		_, err := LoadCA(c.cert, c.key)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.desc, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") && c.desc != "encrypted key" {
			t.Errorf("%s: error shows key material: %v", c.desc, err)
		}
	}
}

// TestIntermediateCA: certificates from a CA that is not self-signed carry
// it, so a peer that trusts only the root can verify them.
func TestIntermediateCA(t *testing.T) {
	// NewCA's CA may not sign CAs (path length 0), so the root is made here.
	newCA := func(cn string, parent *x509.Certificate, signer *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		}
		if parent == nil {
			parent, signer = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	rootCert, rootKey := newCA("root", nil, nil)
	root := &CA{Cert: rootCert, Key: rootKey}
	midCert, key := newCA("intermediate", rootCert, rootKey)
	der := midCert.Raw
	keyPEM, _ := encodeKey(key)
	mid, err := ParseCA(append(pemBlock("CERTIFICATE", der), root.CertPEM()...), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mid.ClientCertificate("leaf")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 3 {
		t.Fatalf("chain of %d certificates, want leaf, intermediate, root", len(c.Certificate))
	}
	inter := x509.NewCertPool()
	for _, d := range c.Certificate[1:] {
		ic, _ := x509.ParseCertificate(d)
		inter.AddCert(ic)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: root.Pool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
}

func TestValidity(t *testing.T) {
	if _, err := NewCA("x", 0); err == nil {
		t.Error("NewCA with no validity succeeded")
	}
	ca := mustCA(t, "test CA")
	c, err := ca.Issue(Leaf{CommonName: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotAfter.Equal(ca.Cert.NotAfter) || time.Since(c.Leaf.NotBefore) < 30*time.Second {
		t.Errorf("default validity %v to %v, CA until %v", c.Leaf.NotBefore, c.Leaf.NotAfter, ca.Cert.NotAfter)
	}
	now := time.Now()
	if _, err := ca.Issue(Leaf{CommonName: "backwards", NotBefore: now, NotAfter: now.Add(-time.Second)}); err == nil {
		t.Error("a certificate that ends before it starts was issued")
	}
	a, _ := ca.ClientCertificate("a")
	b, _ := ca.ClientCertificate("a")
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func BenchmarkClientCertificate(b *testing.B) {
	ca := mustCA(b, "bench CA")
	for b.Loop() {
		if _, err := ca.ClientCertificate("client"); err != nil {
			b.Fatal(err)
		}
	}
}
