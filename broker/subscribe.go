package broker

import (
	"strings"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// newSub is a subscription SUBSCRIBE asks for and the broker grants.
type newSub struct {
	filter string // as the client wrote it, "$share/..." included
	inner  string // a shared subscription's filter after the ShareName
	sub    *subscription
	rh     byte // Retain Handling (§3.8.3.1)
}

// handleSubscribe answers SUBSCRIBE with one code per filter
// (MQTT-3.8.4-1, MQTT-3.9.3-1): the QoS granted, min(requested, MaxQoS),
// or a refusal: 0x80 in 3.1.1 (3.1 has no refusal code and closes), and
// in 5.0 0x8F for an invalid filter, 0x9E for a shared subscription and
// 0xA2 for a wildcard where the broker offers none. Then the retained
// messages that match go out (3.1.1: MQTT-3.3.1-6), as Retain Handling
// says (MQTT-3.3.1-9, -10, -11; on a replaced subscription too,
// MQTT-3.8.4-4), never for a shared subscription (§3.8.3.1). A
// Subscription Identifier where the broker offers none gets DISCONNECT
// 0xA1 (§3.2.2.3.12).
func (c *conn) handleSubscribe(p *packetgen.Subscribe) error {
	o := &c.srv.opts
	var id uint32
	if c.v5 && len(p.Properties.SubscriptionIdentifiers) > 0 {
		if o.DisableSubscriptionIDs {
			return codeErrorf(packetgen.SubscriptionIdentifiersNotSupported, "SUBSCRIBE carries a Subscription Identifier; this server advertised none")
		}
		id = p.Properties.SubscriptionIdentifiers[0]
	}
	codes := make([]packetgen.ReasonCode, len(p.Subscriptions))
	granted := make([]newSub, 0, len(p.Subscriptions))
	for i, sub := range p.Subscriptions {
		ns := newSub{filter: sub.Filter, inner: sub.Filter, rh: sub.RetainHandling}
		if o.Faults.IgnoreRetainHandling {
			ns.rh = 0
		}
		shared := c.v5 && topic.IsShared(sub.Filter)
		var err error
		if shared {
			_, ns.inner, err = topic.ParseShared(sub.Filter)
		} else {
			err = topic.ValidateFilter(sub.Filter, c.v5)
		}
		switch {
		case err != nil && !o.Faults.GrantInvalidFilters:
			codes[i] = packetgen.SubackFailure
			if c.v5 {
				codes[i] = packetgen.TopicFilterInvalid
			}
			continue
		case shared && o.DisableShared:
			codes[i] = packetgen.SharedSubscriptionsNotSupported
			continue
		case c.v5 && o.DisableWildcard && strings.ContainsAny(ns.inner, "+#"):
			codes[i] = packetgen.WildcardSubscriptionsNotSupported
			continue
		case c.rules != nil && !c.rules.SubscribeAllowed(sub.Filter):
			codes[i] = packetgen.SubackFailure
			if c.v5 {
				codes[i] = packetgen.NotAuthorized
			}
			continue
		}
		q := min(sub.QoS, o.MaxQoS)
		codes[i] = packetgen.ReasonCode(q)
		ns.sub = &subscription{qos: q, noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished, id: id}
		if !c.v5 {
			ns.sub.noLocal, ns.sub.retainAsPublished, ns.rh = false, false, 0
		}
		granted = append(granted, ns)
	}
	existed := c.srv.subscribe(c.sess, granted)
	c.sendDurable(&packetgen.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	for i, ns := range granted {
		if ns.sub.share != nil || ns.rh == 2 || (ns.rh == 1 && existed[i]) {
			continue
		}
		for _, m := range c.srv.retainedFor(ns.filter) {
			if c.rules != nil && !c.rules.Allowed(string(m.topic), acl.Read) {
				continue // a denied retained message is not sent
			}
			d := delivery{msg: m, qos: min(m.qos, ns.sub.qos), retain: true}
			if id != 0 {
				d.subIDs = []uint32{id}
			}
			c.sess.deliver(d)
		}
	}
	return nil
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK
// (MQTT-3.10.4-4, -5); 5.0 says per filter whether there was one (0x00 or
// 0x11) or the filter is invalid (0x8F).
func (c *conn) handleUnsubscribe(p *packetgen.Unsubscribe) {
	var removed []bool
	if !c.srv.opts.Faults.IgnoreUnsubscribe {
		removed = c.srv.unsubscribe(c.sess, p.Filters)
	}
	ack := &packetgen.Unsuback{PacketID: p.PacketID}
	if c.v5 {
		ack.ReasonCodes = make([]packetgen.ReasonCode, len(p.Filters))
		for i, f := range p.Filters {
			switch {
			case removed != nil && removed[i]:
			case validFilter(f):
				ack.ReasonCodes[i] = packetgen.NoSubscriptionExisted
				if removed == nil {
					ack.ReasonCodes[i] = packetgen.Success // the fault pretends
				}
			default:
				ack.ReasonCodes[i] = packetgen.TopicFilterInvalid
			}
		}
	}
	c.sendDurable(ack)
}

// validFilter reports whether f is a valid 5.0 topic filter, shared or not.
func validFilter(f string) bool {
	if topic.IsShared(f) {
		_, _, err := topic.ParseShared(f)
		return err == nil
	}
	return topic.ValidateFilter(f, true) == nil
}

// subscribe adds or replaces subscriptions (MQTT-3.8.4-3: a repeated
// filter replaces the old one, options and all) and reports for each
// whether it existed before.
func (s *Server) subscribe(sess *session, subs []newSub) []bool {
	existed := make([]bool, len(subs))
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.subs == nil && len(subs) > 0 {
		sess.subs = map[string]*subscription{}
	}
	for i, ns := range subs {
		old := sess.subs[ns.filter]
		existed[i] = old != nil
		if ns.inner != ns.filter {
			ns.sub.share = s.joinShareLocked(ns.filter, ns.inner, sess)
		} else {
			s.subs.Add(ns.filter, sess)
		}
		sess.subs[ns.filter] = ns.sub
		sess.storeSubLocked(ns.filter, ns.sub)
	}
	return existed
}

// unsubscribe removes subscriptions and reports for each filter whether
// there was one.
func (s *Server) unsubscribe(sess *session, filters []string) []bool {
	removed := make([]bool, len(filters))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range filters {
		if sub, ok := sess.subs[f]; ok {
			delete(sess.subs, f)
			s.removeSubLocked(sess, f, sub)
			sess.unstoreSubLocked(f)
			removed[i] = true
		}
	}
	return removed
}
