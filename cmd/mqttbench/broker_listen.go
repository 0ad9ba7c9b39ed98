package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/transport"
)

// The broker listens on transport URLs: --listen tcp://, tls://, ws://,
// wss://host:port[/path] (host:port alone is tcp, port 0 picks one), as
// many as wanted, TLS ones with --cert and --key.

// addListenFlags registers the TLS flags of tls:// and wss:// listeners.
func addListenFlags(fs *flag.FlagSet) *transport.ListenOptions {
	o := &transport.ListenOptions{}
	fs.StringVar(&o.Cert, "cert", "", "PEM server certificate of tls:// and wss:// listeners")
	fs.StringVar(&o.Key, "key", "", "PEM private key of --cert")
	fs.StringVar(&o.ClientCA, "client-ca", "", "PEM certificate authorities a client certificate must verify against (one is asked for)")
	fs.BoolVar(&o.RequireClientCert, "require-client-cert", false, "refuse TLS clients without a certificate (needs --client-ca)")
	fs.StringVar(&o.MinVersion, "tls-min", "", "lowest TLS version accepted, 1.2 or 1.3 (default 1.2)")
	return o
}

// serveListeners listens on every URL and serves each with srv, printing
// "listening on" with the address (for host:port) or the URL, the port
// chosen filled in. All of them listen, or none.
func serveListeners(srv *broker.Server, urls []string, o *transport.ListenOptions, log *slog.Logger, stdout io.Writer) error {
	if log != nil {
		o.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	}
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	secure := false
	for _, url := range urls {
		// The TLS flags are for the TLS listeners; plain ones may sit
		// beside them.
		lo := transport.ListenOptions{ErrorLog: o.ErrorLog}
		if u, err := transport.Parse(url); err == nil && u.Secure() {
			lo, secure = *o, true
		}
		l, err := transport.Listen(url, lo)
		if err != nil {
			closeAll()
			var op *net.OpError
			if errors.As(err, &op) {
				return fmt.Errorf("--listen %s: %v", url, err)
			}
			return transport.FlagError("--listen", err)
		}
		ls = append(ls, l)
	}
	if !secure && (o.Cert != "" || o.Key != "" || o.ClientCA != "" || o.RequireClientCert || o.MinVersion != "") {
		closeAll()
		return errors.New("--cert, --key, --client-ca, --require-client-cert and --tls-min are for tls:// and wss:// listeners; no --listen is one")
	}
	for i, l := range ls {
		go srv.Serve(l) //nolint:errcheck // ends with broker.ErrServerClosed
		shown := transport.ListenerURL(l)
		if !strings.Contains(urls[i], "://") {
			shown = l.Addr().String() // as given: host:port
		}
		fmt.Fprintf(stdout, "listening on %s\n", shown)
	}
	return nil
}
