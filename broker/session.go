package broker

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/packetgen"
)

// session is the state the specification keeps per client identifier
// (§4.1): subscriptions, QoS 1 and 2 messages in flight both ways, and
// messages queued while the client is away. It outlives its connection
// for the Session Expiry Interval (5.0), or forever for a 3.1.1 client
// that asked for a persistent session (clean session 0).
type session struct {
	id  string
	srv *Server

	mu sync.Mutex
	// expiry is the Session Expiry Interval in seconds: 0 ends the session
	// with its connection, neverExpires keeps it for good.
	expiry uint32
	conn   *conn // nil while the client is offline
	// subs is guarded by Server.mu, which also guards the trees it mirrors,
	// and so is rules, what the ACL lets the session's client read.
	subs  map[string]*subscription
	rules *acl.Rules

	// Outgoing QoS 1 and 2, in the order they were sent (MQTT-4.6.0-2 and
	// -3: acknowledgements and resends follow that order).
	inflight []*outbound
	// inflightIDs holds the identifiers in inflight, so that allocating
	// one and finding an acknowledged one cost the same whatever the
	// window; made on first use.
	inflightIDs map[uint16]struct{}
	nextID      uint16
	// queued waits for room in the in-flight window, or for the client.
	queued  []delivery
	dropped uint64
	// inboundQoS2 holds the identifiers of QoS 2 messages received and
	// delivered but not yet released by PUBREL: a repeat with the same
	// identifier is acknowledged but not delivered again (§4.3.3).
	inboundQoS2 map[uint16]struct{}

	// expireAt ends an offline session whose interval is finite; will
	// publishes a 5.0 will whose delay has not yet passed. Both are
	// stopped when a connection resumes the session.
	expireAt *time.Timer
	will     *pendingWill

	// durable: the session is kept in the store (durable.go); user is the
	// client's user name, for the ACL after a restart.
	durable bool
	user    string
}

// neverExpires is the Session Expiry Interval that keeps a session for
// good (§3.1.2.11.2).
const neverExpires = math.MaxUint32

// subscription is one filter's subscription options (§3.8.3.1).
type subscription struct {
	qos               packetgen.QoS
	noLocal           bool
	retainAsPublished bool
	id                uint32 // Subscription Identifier; 0: none
	share             *shareGroup
}

func newSession(srv *Server, id string, expiry uint32) *session {
	// The maps are made on first use: most sessions of a large idle fleet
	// never need them.
	return &session{id: id, srv: srv, expiry: expiry}
}

// window is how many QoS 1 and 2 messages may be in flight to the
// client: the broker's window, or less when the client's Receive Maximum
// says so (MQTT-3.3.4-9). s.mu held, s.conn set.
func (s *session) window() int {
	if s.srv.opts.Faults.IgnoreReceiveMax {
		return s.srv.opts.InflightWindow
	}
	return min(s.srv.opts.InflightWindow, int(s.conn.recvMax))
}

// deliver hands d to the session. Online, QoS 0 goes straight out and
// QoS 1/2 enter the in-flight window or the queue; offline, QoS 1/2 (and
// QoS 0 when configured) are queued for the next connection.
func (s *session) deliver(d delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if d.qos == 0 && !s.srv.opts.QueueQoS0 {
			return
		}
		s.enqueue(d)
		return
	}
	if len(s.queued) > 0 || (d.qos > 0 && len(s.inflight) >= s.window()) {
		s.enqueue(d) // keep the order: nothing overtakes the queue
		return
	}
	s.sendNow(d, time.Now())
}

func (s *session) enqueue(d delivery) {
	if len(s.queued) >= s.srv.opts.MaxQueued {
		s.dropped++
		s.srv.stats.dropped.Add(1)
		return
	}
	s.storeNewLocked(&d, 0)
	s.queued = append(s.queued, d)
}

// sendNow sends a delivery, putting QoS 1/2 in flight; s.mu held, s.conn
// set. A message that has expired is dropped (MQTT-3.3.2-5), and so is one
// larger than the client's Maximum Packet Size (MQTT-3.1.2-25): it is
// handled as if sent, so it takes no place in the window.
func (s *session) sendNow(d delivery, now time.Time) {
	c := s.conn
	if d.msg.expired(now) {
		s.unstoreLocked(d.seq)
		return
	}
	if d.qos == 0 {
		p := d.publishPacket(0, false, c.v5, now)
		if c.fits(p) {
			c.send(p)
		}
		s.unstoreLocked(d.seq)
		return
	}
	o := &outbound{delivery: d, id: s.allocID()}
	p := d.publishPacket(o.id, false, c.v5, now)
	if !c.fits(p) {
		s.srv.stats.dropped.Add(1)
		s.unstoreLocked(d.seq)
		return
	}
	s.addInflight(o)
	s.storeSentLocked(o)
	c.sendOut(p)
}

// allocID returns a packet identifier not in flight (MQTT-2.3.1-2).
func (s *session) allocID() uint16 {
	if s.srv.opts.Faults.ReusePacketIDs && len(s.inflight) > 0 {
		return s.inflight[0].id
	}
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.inflightIDs[s.nextID]; !used {
			return s.nextID
		}
	}
}

// addInflight appends o to the window.
func (s *session) addInflight(o *outbound) {
	if s.inflightIDs == nil {
		s.inflightIDs = map[uint16]struct{}{}
	}
	s.inflightIDs[o.id] = struct{}{}
	s.inflight = append(s.inflight, o)
}

// removeInflight takes entry i out of the window, keeping the order.
func (s *session) removeInflight(i int) {
	delete(s.inflightIDs, s.inflight[i].id)
	if i == 0 { // acknowledgements mostly come in order: no copying
		s.inflight[0] = nil
		s.inflight = s.inflight[1:]
		return
	}
	s.inflight = slices.Delete(s.inflight, i, i+1)
}

// findInflight is the index of identifier id in the window, or -1.
func (s *session) findInflight(id uint16) int {
	if _, ok := s.inflightIDs[id]; !ok {
		return -1
	}
	for i, o := range s.inflight { // mostly the first: acknowledged in order
		if o.id == id {
			return i
		}
	}
	return -1
}

// pump moves queued messages into the window and sends what fits. On an
// online session with s.mu held.
func (s *session) pump() {
	now := time.Now()
	for len(s.queued) > 0 && s.conn != nil {
		d := s.queued[0]
		if d.qos > 0 && len(s.inflight) >= s.window() {
			return
		}
		s.queued[0] = delivery{}
		s.queued = s.queued[1:]
		s.sendNow(d, now)
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
	now := time.Now()
	resend := s.inflight
	if s.srv.opts.Faults.ReverseResend {
		resend = slices.Clone(resend)
		slices.Reverse(resend)
	}
	for _, o := range resend {
		if o.released && !s.srv.opts.Faults.RepublishReleased {
			s.conn.sendDurable(&packetgen.Pubrel{PacketID: o.id})
		} else {
			s.conn.sendDurable(o.publishPacket(o.id, !s.srv.opts.Faults.NoDupOnResend, s.conn.v5, now))
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
	s.unstoreLocked(s.inflight[i].seq)
	s.removeInflight(i)
	s.pump()
}

// received handles PUBREC: the client has the message; release it with
// PUBREL. A 5.0 PUBREC with an error code ends the exchange there
// (§4.3.3; it frees a place in the window, MQTT-3.3.4-9): the message is
// dropped, not re-sent or passed on (MQTT-4.8.2-6 for a shared
// subscription).
func (s *session) received(id uint16, code packetgen.ReasonCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findInflight(id)
	if code.IsError() {
		if i >= 0 && s.inflight[i].qos == 2 && !s.inflight[i].released {
			s.unstoreLocked(s.inflight[i].seq)
			s.removeInflight(i)
			s.pump()
		}
		return
	}
	if i >= 0 && s.inflight[i].qos == 2 && !s.inflight[i].released {
		s.inflight[i].released = true
		s.storeSentLocked(s.inflight[i])
	}
	if s.conn == nil {
		return
	}
	// PUBREL answers PUBREC even for an identifier we no longer know, so
	// the client can finish its side (MQTT-4.3.3-1 flow); 5.0 says it is
	// not found.
	rel := &packetgen.Pubrel{PacketID: id}
	if i < 0 && s.conn.v5 {
		rel.ReasonCode = packetgen.PacketIdentifierNotFound
	}
	s.conn.sendDurable(rel) // once the release is stored
}

// orphans takes the messages a session will never deliver because it is
// ending: those that came through a shared subscription go to another
// member of its group (§4.8.2): a QoS 1 message in flight (the server
// SHOULD), and those queued, whose delivery never started. A QoS 2 message
// in flight goes to no one else (MQTT-4.8.2-5). s.mu held.
func (s *session) orphans() []delivery {
	var out []delivery
	for _, o := range s.inflight {
		if o.share != nil && (o.qos == 1 || s.srv.opts.Faults.SharedQoS2Elsewhere) {
			d := o.delivery
			d.subIDs = nil
			out = append(out, d)
		}
	}
	for _, d := range s.queued {
		if d.share != nil {
			d.subIDs = nil
			out = append(out, d)
		}
	}
	s.inflight, s.inflightIDs, s.queued = nil, nil, nil
	return out
}
