package loadgen

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/mqttbench/mqttbench/broker"
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

// TCPDialer spreads connections over the broker URLs (connection i to
// urls[i % len]) and binds them to the source addresses, every (source,
// broker) pair taking an equal share.
func TCPDialer(urls []string, sources []netip.Addr) (DialFunc, error) {
	return ShardDialer(urls, sources, Shard{})
}

// ShardDialer is TCPDialer for a shard: connection i (a global index)
// still goes to urls[i % len], as in a single run, but binds only to the
// shard's part of the source addresses, so shards never share one.
func ShardDialer(urls []string, sources []netip.Addr, sh Shard) (DialFunc, error) {
	sources = sh.Sources(sources)
	addrs := make([]string, len(urls))
	for i, u := range urls {
		a, err := BrokerAddr(u)
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	if len(addrs) == 0 {
		return nil, errors.New("no broker URL")
	}
	dialers := []*net.Dialer{{}}
	if len(sources) > 0 {
		dialers = make([]*net.Dialer, len(sources))
		for i, ip := range sources {
			dialers[i] = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}, Control: bindNoPort}
		}
	}
	per := max(1, sh.Count)
	return func(ctx context.Context, i int) (net.Conn, error) {
		d := dialers[(i/per/len(addrs))%len(dialers)]
		return d.DialContext(ctx, "tcp", addrs[i%len(addrs)])
	}, nil
}
