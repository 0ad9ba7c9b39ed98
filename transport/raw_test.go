package transport

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// WithOptions reaches the same URL with another client certificate: the
// certificate the mutual-TLS listener requires gets through, none does not.
func TestDialerWithOptions(t *testing.T) {
	p := newPKI(t)
	lopts := p.server()
	lopts.ClientCA, lopts.RequireClientCert = p.caFile, true
	url := listen(t, "tls://127.0.0.1:0", lopts, nil)
	d, err := NewDialer(url, Options{TLS: TLSOptions{CACert: p.caFile, Cert: p.clientCert, Key: p.clientKey}})
	if err != nil {
		t.Fatal(err)
	}
	roundTripVia := func(d *Dialer) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = roundTrip(c, "hi")
		return err
	}
	if err := roundTripVia(d); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	opts := d.Options()
	opts.TLS.Cert, opts.TLS.Key = "", ""
	bare, err := d.WithOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	if bare.URL().String() != d.URL().String() {
		t.Errorf("WithOptions changed the URL: %s, want %s", bare.URL(), d.URL())
	}
	if err := roundTripVia(bare); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a client certificate: %v; want it refused (certificate required)", err)
	}
	if err := roundTripVia(d); err != nil {
		t.Errorf("the original dialer after WithOptions: %v", err)
	}

	// Options are checked as NewDialer checks them.
	opts.TLS.Cert = "/nonexistent/client.pem"
	opts.TLS.Key = "/nonexistent/client-key.pem"
	if _, err := d.WithOptions(opts); err == nil || !strings.Contains(err.Error(), "--cert /nonexistent/client.pem") {
		t.Errorf("a missing certificate file: %v", err)
	}
	tcp, err := NewDialer("tcp://127.0.0.1:1883", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tcp.WithOptions(Options{TLS: TLSOptions{Insecure: true}}); err == nil || !strings.Contains(err.Error(), "not a TLS URL") {
		t.Errorf("TLS options on a tcp:// URL: %v", err)
	}
}

// DialWebSocket hands over the WebSocket itself, with the answer to the
// handshake: the subprotocol the listener chose among those offered, and
// frames of the caller's choosing (a text frame makes the listener close).
func TestDialWebSocketRaw(t *testing.T) {
	noLeaks(t)
	got := make(chan error, 1)
	url := listen(t, "ws://127.0.0.1:0", ListenOptions{}, func(c net.Conn) {
		_, err := c.Read(make([]byte, 16))
		got <- err
	})
	d, err := NewDialer(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{nil, "mqtt"},
		{[]string{"x-unknown", "mqtt"}, "mqtt"},
		{[]string{"mqttv3.1"}, "mqttv3.1"},
		{[]string{"x-unknown"}, ""},
	} {
		c, resp, err := d.DialWebSocket(ctx, tc.offer...)
		if err != nil {
			t.Fatalf("offering %v: %v", tc.offer, err)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != tc.want || c.Subprotocol() != tc.want {
			t.Errorf("offering %v: the listener answered %q (%q), want %q", tc.offer, p, c.Subprotocol(), tc.want)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("status %s", resp.Status)
		}
		c.CloseNow() //nolint:errcheck
		<-got
	}

	c, _, err := d.DialWebSocket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow() //nolint:errcheck
	if err := c.Write(ctx, websocket.MessageText, []byte{0xC0, 0x00}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err == nil {
		t.Error("the listener read a text frame as MQTT bytes")
	}

	tcp, err := NewDialer("tcp://127.0.0.1:1883", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tcp.DialWebSocket(ctx); err == nil || !strings.Contains(err.Error(), "not a ws:// or wss:// URL") {
		t.Errorf("DialWebSocket on tcp://: %v", err)
	}
}
