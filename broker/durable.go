package broker

import (
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/store"
)

// With Options.Store the broker writes what it must not forget to the
// store as it changes (package store batches and commits it), and an
// acknowledgement that promises something waits for the batch that makes
// it true: PUBACK and PUBREC for the messages routed to persistent
// sessions or retained, PUBCOMP for the released identifier, PUBREL for
// the released delivery, SUBACK and UNSUBACK. So does a QoS 2 PUBLISH to a
// subscriber: were it sent before its delivery and the publisher's
// identifier were durable, a crash would let the publisher send it again
// and the subscriber get it twice. The reader goes on meanwhile; a
// connection's packets leave in the order they were queued (conn.held).
//
// Sessions whose expiry interval is 0 end with their connection, a crash
// included, so nothing of theirs is stored, their wills neither (a crash
// publishes none of them): a broker serving only such sessions writes
// nothing but retained messages. A message going to several persistent
// sessions is stored once for each.

// heldPacket is a packet waiting in conn.held for batch; 0: for the
// packets before it only.
type heldPacket struct {
	p     packetgen.Packet
	batch uint64
}

// sendDurable sends p once every change stored so far is durable, and
// after everything queued before it. Without a store it is send.
func (c *conn) sendDurable(p packetgen.Packet) {
	st := c.srv.store
	if st == nil {
		c.send(p)
		return
	}
	b := st.Mark()
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.held) == 0 && st.Durable(b) {
		c.sendLocked(p)
		return
	}
	if c.closed || c.draining {
		return
	}
	c.held = append(c.held, heldPacket{p, b})
	if len(c.held) == 1 {
		c.waitHeldLocked()
	}
}

// waitHeldLocked moves what is durable from held to the queue and asks
// the store to call back for the rest; qmu held.
func (c *conn) waitHeldLocked() {
	st := c.srv.store
	for len(c.held) > 0 {
		if st.Wait(c.held[0].batch, c.releaseHeld) {
			return
		}
		i := 0
		for i < len(c.held) && st.Durable(c.held[i].batch) {
			c.queue = append(c.queue, c.held[i].p)
			i++
		}
		clear(c.held[:i])
		c.held = c.held[i:]
	}
	c.held = nil
	if len(c.queue) > 0 && !c.writing && !c.handling {
		c.writing = true
		c.writers.Add(1)
		go c.writer(nil)
	}
}

// releaseHeld is the store's call back: a batch is durable.
func (c *conn) releaseHeld() {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed || c.draining {
		c.held = nil
		return
	}
	c.waitHeldLocked()
}

// holdStore keeps the store's open batch open until the function it
// returns is called (store.Hold): a will published and the end of its
// record, or of its session, commit together, so a crash neither loses
// nor repeats it. Called with no lock held; without a store it does
// nothing.
func (s *Server) holdStore() func() {
	if s.store == nil {
		return noRelease
	}
	s.store.Hold()
	return s.store.Release
}

func noRelease() {}

// storedMessage is m as the store keeps it.
func storedMessage(m *message) store.Message {
	return store.Message{Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain, Origin: m.origin, Props: m.props, Expires: m.expires}
}

func restoredMessage(m *store.Message) *message {
	return &message{topic: m.Topic, payload: m.Payload, qos: m.QoS, retain: m.Retain, origin: m.Origin, props: m.Props, expires: m.Expires}
}

// stored is the store when sess's state is kept there, else nil. The
// durable flag is written with both Server.mu and sess.mu held, so either
// lock reads it.
func (sess *session) stored() *store.Store {
	if !sess.durable {
		return nil
	}
	return sess.srv.store
}

// storeNewLocked stores a delivery entering the session; sess.mu held.
func (sess *session) storeNewLocked(d *delivery, id uint16) {
	if st := sess.stored(); st != nil {
		d.seq = st.NextSeq()
		st.AddDelivery(sess.storedDelivery(d, id, false))
	}
}

// storeSentLocked records the packet identifier a delivery went out with,
// or that it was released (PUBREC answered); sess.mu held.
func (sess *session) storeSentLocked(o *outbound) {
	if o.seq == 0 {
		sess.storeNewLocked(&o.delivery, o.id)
		return
	}
	if st := sess.stored(); st != nil {
		st.UpdateDelivery(sess.storedDelivery(&o.delivery, o.id, o.released))
	}
}

// unstoreLocked forgets a delivery: acknowledged or dropped.
func (sess *session) unstoreLocked(seq uint64) {
	if st := sess.stored(); st != nil && seq != 0 {
		st.DeleteDelivery(seq)
	}
}

func (sess *session) storedDelivery(d *delivery, id uint16, released bool) *store.Delivery {
	r := &store.Delivery{Seq: d.seq, ClientID: sess.id, Msg: storedMessage(d.msg), QoS: d.qos, Retain: d.retain,
		SubIDs: d.subIDs, PacketID: id, Released: released}
	if d.share != nil {
		r.Share = d.share.key
	}
	return r
}

// sendOut sends a QoS 1 or 2 PUBLISH. With a store a QoS 2 one waits for
// its delivery to be durable (see the top of this file).
func (c *conn) sendOut(p *packetgen.Publish) {
	if p.QoS == 2 {
		c.sendDurable(p)
		return
	}
	c.send(p)
}

// storeSessionLocked writes the session's record: deadline is when an
// offline session expires, zero while it is connected. sess.mu held.
func (sess *session) storeSessionLocked(deadline time.Time) {
	if st := sess.stored(); st != nil {
		if sess.expiry == neverExpires {
			deadline = time.Time{}
		}
		st.PutSession(store.Session{ClientID: sess.id, Expiry: sess.expiry, Deadline: deadline, User: sess.user})
	}
}

// storeAttachLocked writes a session a connection has just taken: a new
// one is stored when its expiry interval is not 0, and the connection's
// will goes with it, to be published should the broker stop without
// closing the connection. Both locks held.
func (s *Server) storeAttachLocked(sess *session, c *conn, present bool) {
	if s.store == nil {
		return
	}
	if !present {
		sess.durable = sess.expiry > 0
	}
	st := sess.stored()
	if st == nil {
		return
	}
	sess.storeSessionLocked(time.Time{})
	if c.will != nil {
		st.PutWill(storedWill(sess.id, c.will, time.Time{}))
	} else if present {
		st.DeleteWill(sess.id)
	}
}

// storeDetachLocked writes a session whose connection has closed: when it
// expires and its will, waiting for its delay or gone. sess.mu held.
func (sess *session) storeDetachLocked(now time.Time) {
	st := sess.stored()
	if st == nil {
		return
	}
	sess.storeSessionLocked(now.Add(time.Duration(sess.expiry) * time.Second))
	if sess.will == nil {
		st.DeleteWill(sess.id)
	}
}

func storedWill(id string, w *will, deadline time.Time) *store.Will {
	return &store.Will{ClientID: id, Msg: storedMessage(&w.msg), Expiry: w.expiry, Delay: w.delay, Deadline: deadline}
}

// unstoreSessionLocked deletes everything stored of a session that ends;
// Server.mu held, sess.mu not. Its deliveries lose their sequence
// numbers: those that go to another member of a shared subscription are
// stored anew there.
func (s *Server) unstoreSessionLocked(sess *session) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	st := sess.stored()
	if st == nil {
		return
	}
	for f := range sess.subs {
		st.DeleteSubscription(sess.id, f)
	}
	for id := range sess.inboundQoS2 {
		st.DeleteInbound(sess.id, id)
	}
	for _, o := range sess.inflight {
		sess.unstoreLocked(o.seq)
		o.seq = 0
	}
	for i := range sess.queued {
		sess.unstoreLocked(sess.queued[i].seq)
		sess.queued[i].seq = 0
	}
	st.DeleteWill(sess.id)
	st.DeleteSession(sess.id)
	sess.durable = false
}

// storeSubLocked writes a subscription of a stored session; Server.mu
// held.
func (sess *session) storeSubLocked(filter string, sub *subscription) {
	if st := sess.stored(); st != nil {
		st.PutSubscription(store.Subscription{ClientID: sess.id, Filter: filter, Shared: sub.share != nil, QoS: sub.qos,
			NoLocal: sub.noLocal, RetainAsPublished: sub.retainAsPublished, ID: sub.id})
	}
}

func (sess *session) unstoreSubLocked(filter string) {
	if st := sess.stored(); st != nil {
		st.DeleteSubscription(sess.id, filter)
	}
}

// storeRetainedLocked writes a change of the retained messages; Server.mu
// held, so changes to one topic reach the store in order.
func (s *Server) storeRetainedLocked(m *message) {
	switch {
	case s.store == nil:
	case len(m.payload) == 0:
		s.store.DeleteRetained(m.topic)
	default:
		rm := storedMessage(m)
		s.store.PutRetained(&rm)
	}
}

// restore rebuilds what the store held at start: sessions with their
// subscriptions, messages and identifiers, retained messages and wills.
// Time went on while the broker was down: a session whose expiry has
// passed ends now, publishing its will, and a will whose delay has passed
// is published now. A session or will whose client was connected when the
// broker stopped counts as disconnected at this start. Records of a
// session the store no longer holds are deleted.
func (s *Server) restore(st *store.State) {
	if st == nil {
		return
	}
	defer s.holdStore()()
	now := time.Now()
	var wills []*message
	var ended []endedSession
	defer func() {
		for _, m := range wills {
			s.publish(m)
		}
		for i := range ended {
			ended[i].finish(s)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	deadlines := map[*session]time.Time{}
	for _, r := range st.Sessions {
		sess := newSession(s, r.ClientID, r.Expiry)
		sess.durable, sess.user = true, r.User
		if s.opts.ACL != nil {
			sess.rules = s.opts.ACL.For(r.User, r.ClientID)
		}
		s.sessions[r.ClientID] = sess
		deadlines[sess] = r.Deadline
	}
	for _, r := range st.Subscriptions {
		sess := s.sessions[r.ClientID]
		if sess == nil {
			s.store.DeleteSubscription(r.ClientID, r.Filter)
			continue
		}
		sub := &subscription{qos: r.QoS, noLocal: r.NoLocal, retainAsPublished: r.RetainAsPublished, id: r.ID}
		inner := ""
		if r.Shared {
			_, inner, _ = topic.ParseShared(r.Filter)
		}
		if inner != "" {
			sub.share = s.joinShareLocked(r.Filter, inner, sess)
		} else {
			s.subs.Add(r.Filter, sess)
		}
		if sess.subs == nil {
			sess.subs = map[string]*subscription{}
		}
		sess.subs[r.Filter] = sub
	}
	for id, pids := range st.Inbound {
		sess := s.sessions[id]
		for _, pid := range pids {
			if sess == nil {
				s.store.DeleteInbound(id, pid)
				continue
			}
			if sess.inboundQoS2 == nil {
				sess.inboundQoS2 = map[uint16]struct{}{}
			}
			sess.inboundQoS2[pid] = struct{}{}
		}
	}
	for i := range st.Deliveries {
		r := &st.Deliveries[i]
		sess := s.sessions[r.ClientID]
		if sess == nil {
			s.store.DeleteDelivery(r.Seq)
			continue
		}
		d := delivery{msg: restoredMessage(&r.Msg), qos: r.QoS, retain: r.Retain, subIDs: r.SubIDs, seq: r.Seq}
		if g := s.groups[r.Share]; r.Share != "" && g != nil {
			d.share = g
		}
		if r.PacketID != 0 {
			sess.addInflight(&outbound{delivery: d, id: r.PacketID, released: r.Released})
		} else {
			sess.queued = append(sess.queued, d)
		}
	}
	for i := range st.Retained {
		m := restoredMessage(&st.Retained[i])
		s.retained[string(m.topic)] = m
	}
	for i := range st.Wills {
		r := &st.Wills[i]
		w := &will{msg: *restoredMessage(&r.Msg), expiry: r.Expiry, delay: r.Delay}
		sess := s.sessions[r.ClientID]
		at := r.Deadline
		if at.IsZero() && sess != nil {
			at = now.Add(time.Duration(min(w.delay, sess.expiry)) * time.Second)
		}
		if sess == nil || !at.After(now) {
			wills = append(wills, w.now())
			s.store.DeleteWill(r.ClientID)
			continue
		}
		sess.mu.Lock()
		sess.armWillLocked(w, at)
		sess.mu.Unlock()
	}
	s.log.Info("restored from the store", "path", s.store.Path(), "sessions", len(st.Sessions),
		"subscriptions", len(st.Subscriptions), "messages", len(st.Deliveries), "retained", len(st.Retained), "wills", len(st.Wills))
	for sess, at := range deadlines {
		sess.mu.Lock()
		if sess.expiry != neverExpires && at.IsZero() {
			at = now.Add(time.Duration(sess.expiry) * time.Second)
			sess.storeSessionLocked(at)
		}
		live := sess.expiry == neverExpires || at.After(now)
		if live && sess.expiry != neverExpires {
			var t *time.Timer
			t = time.AfterFunc(at.Sub(now), func() { s.expire(sess, &t) })
			sess.expireAt = t
		}
		sess.mu.Unlock()
		if !live {
			ended = append(ended, s.endSessionLocked(sess))
		}
	}
}
