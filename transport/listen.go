package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ListenOptions configure a listener. Each field is the broker command's
// flag of the same name; errors name the flag.
type ListenOptions struct {
	Cert string // --cert: PEM server certificate (tls://, wss://)
	Key  string // --key: its PEM private key
	// ClientCA (--client-ca) verifies client certificates; with
	// RequireClientCert (--require-client-cert) a client without one is
	// refused, otherwise one it sends must verify.
	ClientCA          string
	RequireClientCert bool
	MinVersion        string   // "1.2" (default) or "1.3"
	ALPN              []string // protocols the server accepts; wss:// defaults to http/1.1
	// ErrorLog receives the WebSocket HTTP server's errors (failed TLS
	// handshakes, bad requests); nil discards them.
	ErrorLog *log.Logger
}

func (o ListenOptions) tlsSet() string {
	switch {
	case o.Cert != "":
		return "--cert"
	case o.Key != "":
		return "--key"
	case o.ClientCA != "":
		return "--client-ca"
	case o.RequireClientCert:
		return "--require-client-cert"
	}
	return ""
}

// Config builds the server's tls.Config, reading every file now.
func (o ListenOptions) Config() (*tls.Config, error) {
	if o.Cert == "" && o.Key == "" {
		return nil, errors.New("a TLS listener needs --cert and --key")
	}
	cert, err := loadPair("--cert", o.Cert, "--key", o.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: o.ALPN}
	if cfg.MinVersion, err = tlsVersion(o.MinVersion); err != nil {
		return nil, err
	}
	switch {
	case o.ClientCA != "":
		if cfg.ClientCAs, err = loadPool("--client-ca", o.ClientCA); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if o.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	case o.RequireClientCert:
		return nil, errors.New("--require-client-cert needs --client-ca to verify them with")
	}
	return cfg, nil
}

// Listen listens on a URL: tcp:// (or host:port), tls://, ws:// or wss://
// with its path (/mqtt by default). Port 0 picks one; ListenerURL tells
// the URL with the port chosen. Accept returns plain, TLS (its handshake
// runs on the first Read, in the caller's connection goroutine) or
// WebSocket connections alike. Close stops everything it started.
func Listen(raw string, opts ListenOptions) (net.Listener, error) {
	u, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Inproc():
		return nil, urlError(raw, ": an inproc server is registered with RegisterInproc, not listened on")
	case u.User != nil:
		return nil, urlError(raw, ": credentials mean nothing to a listener")
	case !u.Secure() && opts.tlsSet() != "":
		return nil, urlError(raw, " is not a TLS URL, yet %s is given; use tls:// or wss://", opts.tlsSet())
	}
	var cfg *tls.Config
	if u.Secure() {
		if u.WebSocket() && len(opts.ALPN) == 0 {
			opts.ALPN = []string{"http/1.1"}
		}
		if cfg, err = opts.Config(); err != nil {
			return nil, err
		}
	}
	tl, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	actual := *u
	actual.Host = tl.Addr().String()
	var l net.Listener = tl
	if cfg != nil {
		l = tls.NewListener(tl, cfg)
	}
	if u.WebSocket() {
		return listenWebSocket(l, &actual, opts.ErrorLog), nil
	}
	return &listener{Listener: l, url: actual.String()}, nil
}

// ListenerURL is the URL a listener serves, with the port it chose
// (tcp://host:port for listeners not made by Listen).
func ListenerURL(l net.Listener) string {
	if u, ok := l.(interface{ URL() string }); ok {
		return u.URL()
	}
	return "tcp://" + l.Addr().String()
}

// listener is a TCP or TLS listener that knows its URL.
type listener struct {
	net.Listener
	url string
}

func (l *listener) URL() string { return l.url }

// wsListener upgrades HTTP requests on one path to WebSocket
// connections and hands them to Accept.
type wsListener struct {
	l     net.Listener // TCP or TLS
	url   *URL
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup // Serve and the handlers, added to only before closing
}

type connKey struct{}

func listenWebSocket(l net.Listener, u *URL, errLog *log.Logger) *wsListener {
	if errLog == nil {
		errLog = log.New(io.Discard, "", 0)
	}
	w := &wsListener{l: l, url: u, conns: make(chan net.Conn), done: make(chan struct{})}
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.upgrade),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // WebSocket needs HTTP/1.1
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.srv.Serve(l) //nolint:errcheck // ends with ErrServerClosed
	}()
	return w
}

// upgrade answers on the URL's path only, with the mqtt subprotocol
// (mqttv3.1 too), and queues the connection for Accept. Origins are not
// checked: MQTT clients in browsers come from any page.
func (w *wsListener) upgrade(rw http.ResponseWriter, r *http.Request) {
	if r.URL.EscapedPath() != w.url.Path {
		http.NotFound(rw, r)
		return
	}
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		http.Error(rw, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.wg.Add(1)
	w.mu.Unlock()
	defer w.wg.Done()
	c, err := websocket.Accept(rw, r, &websocket.AcceptOptions{Subprotocols: subprotocols, InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered the request
	}
	raw, _ := r.Context().Value(connKey{}).(net.Conn)
	nc := newWSConn(c, raw, r.TLS)
	select {
	case w.conns <- nc:
	case <-w.done:
		nc.Close()
	}
}

// Accept waits for the next upgraded connection. A text frame read from
// it closes it (MQTT-6.0.0-1): NetConn accepts binary messages only.
func (w *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: w.l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops listening and closes connections not yet accepted (or
// still upgrading); accepted ones are the caller's.
func (w *wsListener) Close() error {
	var err error
	w.once.Do(func() {
		w.mu.Lock()
		w.closing = true
		w.mu.Unlock()
		close(w.done)
		err = w.srv.Close()
		w.wg.Wait()
	})
	return err
}

func (w *wsListener) Addr() net.Addr { return w.l.Addr() }
func (w *wsListener) URL() string    { return w.url.String() }
