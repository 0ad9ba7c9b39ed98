package broker

import (
	"slices"
	"sync"

	"github.com/mqttbench/mqttbench/packetgen"
)

// session is the state the specification keeps per client identifier
// (§4.1): subscriptions, QoS 1 and 2 messages in flight both ways, and
// messages queued while the client is away. It outlives connections when
// the client asked for a persistent session (clean session 0).
type session struct {
	id  string
	srv *Server

	mu    sync.Mutex
	clean bool
	conn  *conn // nil while the client is offline
	subs  map[string]packetgen.QoS

	// Outgoing QoS 1 and 2, in the order they were sent (MQTT-4.6.0-2 and
	// -3: acknowledgements and resends follow that order).
	inflight []*outbound
	nextID   uint16
	// queued waits for room in the in-flight window, or for the client.
	queued  []queuedMsg
	dropped uint64
	// inboundQoS2 holds the identifiers of QoS 2 messages received and
	// delivered but not yet released by PUBREL: a repeat with the same
	// identifier is acknowledged but not delivered again (§4.3.3).
	inboundQoS2 map[uint16]struct{}
}

type queuedMsg struct {
	msg    *message
	qos    packetgen.QoS
	retain bool // a retained message sent because of a SUBSCRIBE
}

func newSession(srv *Server, id string, clean bool) *session {
	// The maps are made on first use: most sessions of a large idle fleet
	// never need them.
	return &session{id: id, srv: srv, clean: clean}
}

// deliver hands m to the session at qos (already the minimum of the
// message's and the subscription's). Online, QoS 0 goes straight out and
// QoS 1/2 enter the in-flight window or the queue; offline, QoS 1/2 (and
// QoS 0 when configured) are queued for the next connection.
func (s *session) deliver(m *message, qos packetgen.QoS, retain bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := queuedMsg{m, qos, retain}
	if s.conn == nil {
		if qos == 0 && !s.srv.opts.QueueQoS0 {
			return
		}
		s.enqueue(q)
		return
	}
	if len(s.queued) > 0 || (qos > 0 && len(s.inflight) >= s.srv.opts.InflightWindow) {
		s.enqueue(q) // keep the order: nothing overtakes the queue
		return
	}
	s.sendNow(q)
}

func (s *session) enqueue(q queuedMsg) {
	if len(s.queued) >= s.srv.opts.MaxQueued {
		s.dropped++
		s.srv.stats.dropped.Add(1)
		return
	}
	s.queued = append(s.queued, q)
}

// sendNow sends a message, putting QoS 1/2 in flight; s.mu held, s.conn set.
func (s *session) sendNow(q queuedMsg) {
	if q.qos == 0 {
		s.conn.send(q.msg.publishPacket(0, 0, q.retain, false))
		return
	}
	o := &outbound{msg: q.msg, qos: q.qos, id: s.allocID(), retain: q.retain}
	s.inflight = append(s.inflight, o)
	s.conn.send(q.msg.publishPacket(q.qos, o.id, q.retain, false))
}

// allocID returns a packet identifier not in flight (MQTT-2.3.1-2).
func (s *session) allocID() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if s.findInflight(s.nextID) < 0 {
			return s.nextID
		}
	}
}

func (s *session) findInflight(id uint16) int {
	for i, o := range s.inflight {
		if o.id == id {
			return i
		}
	}
	return -1
}

// pump moves queued messages into the window and sends what fits. On an
// online session with s.mu held.
func (s *session) pump() {
	for len(s.queued) > 0 && s.conn != nil {
		q := s.queued[0]
		if q.qos > 0 && len(s.inflight) >= s.srv.opts.InflightWindow {
			return
		}
		s.queued[0] = queuedMsg{}
		s.queued = s.queued[1:]
		s.sendNow(q)
	}
	if len(s.queued) == 0 {
		s.queued = nil // let the backing array go
	}
}

// resume re-sends, on a new connection of a persistent session, every
// unacknowledged PUBLISH with DUP set and every unanswered PUBREL, with
// their original identifiers and in their original order (MQTT-4.4.0-1),
// then what was queued. s.mu held.
func (s *session) resume() {
	if s.srv.opts.Faults.ReverseQueue {
		slices.Reverse(s.queued)
	}
	for _, o := range s.inflight {
		if o.released {
			s.conn.send(&packetgen.Pubrel{PacketID: o.id})
		} else {
			s.conn.send(o.msg.publishPacket(o.qos, o.id, o.retain, !s.srv.opts.Faults.NoDupOnResend))
		}
	}
	s.pump()
}

// acked handles PUBACK (QoS 1) and PUBCOMP (QoS 2 complete).
func (s *session) acked(id uint16, qos packetgen.QoS) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findInflight(id)
	if i < 0 || s.inflight[i].qos != qos || (qos == 2 && !s.inflight[i].released) {
		return // unknown or out of step: nothing to release
	}
	s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
	s.pump()
}

// received handles PUBREC: the client has the message; release it.
func (s *session) received(id uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findInflight(id)
	if i >= 0 && s.inflight[i].qos == 2 {
		s.inflight[i].released = true
	}
	// PUBREL answers PUBREC even for an identifier we no longer know, so
	// the client can finish its side (MQTT-4.3.3-1 flow).
	if s.conn != nil {
		s.conn.send(&packetgen.Pubrel{PacketID: id})
	}
}
