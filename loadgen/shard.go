package loadgen

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Shard is one of Count disjoint parts of a scenario, run by its own
// process (a worker of `mqttbench load`, or a pod of a Kubernetes Indexed
// Job). Connection i belongs to shard i mod Count, so every shard gets an
// even mix of publishers, subscribers and idle connections, keeps the
// connection's global index (its client identifier, broker and publisher
// number are those of a single run) and so its share of the offered rate.
// Source addresses are dealt out the same way: address j to shard j mod
// Count. The zero value is the whole scenario.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Whole reports the shard is the whole scenario.
func (s Shard) Whole() bool { return s.Count <= 1 }

func (s Shard) String() string {
	if s.Whole() {
		return "0/1"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Owns reports whether connection i belongs to the shard.
func (s Shard) Owns(i int) bool { return s.Whole() || i%s.Count == s.Index }

// Size is how many of n connections (or addresses) the shard holds.
func (s Shard) Size(n int) int {
	if s.Whole() {
		return n
	}
	if s.Index >= n {
		return 0
	}
	return (n-s.Index-1)/s.Count + 1
}

// Sources is the shard's part of the source addresses.
func (s Shard) Sources(all []netip.Addr) []netip.Addr {
	if s.Whole() {
		return all
	}
	var out []netip.Addr
	for j := s.Index; j < len(all); j += s.Count {
		out = append(out, all[j])
	}
	return out
}

// Validate checks the shard against the scenario.
func (s Shard) Validate(sc *Scenario) error {
	if s.Whole() {
		return nil
	}
	switch {
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard %d/%d: the index must be 0 to %d", s.Index, s.Count, s.Count-1)
	case s.Count > sc.TotalConnections():
		return fmt.Errorf("shard %d/%d: %d shards for %d connections leaves some empty", s.Index, s.Count, s.Count, sc.TotalConnections())
	case len(sc.SourceIPs) > 0 && len(sc.SourceIPs) < s.Count:
		return fmt.Errorf("source IPs: %d addresses cannot be split among %d shards (each needs its own); give at least %d",
			len(sc.SourceIPs), s.Count, s.Count)
	}
	return nil
}

// ParseShard reads "i/N" (shard i of N, from 0).
func ParseShard(v string) (Shard, error) {
	a, b, ok := strings.Cut(v, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want i/N with 0 <= i < N, e.g. 0/4", v)
	}
	return Shard{Index: i, Count: n}, nil
}

// RunIDFrom turns a string every shard of a run knows (a Job's UID, the
// start time) into the run id carried in client identifiers and message
// headers, so subscribers of one shard accept messages of the others.
func RunIDFrom(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s)) //nolint:errcheck
	if v := h.Sum32(); v != 0 {
		return v
	}
	return 1
}

// Coordinator lines up the phases of a run's shards.
type Coordinator interface {
	// Connected says this shard's connect phase is over, ready of its
	// connections being up. It returns the wall-clock time at which every
	// shard begins publishing (or holding its connections).
	Connected(ctx context.Context, ready int64) (time.Time, error)
	// Drained is polled during the drain with this shard's state; it
	// reports whether every shard has received what it is due.
	Drained(st DrainState) bool
}

// DrainState is a shard's progress through the drain.
type DrainState struct {
	// Caused is the deliveries due from this shard's publishers: each
	// message sent times the subscribers, in any shard, that match it.
	Caused uint64 `json:"caused"`
	// Received is the deliveries this shard's subscribers received.
	Received uint64 `json:"received"`
	// Inflight is this shard's QoS 1/2 messages not yet acknowledged.
	Inflight int `json:"inflight"`
}

// ClockCoordinator aligns shards that cannot talk to each other (pods of
// an Indexed Job) by the clock alone: every shard starts connecting at
// Start, has the whole ramp plus the connect timeout to connect, and then
// publishes at the same instant. The drain ends once this shard has no
// message in flight and its subscribers have heard nothing new for Quiet.
type ClockCoordinator struct {
	Start time.Time
	Sc    *Scenario
	Quiet time.Duration // default 500 ms

	last     uint64
	lastMove time.Time
}

// PublishAt is when every shard begins publishing.
func (c *ClockCoordinator) PublishAt() time.Time {
	var ramp time.Duration
	if c.Sc.Ramp > 0 {
		ramp = time.Duration(float64(c.Sc.TotalConnections()) / c.Sc.Ramp * float64(time.Second))
	}
	return c.Start.Add(ramp + c.Sc.ConnectTimeout)
}

// Connected implements Coordinator.
func (c *ClockCoordinator) Connected(ctx context.Context, ready int64) (time.Time, error) {
	return c.PublishAt(), nil
}

// Drained implements Coordinator.
func (c *ClockCoordinator) Drained(st DrainState) bool {
	quiet := c.Quiet
	if quiet <= 0 {
		quiet = 500 * time.Millisecond
	}
	now := time.Now()
	if c.lastMove.IsZero() || st.Received != c.last {
		c.last, c.lastMove = st.Received, now
	}
	return st.Inflight == 0 && now.Sub(c.lastMove) >= quiet
}

// Group coordinates shards that can reach one referee: the goroutines of
// a test, or the workers of `mqttbench load` through their parent. Every
// shard publishes Delay after the last one has connected, and the drain
// ends for all when, over all shards, nothing is in flight and the
// deliveries received reach those the sent messages are due.
type Group struct {
	Delay time.Duration

	mu        sync.Mutex
	connected int
	ready     chan struct{}
	at        time.Time
	states    []DrainState
	seen      []bool
}

// NewGroup makes a group of n shards.
func NewGroup(n int, delay time.Duration) *Group {
	return &Group{Delay: delay, ready: make(chan struct{}), states: make([]DrainState, n), seen: make([]bool, n)}
}

// Member is the coordinator of shard i.
func (g *Group) Member(i int) Coordinator { return groupMember{g, i} }

// Connect counts one shard connected and waits for all; it returns when
// publishing starts.
func (g *Group) Connect(ctx context.Context) (time.Time, error) {
	g.mu.Lock()
	g.connected++
	if g.connected == len(g.states) {
		g.at = time.Now().Add(g.Delay)
		close(g.ready)
	}
	g.mu.Unlock()
	select {
	case <-g.ready:
		return g.at, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// Report records shard i's drain state and reports whether every shard
// is drained.
func (g *Group) Report(i int, st DrainState) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.states[i], g.seen[i] = st, true
	var sum DrainState
	for j, s := range g.states {
		if !g.seen[j] {
			return false
		}
		sum.Caused += s.Caused
		sum.Received += s.Received
		sum.Inflight += s.Inflight
	}
	return sum.Inflight == 0 && sum.Received >= sum.Caused
}

type groupMember struct {
	g *Group
	i int
}

func (m groupMember) Connected(ctx context.Context, _ int64) (time.Time, error) {
	return m.g.Connect(ctx)
}

func (m groupMember) Drained(st DrainState) bool { return m.g.Report(m.i, st) }

// errNoCoordinator is returned for a shard of several run without one.
var errNoCoordinator = errors.New("a shard of several needs a coordinator (a start time): shards must publish together")
