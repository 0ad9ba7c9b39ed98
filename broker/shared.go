package broker

import (
	"sync/atomic"

	"github.com/mqttbench/mqttbench/acl"
)

// shareGroup is the 5.0 shared subscription "$share/{name}/{filter}"
// (§4.8.2): its members take turns, each message going to one of them.
type shareGroup struct {
	key    string // the whole "$share/{name}/{filter}"
	filter string // the filter after it, which names match
	// members is guarded by Server.mu, in the order they joined.
	members []*session
	next    atomic.Uint32 // round-robin cursor
}

// joinShareLocked adds sess to the group of key; Server.mu held.
func (s *Server) joinShareLocked(key, filter string, sess *session) *shareGroup {
	g := s.groups[key]
	if g == nil {
		g = &shareGroup{key: key, filter: filter}
		s.groups[key] = g
		s.shared.Add(filter, g)
	}
	for _, m := range g.members {
		if m == sess {
			return g
		}
	}
	g.members = append(g.members, sess)
	return g
}

// leaveShareLocked removes sess from g, and g when it empties; Server.mu
// held.
func (s *Server) leaveShareLocked(g *shareGroup, sess *session) {
	for i, m := range g.members {
		if m == sess {
			g.members = append(g.members[:i:i], g.members[i+1:]...)
			break
		}
	}
	if len(g.members) == 0 && s.groups[g.key] == g {
		delete(s.groups, g.key)
		s.shared.Remove(g.filter, g)
	}
}

// pick chooses the member that gets the next message: members take turns,
// and one that is online is preferred to one whose session waits offline.
// Server.mu held (read).
func (g *shareGroup) pick() *session {
	n := len(g.members)
	if n == 0 {
		return nil
	}
	start := int(g.next.Add(1)-1) % n
	for i := range n {
		m := g.members[(start+i)%n]
		if m.online() {
			return m
		}
	}
	return g.members[start]
}

// targets appends the delivery of m to one member, or to every member with
// the BroadcastShared fault. Server.mu held (read).
func (g *shareGroup) targets(m *message, out []target, broadcast bool) []target {
	if broadcast {
		for _, sess := range g.members {
			out = append(out, target{sess, g.delivery(m, sess)})
		}
		return out
	}
	if sess := g.pick(); sess != nil && sess.mayRead(m) {
		out = append(out, target{sess, g.delivery(m, sess)})
	}
	return out
}

// mayRead reports whether the ACL lets the session's client receive m.
// Server.mu held (read).
func (sess *session) mayRead(m *message) bool {
	return sess.rules == nil || sess.rules.Allowed(string(m.topic), acl.Read)
}

// delivery is how m reaches member sess: at the QoS and with the
// identifier of its subscription, RETAIN as its option says.
func (g *shareGroup) delivery(m *message, sess *session) delivery {
	sub := sess.subs[g.key]
	d := delivery{msg: m, qos: min(m.qos, sub.qos), retain: m.retain && sub.retainAsPublished, share: g}
	if sub.id != 0 {
		d.subIDs = []uint32{sub.id}
	}
	return d
}

// online reports whether the session has a connection.
func (sess *session) online() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.conn != nil
}

// redeliver sends messages that a member of a shared subscription will
// never acknowledge, its session having ended, to another member (§4.8.2:
// the server SHOULD). What no member is left for is dropped.
func (s *Server) redeliver(orphans []delivery) {
	for _, d := range orphans {
		s.mu.RLock()
		var t []target
		if g := d.share; s.groups[g.key] == g {
			t = g.targets(d.msg, nil, false)
		}
		s.mu.RUnlock()
		for _, t := range t {
			t.s.deliver(t.d)
		}
	}
}
