package loadgen

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/certs"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// tlsFiles is a throwaway CA, written as ca.pem and ca-key.pem, and a
// server certificate for 127.0.0.1 (server.pem, server-key.pem).
type tlsFiles struct {
	dir string
	ca  *certs.CA
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	ca, err := certs.NewCA("loadgen test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFiles{dir: t.TempDir(), ca: ca}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "ca.pem", ca.CertPEM())
	f.write(t, "ca-key.pem", key)
	cert, key, err := ca.Server(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "server.pem", cert)
	f.write(t, "server-key.pem", key)
	return f
}

func (f *tlsFiles) path(name string) string { return filepath.Join(f.dir, name) }

func (f *tlsFiles) write(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(f.path(name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// client writes client-NAME.pem and client-NAME-key.pem, common name cn.
func (f *tlsFiles) client(t *testing.T, name, cn string) {
	t.Helper()
	cert, key, err := f.ca.Client(cn)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "client-"+name+".pem", cert)
	f.write(t, "client-"+name+"-key.pem", key)
}

// serveTLS starts the reference broker on url (tls:// or wss://, port
// 0) with the files' server certificate and returns the URL to dial.
func serveTLS(t *testing.T, f *tlsFiles, url string, bo broker.Options, lo transport.ListenOptions) string {
	t.Helper()
	lo.Cert, lo.Key = f.path("server.pem"), f.path("server-key.pem")
	l, err := transport.Listen(url, lo)
	if err != nil {
		t.Fatal(err)
	}
	srv := broker.New(bo)
	go srv.Serve(l) //nolint:errcheck // ends with ErrServerClosed
	t.Cleanup(func() { srv.Close() })
	return transport.ListenerURL(l)
}

func latencies(l *reports.Load) map[string]int64 {
	out := map[string]int64{}
	for _, x := range l.Latency {
		out[x.Metric] = x.Count
	}
	return out
}

// 1,000 connections over mqtts:// and over wss:// to the reference broker,
// QoS 1 point to point: every message delivered once, in order; each
// phase of the connect in its own histogram, in the summary and the
// .hlog files; the TLS version and cipher suite in the summary and the
// table. Idle TLS connections are read by the epoll watcher, so the run
// holds fewer goroutines than connections (TestIdleTLSKeepalive checks
// keep alive through it; here a long one keeps a slow machine's run
// clean).
func TestLoadOverTLSAndWebSocket(t *testing.T) {
	f := newTLSFiles(t)
	for _, tc := range []struct {
		scheme string
		ws     bool
	}{
		{"mqtts", false},
		{"wss", true},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			listen := "tls://127.0.0.1:0"
			if tc.ws {
				listen = "wss://127.0.0.1:0/mqtt"
			}
			url := serveTLS(t, f, listen, broker.Options{}, transport.ListenOptions{})
			if !tc.ws {
				url = "mqtts://" + strings.TrimPrefix(url, "tls://")
			}
			sc := DefaultScenario()
			sc.Brokers = []string{url}
			sc.Connections, sc.Publishers, sc.Subscribers = 1000, 100, 100
			sc.QoS, sc.Topic = 1, "tls/{p}"
			sc.Rate, sc.Duration, sc.Drain, sc.MaxLag = 200, 2500*time.Millisecond, 20*time.Second, 0
			sc.Ramp, sc.ConnectTimeout, sc.Keepalive = 120, time.Minute, time.Minute
			var mu sync.Mutex
			readers := -1
			out := filepath.Join(t.TempDir(), "results")
			opts := Options{
				Out: out,
				Transport: transport.Options{TLS: transport.TLSOptions{CACert: f.path("ca.pem")},
					// X25519 alone costs half the CPU of Go's default
					// X25519MLKEM768 under the race detector; the caller's
					// hook runs beside the run's own.
					TLSConfig: func(cfg *tls.Config) { cfg.CurvePreferences = []tls.CurveID{tls.X25519} }},
				Progress: func(s reports.LoadSecond) {
					if s.Phase == "publish" {
						mu.Lock()
						readers = max(readers, readerGoroutines())
						mu.Unlock()
					}
				},
			}
			l := run(t, sc, opts)
			checkClean(t, l, 1)
			if len(l.Errors) > 0 {
				t.Logf("first errors: %v", l.ErrorSample)
			}
			if l.Connections.Ready != 1000 || l.Connections.Attempts != 1000 {
				t.Errorf("connections %+v", l.Connections)
			}
			lat := latencies(l)
			wantWS := int64(0)
			if tc.ws {
				wantWS = 1000
			}
			if lat["tcp_connect"] != 1000 || lat["tls_handshake"] != 1000 || lat["ws_upgrade"] != wantWS || lat["connect"] != 1000 || lat["subscribe"] != 100 {
				t.Errorf("latency counts %v", lat)
			}
			if l.TLS == nil || l.TLS.Handshakes != 1000 || l.TLS.Resumed != 0 || len(l.TLS.Negotiated) != 1 ||
				l.TLS.Negotiated[0].Version != "TLS 1.3" || !strings.HasPrefix(l.TLS.Negotiated[0].Cipher, "TLS_") || l.TLS.Negotiated[0].Group != "X25519" {
				t.Errorf("TLS summary %+v", l.TLS)
			}
			// 200 publishers and subscribers have a reader each; idle TLS
			// connections none, idle WebSockets one each.
			mu.Lock()
			if want := 200; tc.ws && readers < 1000 || !tc.ws && (readers < want || readers > want+20) {
				t.Errorf("%d reader goroutines while publishing", readers)
			}
			mu.Unlock()

			back, err := ReadResults(out)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]int64{"tcp_connect": 1000, "tls_handshake": 1000, "ws_upgrade": wantWS, "connect": 1000} {
				if got := back.Histograms[name].TotalCount(); got != want {
					t.Errorf("%s.hlog holds %d values, want %d", name, got, want)
				}
			}
			if back.Summary.TLS == nil || back.Summary.TLS.Handshakes != 1000 {
				t.Errorf("summary.json TLS %+v", back.Summary.TLS)
			}
			var table bytes.Buffer
			reports.WriteLoadTable(&table, l)
			for _, want := range []string{"tls_handshake", "TLS 1.3 " + l.TLS.Negotiated[0].Cipher + " X25519", "1000 handshakes, 0 resumed"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("the table lacks %q:\n%s", want, table.String())
				}
			}
		})
	}
}

// readerGoroutines counts the goroutines reading a connection.
func readerGoroutines() int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("loadgen.(*client).serve("))
}

// identityBroker serves TLS with client certificates required, takes each
// client's user name from its certificate's common name, and lets a
// client publish only on c/<its common name>: a publisher whose
// certificate is not its own loses every message.
func identityBroker(t *testing.T, f *tlsFiles) string {
	t.Helper()
	rules, err := acl.Parse(strings.NewReader("pattern write c/%u\npattern read c/#\n"), "test acl")
	if err != nil {
		t.Fatal(err)
	}
	return serveTLS(t, f, "tls://127.0.0.1:0", broker.Options{IdentityAsUsername: true, ACL: rules},
		transport.ListenOptions{ClientCA: f.path("ca.pem"), RequireClientCert: true})
}

// Each connection presents its own certificate: from files named by a
// template (key named after it, or by its own template), or minted from
// a CA at the start with the common name from a template. The broker
// sees each one's common name (its messages pass the ACL); one shared
// certificate instead loses the messages of every other publisher.
func TestPerConnectionCertificates(t *testing.T) {
	f := newTLSFiles(t)
	url := identityBroker(t, f)
	const n = 12
	for i := range n {
		f.client(t, strconv.Itoa(i), fmt.Sprintf("dev-%d", i))
		// The same certificates under other names, for --key-template.
		cert, _ := os.ReadFile(f.path(fmt.Sprintf("client-%d.pem", i)))
		key, _ := os.ReadFile(f.path(fmt.Sprintf("client-%d-key.pem", i)))
		f.write(t, fmt.Sprintf("c%d.crt", i), cert)
		f.write(t, fmt.Sprintf("k%d.key", i), key)
	}
	f.client(t, "shared", "dev-0")
	for _, tc := range []struct {
		name   string
		tls    ClientTLS
		shared transport.TLSOptions
		lost   bool
		certs  string
	}{
		{name: "template", tls: ClientTLS{CertTemplate: f.path("client-{i}.pem")}, certs: "per connection from " + f.path("client-{i}.pem") + " and " + f.path("client-{i}-key.pem")},
		{name: "key template", tls: ClientTLS{CertTemplate: f.path("c{i}.crt"), KeyTemplate: f.path("k{i}.key")}},
		{name: "minted", tls: ClientTLS{MintCA: f.path("ca.pem"), MintKey: f.path("ca-key.pem"), CommonName: "dev-{i}"}, certs: `minted per connection by CA "loadgen test CA", common name dev-{i}`},
		{name: "minted, resumed", tls: ClientTLS{MintCA: f.path("ca.pem"), MintKey: f.path("ca-key.pem"), CommonName: "dev-{i}", Resume: true}},
		{name: "one shared certificate", shared: transport.TLSOptions{Cert: f.path("client-shared.pem"), Key: f.path("client-shared-key.pem")}, lost: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := quick(n/2, n/2, 1, "c/dev-{p}")
			sc.Brokers = []string{url}
			sc.Rate, sc.Drain = 200, 3*time.Second
			opts := Options{TLS: tc.tls}
			opts.Transport.TLS = tc.shared
			opts.Transport.TLS.CACert = f.path("ca.pem")
			l := run(t, sc, opts)
			if l.Connections.Ready != n {
				t.Fatalf("ready %d of %d; errors %v %v", l.Connections.Ready, n, l.Errors, l.ErrorSample)
			}
			var lost uint64
			for _, v := range l.Verify {
				lost += v.Lost
			}
			if tc.lost {
				// Publisher 0 is dev-0 and gets through; the others do not.
				if m := l.Messages; lost == 0 || m.Received == 0 || m.Received >= m.Sent {
					t.Errorf("one certificate for all: lost %d, received %d of %d; want only dev-0's delivered", lost, m.Received, m.Sent)
				}
				return
			}
			checkClean(t, l, 1)
			if tc.certs != "" && (l.TLS == nil || l.TLS.ClientCerts != tc.certs) {
				t.Errorf("client certificates %+v, want %q", l.TLS, tc.certs)
			}
		})
	}
}

// dropBroker answers CONNECT and PINGREQ over TLS and closes each
// connection after hold, so every client reconnects again and again. It
// records whether each connection's certificate (resumed sessions
// included) carried the common name dev-<i> of the client identifier's
// connection index, and counts PINGREQs.
type dropBroker struct {
	url        string
	mismatched atomic.Int64
	checked    atomic.Int64
	pings      atomic.Int64
}

func newDropBroker(t *testing.T, f *tlsFiles, hold time.Duration, clientCerts bool) *dropBroker {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.path("server.pem"), f.path("server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCerts {
		cfg.ClientCAs, cfg.ClientAuth = f.ca.Pool(), tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := &dropBroker{url: "tls://" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 256)
				n, err := c.Read(buf) // CONNECT, in one record
				if err != nil {
					return
				}
				if clientCerts {
					b.check(c.(*tls.Conn), buf[:n])
				}
				c.Write([]byte{0x20, 2, 0, 0}) // CONNACK accepted
				// Then only 2-byte packets come: PINGREQ, DISCONNECT.
				c.SetDeadline(time.Now().Add(hold))
				for {
					n, err := c.Read(buf[:2])
					if n == 2 && buf[0] == 0xC0 {
						b.pings.Add(1)
						c.Write([]byte{0xD0, 0}) // PINGRESP
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return b
}

// check compares the certificate's common name with the connection index
// at the end of the client identifier ("mb<run>c<i>").
func (b *dropBroker) check(c *tls.Conn, connect []byte) {
	st := c.ConnectionState()
	at := bytes.LastIndexByte(connect, 'c')
	if at < 0 || len(st.PeerCertificates) == 0 {
		b.mismatched.Add(1)
		return
	}
	b.checked.Add(1)
	if st.PeerCertificates[0].Subject.CommonName != "dev-"+string(connect[at+1:]) {
		b.mismatched.Add(1)
	}
}

// With --tls-resume, reconnecting clients resume their sessions and the
// summary counts them; a resumed session still carries the connection's
// own certificate. Without it nothing resumes.
func TestTLSResume(t *testing.T) {
	f := newTLSFiles(t)
	const n = 10
	minted := ClientTLS{MintCA: f.path("ca.pem"), MintKey: f.path("ca-key.pem"), CommonName: "dev-{i}"}
	for _, tc := range []struct {
		name   string
		tls    ClientTLS
		certs  bool
		resume bool
	}{
		{name: "shared session", tls: ClientTLS{Resume: true}, resume: true},
		{name: "own sessions", tls: ClientTLS{MintCA: minted.MintCA, MintKey: minted.MintKey, CommonName: minted.CommonName, Resume: true}, certs: true, resume: true},
		{name: "no resumption", tls: minted, certs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newDropBroker(t, f, 200*time.Millisecond, tc.certs)
			sc := DefaultScenario()
			sc.Brokers = []string{b.url}
			sc.Publishers, sc.Subscribers, sc.Connections = 0, 0, n
			sc.Ramp, sc.Duration = 0, 2*time.Second
			opts := Options{TLS: tc.tls, Transport: transport.Options{TLS: transport.TLSOptions{CACert: f.path("ca.pem")}}}
			l := run(t, sc, opts)
			if l.TLS == nil {
				t.Fatal("no TLS summary")
			}
			h, r := l.TLS.Handshakes, l.TLS.Resumed
			t.Logf("%d handshakes, %d resumed, %d reconnects", h, r, l.Connections.Reconnects)
			if h < 2*n || l.Connections.Reconnects < n {
				t.Fatalf("%d handshakes, %d reconnects: want every client to reconnect", h, l.Connections.Reconnects)
			}
			switch {
			case !tc.resume && r != 0:
				t.Errorf("%d of %d handshakes resumed without --tls-resume", r, h)
			case tc.resume && tc.certs && (r == 0 || r > h-n):
				// A connection's first handshake has no session of its own.
				t.Errorf("%d of %d handshakes resumed; want some, and none of the %d first ones", r, h, n)
			case tc.resume && !tc.certs && r < h/2:
				t.Errorf("%d of %d handshakes resumed; with one shared cache most should", r, h)
			}
			if tc.certs && (b.mismatched.Load() != 0 || b.checked.Load() < int64(h)/2) {
				t.Errorf("%d of %d connections presented a certificate not their own", b.mismatched.Load(), b.checked.Load())
			}
		})
	}
}

// Idle TLS connections are read by the epoll watcher, not a goroutine
// each, and keep alive works through it: PINGRESPs are read, nothing
// times out.
func TestIdleTLSKeepalive(t *testing.T) {
	f := newTLSFiles(t)
	b := newDropBroker(t, f, time.Minute, false)
	sc := DefaultScenario()
	sc.Brokers = []string{b.url}
	sc.Publishers, sc.Subscribers, sc.Connections = 0, 0, 20
	sc.Ramp, sc.Keepalive, sc.Duration = 0, time.Second, 3*time.Second
	readers := -1
	opts := Options{Transport: transport.Options{TLS: transport.TLSOptions{CACert: f.path("ca.pem")}},
		Progress: func(s reports.LoadSecond) {
			if s.Phase == "hold" {
				readers = max(readers, readerGoroutines())
			}
		}}
	l := run(t, sc, opts)
	if len(l.Errors) != 0 || l.Connections.Ready != 20 || l.Connections.Attempts != 20 {
		t.Errorf("errors %v %v, connections %+v", l.Errors, l.ErrorSample, l.Connections)
	}
	if p := b.pings.Load(); p < 20 {
		t.Errorf("%d PINGREQs for 20 connections over 3 keep alives", p)
	}
	if readers != 0 {
		t.Errorf("%d reader goroutines for idle TLS connections, want 0", readers)
	}
}

// Options a TLS run refuses, each naming the flag at fault; a bad file
// is found before the first connection.
func TestClientTLSErrors(t *testing.T) {
	f := newTLSFiles(t)
	tlsURL := []string{"tls://127.0.0.1:1"}
	for _, tc := range []struct {
		name    string
		tls     ClientTLS
		brokers []string
		shared  transport.TLSOptions
		want    string
	}{
		{"no {i}", ClientTLS{CertTemplate: "certs/client.pem"}, tlsURL, transport.TLSOptions{}, "--cert-template \"certs/client.pem\" has no {i}"},
		{"no .pem", ClientTLS{CertTemplate: "certs/{i}.crt"}, tlsURL, transport.TLSOptions{}, "give --key-template"},
		{"two sources", ClientTLS{CertTemplate: "c{i}.pem", MintCA: "ca.pem", MintKey: "k.pem"}, tlsURL, transport.TLSOptions{}, "--cert-template and --client-ca-cert"},
		{"key alone", ClientTLS{KeyTemplate: "k{i}.pem"}, tlsURL, transport.TLSOptions{}, "--key-template needs --cert-template"},
		{"CA without key", ClientTLS{MintCA: "ca.pem"}, tlsURL, transport.TLSOptions{}, "--client-ca-cert needs --client-ca-key"},
		{"cn alone", ClientTLS{CommonName: "dev-{i}"}, tlsURL, transport.TLSOptions{}, "--cert-cn names minted certificates"},
		{"with --cert", ClientTLS{CertTemplate: "c{i}.pem"}, tlsURL, transport.TLSOptions{Cert: "c.pem", Key: "k.pem"}, "--cert gives every connection one certificate"},
		{"plain URL", ClientTLS{Resume: true}, []string{"tcp://127.0.0.1:1"}, transport.TLSOptions{}, "tcp://127.0.0.1:1 is not a TLS URL, yet --tls-resume is given"},
		{"in-process", ClientTLS{Resume: true}, nil, transport.TLSOptions{}, "--tls-resume needs a TLS --broker"},
		{"CA file missing", ClientTLS{MintCA: f.path("nope.pem"), MintKey: f.path("ca-key.pem")}, tlsURL, transport.TLSOptions{}, "nope.pem"},
		{"not a CA", ClientTLS{MintCA: f.path("server.pem"), MintKey: f.path("server-key.pem")}, tlsURL, transport.TLSOptions{}, "is not a CA certificate"},
		{"certificate missing", ClientTLS{CertTemplate: f.path("client-{i}.pem")}, tlsURL, transport.TLSOptions{}, "client-0.pem: no such file or directory ({i} counts connections from 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := DefaultScenario()
			sc.Brokers = tc.brokers
			sc.Duration = 100 * time.Millisecond
			opts := Options{TLS: tc.tls}
			opts.Transport.TLS = tc.shared
			_, err := Run(t.Context(), sc, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("the error shows a key: %v", err)
			}
		})
	}
}

// Shards' TLS summaries add up.
func TestMergeTLS(t *testing.T) {
	p := func(v, c string, n uint64) reports.LoadTLSParams {
		return reports.LoadTLSParams{Version: v, Cipher: c, Count: n}
	}
	const aes, ecdhe = "TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
	a := &reports.LoadTLS{Handshakes: 10, Resumed: 4, Resume: true, Negotiated: []reports.LoadTLSParams{p("TLS 1.3", aes, 10)}}
	b := &reports.LoadTLS{Handshakes: 7, Resumed: 1, Negotiated: []reports.LoadTLSParams{p("TLS 1.2", ecdhe, 3), p("TLS 1.3", aes, 4)}}
	m := mergeTLS(mergeTLS(nil, a), b)
	want := []reports.LoadTLSParams{p("TLS 1.3", aes, 14), p("TLS 1.2", ecdhe, 3)}
	if m.Handshakes != 17 || m.Resumed != 5 || !m.Resume || fmt.Sprint(m.Negotiated) != fmt.Sprint(want) {
		t.Errorf("merged %+v", m)
	}
	if a.Handshakes != 10 {
		t.Error("merging changed its first part")
	}
	if got := m.Summary(); got != "TLS 1.3 TLS_AES_128_GCM_SHA256 (14); TLS 1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (3); 17 handshakes, 5 resumed" {
		t.Errorf("summary %q", got)
	}
}
