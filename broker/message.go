package broker

import (
	"math"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// message is an application message on its way through the broker. It is
// never changed after it is made, so sessions share it.
type message struct {
	topic   []byte
	payload []byte
	qos     packetgen.QoS
	retain  bool
	// origin is the client identifier of the publisher, for No Local
	// (MQTT-3.8.3-3); "" for messages of no client.
	origin string
	// props are the 5.0 properties forwarded unaltered to 5.0 subscribers
	// (MQTT-3.3.2-4, MQTT-3.3.2-15, MQTT-3.3.2-17, MQTT-3.3.2-18 and the
	// user properties' order, MQTT-3.3.2-19): Payload Format Indicator,
	// Content Type, Response Topic, Correlation Data, User Properties. nil
	// for a 3.1.1 publisher's message.
	props *packetgen.Properties
	// expires is when the Message Expiry Interval runs out; zero: never.
	expires time.Time
}

// newMessage makes the message a 5.0 (or older) PUBLISH or will carries,
// keeping only the properties that travel with it: a Topic Alias or a
// Subscription Identifier belongs to one connection.
func newMessage(topic, payload []byte, qos packetgen.QoS, retain bool, origin string, in *packetgen.Properties, now time.Time, neverExpire bool) *message {
	m := &message{topic: topic, payload: payload, qos: qos, retain: retain, origin: origin}
	if in == nil {
		return m
	}
	if in.Has(packetgen.PropMessageExpiryInterval) && !neverExpire {
		m.expires = now.Add(time.Duration(in.MessageExpiryInterval) * time.Second)
	}
	const forwarded = packetgen.PropSet(1<<packetgen.PropPayloadFormatIndicator | 1<<packetgen.PropContentType |
		1<<packetgen.PropResponseTopic | 1<<packetgen.PropCorrelationData)
	if in.Present&forwarded == 0 && len(in.UserProperties) == 0 {
		return m
	}
	m.props = &packetgen.Properties{
		Present:                in.Present & forwarded,
		PayloadFormatIndicator: in.PayloadFormatIndicator,
		ContentType:            in.ContentType,
		ResponseTopic:          in.ResponseTopic,
		CorrelationData:        in.CorrelationData,
		UserProperties:         in.UserProperties,
	}
	return m
}

// expired reports whether the message's expiry interval has passed: such
// a message is not sent to anyone it has not started to reach
// (MQTT-3.3.2-5).
func (m *message) expired(now time.Time) bool {
	return !m.expires.IsZero() && !now.Before(m.expires)
}

// outbound is a QoS 1 or 2 message sent to a client and not yet
// completely acknowledged.
type outbound struct {
	delivery
	id       uint16
	released bool // PUBREC received and PUBREL sent: waiting for PUBCOMP
}

// delivery is one message on its way to one session: at which QoS, with
// which RETAIN flag and, for 5.0, which subscription identifiers.
type delivery struct {
	msg    *message
	qos    packetgen.QoS
	retain bool
	// subIDs are the identifiers of the subscriptions that matched
	// (MQTT-3.3.4-3); nil when none had one.
	subIDs []uint32
	// share is the shared subscription group the message reached the
	// session through, so it can go to another member if this session
	// ends before acknowledging it; nil for an ordinary subscription.
	share *shareGroup
	// seq is the delivery's key in the store (durable.go); 0: not stored.
	seq uint64
}

// publishPacket builds the PUBLISH that delivers d. A 3.1.1 or 3.1
// connection gets no properties; a 5.0 one gets the forwarded properties,
// the subscription identifiers and the expiry interval less the time the
// message waited (MQTT-3.3.2-6).
func (d *delivery) publishPacket(id uint16, dup, v5 bool, now time.Time) *packetgen.Publish {
	m := d.msg
	p := &packetgen.Publish{Topic: m.topic, Payload: m.payload, QoS: d.qos, PacketID: id, Retain: d.retain, Dup: dup}
	if !v5 {
		return p
	}
	if m.props != nil {
		p.Properties = *m.props
	}
	if !m.expires.IsZero() {
		left := math.Ceil(m.expires.Sub(now).Seconds())
		// A message already in flight is re-sent even when it has expired
		// meanwhile (its delivery had started); it says 1 s then.
		p.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(max(1, min(left, math.MaxUint32))))
	}
	p.Properties.SubscriptionIdentifiers = d.subIDs
	return p
}
