package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/transport"
)

// DialFunc opens connection number i.
type DialFunc func(ctx context.Context, i int) (net.Conn, error)

// PipeDialer connects to srv over net.Pipe: no sockets, no file
// descriptors, no ports.
func PipeDialer(srv *broker.Server) DialFunc {
	return func(ctx context.Context, i int) (net.Conn, error) {
		client, server := net.Pipe()
		go srv.ServeConn(server) //nolint:errcheck // the broker logs its own
		return client, nil
	}
}

// TCPDialer is ShardDialer for a whole run with the default transport
// options (plain TCP, or TLS verified against the system's roots).
func TCPDialer(urls []string, sources []netip.Addr) (DialFunc, error) {
	return ShardDialer(urls, sources, Shard{}, transport.Options{})
}

// ShardDialer spreads connections over the broker URLs (connection i, a
// global index, to urls[i % len], as in a single run), through the
// transport each URL names (tcp, tls, ws, wss) with opts, and binds them
// to the shard's part of the source addresses, every (source, broker)
// pair taking an equal share and shards never sharing a source.
func ShardDialer(urls []string, sources []netip.Addr, sh Shard, opts transport.Options) (DialFunc, error) {
	d, err := newShardDialer(urls, sources, sh, opts, nil)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, i int) (net.Conn, error) {
		nc, _, err := d.dial(ctx, i)
		return nc, err
	}, nil
}

// shardDialer is ShardDialer's dialer, which also says how long each
// phase of a dial took.
type shardDialer struct {
	brokers []*transport.Dialer
	locals  []*net.Dialer
	per     int
	// index puts the connection index in the dial's context, where the
	// TLS hooks find it.
	index bool
}

// newShardDialer builds the dialer; rt, when set, gives the TLS
// connections their certificates and session caches, and the idle
// watcher a way to read them without blocking.
func newShardDialer(urls []string, sources []netip.Addr, sh Shard, opts transport.Options, rt *tlsRun) (*shardDialer, error) {
	sources = sh.Sources(sources)
	if len(urls) == 0 {
		return nil, errors.New("no broker URL")
	}
	d := &shardDialer{brokers: make([]*transport.Dialer, len(urls)), per: max(1, sh.Count)}
	for i, u := range urls {
		o := opts
		if rt != nil {
			if pu, err := transport.Parse(u); err == nil && pu.Secure() {
				// The caller's own hooks, if any, run first.
				o.TLSConfig = func(cfg *tls.Config) {
					if opts.TLSConfig != nil {
						opts.TLSConfig(cfg)
					}
					rt.configureShared(cfg)
				}
				if rt.own != nil {
					o.TLSConn = func(ctx context.Context, cfg *tls.Config) {
						if opts.TLSConn != nil {
							opts.TLSConn(ctx, cfg)
						}
						rt.configure(ctx, cfg)
					}
				}
				if rt.certs != nil || rt.own != nil {
					d.index = true
				}
				if !pu.WebSocket() && rt.wrap && opts.WrapConn == nil {
					o.WrapConn = wrapNonblocking
				}
			}
		}
		bd, err := transport.NewDialer(u, o)
		if err != nil {
			return nil, err
		}
		if bd.URL().Inproc() {
			return nil, errors.New("broker inproc: leave the broker URL out for the in-process broker")
		}
		d.brokers[i] = bd
	}
	d.locals = []*net.Dialer{opts.NetDialer}
	if len(sources) > 0 {
		d.locals = make([]*net.Dialer, len(sources))
		for i, ip := range sources {
			d.locals[i] = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}, Control: bindNoPort}
		}
	}
	return d, nil
}

// dial opens connection i.
func (d *shardDialer) dial(ctx context.Context, i int) (net.Conn, transport.Phases, error) {
	if d.index {
		ctx = context.WithValue(ctx, connIndexKey{}, i)
	}
	local := d.locals[(i/d.per/len(d.brokers))%len(d.locals)]
	return d.brokers[i%len(d.brokers)].DialTimed(ctx, local)
}

// newDialer builds the dialer of the scenario's broker URLs, with the
// run's TLS state.
func (a *attack) newDialer() error {
	sc := &a.sc
	rt, err := newTLSRun(a.opts.TLS, a.opts.Shard, sc.TotalConnections())
	if err != nil {
		return err
	}
	rt.wrap = sc.TotalConnections() > sc.Publishers+sc.Subscribers
	d, err := newShardDialer(sc.Brokers, sc.SourceIPs, a.opts.Shard, a.opts.Transport, rt)
	if err != nil {
		return err
	}
	a.dialer, a.tls = d, rt
	a.dial = func(ctx context.Context, i int) (net.Conn, error) {
		nc, _, err := d.dial(ctx, i)
		return nc, err
	}
	return nil
}

// prepareTLS makes every connection's client certificate, if each has
// its own, and returns the memory they take: the generator's, per
// connection, as much as a socket's.
func (a *attack) prepareTLS() (uint64, error) {
	if a.tls == nil || a.tls.certs == nil {
		return 0, nil
	}
	before := heapAndStacks()
	if err := a.tls.certs.prepare(); err != nil {
		return 0, err
	}
	after := heapAndStacks()
	if after < before {
		return 0, nil
	}
	return after - before, nil
}

// dialConn opens connection i, recording how long each phase of the dial
// took and what its TLS handshake negotiated.
func (a *attack) dialConn(ctx context.Context, i int) (net.Conn, error) {
	if a.dialer == nil {
		return a.dial(ctx, i)
	}
	nc, ph, err := a.dialer.dial(ctx, i)
	if err != nil {
		return nil, err
	}
	a.rec.Record(MetricTCPConnect, ph.Connect)
	if ph.TLS > 0 {
		a.rec.Record(MetricTLSHandshake, ph.TLS)
		a.tls.observe(nc)
	}
	if ph.WebSocket > 0 {
		a.rec.Record(MetricWSUpgrade, ph.WebSocket)
	}
	return nc, nil
}

// ProbeDialer is the dialer Probe needs before a run with these options:
// the run's, a TLS connection presenting the certificate the run would
// give it (made when needed).
func ProbeDialer(sc Scenario, sh Shard, opts Options) (DialFunc, error) {
	if err := opts.TLS.Validate(sc.Brokers, opts.Transport.TLS); err != nil {
		return nil, err
	}
	ct := opts.TLS
	ct.Resume = false // the probe's session is not the run's
	rt, err := newTLSRun(ct, sh, sc.TotalConnections())
	if err != nil {
		return nil, err
	}
	d, err := newShardDialer(sc.Brokers, sc.SourceIPs, sh, opts.Transport, rt)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, i int) (net.Conn, error) {
		nc, _, err := d.dial(ctx, i)
		return nc, err
	}, nil
}
