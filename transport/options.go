package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
)

// Options say how to dial, apart from the URL. The zero value dials
// tcp:// and ws:// as they are and verifies tls:// and wss:// against the
// system's roots. Options travel to worker processes as JSON (on stdin:
// headers may hold a token).
type Options struct {
	TLS       TLSOptions       `json:"tls,omitzero"`
	WebSocket WebSocketOptions `json:"websocket,omitzero"`
	// NetDialer is the template of every TCP connect (timeout, local
	// address, a Control hook); nil is a zero net.Dialer. DialFrom
	// replaces it per connection.
	NetDialer *net.Dialer `json:"-"`
	// TLSConfig, when set, adjusts the TLS config the connections share,
	// once, when the Dialer is made: a load generator adds a session
	// cache, or a GetClientCertificate that finds each connection's
	// certificate by the dial's context (the handshake carries it).
	TLSConfig func(cfg *tls.Config) `json:"-"`
	// TLSConn, when set, adjusts each handshake's own copy of the TLS
	// config, given the dial's context: a load generator gives each
	// connection its certificate and session cache this way.
	TLSConn func(ctx context.Context, cfg *tls.Config) `json:"-"`
	// WrapConn, when set, wraps each TCP connection before TLS or a
	// WebSocket goes on it (a load generator's non-blocking reads).
	WrapConn func(net.Conn) net.Conn `json:"-"`
	// Via maps a URL's host:port to the address the TCP connect goes to
	// instead, as curl's --connect-to: a fault proxy in front of the
	// broker. TLS (server name, verification) and the WebSocket request
	// still name the URL's host, so the proxy only forwards bytes.
	Via map[string]string `json:"via,omitempty"`
}

// connectAddr is where a TCP connect for host goes.
func (o *Options) connectAddr(host string) string {
	if a, ok := o.Via[host]; ok && a != "" {
		return a
	}
	return host
}

// TLSOptions configure a TLS client. Each field is the command-line flag
// of the same name; errors name the flag.
type TLSOptions struct {
	CACert     string   `json:"cacert,omitempty"`     // --cacert: PEM roots replacing the system's
	Cert       string   `json:"cert,omitempty"`       // --cert: PEM client certificate (needs Key)
	Key        string   `json:"key,omitempty"`        // --key: its PEM private key
	Insecure   bool     `json:"insecure,omitempty"`   // --insecure: do not verify the server
	ServerName string   `json:"servername,omitempty"` // --servername: SNI and the name verified (default: the URL's host)
	ALPN       []string `json:"alpn,omitempty"`       // --alpn: protocols offered, in order
	MinVersion string   `json:"min_version,omitempty"`
}

// IsZero reports whether no TLS option is set.
func (o TLSOptions) IsZero() bool {
	return o.CACert == "" && o.Cert == "" && o.Key == "" && !o.Insecure && o.ServerName == "" &&
		len(o.ALPN) == 0 && o.MinVersion == ""
}

// set names the first option given, for errors about options that do not
// apply.
func (o TLSOptions) set() string {
	switch {
	case o.CACert != "":
		return "--cacert"
	case o.Cert != "":
		return "--cert"
	case o.Key != "":
		return "--key"
	case o.Insecure:
		return "--insecure"
	case o.ServerName != "":
		return "--servername"
	case len(o.ALPN) > 0:
		return "--alpn"
	case o.MinVersion != "":
		return "--tls-min"
	}
	return ""
}

// WebSocketOptions configure the WebSocket handshake. The client always
// asks for the mqtt subprotocol and sends binary frames only.
type WebSocketOptions struct {
	// Headers are added to the upgrade request (--header), such as an
	// Authorization bearer token.
	Headers http.Header `json:"headers,omitempty"`
}

// Config builds the client's tls.Config, reading every file now so that
// a missing or bad one is an error before the first connection. Errors
// name the flag and the file, never a key's content.
func (o TLSOptions) Config() (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: o.Insecure, ServerName: o.ServerName, NextProtos: o.ALPN}
	v, err := tlsVersion(o.MinVersion)
	if err != nil {
		return nil, err
	}
	cfg.MinVersion = v
	if o.CACert != "" {
		if cfg.RootCAs, err = loadPool("--cacert", o.CACert); err != nil {
			return nil, err
		}
	}
	if o.Cert != "" || o.Key != "" {
		cert, err := loadPair("--cert", o.Cert, "--key", o.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// tlsVersion reads --tls-min: 1.2 (the default) or 1.3.
func tlsVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("--tls-min %q: want 1.2 or 1.3", s)
}

// loadPool reads a PEM file of certificates into a pool.
func loadPool(flag, path string) (*x509.CertPool, error) {
	b, err := readFile(flag, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}

// loadPair reads a certificate and its key; both or neither.
func loadPair(certFlag, certPath, keyFlag, keyPath string) (tls.Certificate, error) {
	switch {
	case certPath == "":
		return tls.Certificate{}, fmt.Errorf("%s %s needs %s", keyFlag, keyPath, certFlag)
	case keyPath == "":
		return tls.Certificate{}, fmt.Errorf("%s %s needs %s", certFlag, certPath, keyFlag)
	}
	certPEM, err := readFile(certFlag, certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readFile(keyFlag, keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's reasons name which input is wrong, never its bytes.
		return tls.Certificate{}, fmt.Errorf("%s %s, %s %s: %v", certFlag, certPath, keyFlag, keyPath, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("%s %s: %v", certFlag, certPath, err)
		}
	}
	return cert, nil
}

// readFile reads a file named by a flag; the error names both once.
func readFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s %s: %v", flag, path, err)
	}
	return b, nil
}
