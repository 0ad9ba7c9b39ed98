package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/internal/testcerts"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// testPKI is a CA, a server certificate and a client certificate in
// files, as the flags take them.
type testPKI struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newTestPKI(t *testing.T) testPKI {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "cmd test CA")
	p := testPKI{ca: ca.WriteCA(t, dir, "ca.pem")}
	p.serverCert, p.serverKey = ca.Server(t).Write(t, dir, "server")
	p.clientCert, p.clientKey = ca.Client(t, "bench-client").Write(t, dir, "client")
	return p
}

// serveBroker serves a reference broker on a listener of url (TLS ones
// with lopts) and returns the URL with its port.
func serveBroker(t *testing.T, url string, lopts transport.ListenOptions) string {
	t.Helper()
	srv := broker.New(broker.Options{})
	t.Cleanup(func() { srv.Close() })
	l, err := transport.Listen(url, lopts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l) //nolint:errcheck // ends when the broker closes
	return transport.ListenerURL(l)
}

// sniffer is a TCP proxy in front of a plain ws:// listener that counts
// the connections whose upgrade request carried a token.
type sniffer struct {
	mu               sync.Mutex
	total, withToken int
}

func sniffProxy(t *testing.T, target, token string) (string, *sniffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &sniffer{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				// The upgrade request is the first thing sent.
				c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				head := make([]byte, 4096)
				n, _ := c.Read(head)
				c.SetReadDeadline(time.Time{}) //nolint:errcheck
				s.mu.Lock()
				s.total++
				if bytes.Contains(head[:n], []byte(token)) {
					s.withToken++
				}
				s.mu.Unlock()
				up.Write(head[:n]) //nolint:errcheck
				go io.Copy(up, c)  //nolint:errcheck
				io.Copy(c, up)     //nolint:errcheck
			}()
		}
	}()
	return "ws://" + l.Addr().String() + "/mqtt", s
}

func (s *sniffer) counts() (total, withToken int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.withToken
}

// A bad URL or a missing certificate file is one line naming it, exit 2,
// in every command that dials or listens.
func TestTransportUsageErrors(t *testing.T) {
	p := newTestPKI(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"conform", "--broker", "quic://127.0.0.1:1"}, `mqttbench conform: --broker "quic://127.0.0.1:1": unknown scheme "quic"`},
		{[]string{"conform", "--broker", "tls://127.0.0.1:1", "--cacert", missing}, "mqttbench conform: --cacert " + missing + ": no such file or directory"},
		{[]string{"conform", "--broker", "tls://127.0.0.1:1", "--cert", p.clientCert}, "mqttbench conform: --cert " + p.clientCert + " needs --key"},
		{[]string{"conform", "--broker", "tcp://127.0.0.1:1", "--cacert", p.ca}, `mqttbench conform: --broker "tcp://127.0.0.1:1" is not a TLS URL, yet --cacert is given`},
		{[]string{"conform", "--cacert", p.ca}, "mqttbench conform: --cacert: the in-process broker listens on plain TCP"},
		{[]string{"conform", "--broker", "ws://127.0.0.1:1", "--header", "Authorization Bearer x"}, "mqttbench conform: --header #1: want NAME:VALUE"},
		{[]string{"load", "--broker", "quic://127.0.0.1:1"}, `mqttbench load: broker "quic://127.0.0.1:1": unknown scheme "quic"`},
		{[]string{"load", "--broker", "wss://127.0.0.1:1", "--cacert", missing}, "mqttbench load: --cacert " + missing + ": no such file"},
		{[]string{"load", "--tls-min", "1.3"}, "mqttbench load: --tls-min: the in-process broker is reached over net.Pipe"},
		{[]string{"fuzz", "--broker", "quic://127.0.0.1:1"}, `mqttbench fuzz: --broker "quic://127.0.0.1:1": unknown scheme "quic"`},
		{[]string{"fuzz", "--broker", "mqtts://127.0.0.1:1", "--key", missing, "--cert", p.clientCert}, "mqttbench fuzz: --key " + missing + ": no such file"},
		{[]string{"compare", "--broker", "a=quic://127.0.0.1:1"}, `mqttbench compare: --broker a="quic://127.0.0.1:1": unknown scheme "quic"`},
		{[]string{"compare", "--broker", "a=tls://127.0.0.1:1", "--cacert", missing}, "mqttbench compare: --cacert " + missing + ": no such file"},
		{[]string{"compare", "--broker", "a=tcp://127.0.0.1:1", "--insecure"}, "mqttbench compare: --insecure: no --broker is a TLS URL"},
		{[]string{"broker", "--listen", "quic://127.0.0.1:0"}, `mqttbench broker: --listen "quic://127.0.0.1:0": unknown scheme "quic"`},
		{[]string{"broker", "--listen", "tls://127.0.0.1:0", "--cert", missing, "--key", p.serverKey}, "mqttbench broker: --cert " + missing + ": no such file"},
		{[]string{"broker", "--listen", "wss://127.0.0.1:0"}, "mqttbench broker: a TLS listener needs --cert and --key"},
		{[]string{"broker", "--listen", "127.0.0.1:0", "--cert", p.serverCert, "--key", p.serverKey}, "no --listen is one"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, _, stderr := runCLI(ctx, tc.args...)
			first, rest, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and a first line with %q", code, stderr, tc.want)
			}
			if rest != "" && !strings.HasPrefix(rest, "Try: ") {
				t.Errorf("more than the error and a hint: %q", stderr)
			}
		})
	}
}

// `mqttbench broker` serves tcp, tls, ws and wss at once, each printed
// as the URL it listens on; a client certificate is required when asked.
func TestBrokerListensOnEveryTransport(t *testing.T) {
	p := newTestPKI(t)
	b := brokerCommand(t, "--listen", "tls://127.0.0.1:0", "--listen", "ws://127.0.0.1:0", "--listen", "wss://127.0.0.1:0/mqtt/ws",
		"--cert", p.serverCert, "--key", p.serverKey, "--client-ca", p.ca, "--require-client-cert")
	want := regexp.MustCompile(`^listening on 127\.0\.0\.1:\d+\nlistening on (tls://127\.0\.0\.1:\d+)\nlistening on (ws://127\.0\.0\.1:\d+/mqtt)\nlistening on (wss://127\.0\.0\.1:\d+/mqtt/ws)\n$`)
	m := want.FindStringSubmatch(b.stdout.String())
	if m == nil {
		t.Fatalf("stdout %q", b.stdout)
	}
	withCert := transport.Options{TLS: transport.TLSOptions{CACert: p.ca, Cert: p.clientCert, Key: p.clientKey}}
	for _, url := range append([]string{"tcp://" + b.addr}, m[1:]...) {
		opts := withCert
		if u, _ := transport.Parse(url); !u.Secure() {
			opts = transport.Options{}
		}
		d, err := transport.NewDialer(url, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nc, err := d.DialContext(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		connack := exchange(t, nc, &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: "t", CleanStart: true, KeepAlive: 30})
		nc.Close()
		if !bytes.Equal(connack, []byte{0x20, 0x02, 0x00, 0x00}) {
			t.Errorf("%s: CONNACK % X", url, connack)
		}
	}
	// Without a client certificate the handshake is refused.
	d, err := transport.NewDialer(m[1], transport.Options{TLS: transport.TLSOptions{CACert: p.ca}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := probeBroker(ctx, d, packetgen.V311, "", ""); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("no client certificate: %v", err)
	}
}

// conform over wss with a client certificate, split over shard processes:
// the TLS flags reach every shard (a handshake without them fails), the
// negotiated TLS is printed; a WebSocket header reaches every connection
// of every shard, never on a command line.
func TestConformOverTLSAndWebSocket(t *testing.T) {
	t.Setenv(runMainEnv, "1")
	p := newTestPKI(t)
	wss := serveBroker(t, "wss://127.0.0.1:0", transport.ListenOptions{Cert: p.serverCert, Key: p.serverKey, ClientCA: p.ca, RequireClientCert: true})
	const token = "tok-5e1d-never-on-a-command-line"
	ws, sniff := sniffProxy(t, strings.TrimSuffix(strings.TrimPrefix(serveBroker(t, "ws://127.0.0.1:0", transport.ListenOptions{}), "ws://"), "/mqtt"), token)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"wss", []string{"--broker", wss, "--cacert", p.ca, "--cert", p.clientCert, "--key", p.clientKey}},
		{"ws", []string{"--broker", ws, "--header", "Authorization: Bearer " + token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "c.json")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			stop := make(chan struct{})
			cmdlines := make(chan []string, 1)
			go func() { cmdlines <- childCmdlines(stop) }()
			args := append([]string{"conform"}, tc.args...)
			code, stdout, stderr := runCLI(ctx, append(args, "--concurrency", "2", "--focus", `MQTT-3\.1\.0-`, "--json", out)...)
			close(stop)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			res, err := reports.ReadConformance(out)
			if err != nil || len(res.Specs) < 2 {
				t.Fatalf("result: %v", err)
			}
			if tc.name == "wss" && !strings.Contains(stderr, "mqttbench conform: TLS 1.3, TLS_") {
				t.Errorf("the negotiated TLS is not printed:\n%s", stderr)
			}
			shards := 0
			for _, c := range <-cmdlines {
				if strings.Contains(c, token) {
					t.Errorf("a shard's command line holds the header: %q", c)
				}
				if strings.Contains(c, " --shard ") {
					shards++
					if tc.name == "wss" && !strings.Contains(c, "--cacert="+p.ca) {
						t.Errorf("a shard's command line lacks --cacert: %q", c)
					}
				}
			}
			if shards != 2 {
				t.Errorf("saw %d shards, want 2", shards)
			}
			if total, with := sniff.counts(); tc.name == "ws" && (total < 3 || with != total) {
				t.Errorf("%d of %d WebSocket connections carried the header", with, total)
			}
		})
	}
}

// compare gives each broker the options its URL takes (TLS to wss,
// the header to ws), and its conformance child the same, the header
// through the environment.
func TestCompareMixedTransports(t *testing.T) {
	t.Setenv(runMainEnv, "1")
	p := newTestPKI(t)
	wss := serveBroker(t, "wss://127.0.0.1:0", transport.ListenOptions{Cert: p.serverCert, Key: p.serverKey})
	const token = "tok-77aa-compare"
	ws, sniff := sniffProxy(t, strings.TrimSuffix(strings.TrimPrefix(serveBroker(t, "ws://127.0.0.1:0", transport.ListenOptions{}), "ws://"), "/mqtt"), token)
	dir := filepath.Join(t.TempDir(), "cmp")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	cmdlines := make(chan []string, 1)
	go func() { cmdlines <- childCmdlines(stop) }()
	code, stdout, stderr := runCLI(ctx, "compare", "--broker", "secure="+wss, "--broker", "web="+ws, "--broker", "ref=inproc",
		"--cacert", p.ca, "--header", "Authorization: Bearer "+token, "--skip-load", "--focus", `MQTT-3\.1\.0-1`, "-o", dir)
	close(stop)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "secure: conformance against "+wss+" (TLS 1.3, TLS_") {
		t.Errorf("stderr does not name the TLS of secure:\n%s", stderr)
	}
	for _, c := range <-cmdlines {
		if strings.Contains(c, token) {
			t.Errorf("a child's command line holds the header: %q", c)
		}
	}
	if total, with := sniff.counts(); total < 2 || with != total {
		t.Errorf("%d of %d WebSocket connections carried the header", with, total)
	}
}

// load over worker processes: TLS files and WebSocket headers reach every
// worker in its configuration on stdin, never on its command line, and
// every connection of every worker carries the header.
func TestLoadWorkersOverWebSocket(t *testing.T) {
	const token = "tok-31c9-load-workers"
	ws, sniff := sniffProxy(t, strings.TrimSuffix(strings.TrimPrefix(serveBroker(t, "ws://127.0.0.1:0", transport.ListenOptions{}), "ws://"), "/mqtt"), token)
	dir := t.TempDir()
	stop := make(chan struct{})
	cmdlines := make(chan []string, 1)
	go func() { cmdlines <- childCmdlines(stop) }()
	code, stdout, stderr := loadCLI(context.Background(), append(crossArgs(ws, dir, 1), "--workers", "3", "--quiet", "--header", "Authorization: Bearer "+token)...)
	close(stop)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	workers := 0
	for _, c := range <-cmdlines {
		if strings.Contains(c, token) {
			t.Errorf("a worker's command line holds the header: %q", c)
		}
		if strings.Contains(c, "load-worker") {
			workers++
		}
	}
	if workers != 3 {
		t.Errorf("saw %d workers, want 3", workers)
	}
	// 12 connections, and the parent's probe.
	if total, with := sniff.counts(); total < 13 || with != total {
		t.Errorf("%d of %d WebSocket connections carried the header", with, total)
	}
	noSecretIn(t, dir, token)
}

// noSecretIn fails if s is in any file under dir.
func noSecretIn(t *testing.T, dir, s string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error { //nolint:errcheck
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", p, s)
			}
		}
		return nil
	})
}

// --identity-as-username takes the user from the client certificate's
// common name, over TLS and through a WebSocket alike: a client with one
// is admitted, one without is not authorized (CONNACK 5).
func TestBrokerIdentityAsUsername(t *testing.T) {
	p := newTestPKI(t)
	b := brokerCommand(t, "--listen", "tls://127.0.0.1:0", "--listen", "wss://127.0.0.1:0",
		"--cert", p.serverCert, "--key", p.serverKey, "--client-ca", p.ca, "--identity-as-username")
	urls := regexp.MustCompile(`(?m)^listening on ((tls|wss)://\S+)$`).FindAllStringSubmatch(b.stdout.String(), -1)
	if len(urls) != 2 {
		t.Fatalf("stdout %q", b.stdout)
	}
	for _, m := range urls {
		for _, tc := range []struct {
			name string
			tls  transport.TLSOptions
			code byte
		}{
			{"with a certificate", transport.TLSOptions{CACert: p.ca, Cert: p.clientCert, Key: p.clientKey}, 0},
			{"without", transport.TLSOptions{CACert: p.ca}, 5},
		} {
			d, err := transport.NewDialer(m[1], transport.Options{TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			nc, err := d.DialContext(ctx)
			cancel()
			if err != nil {
				t.Fatalf("%s %s: %v", m[1], tc.name, err)
			}
			got := exchange(t, nc, &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: "id", CleanStart: true, KeepAlive: 30})
			nc.Close()
			if want := []byte{0x20, 0x02, 0x00, tc.code}; !bytes.Equal(got, want) {
				t.Errorf("%s %s: CONNACK % X, want % X", m[1], tc.name, got, want)
			}
		}
	}
}
