package broker

import (
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Lock order: Server.mu before session.mu. session.subs is guarded by
// Server.mu (it mirrors the subscription trees), everything else in a
// session by session.mu.

// attach binds a new connection to the session of clientID and answers
// with ack, its Session Present flag set here (§3.1.4, §3.2.2). A live
// connection with the same identifier is taken over: 5.0 tells it so with
// DISCONNECT 0x8E, then it is closed (MQTT-3.1.4-3). Clean start
// discards any old session (3.1.1: MQTT-3.1.2-6; 5.0: MQTT-3.1.2-4);
// otherwise an old one is resumed (5.0: MQTT-3.1.2-5), with session
// present 1 (3.1.1: MQTT-3.2.2-2; 5.0: §3.2.2.1.1), and what was in flight
// is sent again. Resuming stops the session's expiry and a
// will waiting for its delay (MQTT-3.1.3-9); discarding ends the session,
// which publishes such a will. It reports false when the server is
// closing.
func (s *Server) attach(c *conn, clientID string, clean bool, expiry uint32, ack *packetgen.Connack) bool {
	defer s.holdStore()() // a will going out and its record's end commit together
	var ended endedSession
	defer ended.finish(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	sess := s.sessions[clientID]
	if sess != nil {
		sess.mu.Lock()
		if old := sess.conn; old != nil {
			old.disconnect(packetgen.SessionTakenOver, errTakenOver)
			sess.conn = nil
		}
		discard := clean || sess.expiry == 0 || s.opts.Faults.ResumeAsClean
		if !discard {
			sess.stopTimersLocked()
		}
		sess.mu.Unlock()
		if discard {
			ended = s.endSessionLocked(sess)
			sess = nil
		}
	}
	present := sess != nil
	if sess == nil {
		sess = newSession(s, clientID, expiry)
		s.sessions[clientID] = sess
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.conn = c
	sess.expiry = expiry
	sess.rules = c.rules
	sess.user = c.user
	s.storeAttachLocked(sess, c, present)
	c.sess = sess
	ack.SessionPresent = present && c.enc.Version != packetgen.V31
	c.send(ack)
	c.connacked.Store(true)
	if present {
		sess.resume()
	}
	return true
}

// detach unbinds a closed connection from its session and publishes its
// will, w (nil when there is none or the client disconnected normally). A
// session whose expiry interval is 0 ends now (3.1.1's clean session,
// MQTT-3.1.2-6; 5.0: MQTT-3.1.2-23); a finite one ends when the
// interval has passed with no connection (MQTT-4.1.0-2). The will goes out
// at once, or after its delay or when the session ends, whichever is
// first (MQTT-3.1.2-8); not at all when another connection resumed the
// session within the delay (MQTT-3.1.3-9).
func (s *Server) detach(sess *session, c *conn, w *will) {
	defer s.holdStore()()
	var ended endedSession
	defer ended.finish(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.mu.Lock()
	mine := sess.conn == c
	live := s.sessions[sess.id] == sess
	if mine {
		sess.conn = nil
	}
	switch {
	case !live || (s.closed && !sess.durable):
		// Discarded already (a clean start took the identifier), or the
		// server is closing: the session has ended, and no timer may
		// outlive the server. A stored session lives on, its timers
		// stopped (they start again with the next server).
		ended.will = w.now()
	case !mine:
		// Resumed by a newer connection, which came within any delay.
		if w != nil && w.delay == 0 {
			ended.will = w.now()
		}
	case sess.expiry == 0:
		sess.mu.Unlock()
		ended = s.endSessionLocked(sess)
		ended.will = w.now()
		return
	default:
		if w != nil {
			if w.delay == 0 {
				ended.will = w.now()
			} else {
				sess.waitWillLocked(w)
			}
		}
		sess.storeDetachLocked(time.Now())
		if sess.expiry != neverExpires && !s.closed && !s.opts.Faults.SessionsNeverExpire {
			// The timer is read back under the locks, so one stopped too
			// late (a resume raced it) does nothing.
			var t *time.Timer
			t = time.AfterFunc(time.Duration(sess.expiry)*time.Second, func() { s.expire(sess, &t) })
			sess.expireAt = t
		}
	}
	sess.mu.Unlock()
}

// expire ends an offline session whose expiry interval has passed.
func (s *Server) expire(sess *session, t **time.Timer) {
	defer s.holdStore()()
	var ended endedSession
	defer ended.finish(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.mu.Lock()
	gone := s.sessions[sess.id] != sess || sess.conn != nil || sess.expireAt != *t
	sess.mu.Unlock()
	if !gone {
		ended = s.endSessionLocked(sess)
	}
}

// endedSession is what an ending session leaves to do once the locks are
// released: a will to publish and messages for other members of shared
// subscriptions.
type endedSession struct {
	will    *message
	orphans []delivery
}

func (e *endedSession) finish(s *Server) {
	if e.will != nil {
		s.publish(e.will)
	}
	s.redeliver(e.orphans)
}

// endSessionLocked forgets sess: its subscriptions, its timers and its
// messages. A will waiting for its delay is returned to be published now
// (the session's end comes first), and so are the messages it held from
// shared subscriptions. s.mu held, sess.mu not.
func (s *Server) endSessionLocked(sess *session) endedSession {
	s.unstoreSessionLocked(sess)
	s.dropSubsLocked(sess)
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var e endedSession
	if sess.will != nil {
		e.will = sess.will.w.now()
	}
	sess.stopTimersLocked()
	e.orphans = sess.orphans()
	return e
}

// dropSubsLocked removes all of sess's subscriptions; s.mu held.
func (s *Server) dropSubsLocked(sess *session) {
	for f, sub := range sess.subs {
		s.removeSubLocked(sess, f, sub)
	}
	sess.subs = nil
}

// removeSubLocked takes one subscription out of the trees; s.mu held.
func (s *Server) removeSubLocked(sess *session, filter string, sub *subscription) {
	if sub.share != nil {
		s.leaveShareLocked(sub.share, sess)
		return
	}
	s.subs.Remove(filter, sess)
}

// pendingWill is a 5.0 will waiting for its Will Delay Interval.
type pendingWill struct {
	w     *will
	timer *time.Timer
}

// waitWillLocked publishes w after its delay, or earlier if the session
// ends first. Server.mu and sess.mu held.
func (sess *session) waitWillLocked(w *will) {
	delay := w.delay
	if sess.expiry < delay {
		delay = sess.expiry // the session ends first: publish then
	}
	sess.armWillLocked(w, time.Now().Add(time.Duration(delay)*time.Second))
}

// armWillLocked publishes w at a time, and stores it to be published then
// should the broker stop first. A closing server arms no timer. Server.mu
// and sess.mu held.
func (sess *session) armWillLocked(w *will, at time.Time) {
	pw := &pendingWill{w: w}
	if st := sess.stored(); st != nil {
		st.PutWill(storedWill(sess.id, w, at))
	}
	if sess.srv.closed {
		sess.will = pw
		return
	}
	pw.timer = time.AfterFunc(time.Until(at), func() {
		defer sess.srv.holdStore()()
		sess.mu.Lock()
		mine := sess.will == pw
		if mine {
			sess.will = nil
			if st := sess.stored(); st != nil {
				st.DeleteWill(sess.id)
			}
		}
		sess.mu.Unlock()
		if mine {
			sess.srv.publish(w.now())
		}
	})
	sess.will = pw
}

// stopTimersLocked stops the session's expiry and forgets a will waiting
// for its delay; sess.mu held.
func (sess *session) stopTimersLocked() {
	if sess.expireAt != nil {
		sess.expireAt.Stop()
		sess.expireAt = nil
	}
	if sess.will != nil {
		if sess.will.timer != nil {
			sess.will.timer.Stop()
		}
		sess.will = nil
	}
}
