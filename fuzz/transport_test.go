package fuzz

import (
	"context"
	"log/slog"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/internal/testcerts"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
)

// The fuzzer reaches a broker through any transport URL: the reference
// broker over TLS and over WebSocket has no findings either, and a
// restart keeps the transport and changes only the port.
func TestRunOverTransports(t *testing.T) {
	ca := testcerts.NewCA(t, "fuzz CA")
	dir := t.TempDir()
	caFile := ca.WriteCA(t, dir, "ca.pem")
	cert, key := ca.Server(t).Write(t, dir, "server")
	for _, scheme := range []string{"tls", "wss", "ws"} {
		t.Run(scheme, func(t *testing.T) {
			w := &PanicWatch{}
			srv := broker.New(broker.Options{Logger: slog.New(w)})
			t.Cleanup(func() { srv.Close() })
			var lopts transport.ListenOptions
			var opts transport.Options
			if scheme != "ws" {
				lopts, opts.TLS.CACert = transport.ListenOptions{Cert: cert, Key: key}, caFile
			}
			listen := func() string {
				l, err := transport.Listen(scheme+"://127.0.0.1:0", lopts)
				if err != nil {
					t.Fatal(err)
				}
				go srv.Serve(l) //nolint:errcheck // ends when the broker closes
				return transport.ListenerURL(l)
			}
			url := listen()
			tg, err := NewURLTarget(url, url, opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			tg.Panics = w.Count
			// A restart on a new port: the same transport reaches it.
			tg.Restart = func(context.Context) (string, int, error) {
				u, _ := transport.Parse(listen())
				return u.Host, 0, nil
			}
			if err := tg.restart(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tg.Addr() == mustHost(t, url) {
				t.Fatalf("the restart kept the address %s", tg.Addr())
			}
			res, err := Run(context.Background(), Config{Target: tg, Version: packetgen.V311, Seed: 5, Cases: 150, Timing: fast})
			if err != nil {
				t.Fatal(err)
			}
			if res.Cases != 150 || !res.OK() {
				t.Fatalf("%s; findings %+v", res.SummaryLine(), res.Findings)
			}
		})
	}
}

func mustHost(t *testing.T, url string) string {
	u, err := transport.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
