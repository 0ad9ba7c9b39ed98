package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// Via sends the TCP connect elsewhere (a fault proxy in front of the
// broker) while TLS still verifies the URL's host and the WebSocket
// request still names it: the URL's port here has nobody listening.
func TestVia(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct{ listen, url string }{
		{"tcp://127.0.0.1:0", "tcp://localhost:1"},
		{"tls://127.0.0.1:0", "tls://localhost:1"},
		{"ws://127.0.0.1:0/mqtt", "ws://localhost:1/mqtt"},
		{"wss://127.0.0.1:0/mqtt", "wss://localhost:1/mqtt"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			var lo ListenOptions
			var o Options
			if strings.HasPrefix(tc.url, "tls") || strings.HasPrefix(tc.url, "wss") {
				lo, o.TLS = p.server(), TLSOptions{CACert: p.caFile}
			}
			l := listen(t, tc.listen, lo, nil)
			u, err := Parse(l)
			if err != nil {
				t.Fatal(err)
			}
			o.Via = map[string]string{"localhost:1": u.Host}
			c, err := dial(t, tc.url, o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got, err := roundTrip(c, "through"); err != nil || got != "through" {
				t.Fatalf("echo %q, %v", got, err)
			}
			// Without Via the URL's own port is dialed, and refused.
			o.Via = nil
			if c, err := dial(t, tc.url, o); err == nil {
				c.Close()
				t.Fatal("a connection to localhost:1")
			}
		})
	}
	// A Via for another host changes nothing.
	d, err := NewDialer("tcp://127.0.0.1:1", Options{Via: map[string]string{"localhost:1": "127.0.0.1:2"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = d.DialContext(ctx)
	var oe *net.OpError
	if !errors.As(err, &oe) || !strings.Contains(oe.Addr.String(), "127.0.0.1:1") {
		t.Fatalf("dial: %v; want one to 127.0.0.1:1", err)
	}
}
