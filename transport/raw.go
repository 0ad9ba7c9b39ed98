package transport

import (
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"
)

// What conformance specs need beyond a net.Conn: the same broker reached
// with other options (a client certificate the broker must refuse), and
// the WebSocket itself (to send a text frame or read the subprotocol the
// server chose), which DialContext hides behind a byte stream.

// Options are the options the dialer was built with.
func (d *Dialer) Options() Options { return d.opts }

// WithOptions is the dialer for the same URL with other options, checked
// and read as NewDialer does.
func (d *Dialer) WithOptions(opts Options) (*Dialer, error) {
	u := *d.url
	nd := &Dialer{url: &u, opts: opts}
	switch {
	case !u.Secure() && !opts.TLS.IsZero():
		return nil, urlError(u.String(), " is not a TLS URL, yet %s is given", opts.TLS.set())
	case !u.WebSocket() && len(opts.WebSocket.Headers) > 0:
		return nil, urlError(u.String(), " is not a WebSocket URL, yet --header is given")
	}
	if u.Secure() {
		var err error
		if nd.tls, err = opts.TLS.Config(); err != nil {
			return nil, err
		}
		if opts.TLSConfig != nil {
			opts.TLSConfig(nd.tls)
		}
		nd.initTLS()
	}
	if u.WebSocket() {
		nd.initWebSocket()
	}
	return nd, nil
}

// DialWebSocket opens the WebSocket of a ws:// or wss:// URL as
// DialContext does (same TCP, TLS and headers), offering subprotocols
// instead of "mqtt" alone when given, and returns it unwrapped with the
// server's handshake response. Frames are the caller's to choose:
// websocket.NetConn(ctx, c, websocket.MessageBinary) reads them as a byte
// stream and writes one binary message per Write. A subprotocol the
// server answers that was not offered fails the dial.
func (d *Dialer) DialWebSocket(ctx context.Context, subprotocols ...string) (*websocket.Conn, *http.Response, error) {
	if !d.url.WebSocket() {
		return nil, nil, errors.New(d.url.String() + " is not a ws:// or wss:// URL")
	}
	if len(subprotocols) == 0 {
		subprotocols = []string{"mqtt"}
	}
	w := &wsDial{nd: d.netDialer(nil)}
	opts := &websocket.DialOptions{
		HTTPClient:   d.http,
		HTTPHeader:   d.opts.WebSocket.Headers.Clone(),
		Subprotocols: subprotocols,
	}
	if h := opts.HTTPHeader.Get("Host"); h != "" {
		opts.Host = h
		opts.HTTPHeader.Del("Host")
	}
	c, resp, err := websocket.Dial(context.WithValue(ctx, wsDialKey{}, w), d.reqURL, opts)
	if err != nil {
		w.mu.Lock()
		conn := w.conn
		w.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return nil, resp, wsDialError(d.url.String(), resp, err)
	}
	return c, resp, nil
}
