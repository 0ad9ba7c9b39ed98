package broker

import "github.com/mqttbench/mqttbench/packetgen"

// Lock order: Server.mu before session.mu. session.subs is guarded by
// Server.mu (it mirrors the subscription tree), everything else in a
// session by session.mu.

// attach binds a new connection to the session of clientID and answers
// CONNACK (§3.1.4, §3.2.2). A live connection with the same identifier is
// closed (MQTT-3.1.4-2). Clean session 1 discards any old session
// (MQTT-3.1.2-6); clean session 0 resumes one, with session present 1
// (MQTT-3.2.2-2), and re-sends what was in flight. It reports false when
// the server is closing.
func (s *Server) attach(c *conn, clientID string, clean bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	sess := s.sessions[clientID]
	if sess != nil {
		sess.mu.Lock()
		if old := sess.conn; old != nil {
			old.close(errTakenOver)
			sess.conn = nil
		}
		discard := clean || sess.clean || s.opts.Faults.ResumeAsClean
		sess.mu.Unlock()
		if discard {
			s.dropSubsLocked(sess)
			delete(s.sessions, clientID)
			sess = nil
		}
	}
	present := sess != nil
	if sess == nil {
		sess = newSession(s, clientID, clean)
		s.sessions[clientID] = sess
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.conn = c
	c.sess = sess
	c.send(&packetgen.Connack{SessionPresent: present && c.enc.Version != packetgen.V31})
	if present {
		sess.resume()
	}
	return true
}

// detach unbinds a closed connection from its session; a clean session
// ends with its connection (MQTT-3.1.2-6).
func (s *Server) detach(sess *session, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.mu.Lock()
	mine := sess.conn == c
	if mine {
		sess.conn = nil
	}
	clean := sess.clean
	sess.mu.Unlock()
	if mine && clean && s.sessions[sess.id] == sess {
		s.dropSubsLocked(sess)
		delete(s.sessions, sess.id)
	}
}

// dropSubsLocked removes all of sess's subscriptions; s.mu held.
func (s *Server) dropSubsLocked(sess *session) {
	for f := range sess.subs {
		s.subs.Remove(f, sess)
	}
	sess.subs = nil
}

// subscribe adds or replaces subscriptions (MQTT-3.8.4-3: a repeated
// filter replaces the old one).
func (s *Server) subscribe(sess *session, subs []packetgen.Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.subs == nil && len(subs) > 0 {
		sess.subs = map[string]packetgen.QoS{}
	}
	for _, sub := range subs {
		sess.subs[sub.Filter] = sub.QoS
		s.subs.Add(sub.Filter, sess)
	}
}

// unsubscribe removes subscriptions; unknown filters are ignored.
func (s *Server) unsubscribe(sess *session, filters []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range filters {
		if _, ok := sess.subs[f]; ok {
			delete(sess.subs, f)
			s.subs.Remove(f, sess)
		}
	}
}

// grantedLocked is the QoS sess holds for filter; Server.mu held.
func (sess *session) grantedLocked(filter string) packetgen.QoS {
	return sess.subs[filter]
}
