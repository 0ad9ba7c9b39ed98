// Package broker is mqttbench's in-process reference MQTT broker: the
// target the conformance suites are proven against, the default target of
// conform, load and fuzz, and a baseline in comparisons. It speaks MQTT
// 3.1.1 and 3.1 over any net.Conn.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/store"
)

// Server is an MQTT broker. Create it with New; serve listeners with Start
// or Serve and single connections with ServeConn; stop it with Close or
// Shutdown.
type Server struct {
	opts  Options
	log   *slog.Logger
	store *store.Store // nil: everything in memory (durable.go)

	mu        sync.RWMutex
	sessions  map[string]*session
	subs      topic.Tree[*session]
	shared    topic.Tree[*shareGroup] // by the filter after "$share/{name}/"
	groups    map[string]*shareGroup  // by the whole "$share/{name}/{filter}"
	retained  map[string]*message
	listeners []net.Listener
	conns     map[*conn]struct{}
	closed    bool
	idSeq     uint64

	wg    sync.WaitGroup
	stats Stats
}

// Stats are the broker's running counters.
type Stats struct {
	Connections atomic.Int64  // currently open
	Accepted    atomic.Uint64 // connections accepted in all
	Received    atomic.Uint64 // PUBLISH packets received
	Sent        atomic.Uint64 // PUBLISH packets sent
	dropped     atomic.Uint64
}

// Dropped counts messages dropped because a session queue was full.
func (s *Stats) Dropped() uint64 { return s.dropped.Load() }

// ErrServerClosed is returned by Serve and ServeConn after Close.
var ErrServerClosed = errors.New("broker: server closed")

// New returns a broker with opts, defaults filled in.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		store:    opts.Store,
		sessions: map[string]*session{},
		retained: map[string]*message{},
		groups:   map[string]*shareGroup{},
		conns:    map[*conn]struct{}{},
	}
	if s.store != nil {
		s.restore(s.store.Recovered())
	}
	return s
}

// Stats returns the broker's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Start listens on every address in Options.Listen and serves each in the
// background. When it returns without error the broker accepts
// connections; Addrs tells the bound addresses.
func (s *Server) Start() error {
	if len(s.opts.Listen) == 0 {
		return errors.New("broker: no listen address")
	}
	var ls []net.Listener
	for _, addr := range s.opts.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("broker: listen on %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		for _, l := range ls {
			l.Close()
		}
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, ls...)
	s.mu.Unlock()
	for _, l := range ls {
		s.log.Info("listening", "addr", l.Addr().String())
		go s.acceptLoop(l) //nolint:errcheck // ends with ErrServerClosed
	}
	return nil
}

// Addrs returns the addresses of the listeners being served.
func (s *Server) Addrs() []net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Serve accepts connections on l until Close. It always returns an error:
// ErrServerClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	return s.acceptLoop(l)
}

func (s *Server) acceptLoop(l net.Listener) error {
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.RLock()
			closed := s.closed
			s.mu.RUnlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go s.ServeConn(nc) //nolint:errcheck // per-connection errors are logged
	}
}

// ServeConn serves one client connection and returns when it is closed.
// It works with any net.Conn, net.Pipe included.
func (s *Server) ServeConn(nc net.Conn) error {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.Accepted.Add(1)
	s.stats.Connections.Add(1)
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.stats.Connections.Add(-1)
		s.wg.Done()
	}()
	return c.serve()
}

// Close stops listening, closes every connection and waits for them to
// end. Sessions and retained messages are dropped with the server, unless
// it has a store: then they are in it, and Close closes the store.
func (s *Server) Close() error {
	return s.Shutdown(context.Background())
}

// Shutdown is Close with a deadline for the connections to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := s.listeners
	s.listeners = nil
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, c := range conns {
		c.disconnect(packetgen.ServerShuttingDown, errServerShutdown) // 5.0: 0x8B first
	}
	// Sessions end with the server: no expiry or will delay fires after
	// (detach starts none once closed is set).
	s.mu.Lock()
	for _, sess := range s.sessions {
		sess.mu.Lock()
		sess.stopTimersLocked()
		sess.mu.Unlock()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if s.store != nil {
		// After the connections: their wills and last changes go in.
		if cerr := s.store.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

var errServerShutdown = errors.New("server shutting down")

// publish routes an application message: it updates the retained store
// when RETAIN is set and delivers a copy to every session with a matching
// subscription, once per session at the highest QoS among its matching
// ordinary subscriptions (MQTT-3.3.5-1 lets a server deliver once) with
// all their subscription identifiers (MQTT-3.3.4-3), and once to one
// member of each matching shared subscription group (§4.8.2), at the
// QoS that member was granted (MQTT-4.8.2-3). It
// returns how many deliveries it made: 5.0 acknowledges a message that
// reached nobody with 0x10.
func (s *Server) publish(m *message) int {
	if m.retain && !s.opts.DisableRetain && !s.opts.Faults.ForgetRetained {
		s.retain(m)
	}
	var buf [16]target
	targets := s.targets(m, buf[:0])
	for _, t := range targets {
		if s.opts.Faults.DowngradeToQoS0 {
			t.d.qos = 0
		}
		t.s.deliver(t.d)
	}
	return len(targets)
}

// target is a session a message goes to, and how.
type target struct {
	s *session
	d delivery
}

// manyTargets is the number of targets above which targets indexes them
// by session rather than searching: a fan-out to thousands stays linear.
const manyTargets = 32

// targets appends the deliveries m is owed. The read lock is released by
// a deferred call, so a panic while matching (recovered per connection)
// cannot leave the broker locked.
func (s *Server) targets(m *message, targets []target) []target {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var idx map[*session]int
	add := func(filter string, sess *session) {
		sub := sess.subs[filter]
		if sub == nil || !sess.mayRead(m) {
			return
		}
		// No Local: not back to the connection that published it
		// (MQTT-3.8.3-3).
		if sub.noLocal && m.origin != "" && sess.id == m.origin && !s.opts.Faults.IgnoreNoLocal {
			return
		}
		qos := min(sub.qos, m.qos)
		// Live deliveries carry RETAIN 0 (MQTT-3.3.1-12) unless the
		// subscription asked for it as published (MQTT-3.3.1-13).
		retain := m.retain && (sub.retainAsPublished || s.opts.Faults.LiveRetainFlag)
		i := -1
		if idx != nil {
			if j, ok := idx[sess]; ok {
				i = j
			}
		} else {
			for j := range targets {
				if targets[j].s == sess {
					i = j
					break
				}
			}
		}
		if i < 0 {
			targets = append(targets, target{s: sess, d: delivery{msg: m, qos: qos, retain: retain}})
			i = len(targets) - 1
			switch {
			case idx != nil:
				idx[sess] = i
			case len(targets) > manyTargets:
				idx = make(map[*session]int, 2*len(targets))
				for j, t := range targets {
					idx[t.s] = j
				}
			}
		} else {
			targets[i].d.qos = max(targets[i].d.qos, qos)
			targets[i].d.retain = targets[i].d.retain || retain
		}
		if sub.id != 0 && !s.opts.Faults.DropSubscriptionIDs {
			targets[i].d.subIDs = append(targets[i].d.subIDs, sub.id)
		}
	}
	if f := s.opts.Faults; f.WidenPlus || f.DollarWildcard || f.NormaliseSeparators {
		s.faultyMatchLocked(string(m.topic), add)
	} else {
		s.subs.MatchBytes(m.topic, add)
	}
	if s.shared.Len() > 0 {
		s.shared.MatchBytes(m.topic, func(_ string, g *shareGroup) {
			targets = g.targets(m, targets, s.opts.Faults.BroadcastShared)
		})
	}
	return targets
}

// faultyMatchLocked matches every ordinary subscription with the
// WidenPlus or DollarWildcard fault applied; Server.mu held.
func (s *Server) faultyMatchLocked(n string, fn func(string, *session)) {
	for _, sess := range s.sessions {
		for filter, sub := range sess.subs {
			if sub.share != nil {
				continue
			}
			ok := topic.Match(filter, n)
			if !ok && s.opts.Faults.WidenPlus {
				ok = widenedMatch(filter, n)
			}
			if !ok && s.opts.Faults.DollarWildcard && strings.HasPrefix(n, "$") {
				ok = topic.Match(filter, strings.TrimPrefix(n, "$"))
			}
			if !ok && s.opts.Faults.NormaliseSeparators {
				ok = topic.Match(strings.ReplaceAll(filter, ".", "/"), strings.ReplaceAll(n, ".", "/"))
			}
			if ok {
				fn(filter, sess)
			}
		}
	}
}

// retain stores, replaces or, for an empty payload, deletes the retained
// message of m's topic (MQTT-3.3.1-5, -10, -11).
func (s *Server) retain(m *message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeRetainedLocked(m)
	if len(m.payload) == 0 {
		delete(s.retained, string(m.topic))
		return
	}
	s.retained[string(m.topic)] = m
}

// retainedFor returns the retained messages matching filter; expired ones
// are not sent (MQTT-3.3.2-5).
func (s *Server) retainedFor(filter string) []*message {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*message
	now := time.Now()
	for name, m := range s.retained {
		if topic.Match(filter, name) && (!m.expired(now) || s.opts.Faults.NeverExpire) {
			out = append(out, m)
		}
	}
	return out
}

// clientID returns a fresh identifier for a client that sent none
// (MQTT-3.1.3-6; 5.0 MQTT-3.1.3-6 too, told in CONNACK).
func (s *Server) clientID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.idSeq++
		id := s.opts.AssignedIDPrefix + strconv.FormatUint(s.idSeq, 10)
		if _, taken := s.sessions[id]; !taken {
			return id
		}
	}
}
