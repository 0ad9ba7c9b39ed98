package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/reports"
)

// Churn is what happens to connections during a run besides publishing:
// a flapping group (this file), subscribers that go offline for a while
// (backlog.go), a storm of wills (will.go) and a fleet of retained topics
// fetched before publishing (retained.go). All of it runs in one process:
// the generator must see every drop and every delivery to measure them.
//
// In the scenario file it is one section, timed against the phases:
//
//	churn:
//	  flap: {rate: 5, group: subscribers, count: 10, clean_start: false}
//	  offline: {subscribers: 0.5, at: 2s, for: 10s}   # below 1: a fraction
//	  will_storm: {connections: 100, at: 5s, prefix: mqttbench/will}
//	  retained: {topics: 1000, subscribers: 10, prefix: mqttbench/retained}
//	  broker_queue_limit: 1000   # messages the broker keeps per session
//
// The retained fleet runs between the connect and publish phases; flap,
// offline and will_storm during the publish phase, "at" from its start.
type Churn struct {
	Flap      Flap
	Offline   Offline
	WillStorm WillStorm
	Retained  RetainedFleet
	// BrokerQueueLimit is how many messages the broker promises to keep
	// per session (mosquitto's max_queued_messages); 0: no known limit,
	// so every QoS 1/2 message an offline subscriber misses is a loss.
	BrokerQueueLimit int
}

// Flap drops connections of a group at a rate, abruptly (no DISCONNECT);
// they come back with the clients' usual backoff, resuming their
// sessions unless CleanStart.
type Flap struct {
	Rate       float64 // drops per second over the group; 0: no flapping
	Group      string  // publishers, subscribers, idle or all (default)
	Count      int     // the group's first Count connections; 0: all of it
	CleanStart bool    // reconnect with a clean start (sessions lost)
}

// Flap groups.
var flapGroups = []string{"publishers", "subscribers", "idle", "all"}

// Active reports whether any churn is asked for.
func (c *Churn) Active() bool {
	return c.Flap.Rate > 0 || c.Offline.Subscribers > 0 || c.WillStorm.Connections > 0 || c.Retained.Topics > 0
}

// errChurned closes a connection the generator dropped on purpose: not an
// error of the broker's, so not counted as one.
var errChurned = errors.New("dropped by the generator (churn)")

func (s *Scenario) validateChurn() error {
	c := &s.Churn
	f := &c.Flap
	switch {
	case f.Rate < 0 || math.IsNaN(f.Rate) || math.IsInf(f.Rate, 0):
		return fmt.Errorf("churn.flap.rate: %g is not a rate of 0 or more drops per second", f.Rate)
	case f.Rate > 100_000:
		return fmt.Errorf("churn.flap.rate: %g drops per second is more than one process can make", f.Rate)
	case f.Count < 0:
		return errors.New("churn.flap.count: cannot be negative")
	case c.BrokerQueueLimit < 0:
		return errors.New("churn.broker_queue_limit: cannot be negative")
	}
	if f.Rate > 0 || f.Group != "" {
		if _, err := s.flapRange(); err != nil {
			return err
		}
	}
	if err := s.validateOffline(); err != nil {
		return err
	}
	if err := s.validateWillStorm(); err != nil {
		return err
	}
	if err := s.validateRetained(); err != nil {
		return err
	}
	if s.PayloadTemplate != "" {
		if _, err := loadTemplate(s.PayloadTemplate, s.Seed); err != nil {
			return err
		}
	}
	return nil
}

// flapRange is the connection indexes [lo, hi) that flap.
func (s *Scenario) flapRange() ([2]int, error) {
	f := &s.Churn.Flap
	var lo, hi int
	switch f.Group {
	case "publishers":
		lo, hi = 0, s.Publishers
	case "subscribers":
		lo, hi = s.Publishers, s.Publishers+s.Subscribers
	case "idle":
		lo, hi = s.Publishers+s.Subscribers+s.Responders, s.TotalConnections()
	case "", "all":
		lo, hi = 0, s.TotalConnections()
	default:
		return [2]int{}, fmt.Errorf("churn.flap.group: %q is not one of %v", f.Group, flapGroups)
	}
	if f.Count > 0 {
		if f.Count > hi-lo {
			return [2]int{}, fmt.Errorf("churn.flap.count: %d is more than the %d connections of group %s", f.Count, hi-lo, groupName(f.Group))
		}
		hi = lo + f.Count
	}
	if hi == lo && f.Rate > 0 {
		return [2]int{}, fmt.Errorf("churn.flap.group: group %s has no connections", groupName(f.Group))
	}
	return [2]int{lo, hi}, nil
}

func groupName(g string) string {
	if g == "" {
		return "all"
	}
	return g
}

// churnFile is the scenario file's churn: section.
type churnFile struct {
	Flap *struct {
		Rate       float64 `yaml:"rate"`
		Group      string  `yaml:"group"`
		Count      int     `yaml:"count"`
		CleanStart bool    `yaml:"clean_start"`
	} `yaml:"flap"`
	Offline *struct {
		Subscribers float64       `yaml:"subscribers"`
		At          time.Duration `yaml:"at"`
		For         time.Duration `yaml:"for"`
	} `yaml:"offline"`
	WillStorm *struct {
		Connections int           `yaml:"connections"`
		At          time.Duration `yaml:"at"`
		Prefix      string        `yaml:"prefix"`
	} `yaml:"will_storm"`
	Retained *struct {
		Topics      int    `yaml:"topics"`
		Subscribers int    `yaml:"subscribers"`
		Prefix      string `yaml:"prefix"`
	} `yaml:"retained"`
	BrokerQueueLimit *int `yaml:"broker_queue_limit"`
}

// apply sets what the section gives over c.
func (f *churnFile) apply(c *Churn) {
	if x := f.Flap; x != nil {
		c.Flap = Flap{Rate: x.Rate, Group: x.Group, Count: x.Count, CleanStart: x.CleanStart}
	}
	if x := f.Offline; x != nil {
		c.Offline = Offline{Subscribers: x.Subscribers, At: x.At, For: x.For}
	}
	if x := f.WillStorm; x != nil {
		c.WillStorm = WillStorm{Connections: x.Connections, At: x.At, Prefix: x.Prefix}
	}
	if x := f.Retained; x != nil {
		c.Retained = RetainedFleet{Topics: x.Topics, Subscribers: x.Subscribers, Prefix: x.Prefix}
	}
	if f.BrokerQueueLimit != nil {
		c.BrokerQueueLimit = *f.BrokerQueueLimit
	}
}

// churnRun is a run's churn while it goes.
type churnRun struct {
	a       *attack
	flap    *flapper
	backlog *backlogRun
	wills   *willStorm
	ret     *retainedFleet
	cancel  context.CancelFunc
	done    chan struct{}
}

// prepareChurn sets up what the churn needs before the clients start:
// the payload template, the flapping group, the subscribers to take
// offline.
func (a *attack) prepareChurn() error {
	sc := &a.sc
	if sc.PayloadTemplate != "" {
		t, err := loadTemplate(sc.PayloadTemplate, sc.Seed)
		if err != nil {
			return err
		}
		a.tmpl = t
		// Room for the largest rendering seen so far, and then some.
		a.dec.MaxPacketSize = max(a.dec.MaxPacketSize, 4*t.sample+64<<10)
	}
	if !sc.Churn.Active() {
		return nil
	}
	if !a.opts.Shard.Whole() {
		return errors.New("churn (flapping, offline subscribers, will storm, retained fleet) runs in one process: it does not combine with shards or workers")
	}
	ch := &churnRun{a: a}
	if sc.Churn.Flap.Rate > 0 {
		r, err := sc.flapRange()
		if err != nil {
			return err
		}
		ch.flap = &flapper{a: a, members: a.clients[r[0]:r[1]]}
		if sc.Churn.Flap.CleanStart {
			for _, c := range ch.flap.members {
				c.cleanStart = true
			}
		}
	}
	if sc.Churn.Offline.Subscribers > 0 {
		ch.backlog = a.newBacklog()
	}
	a.churn = ch
	return nil
}

// beforePublish runs what comes between the connect and publish phases:
// the retained fleet, and the will storm's connections.
func (ch *churnRun) beforePublish(ctx context.Context) {
	if ch == nil {
		return
	}
	a := ch.a
	if a.sc.Churn.Retained.Topics > 0 {
		a.setPhase("retained")
		ch.ret = a.runRetainedFleet(ctx)
	}
	if a.sc.Churn.WillStorm.Connections > 0 {
		a.setPhase("wills")
		ch.wills = a.connectWillStorm(ctx)
	}
}

// start begins the publish phase's churn; stop ends it.
func (ch *churnRun) start(ctx context.Context, pubStart time.Time) {
	if ch == nil {
		return
	}
	ctx, ch.cancel = context.WithCancel(ctx)
	ch.done = make(chan struct{})
	var parts []func()
	if ch.flap != nil {
		parts = append(parts, func() { ch.flap.run(ctx, pubStart) })
	}
	if ch.backlog != nil {
		parts = append(parts, func() { ch.backlog.run(ctx, pubStart) })
	}
	if ch.wills != nil {
		parts = append(parts, func() { ch.wills.storm(ctx, pubStart) })
	}
	left := make(chan struct{}, len(parts))
	for _, p := range parts {
		go func() { p(); left <- struct{}{} }()
	}
	go func() {
		for range parts {
			<-left
		}
		close(ch.done)
	}()
}

// stop ends flapping and brings offline subscribers back, at the end of
// the publish phase, so the drain sees every backlog.
func (ch *churnRun) stop() {
	if ch == nil || ch.cancel == nil {
		return
	}
	ch.cancel()
	<-ch.done
}

// finish waits, after the drain, for wills still on their way, and closes
// the churn's own connections.
func (ch *churnRun) finish(ctx context.Context) {
	if ch == nil {
		return
	}
	if ch.wills != nil {
		ch.wills.finish(ctx)
	}
}

// excuse sets, for an offline subscriber, the losses its broker's queue
// limit allowed (backlog.go); pubs are the ledgers so far, publishers
// coming first in the clients.
func (ch *churnRun) excuse(c *client, lg *SubscriberLog, pubs map[uint32]Ledger) {
	if ch != nil {
		ch.backlog.excuseFor(c, lg, pubs)
	}
}

// summarizeChurn fills the summary's churn section and its violations.
func (a *attack) summarizeChurn(l *reports.Load, pubSec float64) {
	if a.churn != nil {
		a.churn.summary(l, pubSec)
	}
	if a.tmpl != nil {
		if l.Churn == nil {
			l.Churn = &reports.LoadChurn{}
		}
		l.Churn.Template = a.tmpl.summary()
	}
}

func (ch *churnRun) summary(l *reports.Load, pubSec float64) {
	out := &reports.LoadChurn{}
	if ch.flap != nil {
		out.Flap = ch.flap.summary(pubSec)
	}
	if ch.backlog != nil {
		out.Backlog = ch.backlog.summary()
	}
	if ch.wills != nil {
		out.WillStorm = ch.wills.summary()
	}
	if ch.ret != nil {
		out.Retained = ch.ret.summary()
	}
	l.Churn = out
	if l.Interrupted {
		return
	}
	if b := out.Backlog; b != nil && b.LostQueueLimit > 0 {
		l.Notes = append(l.Notes, fmt.Sprintf("%s dropped by the broker's queue limit (%d per session) while subscribers were offline: not violations",
			plural(b.LostQueueLimit, "message"), b.QueueLimit))
	}
	if w := out.WillStorm; w != nil && w.Received < w.Expected {
		l.Violations = append(l.Violations, fmt.Sprintf("[MQTT-3.1.2-8] %d of %d wills never published after their connections closed without DISCONNECT",
			w.Expected-w.Received, w.Expected))
	}
	if r := out.Retained; r != nil && r.DroppedQueueLimit > 0 {
		l.Notes = append(l.Notes, fmt.Sprintf("%s not fetched by subscribers that got the broker's queue limit (%d per session) or more: not violations",
			plural(r.DroppedQueueLimit, "retained message"), r.QueueLimit))
	}
	if r := out.Retained; r != nil && r.Missing > 0 {
		if r.RetainAvailable {
			l.Violations = append(l.Violations, fmt.Sprintf("[%s] %d retained messages not sent to new subscribers (%d of %d subscribers got all %d topics)",
				r.Statement, r.Missing, r.Complete, r.Subscribers, r.Topics))
		} else {
			l.Notes = append(l.Notes, fmt.Sprintf("%d retained messages missing: the broker says retain is not available", r.Missing))
		}
	}
}

// Flapping.

// flapper drops the group's connections at the rate, one after another.
type flapper struct {
	a       *attack
	members []*client
	next    int
	drops   uint64
	skipped uint64 // due when no member was connected
}

func (f *flapper) run(ctx context.Context, start time.Time) {
	a := f.a
	sched := schedule{Pacer: ConstantPacer{Rate: a.sc.Churn.Flap.Rate, Duration: a.sc.Duration}, Clock: realClock{start}, MinSleep: time.Millisecond}
	sched.run(ctx, func(uint64, time.Duration) { f.drop() }, func(uint64, time.Duration) { f.skipped++ }, func() {})
}

// drop closes the next connected member abruptly: no DISCONNECT, so the
// broker sees a network failure (and publishes a will, had it one).
func (f *flapper) drop() {
	for range f.members {
		c := f.members[f.next]
		f.next = (f.next + 1) % len(f.members)
		c.mu.Lock()
		ok := c.ready && c.conn != nil
		if ok {
			c.failLocked(errChurned)
		}
		c.mu.Unlock()
		if ok {
			f.drops++
			return
		}
	}
	f.skipped++
}

func (f *flapper) summary(pubSec float64) *reports.LoadFlap {
	fl := f.a.sc.Churn.Flap
	out := &reports.LoadFlap{Group: groupName(fl.Group), Connections: len(f.members), Rate: fl.Rate, CleanStart: fl.CleanStart,
		Drops: f.drops, Skipped: f.skipped, Reconnected: f.a.rec.Total(MetricReconnect).TotalCount()}
	if pubSec > 0 {
		out.DropsPerSec = float64(f.drops) / pubSec
	}
	return out
}

// validTopicPrefix checks a churn topic prefix.
func validTopicPrefix(field, p string) error {
	if err := topic.ValidateName(p+"/x", false); err != nil {
		return fmt.Errorf("%s: %q: %v", field, p, err)
	}
	return nil
}
