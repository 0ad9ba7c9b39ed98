package broker

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/store"
	"github.com/mqttbench/mqttbench/wire"
)

// BenchmarkDurableP2P is QoS 1 point to point over loopback TCP between
// persistent sessions (20 publishers, each to its own subscriber, up to
// 100 messages in flight each), in memory and with a store under each
// fsync policy; it reports messages per second and the broker's store
// work per message. The modes run one after the other, so compare them
// within one run (-count 3 and the median, on a busy machine):
//
//	go test -run '^$' -bench DurableP2P -benchtime 100000x -count 3 ./broker/
func BenchmarkDurableP2P(b *testing.B) {
	for _, mode := range []string{"memory", "always", "interval=100ms", "never"} {
		b.Run(mode, func(b *testing.B) {
			opts := Options{Listen: []string{"127.0.0.1:0"}}
			var st *store.Store
			if mode != "memory" {
				f, err := store.ParseFsync(mode)
				if err != nil {
					b.Fatal(err)
				}
				if st, err = store.Open(b.TempDir(), store.Options{Fsync: f}); err != nil {
					b.Fatal(err)
				}
				opts.Store = st
			}
			s := New(opts)
			defer s.Close()
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			p2p(b, s.Addrs()[0].String(), 20, 100)
			if st != nil {
				c := st.Stats()
				b.ReportMetric(float64(c.Writes)/float64(b.N), "writes/msg")
				b.ReportMetric(float64(c.Commits)/b.Elapsed().Seconds(), "commits/s")
			}
		})
	}
}

// p2p sends b.N QoS 1 messages over pairs publisher-subscriber pairs and
// waits until every one is acknowledged and received.
func p2p(b *testing.B, addr string, pairs, window int) {
	dial := func(id string) *wire.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c := wire.New(nc, id, packetgen.V311, nil)
		if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: id}, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		return c
	}
	var subs, pubs []*wire.Conn
	for i := range pairs {
		sub := dial(fmt.Sprint("sub", i))
		if err := sub.Send(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: fmt.Sprint("p2p/", i), QoS: 1}}}); err != nil {
			b.Fatal(err)
		}
		if _, err := wire.Expect[*packetgen.Suback](sub, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		subs = append(subs, sub)
		pubs = append(pubs, dial(fmt.Sprint("pub", i)))
	}
	defer func() {
		for _, c := range append(subs, pubs...) {
			c.Close()
		}
	}()
	payload := make([]byte, 64)
	var wg sync.WaitGroup
	errs := make(chan error, 2*pairs)
	b.ResetTimer()
	for i := range pairs {
		n := b.N / pairs
		if i < b.N%pairs {
			n++
		}
		wg.Add(2)
		go func(c *wire.Conn, topic []byte) { // publisher
			defer wg.Done()
			sent, acked := 0, 0
			for acked < n {
				for sent < n && sent-acked < window {
					sent++
					if err := c.Send(&packetgen.Publish{Topic: topic, Payload: payload, QoS: 1, PacketID: uint16(sent%65535 + 1)}); err != nil {
						errs <- err
						return
					}
				}
				if _, err := wire.Expect[*packetgen.Puback](c, 10*time.Second); err != nil {
					errs <- err
					return
				}
				acked++
			}
		}(pubs[i], []byte(fmt.Sprint("p2p/", i)))
		go func(c *wire.Conn) { // subscriber
			defer wg.Done()
			for got := 0; got < n; got++ {
				p, err := wire.Expect[*packetgen.Publish](c, 10*time.Second)
				if err == nil {
					err = c.Send(&packetgen.Puback{PacketID: p.PacketID})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(subs[i])
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
