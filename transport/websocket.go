package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// MQTT over WebSocket (MQTT 3.1.1 section 6, MQTT 5.0 section 6): binary
// frames only, the "mqtt" subprotocol. coder/websocket's NetConn reads
// the messages as one byte stream, so an MQTT packet may span frames and
// a frame may hold several packets.

// subprotocols are the ones a listener answers: mqtt, and mqttv3.1 that
// MQTT 3.1 clients ask for.
var subprotocols = []string{"mqtt", "mqttv3.1"}

// wsDial is what one WebSocket dial learns from the http.Transport's
// dial hooks, which find it in the request's context.
type wsDial struct {
	nd *net.Dialer
	// mu guards what the hooks set: net/http dials on a goroutine of its
	// own, which may still be running when a cancelled Dial returns.
	mu    sync.Mutex
	ph    Phases
	conn  net.Conn // the TCP or TLS connection under the WebSocket
	state *tls.ConnectionState
}

type wsDialKey struct{}

// initWebSocket builds the dialer's HTTP client: no proxy, no HTTP/2, no
// connection reuse (each upgrade owns its connection), redirects not
// followed; its dial hooks use the dialer's TCP and TLS settings.
func (d *Dialer) initWebSocket() {
	rt := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			w := ctx.Value(wsDialKey{}).(*wsDial)
			start := time.Now()
			nc, err := w.nd.DialContext(ctx, "tcp", d.opts.connectAddr(d.url.Host))
			if err != nil {
				return nil, err
			}
			if d.opts.WrapConn != nil {
				nc = d.opts.WrapConn(nc)
			}
			w.mu.Lock()
			w.ph.Connect, w.conn = time.Since(start), nc
			w.mu.Unlock()
			return nc, nil
		},
	}
	if d.tls != nil {
		rt.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			w := ctx.Value(wsDialKey{}).(*wsDial)
			nc, err := rt.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			var ph Phases
			tc, err := d.handshake(ctx, nc, &ph)
			if err != nil {
				return nil, err
			}
			st := tc.ConnectionState()
			w.mu.Lock()
			w.ph.TLS = ph.TLS
			w.conn, w.state = tc, &st
			w.mu.Unlock()
			return tc, nil
		}
	}
	d.http = &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	host := d.url.Host
	if d.url.defaultPort() {
		host = d.url.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "[" + host + "]"
		}
	}
	d.reqURL = d.url.Scheme + "://" + host + d.url.Path
	if d.url.RawQuery != "" {
		d.reqURL += "?" + d.url.RawQuery
	}
}

func (d *Dialer) dialWebSocket(ctx context.Context, nd *net.Dialer, ph *Phases) (net.Conn, error) {
	if ph == nil {
		ph = new(Phases)
	}
	w := &wsDial{nd: nd}
	opts := &websocket.DialOptions{
		HTTPClient:   d.http,
		HTTPHeader:   d.opts.WebSocket.Headers.Clone(),
		Subprotocols: []string{"mqtt"},
	}
	if h := opts.HTTPHeader.Get("Host"); h != "" {
		opts.Host = h // net/http ignores a Host header; the option is how
		opts.HTTPHeader.Del("Host")
	}
	start := time.Now()
	c, resp, err := websocket.Dial(context.WithValue(ctx, wsDialKey{}, w), d.reqURL, opts)
	w.mu.Lock()
	conn, state := w.conn, w.state
	ph.Connect, ph.TLS = w.ph.Connect, w.ph.TLS
	w.mu.Unlock()
	if err != nil {
		if conn != nil {
			conn.Close() // the libraries close it too; a second close is harmless
		}
		return nil, wsDialError(d.url.String(), resp, err)
	}
	ph.WebSocket = time.Since(start) - ph.Connect - ph.TLS
	return newWSConn(c, conn, state), nil
}

// wsDialError keeps the cause and drops the libraries' prefixes; a
// refused upgrade names the HTTP status.
func wsDialError(url string, resp *http.Response, err error) error {
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("WebSocket upgrade at %s refused: HTTP %s", url, resp.Status)
	}
	var he *handshakeErr
	var op *net.OpError
	switch {
	case errors.As(err, &he):
		err = he
	case errors.As(err, &op):
		err = op
	}
	return fmt.Errorf("WebSocket dial %s: %w", url, err)
}

// wsConn is a WebSocket as a net.Conn that still tells its addresses and
// TLS state.
type wsConn struct {
	net.Conn // websocket.NetConn: binary messages as a byte stream
	ws       *websocket.Conn
	raw      net.Conn
	state    *tls.ConnectionState
}

func newWSConn(c *websocket.Conn, raw net.Conn, state *tls.ConnectionState) *wsConn {
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	if raw == nil {
		raw = nc // NetConn knows the addresses of an accepted connection
	}
	return &wsConn{Conn: nc, ws: c, raw: raw, state: state}
}

// LocalAddr and RemoteAddr are the TCP connection's: NetConn knows them
// only for accepted connections.
func (c *wsConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// NetConn is the TCP or TLS connection under the WebSocket.
func (c *wsConn) NetConn() net.Conn { return c.raw }

// ConnectionState is the TLS state of wss://; HandshakeComplete is false
// for ws://.
func (c *wsConn) ConnectionState() tls.ConnectionState {
	if c.state == nil {
		return tls.ConnectionState{}
	}
	return *c.state
}

// Close closes at once, as closing a TCP connection does: no close
// handshake, which would wait up to 5 s for a peer that may be gone (MQTT
// says what ends a session; the WebSocket close frame adds nothing).
func (c *wsConn) Close() error {
	err := c.ws.CloseNow()
	c.Conn.Close() //nolint:errcheck // stops NetConn's timers; the conn is closed already
	return err
}
