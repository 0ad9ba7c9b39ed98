package packetgen

import "github.com/mqttbench/mqttbench/packetgen/topic"

// Publish is the PUBLISH packet (3.1.1 §3.3, 5.0 §3.3).
//
// Topic and Payload alias the decoded input (see the package comment on
// ownership); Clone copies them.
type Publish struct {
	Dup    bool
	QoS    QoS
	Retain bool
	// Topic is a []byte, not a string, so that decoding allocates nothing.
	// In 5.0 it may be empty when Properties carries a Topic Alias.
	Topic      []byte
	PacketID   uint16 // present only when QoS > 0
	Properties Properties
	Payload    []byte
}

func (*Publish) Type() Type { return TypePublish }

func (p *Publish) flags() byte {
	f := byte(p.QoS&3) << 1
	if p.Dup {
		f |= 8
	}
	if p.Retain {
		f |= 1
	}
	return f
}

func (p *Publish) Clone() Packet {
	q := *p
	q.Topic = cloneBytes(p.Topic)
	q.Payload = cloneBytes(p.Payload)
	q.Properties = p.Properties.clone()
	return &q
}

func (p *Publish) bodySize(v Version) int {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if v == V5 {
		n += propsSize(&p.Properties)
	}
	return n
}

func (p *Publish) appendBody(dst []byte, v Version) []byte {
	dst = AppendBinary(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Properties.appendTo(dst)
	}
	return append(dst, p.Payload...)
}

var (
	ruleQoS3         = rules{"MQTT-3.3.1-4", "MQTT-3.3.1-4"}
	ruleDupQoS0      = rules{"MQTT-3.3.1-2", "MQTT-3.3.1-2"}
	rulePacketIDZero = rules{"MQTT-2.3.1-1", "MQTT-2.2.1-3"}
	// 5.0 numbers the server's duty on its own PUBLISH apart.
	rulePacketIDZeroServer = rules{"MQTT-2.3.1-1", "MQTT-2.2.1-4"}
	ruleEmptyTopic         = rules{"MQTT-4.7.3-1", "MQTT-4.7.3-1"}
)

// checkPublishFlags applies the fixed-header rules of PUBLISH.
func checkPublishFlags(v Version, flags byte) error {
	qos := flags >> 1 & 3
	if qos == 3 {
		return violation(v, TypePublish, ruleQoS3, sec("3.3.1.2"), MalformedPacket,
			"QoS bits are 11 (QoS 3): fixed header flags 0x%X", flags)
	}
	if qos == 0 && flags&8 != 0 {
		return violation(v, TypePublish, ruleDupQoS0, sec("3.3.1.1"), ProtocolError,
			"DUP is 1 on a QoS 0 message: fixed header flags 0x%X", flags)
	}
	return nil
}

// DecodeBody fills p from a PUBLISH body (the bytes after the fixed
// header) without allocating; flags is the low nibble of the first byte.
// Topic and Payload alias body. Use it with ParseHeader to decode into a
// reused Publish on a hot path.
func (p *Publish) DecodeBody(flags byte, body []byte, v Version, from Side) error {
	if v == 0 {
		v = V311
	}
	if err := checkPublishFlags(v, flags); err != nil {
		return err
	}
	c := cursor{b: body, v: v, t: TypePublish}
	p.PacketID = 0
	if v == V5 || !p.Properties.Empty() {
		// Properties is large: only clear it when it can hold something.
		p.Properties = p.Properties.reset()
	}
	return p.decode(&c, flags, from)
}

// reset empties p but keeps the capacity of its repeatable slices, so a
// reused Publish does not allocate for them again.
func (p *Properties) reset() Properties {
	return Properties{
		UserProperties:          p.UserProperties[:0],
		SubscriptionIdentifiers: p.SubscriptionIdentifiers[:0],
	}
}

func (p *Publish) decode(c *cursor, flags byte, from Side) error {
	p.Dup = flags&8 != 0
	p.QoS = QoS(flags >> 1 & 3)
	p.Retain = flags&1 != 0
	// The topic's UTF-8 and topic rules are checked in one pass below.
	t, err := c.stringBytes("topic name")
	if err != nil {
		return err
	}
	p.Topic = t
	if p.QoS > 0 {
		if p.PacketID, err = c.uint16("packet identifier"); err != nil {
			return err
		}
		if p.PacketID == 0 {
			r := rulePacketIDZero
			if from == FromServer {
				r = rulePacketIDZeroServer
			}
			return violation(c.v, TypePublish, r, secPacketID, ProtocolError,
				"a QoS %d PUBLISH has packet identifier 0", p.QoS)
		}
	}
	if c.v == V5 {
		if err := c.properties(&p.Properties, TypePublish, from); err != nil {
			return err
		}
	}
	if err := p.checkTopic(c.v); err != nil {
		return err
	}
	p.Payload = c.rest()
	return nil
}

func (p *Publish) checkTopic(v Version) error {
	if len(p.Topic) == 0 {
		if v == V5 && p.Properties.Present.Has(PropTopicAlias) {
			return nil // the alias stands for the topic (§3.3.2.3.4)
		}
		return violation(v, TypePublish, ruleEmptyTopic, sec("3.3.2.1"), ProtocolError,
			"the topic name is empty")
	}
	if err := topic.ValidateName(p.Topic, v == V5); err != nil {
		return topicViolation(v, TypePublish, "topic name", err, TopicNameInvalid)
	}
	return nil
}

func (p *Publish) validate(v Version, from Side) error {
	if err := checkPublishFlags(v, p.flags()); err != nil {
		return err
	}
	if p.QoS > 3 {
		return violation(v, TypePublish, ruleQoS3, sec("3.3.1.2"), MalformedPacket, "QoS is %d", p.QoS)
	}
	if p.QoS > 0 && p.PacketID == 0 {
		r := rulePacketIDZero
		if from == FromServer {
			r = rulePacketIDZeroServer
		}
		return violation(v, TypePublish, r, secPacketID, ProtocolError,
			"a QoS %d PUBLISH has packet identifier 0", p.QoS)
	}
	if p.QoS == 0 && p.PacketID != 0 {
		return violation(v, TypePublish, rules{"MQTT-2.3.1-5", "MQTT-2.2.1-2"}, secPacketID, ProtocolError,
			"a QoS 0 PUBLISH has packet identifier %d", p.PacketID)
	}
	if v == V5 {
		if err := p.Properties.validate(v, TypePublish, from); err != nil {
			return err
		}
	} else if !p.Properties.Empty() {
		return noProps(v, TypePublish)
	}
	return p.checkTopic(v)
}
