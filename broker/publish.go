package broker

import (
	"time"
	"unicode/utf8"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/packetgen"
)

// handlePublish routes a client's PUBLISH and acknowledges it (§4.3). For
// 5.0 it first resolves the topic alias and applies what CONNACK promised:
// no retain where retain is not available, no QoS above the maximum, no
// more unreleased QoS 2 messages than the Receive Maximum.
func (c *conn) handlePublish(p *packetgen.Publish) error {
	c.srv.opts.Faults.panicOn(p.Topic)
	if st := c.srv.store; st != nil {
		st.Throttle() // the store is behind: let TCP slow the publisher
	}
	c.srv.stats.Received.Add(1)
	var props *packetgen.Properties
	if c.v5 {
		if err := c.resolveAlias(p); err != nil {
			return err
		}
		if err := c.srv.checkPublish5(p); err != nil {
			return err
		}
		props = &p.Properties
	}
	code := packetgen.Success
	if c.v5 && c.srv.opts.ValidatePayloadFormat && p.Properties.PayloadFormatIndicator == 1 && !utf8.Valid(p.Payload) {
		// §3.3.2.3.2: the receiver may answer 0x99 and drop the message.
		if p.QoS == 0 {
			return codeErrorf(packetgen.PayloadFormatInvalid, "the payload is marked UTF-8 and is not")
		}
		code = packetgen.PayloadFormatInvalid
	}
	if c.rules != nil && !c.rules.Allowed(string(p.Topic), acl.Write) {
		// Not delivered, not retained; only 5.0 can say so (0x87).
		code = packetgen.NotAuthorized
		if p.QoS == 0 {
			return nil
		}
	}
	m := newMessage(p.Topic, p.Payload, p.QoS, p.Retain, c.clientID(), props, time.Now(), c.srv.opts.Faults.NeverExpire)
	if m.props != nil && c.srv.opts.Faults.DropUserProperties {
		m.props.UserProperties = nil
	}
	switch p.QoS {
	case 0:
		c.srv.publish(m)
	case 1:
		if code == packetgen.Success {
			code = c.route(m)
		}
		c.sendDurable(&packetgen.Puback{PacketID: p.PacketID, ReasonCode: c.code(code)}) // MQTT-4.3.2-2 (3.1.1) / MQTT-4.3.2-4 (5.0)
	case 2:
		if st := c.srv.store; st != nil {
			// The identifier and the deliveries it stands for go into one
			// batch: apart, a crash could keep the identifier and lose the
			// deliveries (the re-sent message would not be routed again),
			// or the other way round (it would be delivered twice).
			st.Hold()
			defer st.Release()
		}
		s := c.sess
		s.mu.Lock()
		_, seen := s.inboundQoS2[p.PacketID]
		over := !seen && len(s.inboundQoS2) >= c.srv.opts.ReceiveMaximum
		if !over && !code.IsError() {
			if s.inboundQoS2 == nil {
				s.inboundQoS2 = map[uint16]struct{}{}
			}
			s.inboundQoS2[p.PacketID] = struct{}{}
			if st := s.stored(); st != nil && !seen {
				st.PutInbound(s.id, p.PacketID)
			}
		}
		s.mu.Unlock()
		if over && c.v5 {
			// MQTT-3.3.4-8: more than Receive Maximum unanswered.
			return codeErrorf(packetgen.ReceiveMaximumExceeded, "more than %d QoS 2 messages are waiting for PUBREL", c.srv.opts.ReceiveMaximum)
		}
		if code == packetgen.Success && (!seen || c.srv.opts.Faults.QoS2Twice) {
			// Delivered once; a repeat before PUBREL only gets PUBREC again
			// (MQTT-4.3.3-10).
			code = c.route(m)
		}
		c.sendDurable(&packetgen.Pubrec{PacketID: p.PacketID, ReasonCode: c.code(code)}) // MQTT-4.3.3-2 (3.1.1) / MQTT-4.3.3-6 (5.0)
	}
	return nil
}

// route publishes m and says, for a 5.0 acknowledgement, whether anyone
// got it: 0x10 when no subscription matched.
func (c *conn) route(m *message) packetgen.ReasonCode {
	if c.srv.publish(m) == 0 && c.v5 {
		return packetgen.NoMatchingSubscribers
	}
	return packetgen.Success
}

// code is the reason code an acknowledgement carries: 3.1.1 has none.
func (c *conn) code(r packetgen.ReasonCode) packetgen.ReasonCode {
	if !c.v5 {
		return 0
	}
	return r
}

// resolveAlias applies a 5.0 PUBLISH's Topic Alias (§3.3.2.3.4): with a
// topic name it sets the alias, without one it stands for the name it was
// set to. An alias above the maximum this broker advertised (the client's
// MUST NOT, MQTT-3.3.2-9) gets DISCONNECT 0x94; one never set, with no
// topic name, is a protocol error (§3.3.2.3.4). Aliases up to the maximum
// are all accepted (MQTT-3.3.2-12) and live as long as the connection
// (MQTT-3.3.2-7).
func (c *conn) resolveAlias(p *packetgen.Publish) error {
	if !p.Properties.Has(packetgen.PropTopicAlias) {
		return nil
	}
	a := p.Properties.TopicAlias
	if int(a) > c.srv.opts.TopicAliasMaximum {
		return codeErrorf(packetgen.TopicAliasInvalid, "MQTT-3.3.2-9: topic alias %d is above the maximum %d", a, c.srv.opts.TopicAliasMaximum)
	}
	if len(p.Topic) > 0 {
		if c.inAliases == nil {
			c.inAliases = map[uint16][]byte{}
		}
		c.inAliases[a] = p.Topic
		return nil
	}
	name, ok := c.inAliases[a]
	if !ok {
		return codeErrorf(packetgen.ProtocolError, "topic alias %d was never set and the topic name is empty", a)
	}
	p.Topic = name
	return nil
}

// checkPublish5 refuses what CONNACK said the broker does not take (the
// client's MUST NOTs, MQTT-3.2.2-14 and MQTT-3.2.2-11): a retained message
// where retain is not available (DISCONNECT 0x9A, §3.3.1.3), a QoS above
// the maximum (0x9B, §3.2.2.3.4).
func (s *Server) checkPublish5(p *packetgen.Publish) error {
	if p.Retain && s.opts.DisableRetain {
		return codeErrorf(packetgen.RetainNotSupported, "RETAIN is set; this server advertised Retain Available 0")
	}
	if p.QoS > s.opts.MaxQoS {
		return codeErrorf(packetgen.QoSNotSupported, "QoS %d is above this server's Maximum QoS %d", p.QoS, s.opts.MaxQoS)
	}
	return nil
}
