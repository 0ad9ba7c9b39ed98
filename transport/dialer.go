package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Dialer connects to one broker URL. Build it once (files are read and
// checked then) and share it: it is safe for concurrent use. Its
// connections share one tls.Config, completed once with the server name,
// as crypto/tls allows (a config is never changed once used): a clone per
// connection would cost each about 500 bytes for as long as it is open.
type Dialer struct {
	url  *URL
	opts Options
	tls  *tls.Config // nil unless the URL is secure
	// conn is tls completed for this URL: what every handshake uses.
	conn *tls.Config
	http *http.Client
	// reqURL is the WebSocket request URL, the default port left out.
	reqURL string
}

// Phases are how long the steps of one dial took; a step the URL does
// not use is zero.
type Phases struct {
	Connect   time.Duration `json:"connect"`             // TCP connect
	TLS       time.Duration `json:"tls,omitempty"`       // TLS handshake
	WebSocket time.Duration `json:"websocket,omitempty"` // HTTP upgrade to WebSocket
}

// NewDialer parses raw and checks opts against it: TLS options need a
// TLS URL, headers a WebSocket URL, credentials in the URL are refused
// (MQTT's user name and password have their own flags). Errors are one
// line, naming the URL (password masked) or the flag and file.
func NewDialer(raw string, opts Options) (*Dialer, error) {
	u, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch _, port, _ := net.SplitHostPort(u.Host); {
	case u.User != nil:
		return nil, urlError(raw, ": credentials in the URL are not supported")
	case !u.Inproc() && port == "0":
		return nil, urlError(raw, ": port 0 names no broker")
	case !u.Secure() && !opts.TLS.IsZero():
		return nil, urlError(raw, " is not a TLS URL, yet %s is given; use tls://, mqtts:// or wss://", opts.TLS.set())
	case !u.WebSocket() && len(opts.WebSocket.Headers) > 0:
		return nil, urlError(raw, " is not a WebSocket URL, yet --header is given; use ws:// or wss://")
	}
	d := &Dialer{url: u, opts: opts}
	if u.Secure() {
		if d.tls, err = opts.TLS.Config(); err != nil {
			return nil, err
		}
		if opts.TLSConfig != nil {
			opts.TLSConfig(d.tls)
		}
		d.initTLS()
	}
	if u.WebSocket() {
		d.initWebSocket()
	}
	return d, nil
}

// URL is the URL the dialer connects to.
func (d *Dialer) URL() *URL { return d.url }

// DialContext connects, handshakes TLS and upgrades to WebSocket as the
// URL says, all within ctx.
func (d *Dialer) DialContext(ctx context.Context) (net.Conn, error) {
	return d.dial(ctx, nil, nil)
}

// DialFrom is DialContext with nd making the TCP connect (a source
// address, a Control hook) instead of Options.NetDialer.
func (d *Dialer) DialFrom(ctx context.Context, nd *net.Dialer) (net.Conn, error) {
	return d.dial(ctx, nd, nil)
}

// DialTimed is DialFrom (nd may be nil) that also says how long each
// phase took.
func (d *Dialer) DialTimed(ctx context.Context, nd *net.Dialer) (net.Conn, Phases, error) {
	var ph Phases
	nc, err := d.dial(ctx, nd, &ph)
	return nc, ph, err
}

func (d *Dialer) netDialer(nd *net.Dialer) *net.Dialer {
	switch {
	case nd != nil:
		return nd
	case d.opts.NetDialer != nil:
		return d.opts.NetDialer
	}
	return &net.Dialer{}
}

func (d *Dialer) dial(ctx context.Context, nd *net.Dialer, ph *Phases) (net.Conn, error) {
	switch {
	case d.url.Inproc():
		return dialInproc(d.url.Name)
	case d.url.WebSocket():
		return d.dialWebSocket(ctx, d.netDialer(nd), ph)
	}
	start := time.Now()
	nc, err := d.netDialer(nd).DialContext(ctx, "tcp", d.opts.connectAddr(d.url.Host))
	if err != nil {
		return nil, err
	}
	if ph != nil {
		ph.Connect = time.Since(start)
	}
	if d.opts.WrapConn != nil {
		nc = d.opts.WrapConn(nc)
	}
	if d.tls == nil {
		return nc, nil
	}
	return d.handshake(ctx, nc, ph)
}

// initTLS completes the config the connections share: the server name
// from the URL unless --servername gave one, and HTTP/1.1 offered by
// ALPN for a WebSocket unless --alpn says otherwise.
func (d *Dialer) initTLS() {
	cfg := d.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = d.url.Hostname()
	}
	if d.url.WebSocket() && len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	d.conn = cfg
}

// handshake runs the client's TLS handshake on nc, closing nc on failure.
func (d *Dialer) handshake(ctx context.Context, nc net.Conn, ph *Phases) (*tls.Conn, error) {
	start := time.Now()
	cfg := d.conn
	if d.opts.TLSConn != nil {
		cfg = cfg.Clone()
		d.opts.TLSConn(ctx, cfg)
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &handshakeErr{d.url.Host, err}
	}
	if ph != nil {
		ph.TLS = time.Since(start)
	}
	return tc, nil
}

// handshakeErr is a failed TLS handshake.
type handshakeErr struct {
	host string
	err  error
}

func (e *handshakeErr) Unwrap() error { return e.err }

// Error says what a failed handshake most likely means: a server that
// closes on a ClientHello speaks no TLS on that port.
func (e *handshakeErr) Error() string {
	var rhe tls.RecordHeaderError
	if errors.Is(e.err, io.EOF) || errors.Is(e.err, syscall.ECONNRESET) || errors.As(e.err, &rhe) {
		return fmt.Sprintf("TLS handshake with %s: %v (does this port speak TLS? tcp:// and ws:// are plain)", e.host, e.err)
	}
	return fmt.Sprintf("TLS handshake with %s: %v", e.host, e.err)
}

// WithHost is the dialer for the same URL and options at another
// host:port (a broker restarted on a new port).
func (d *Dialer) WithHost(hostport string) (*Dialer, error) {
	if d.url.Inproc() {
		return nil, errors.New("an inproc URL has no host")
	}
	if _, port, err := net.SplitHostPort(hostport); err != nil || port == "" || port == "0" {
		return nil, fmt.Errorf("%q: want host:port", hostport)
	}
	u := *d.url
	u.Host = hostport
	nd := &Dialer{url: &u, opts: d.opts, tls: d.tls}
	if nd.tls != nil {
		nd.initTLS()
	}
	if u.WebSocket() {
		nd.initWebSocket()
	}
	return nd, nil
}
