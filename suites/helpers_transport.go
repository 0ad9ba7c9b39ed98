package suites

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mqttbench/mqttbench/wire"
)

// Helpers of the specs that reach below MQTT: the TLS specs (section 5),
// which dial with other client certificates, and the WebSocket specs
// (section 6), which choose the frames an MQTT packet travels in.

// overWebSocket reports whether the run reaches the broker over ws:// or
// wss://.
func (c *Config) overWebSocket() bool {
	return c.Transport != nil && c.Transport.URL().WebSocket()
}

// overTLS reports whether the run reaches the broker over TLS.
func (c *Config) overTLS() bool {
	return c.Transport != nil && c.Transport.URL().Secure()
}

// adopt makes a connection the spec opened itself one of its clients:
// traced, and closed by the cleanup.
func (w *World) adopt(nc net.Conn, name string) *Client {
	c := wire.New(nc, name, w.cfg.Version, w.Trace)
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	return &Client{Conn: c, w: w}
}

// dialWithCert connects over the run's TLS URL with another client
// certificate (none when cert is empty). The error is the dial's: a
// broker that refuses the certificate fails the handshake.
func (w *World) dialWithCert(name, cert, key string) (*Client, error) {
	opts := w.cfg.Transport.Options()
	opts.TLS.Cert, opts.TLS.Key = cert, key
	d, err := w.cfg.Transport.WithOptions(opts)
	if err != nil {
		w.Failf("dialing with certificate %q: %v", cert, err) // the profile was checked: a file gone since
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	nc, err := d.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	return w.adopt(nc, name), nil
}

// wsFrames is a raw WebSocket as the net.Conn a Client reads and writes:
// reads see the binary messages as one byte stream, each Write is one
// message, binary unless text is set. So a Client's SendRaw chooses the
// frame boundaries.
type wsFrames struct {
	net.Conn // websocket.NetConn: binary messages
	ws       *websocket.Conn
	text     atomic.Bool
}

func (f *wsFrames) Write(b []byte) (int, error) {
	if !f.text.Load() {
		return f.Conn.Write(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes at once, without the WebSocket closing handshake.
func (f *wsFrames) Close() error {
	err := f.ws.CloseNow()
	f.Conn.Close() //nolint:errcheck // closed already
	return err
}

// dialFrames opens a raw WebSocket to the broker offering the mqtt
// subprotocol and adopts it as a client whose writes are single frames.
func (w *World) dialFrames(name string) (*Client, *wsFrames) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	ws, _, err := w.cfg.Transport.DialWebSocket(ctx)
	if err != nil {
		w.Failf("connecting to %s: %v", w.cfg.Broker, err)
	}
	ws.SetReadLimit(-1) // MQTT sets its own limits
	f := &wsFrames{Conn: websocket.NetConn(context.Background(), ws, websocket.MessageBinary), ws: ws}
	return w.adopt(f, name), f
}

// dialRawWebSocket opens a raw WebSocket offering subprotocols and
// returns the subprotocol the server chose ("" for none).
func (w *World) dialRawWebSocket(subprotocols ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	ws, resp, err := w.cfg.Transport.DialWebSocket(ctx, subprotocols...)
	if err != nil {
		return "", err
	}
	defer ws.CloseNow() //nolint:errcheck
	return resp.Header.Get("Sec-WebSocket-Protocol"), nil
}
