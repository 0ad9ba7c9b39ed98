package loadgen

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/internal/testcerts"
	"github.com/mqttbench/mqttbench/transport"
)

// Connections spread over the brokers, and over the source addresses so
// that every (source, broker) pair takes an equal share.
func TestTCPDialerSpreads(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("binding to 127.0.0.2 and up needs Linux loopback")
	}
	var ls [2]net.Listener
	var urls []string
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls[i] = l
		urls = append(urls, "tcp://"+l.Addr().String())
	}
	srcs := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	dial, err := TCPDialer(urls, srcs)
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[[2]string]int{}
	for i := 0; i < 8; i++ {
		c, err := dial(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().(*net.TCPAddr).IP.String()
		pairs[[2]string{local, c.RemoteAddr().String()}]++
		if want := urls[i%2][len("tcp://"):]; c.RemoteAddr().String() != want {
			t.Errorf("connection %d went to %s, want %s", i, c.RemoteAddr(), want)
		}
		c.Close()
	}
	if len(pairs) != 4 {
		t.Errorf("pairs %v: want each of 2 sources × 2 brokers", pairs)
	}
	for p, n := range pairs {
		if n != 2 {
			t.Errorf("pair %v took %d connections, want 2", p, n)
		}
	}
}

// A scenario runs the same over every transport a URL names: TLS and
// WebSocket are only a different net.Conn to the load generator.
func TestRunOverTransports(t *testing.T) {
	ca := testcerts.NewCA(t, "load CA")
	dir := t.TempDir()
	caFile := ca.WriteCA(t, dir, "ca.pem")
	cert, key := ca.Server(t).Write(t, dir, "server")
	srv := broker.New(broker.Options{})
	t.Cleanup(func() { srv.Close() })
	for _, scheme := range []string{"tcp", "tls", "ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			var lopts transport.ListenOptions
			var opts transport.Options
			if scheme == "tls" || scheme == "wss" {
				lopts = transport.ListenOptions{Cert: cert, Key: key}
				opts.TLS.CACert = caFile
			}
			l, err := transport.Listen(scheme+"://127.0.0.1:0", lopts)
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(l) //nolint:errcheck // ends when the broker closes
			sc := quick(2, 2, 1, "bench/"+scheme+"/{p}")
			sc.Brokers = []string{transport.ListenerURL(l)}
			if runtime.GOOS == "linux" {
				sc.SourceIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
			}
			res := run(t, sc, Options{Transport: opts})
			checkClean(t, res, 1)
			if res.Connections.Ready != 4 {
				t.Errorf("%d of 4 connections ready", res.Connections.Ready)
			}
		})
	}
	// TLS options are checked before the run: a missing CA file is the
	// run's error, not one per connection.
	sc := quick(1, 1, 0, "bench")
	sc.Brokers = []string{"tls://127.0.0.1:8883"}
	if _, err := Run(context.Background(), sc, Options{Transport: transport.Options{TLS: transport.TLSOptions{CACert: dir + "/none.pem"}}}); err == nil || !strings.Contains(err.Error(), "--cacert "+dir+"/none.pem") {
		t.Errorf("a missing --cacert: %v", err)
	}
}
