package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/internal/testcerts"
)

// pki is a CA with a server and a client certificate, written to files
// as the flags name them.
type pki struct {
	ca                    *testcerts.CA
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "mqttbench test CA")
	p := pki{ca: ca, caFile: ca.WriteCA(t, dir, "ca.pem")}
	p.serverCert, p.serverKey = ca.Server(t).Write(t, dir, "server")
	p.clientCert, p.clientKey = ca.Client(t, "device-17").Write(t, dir, "client")
	return p
}

func (p pki) server() ListenOptions { return ListenOptions{Cert: p.serverCert, Key: p.serverKey} }

// A TLS listener and dialer: the server verified against --cacert, the
// negotiated version and suite readable from the connection, the phases
// timed.
func TestTLSServerOnly(t *testing.T) {
	noLeaks(t)
	p := newPKI(t)
	url := listen(t, "tls://127.0.0.1:0", p.server(), nil)
	if !strings.HasPrefix(url, "tls://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("listener URL %s", url)
	}
	d, err := NewDialer(url, Options{TLS: TLSOptions{CACert: p.caFile}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, ph, err := d.DialTimed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	v, cipher, ok := TLSInfo(c)
	if !ok || v != "TLS 1.3" || !strings.HasPrefix(cipher, "TLS_") {
		t.Errorf("TLSInfo = %q %q %v; want TLS 1.3 and a suite", v, cipher, ok)
	}
	if ph.Connect <= 0 || ph.TLS <= 0 || ph.WebSocket != 0 {
		t.Errorf("phases %+v: want connect and TLS, no WebSocket", ph)
	}
	if _, ok := TCPConn(c); !ok {
		t.Error("TCPConn does not see the TCP connection under TLS")
	}
	// Many connections at once through one dialer (run with -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if got, err := roundTrip(c, strings.Repeat("x", i+1)); err != nil || len(got) != i+1 {
				t.Errorf("echo %q, %v", got, err)
			}
		}()
	}
	wg.Wait()
}

// The server's certificate must verify: against the wrong CA the dial
// fails, --insecure skips the check, --servername picks the name checked.
func TestTLSVerification(t *testing.T) {
	p := newPKI(t)
	url := listen(t, "tls://127.0.0.1:0", p.server(), nil)
	other := testcerts.NewCA(t, "another CA").WriteCA(t, t.TempDir(), "other.pem")
	for _, tc := range []struct {
		name string
		opts TLSOptions
		err  string
	}{
		{"right CA", TLSOptions{CACert: p.caFile}, ""},
		{"wrong CA", TLSOptions{CACert: other}, "certificate signed by unknown authority"},
		{"system roots", TLSOptions{}, "certificate signed by unknown authority"},
		{"insecure", TLSOptions{Insecure: true}, ""},
		{"server name in the certificate", TLSOptions{CACert: p.caFile, ServerName: "localhost"}, ""},
		{"server name not in it", TLSOptions{CACert: p.caFile, ServerName: "broker.example"}, "not broker.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, url, Options{TLS: tc.opts})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got, err := roundTrip(c, "ok"); err != nil || got != "ok" {
					t.Fatalf("echo %q, %v", got, err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("dial succeeded; want %q", tc.err)
			}
			if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "TLS handshake with 127.0.0.1:") {
				t.Errorf("error %q; want the handshake's and %q", err, tc.err)
			}
		})
	}
}

// Mutual TLS: the server sees the client certificate's common name; a
// client without a certificate is refused when one is required.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	cn := make(chan string, 1)
	lopts := p.server()
	lopts.ClientCA, lopts.RequireClientCert = p.caFile, true
	url := listen(t, "tls://127.0.0.1:0", lopts, func(c net.Conn) {
		b := make([]byte, 2)
		if _, err := io.ReadFull(c, b); err != nil { // the handshake runs here
			return
		}
		if certs := PeerCertificates(c); len(certs) > 0 {
			cn <- certs[0].Subject.CommonName
		} else {
			cn <- "(none)"
		}
		c.Write(b) //nolint:errcheck
	})
	c, err := dial(t, url, Options{TLS: TLSOptions{CACert: p.caFile, Cert: p.clientCert, Key: p.clientKey}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(c, "hi"); err != nil || got != "hi" {
		t.Fatalf("echo %q, %v", got, err)
	}
	c.Close()
	if got := <-cn; got != "device-17" {
		t.Errorf("the server saw client certificate %q, want device-17", got)
	}

	// TLS 1.3 finishes the client's handshake before the server judges
	// its certificate: the refusal arrives as an alert on the first read.
	c, err = dial(t, url, Options{TLS: TLSOptions{CACert: p.caFile}})
	if err == nil {
		_, err = roundTrip(c, "hi")
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("a client without a certificate: %v; want it refused (certificate required)", err)
	}
}

// --tls-min 1.3 refuses a server that tops out at 1.2; by default 1.2 is
// accepted. --alpn is offered and the listener's choice comes back.
func TestTLSVersionAndALPN(t *testing.T) {
	p := newPKI(t)
	pair, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	l12, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer l12.Close()
	go func() {
		for {
			c, err := l12.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); c.SetDeadline(time.Now().Add(5 * time.Second)); echo(c) }() //nolint:errcheck
		}
	}()
	url12 := "tls://" + l12.Addr().String()
	c, err := dial(t, url12, Options{TLS: TLSOptions{CACert: p.caFile}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := TLSInfo(c); v != "TLS 1.2" {
		t.Errorf("negotiated %q with a 1.2 server, want TLS 1.2", v)
	}
	c.Close()
	if c, err := dial(t, url12, Options{TLS: TLSOptions{CACert: p.caFile, MinVersion: "1.3"}}); err == nil {
		c.Close()
		t.Error("--tls-min 1.3 connected to a server that speaks at most 1.2")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("--tls-min 1.3 against 1.2: %v", err)
	}

	lopts := p.server()
	lopts.ALPN = []string{"mqtt"}
	url := listen(t, "tls://127.0.0.1:0", lopts, nil)
	c, err = dial(t, url, Options{TLS: TLSOptions{CACert: p.caFile, ALPN: []string{"x-amzn-mqtt-ca", "mqtt"}, MinVersion: "1.3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, ok := ConnectionState(c)
	if !ok || st.NegotiatedProtocol != "mqtt" || st.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %q over %s; want mqtt over TLS 1.3", st.NegotiatedProtocol, tls.VersionName(st.Version))
	}
}

// Plain and TLS crossed: a TLS dial to a plain port fails at the
// handshake and says why; a plain client on a TLS port is closed on, not
// left hanging.
func TestPlainAndTLSCrossed(t *testing.T) {
	p := newPKI(t)
	plain := listen(t, "tcp://127.0.0.1:0", ListenOptions{}, func(c net.Conn) {
		b := make([]byte, 1)
		c.Read(b) //nolint:errcheck // a broker reads a byte that is no CONNECT and closes
	})
	_, err := dial(t, "tls"+strings.TrimPrefix(plain, "tcp"), Options{TLS: TLSOptions{CACert: p.caFile}})
	if err == nil || !strings.Contains(err.Error(), "does this port speak TLS?") {
		t.Errorf("TLS to a plain port: %v", err)
	}

	secure := listen(t, "tls://127.0.0.1:0", p.server(), func(c net.Conn) {
		c.Read(make([]byte, 1)) //nolint:errcheck // the handshake fails
	})
	c, err := dial(t, "tcp"+strings.TrimPrefix(secure, "tls"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))                           //nolint:errcheck
	c.Write([]byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0}) //nolint:errcheck // CONNECT
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("plain CONNECT to a TLS port: still open after 5 s")
	}
}

// Files are read when the dialer or listener is built: a missing or bad
// one is one line naming the flag and the file, never a key's content.
func TestTLSFileErrors(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM at all\n"), 0o600) //nolint:errcheck
	_, otherKey := p.ca.Client(t, "x").Write(t, dir, "other")
	key, _ := os.ReadFile(p.clientKey)
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		tls  TLSOptions
		want string
	}{
		{"missing CA", TLSOptions{CACert: missing}, "--cacert " + missing + ": no such file or directory"},
		{"CA not PEM", TLSOptions{CACert: junk}, "--cacert " + junk + ": no PEM certificate in it"},
		{"cert without key", TLSOptions{Cert: p.clientCert}, "--cert " + p.clientCert + " needs --key"},
		{"key without cert", TLSOptions{Key: p.clientKey}, "--key " + p.clientKey + " needs --cert"},
		{"missing key", TLSOptions{Cert: p.clientCert, Key: missing}, "--key " + missing + ": no such file"},
		{"cert not PEM", TLSOptions{Cert: junk, Key: p.clientKey}, "--cert " + junk},
		{"key of another cert", TLSOptions{Cert: p.clientCert, Key: otherKey}, "private key does not match public key"},
		{"key as cert", TLSOptions{Cert: p.clientKey, Key: p.clientKey}, "--cert " + p.clientKey},
		{"bad version", TLSOptions{MinVersion: "1.1"}, `--tls-min "1.1": want 1.2 or 1.3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDialer("tls://127.0.0.1:8883", Options{TLS: tc.tls})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want one line with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(key[40:80])) {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}

	for _, tc := range []struct {
		url  string
		opts ListenOptions
		want string
	}{
		{"tls://127.0.0.1:0", ListenOptions{}, "needs --cert and --key"},
		{"wss://127.0.0.1:0", ListenOptions{Cert: missing, Key: p.serverKey}, "--cert " + missing + ": no such file"},
		{"tls://127.0.0.1:0", ListenOptions{Cert: p.serverCert, Key: p.serverKey, RequireClientCert: true}, "--require-client-cert needs --client-ca"},
		{"tls://127.0.0.1:0", ListenOptions{Cert: p.serverCert, Key: p.serverKey, ClientCA: junk}, "--client-ca " + junk},
		{"tcp://127.0.0.1:0", ListenOptions{Cert: p.serverCert, Key: p.serverKey}, "not a TLS URL, yet --cert is given"},
		{"inproc", ListenOptions{}, "RegisterInproc"},
	} {
		if l, err := Listen(tc.url, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			if l != nil {
				l.Close()
			}
			t.Errorf("Listen(%s): %v; want %q", tc.url, err, tc.want)
		}
	}
}

// Options that cannot apply to the URL are refused, not ignored: TLS
// files for a plain URL would otherwise dial in the clear.
func TestOptionsMustApply(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts Options
		want string
	}{
		{"tcp://127.0.0.1:1883", Options{TLS: TLSOptions{CACert: "ca.pem"}}, `"tcp://127.0.0.1:1883" is not a TLS URL, yet --cacert is given`},
		{"ws://127.0.0.1:8080", Options{TLS: TLSOptions{Insecure: true}}, "yet --insecure is given"},
		{"tls://127.0.0.1:8883", Options{WebSocket: WebSocketOptions{Headers: map[string][]string{"A": {"b"}}}}, "not a WebSocket URL, yet --header is given"},
		{"tcp://127.0.0.1:0", Options{}, "port 0 names no broker"},
	} {
		if _, err := NewDialer(tc.url, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewDialer(%s, %+v): %v; want %q", tc.url, tc.opts, err, tc.want)
		}
	}
}
