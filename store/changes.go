package store

// The changes the broker makes. Each goes into the open batch and returns
// at once; Mark and Wait tell when it is durable. Values are encoded here,
// in the caller's goroutine (the committer, one goroutine for the whole
// broker, only writes them), so the caller may reuse what it passed.

// PutSession creates or updates a session.
func (s *Store) PutSession(sess Session) {
	s.put(iSessions, []byte(sess.ClientID), encodeSession(&sess), false)
}

// DeleteSession forgets a session's own record; its subscriptions,
// deliveries, inbound identifiers and will are deleted one by one.
func (s *Store) DeleteSession(clientID string) {
	s.put(iSessions, []byte(clientID), nil, false)
}

// PutSubscription adds or replaces a subscription.
func (s *Store) PutSubscription(sub Subscription) {
	s.put(iSubs, subKey(sub.ClientID, sub.Filter), encodeSub(&sub), false)
}

// DeleteSubscription removes one.
func (s *Store) DeleteSubscription(clientID, filter string) {
	s.put(iSubs, subKey(clientID, filter), nil, false)
}

// PutInbound records the identifier of a QoS 2 message received from
// clientID and not yet released by PUBREL.
func (s *Store) PutInbound(clientID string, packetID uint16) {
	s.put(iInbound, inboundKey(clientID, packetID), newWriter(0).done(), false)
}

// DeleteInbound releases it.
func (s *Store) DeleteInbound(clientID string, packetID uint16) {
	s.put(iInbound, inboundKey(clientID, packetID), nil, false)
}

// AddDelivery stores a new delivery, its Seq from NextSeq.
func (s *Store) AddDelivery(d *Delivery) {
	s.changeDelivery(d.Seq, op{val: encodeDelivery(d), fresh: true})
}

// UpdateDelivery rewrites a stored delivery: sent (PacketID set) or
// released.
func (s *Store) UpdateDelivery(d *Delivery) {
	s.changeDelivery(d.Seq, op{val: encodeDelivery(d)})
}

// DeleteDelivery removes a delivery: acknowledged, dropped or its session
// ended.
func (s *Store) DeleteDelivery(seq uint64) {
	s.changeDelivery(seq, op{})
}

// PutRetained replaces the retained message of m's topic.
func (s *Store) PutRetained(m *Message) {
	s.put(iRetained, m.Topic, encodeMessage(m), false)
}

// DeleteRetained removes the retained message of topic.
func (s *Store) DeleteRetained(topic []byte) {
	s.put(iRetained, topic, nil, false)
}

// PutWill stores a client's will.
func (s *Store) PutWill(w *Will) {
	s.put(iWills, []byte(w.ClientID), encodeWill(w), false)
}

// DeleteWill removes it: published, discarded or replaced.
func (s *Store) DeleteWill(clientID string) {
	s.put(iWills, []byte(clientID), nil, false)
}
