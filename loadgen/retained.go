package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/wire"
)

// RetainedFleet sets Topics retained messages, then has Subscribers
// subscribe at once to a wildcard over them and times how long each takes
// to have them all: a new subscription must get the retained message of
// every matching topic (MQTT-3.3.1-6; 5.0 MQTT-3.3.1-9 with Retain
// Handling 0). It runs between the connect and publish phases and clears
// the topics afterwards.
type RetainedFleet struct {
	Topics      int
	Subscribers int    // 0: one
	Prefix      string // topics are PREFIX/<run id>/k
}

// DefaultRetainedPrefix is the retained topics' prefix when none is given.
const DefaultRetainedPrefix = "mqttbench/retained"

// retainedWindow bounds the setter's unacknowledged PUBLISH packets.
const retainedWindow = 100

func (s *Scenario) validateRetained() error {
	r := &s.Churn.Retained
	switch {
	case r.Topics == 0 && r.Subscribers == 0:
		return nil
	case r.Topics <= 0 || r.Topics > 1_000_000:
		return fmt.Errorf("churn.retained.topics: %d is not between 1 and 1000000", r.Topics)
	case r.Subscribers < 0 || r.Subscribers > 100_000:
		return fmt.Errorf("churn.retained.subscribers: %d is not between 0 and 100000", r.Subscribers)
	}
	return validTopicPrefix("churn.retained.prefix", s.retainedPrefix())
}

func (s *Scenario) retainedPrefix() string {
	if p := s.Churn.Retained.Prefix; p != "" {
		return p
	}
	return DefaultRetainedPrefix
}

// retainedFleet is what the fleet measured.
type retainedFleet struct {
	a         *attack
	topics    int
	subs      int
	setSec    float64
	set       int // retained messages acknowledged
	available bool
	complete  int
	missing   uint64
	// queued: missing from subscribers that got at least the broker's
	// queue limit (Churn.BrokerQueueLimit): the broker keeps that many
	// messages queued per session and drops the rest, as it says.
	queued    uint64
	unflagged uint64 // delivered without RETAIN set (MQTT-3.3.1-8)
	err       string
}

// runRetainedFleet sets the topics, lets the subscribers fetch them and
// clears the topics.
func (a *attack) runRetainedFleet(ctx context.Context) *retainedFleet {
	sc := &a.sc
	r := &retainedFleet{a: a, topics: sc.Churn.Retained.Topics, subs: max(1, sc.Churn.Retained.Subscribers), available: true}
	prefix := sc.retainedPrefix() + "/" + a.runHex + "/"
	setter, ca, err := a.sideDial(ctx, 0, a.sideConnect("mb"+a.runHex+"rs"))
	if err != nil {
		r.err = "setter: " + err.Error()
		r.missing = uint64(r.topics * r.subs)
		return r
	}
	defer setter.Disconnect() //nolint:errcheck
	if ca.Properties.Has(packetgen.PropRetainAvailable) && ca.Properties.RetainAvailable == 0 {
		// 5.0: the broker said so (§3.2.2.3.5), and would close a
		// connection that sent RETAIN 1 anyway (0x9A): nothing to fetch.
		r.available = false
		r.err = "CONNACK says Retain Available 0: no retained messages set"
		r.missing = uint64(r.topics * r.subs)
		return r
	}
	window := retainedWindow
	if ca.Properties.Has(packetgen.PropReceiveMaximum) {
		window = min(window, int(ca.Properties.ReceiveMaximum))
	}
	t0 := time.Now()
	r.set, err = a.publishRetained(setter, prefix, r.topics, window)
	r.setSec = time.Since(t0).Seconds()
	if err != nil {
		r.err = "setting retained messages: " + err.Error()
	}
	// Clear the topics afterwards: an empty retained message deletes one
	// (MQTT-3.3.1-10), so a real broker is left as it was.
	defer func() {
		for k := range r.topics {
			setter.Send(&packetgen.Publish{Topic: []byte(prefix + strconv.Itoa(k)), Retain: true}) //nolint:errcheck
		}
	}()
	if r.set == 0 {
		r.missing = uint64(r.topics * r.subs)
		return r
	}
	r.fetch(ctx, prefix)
	return r
}

// publishRetained publishes n retained QoS 1 messages, at most window
// unacknowledged, and returns how many were acknowledged.
func (a *attack) publishRetained(wc *wire.Conn, prefix string, n, window int) (int, error) {
	sent, acked, out := 0, 0, 0
	for acked < n {
		for out < window && sent < n {
			id := uint16(sent%65535 + 1)
			if err := wc.Send(&packetgen.Publish{Topic: []byte(prefix + strconv.Itoa(sent)), QoS: 1, Retain: true, PacketID: id,
				Payload: []byte("retained " + strconv.Itoa(sent))}); err != nil {
				return acked, err
			}
			sent++
			out++
		}
		p, err := wc.Recv(a.sc.ConnectTimeout)
		if err != nil {
			return acked, err
		}
		switch q := p.(type) {
		case *packetgen.Puback:
			if q.ReasonCode >= 0x80 {
				return acked, a.refused(packetgen.TypePuback, byte(q.ReasonCode))
			}
			acked++
			out--
		case *packetgen.Publish: // someone else's, on a topic of ours: acknowledge it
			if q.QoS == 1 {
				wc.Send(&packetgen.Puback{PacketID: q.PacketID}) //nolint:errcheck
			}
		}
	}
	return acked, nil
}

// fetch connects the subscribers, subscribes them all at once to
// PREFIX/+ and waits until each has every topic, or has heard nothing
// for the connect timeout.
func (r *retainedFleet) fetch(ctx context.Context, prefix string) {
	a := r.a
	conns := make([]*wire.Conn, r.subs)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	work := make(chan int)
	for range min(r.subs, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, _, err := a.sideDial(ctx, i, a.sideConnect("mb"+a.runHex+"r"+strconv.Itoa(i)))
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range r.subs {
		work <- i
	}
	close(work)
	wg.Wait()
	if e, ok := firstErr.Load().(string); ok {
		r.err = "subscriber: " + e
	}
	var mu sync.Mutex
	for _, c := range conns {
		if c == nil {
			r.missing += uint64(r.topics)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect() //nolint:errcheck
			got, unflagged, err := a.fetchRetained(c, prefix, r.topics)
			mu.Lock()
			defer mu.Unlock()
			r.unflagged += unflagged
			switch limit := a.sc.Churn.BrokerQueueLimit; {
			case got == r.topics:
				r.complete++
			case limit > 0 && got >= limit:
				r.queued += uint64(r.topics - got)
			default:
				r.missing += uint64(r.topics - got)
			}
			if err != nil && r.err == "" {
				r.err = "subscriber: " + err.Error()
			}
		}()
	}
	wg.Wait()
}

// fetchRetained subscribes c and reads until it has all n topics.
func (a *attack) fetchRetained(c *wire.Conn, prefix string, n int) (got int, unflagged uint64, err error) {
	seen := make([]bool, n)
	start := a.now()
	handle := func(p packetgen.Packet) {
		pp, ok := p.(*packetgen.Publish)
		if !ok {
			return
		}
		if pp.QoS == 1 {
			c.Send(&packetgen.Puback{PacketID: pp.PacketID}) //nolint:errcheck
		}
		k, err := strconv.Atoi(strings.TrimPrefix(string(pp.Topic), prefix))
		if err != nil || k < 0 || k >= n || seen[k] {
			return
		}
		if !pp.Retain {
			unflagged++
		}
		seen[k] = true
		got++
		if got == n {
			a.rec.Record(MetricRetainedFetch, time.Duration(a.now()-start))
		}
	}
	if err := a.sideSubscribe(c, prefix+"+", handle); err != nil {
		return 0, 0, err
	}
	for got < n {
		p, err := c.Recv(a.sc.ConnectTimeout)
		if errors.Is(err, wire.ErrTimeout) {
			return got, unflagged, nil // heard nothing for that long: the rest is missing
		}
		if err != nil {
			return got, unflagged, err
		}
		handle(p)
	}
	return got, unflagged, nil
}

func (r *retainedFleet) summary() *reports.LoadRetained {
	out := &reports.LoadRetained{Topics: r.topics, Subscribers: r.subs, Set: r.set, SetSec: r.setSec, RetainAvailable: r.available,
		Complete: r.complete, Missing: r.missing, Unflagged: r.unflagged, Error: r.err}
	if r.queued > 0 {
		out.QueueLimit, out.DroppedQueueLimit = r.a.sc.Churn.BrokerQueueLimit, r.queued
	}
	h := r.a.rec.Total(MetricRetainedFetch)
	if h.TotalCount() > 0 {
		out.FetchMaxSec = float64(h.Max()) / 1e6
	}
	out.Statement = "MQTT-3.3.1-6"
	if r.a.v5 {
		out.Statement = "MQTT-3.3.1-9"
	}
	return out
}
