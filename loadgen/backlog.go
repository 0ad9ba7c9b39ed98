package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// Offline takes subscribers away for a while in the publish phase, with
// their sessions kept, while publishers go on: the broker must queue what
// they miss and hand it over when they come back (MQTT-3.1.2-4/5 in
// 3.1.1; a 5.0 session lives for its Session Expiry Interval). What the
// broker promises to keep is bounded by its queue limit
// (Churn.BrokerQueueLimit): losses beyond it are the broker keeping its
// word, not breaking it.
type Offline struct {
	// Subscribers: below 1 a fraction of the subscribers, else a count.
	// The first ones (by connection index) go.
	Subscribers float64
	At          time.Duration // from the start of the publish phase; 0: a quarter in
	For         time.Duration // how long they stay away
}

func (s *Scenario) validateOffline() error {
	o := &s.Churn.Offline
	switch {
	case o.Subscribers == 0:
		return nil
	case o.Subscribers < 0 || math.IsNaN(o.Subscribers) || math.IsInf(o.Subscribers, 0):
		return fmt.Errorf("churn.offline.subscribers: %g is not a fraction below 1 or a count", o.Subscribers)
	case o.Subscribers >= 1 && o.Subscribers != math.Trunc(o.Subscribers):
		return fmt.Errorf("churn.offline.subscribers: %g is neither a fraction below 1 nor a whole count", o.Subscribers)
	case o.For <= 0:
		return errors.New("churn.offline.for: how long the subscribers stay away must be above 0")
	case o.At < 0:
		return errors.New("churn.offline.at: cannot be negative")
	case s.Subscribers == 0:
		return errors.New("churn.offline: the scenario has no subscribers to take offline")
	case s.CleanSession && !s.V5():
		return errors.New("churn.offline: clean sessions end with their connection; offline subscribers need clean_session false (--clean-session=false)")
	case s.CleanSession && s.V5() && s.SessionExpiry == 0:
		return errors.New("churn.offline: a 5.0 clean start with no session expiry keeps nothing; set clean_session false or session_expiry")
	case len(s.SharedGroups) > 0:
		return errors.New("churn.offline: shared subscription members share their messages; take plain subscribers offline")
	}
	if n := s.offlineCount(); n < 1 || n > s.Subscribers {
		return fmt.Errorf("churn.offline.subscribers: %g makes %d of %d subscribers", o.Subscribers, n, s.Subscribers)
	}
	if at := s.offlineAt(); at >= s.Duration {
		return fmt.Errorf("churn.offline.at: %s is not within the publish phase (%s)", at, s.Duration)
	}
	return nil
}

// offlineCount is how many subscribers go offline.
func (s *Scenario) offlineCount() int {
	o := s.Churn.Offline.Subscribers
	if o < 1 {
		return max(1, int(math.Round(o*float64(s.Subscribers))))
	}
	return int(o)
}

func (s *Scenario) offlineAt() time.Duration {
	if at := s.Churn.Offline.At; at > 0 {
		return at
	}
	return s.Duration / 4
}

// backlogRun is the offline subscribers of a run.
type backlogRun struct {
	a    *attack
	subs []*backlogSub
	// went and back are when they were taken away and let back (attack
	// ns): back is the end of For, or of the publish phase if sooner.
	went, back int64
}

// backlogSub is one offline subscriber's backlog. Its reader goroutine
// writes it, the offline goroutine and the summary read it: mu.
type backlogSub struct {
	c  *client
	mu sync.Mutex
	// away: taken offline and not yet back (its CONNACK).
	away bool
	// seqWent is, for each matching publisher, the first sequence number
	// the subscriber had not received when it went: what the broker had
	// to hold for it from then on (sent while it was away, or still on
	// the way to it when it went) was due while away.
	seqWent map[uint32]uint64
	// next is the sequence number after the highest received from each
	// publisher, kept by saw.
	next   map[uint32]uint64
	due    uint64 // messages it had not received when it went, up to its CONNACK
	backAt int64  // its CONNACK on return, attack ns; 0: not back
	backNs int64  // the same, Unix ns
	// delivered counts messages published before backAt received after
	// it, by the QoS they came at; lastAt is when the last came.
	delivered [3]uint64
	lastAt    int64
	// Filled in by the summary: losses by the QoS due, and those put
	// down to the broker's queue limit.
	lost, excused [3]uint64
}

func (a *attack) newBacklog() *backlogRun {
	b := &backlogRun{a: a}
	n := a.sc.offlineCount()
	for _, c := range a.clients {
		if c.sub != nil && len(b.subs) < n {
			bs := &backlogSub{c: c}
			c.sub.off = bs
			b.subs = append(b.subs, bs)
		}
	}
	return b
}

// run takes the subscribers away at At and lets them back after For, or
// at the end of the publish phase (ctx done) if that is sooner.
func (b *backlogRun) run(ctx context.Context, pubStart time.Time) {
	a := b.a
	o := a.sc.Churn.Offline
	if !sleepCtx(ctx, time.Until(pubStart.Add(a.sc.offlineAt()))) {
		return
	}
	b.went = a.now()
	hold := b.went + int64(o.For)
	disc := []byte{byte(packetgen.TypeDisconnect) << 4, 0}
	for _, bs := range b.subs {
		c := bs.c
		bs.mu.Lock()
		bs.away, bs.seqWent = true, a.publisherSeqs(c.sub.log.Expected)
		bs.mu.Unlock()
		c.holdUntil.Store(hold)
		c.mu.Lock()
		if c.conn != nil {
			if c.ready {
				c.wbuf = append(c.wbuf, disc...) // a clean goodbye: the session stays, no will
				c.flushLocked()
			}
			c.failLocked(errChurned)
		}
		c.mu.Unlock()
	}
	// Messages on their way to a subscriber when it went were not yet
	// received: the broker holds them too (in its queue, against its
	// limit), so they count as due from the first one not received.
	for _, bs := range b.subs {
		bs.mu.Lock()
		for p, seq := range bs.seqWent {
			if n, ok := bs.next[p]; ok && n < seq {
				bs.seqWent[p] = n
			}
		}
		bs.mu.Unlock()
	}
	sleepCtx(ctx, time.Duration(hold-a.now()))
	b.back = a.now()
	for _, bs := range b.subs {
		c := bs.c
		c.holdUntil.Store(0)
		c.mu.Lock()
		// Waiting out the hold: come back now. Only a timer stopped
		// before it fired may be reset, or the attempt would run twice.
		if c.timer != nil && c.timer.Stop() {
			c.timer.Reset(0)
		}
		c.mu.Unlock()
	}
}

// publisherSeqs is the next sequence number of each publisher in exp.
func (a *attack) publisherSeqs(exp []Expectation) map[uint32]uint64 {
	out := make(map[uint32]uint64, len(exp))
	for _, e := range exp {
		if int(e.Publisher) >= len(a.pubs) {
			continue
		}
		p := a.pubs[e.Publisher]
		p.mu.Lock()
		out[e.Publisher] = p.pub.seq
		p.mu.Unlock()
	}
	return out
}

// returned notes an offline subscriber's CONNACK on its way back; false
// when it was not away.
func (bs *backlogSub) returned(a *attack, now int64) bool {
	bs.mu.Lock()
	away, went := bs.away, bs.seqWent
	bs.mu.Unlock()
	if !away {
		return false
	}
	var due uint64
	for p, seq := range a.publisherSeqs(bs.c.sub.log.Expected) {
		due += seq - went[p]
	}
	bs.mu.Lock()
	bs.away, bs.due, bs.backAt, bs.backNs = false, due, now, a.unixNs(now)
	bs.mu.Unlock()
	return true
}

// saw counts a delivery: one published while the subscriber was away
// and received after it came back is its backlog.
func (bs *backlogSub) saw(hd Header, qos packetgen.QoS, now int64) {
	bs.mu.Lock()
	if bs.backNs != 0 && hd.Due < bs.backNs && now >= bs.backAt {
		bs.delivered[qos]++
		bs.lastAt = now
	}
	if bs.next == nil {
		bs.next = map[uint32]uint64{}
	}
	bs.next[hd.Publisher] = max(bs.next[hd.Publisher], hd.Seq+1)
	bs.mu.Unlock()
}

// excuse judges an offline subscriber's losses: with a queue limit N,
// up to (messages due while away - N) are the broker's to drop, spread
// over the streams in publisher order. It fills lg.QueueExcuse; pubs
// are the run's ledgers.
func (b *backlogRun) excuse(bs *backlogSub, lg *SubscriberLog, pubs map[uint32]Ledger) {
	limit := uint64(b.a.sc.Churn.BrokerQueueLimit)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	allow := uint64(0)
	if limit > 0 && bs.due > limit {
		allow = bs.due - limit
	}
	for _, e := range lg.Expected {
		l, ok := pubs[e.Publisher]
		st := lg.Streams[e.Publisher]
		if !ok {
			continue
		}
		if st == nil {
			st = &Stream{}
		}
		var lost uint64
		if e.QoS > 0 {
			lost = st.Lost(l.Sent, l.Unconfirmed)
		} else {
			lost = st.Lost(l.Sent, nil)
		}
		bs.lost[e.QoS] += lost
		if lost == 0 || allow == 0 || e.QoS == 0 {
			continue
		}
		x := min(lost, allow)
		allow -= x
		bs.excused[e.QoS] += x
		if lg.QueueExcuse == nil {
			lg.QueueExcuse = map[uint32]uint64{}
		}
		lg.QueueExcuse[e.Publisher] = x
	}
}

// excuseFor judges client c's losses if it went offline.
func (b *backlogRun) excuseFor(c *client, lg *SubscriberLog, pubs map[uint32]Ledger) {
	if b == nil || c.sub == nil || c.sub.off == nil {
		return
	}
	b.excuse(c.sub.off, lg, pubs)
}

func (b *backlogRun) summary() *reports.LoadBacklog {
	a := b.a
	o := a.sc.Churn.Offline
	out := &reports.LoadBacklog{Subscribers: len(b.subs), At: a.sc.offlineAt(), For: o.For, QueueLimit: a.sc.Churn.BrokerQueueLimit}
	if b.went == 0 {
		return out
	}
	out.AwaySec = time.Duration(b.back - b.went).Seconds()
	var first, last int64
	for _, bs := range b.subs {
		bs.mu.Lock()
		if bs.backAt != 0 {
			out.Returned++
			if first == 0 || bs.backAt < first {
				first = bs.backAt
			}
		}
		out.Due += bs.due
		for q := range 3 {
			out.Delivered += bs.delivered[q]
			out.LostByQoS[q] += bs.lost[q]
			out.LostQueueLimit += bs.excused[q]
		}
		if bs.lastAt != 0 {
			out.DrainSec = max(out.DrainSec, time.Duration(bs.lastAt-bs.backAt).Seconds())
			last = max(last, bs.lastAt)
		}
		bs.mu.Unlock()
	}
	if last > first && first != 0 {
		out.DrainRate = float64(out.Delivered) / time.Duration(last-first).Seconds()
	}
	return out
}
