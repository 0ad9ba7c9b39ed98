package packetgen

import (
	"slices"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// Subscribe is the SUBSCRIBE packet (§3.8). Its fixed header flags are 0010.
type Subscribe struct {
	PacketID      uint16
	Properties    Properties // 5.0 only
	Subscriptions []Subscription
}

// Subscription is one topic filter and its options. NoLocal,
// RetainAsPublished and RetainHandling are 5.0 options (§3.8.3.1).
type Subscription struct {
	Filter            string
	QoS               QoS
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained, 1 only for new subscriptions, 2 never
}

// Options returns the subscription options byte.
func (s Subscription) Options() byte {
	o := byte(s.QoS & 3)
	if s.NoLocal {
		o |= 0x04
	}
	if s.RetainAsPublished {
		o |= 0x08
	}
	return o | (s.RetainHandling&3)<<4
}

func (*Subscribe) Type() Type    { return TypeSubscribe }
func (p *Subscribe) flags() byte { return 2 }

func (p *Subscribe) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	q.Subscriptions = slices.Clone(p.Subscriptions)
	return &q
}

func (p *Subscribe) bodySize(v Version) int {
	n := 2
	if v == V5 {
		n += propsSize(&p.Properties)
	}
	for _, s := range p.Subscriptions {
		n += 2 + len(s.Filter) + 1
	}
	return n
}

func (p *Subscribe) appendBody(dst []byte, v Version) []byte {
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Properties.appendTo(dst)
	}
	for _, s := range p.Subscriptions {
		dst = AppendString(dst, s.Filter)
		dst = append(dst, s.Options())
	}
	return dst
}

var (
	ruleSubscribeEmpty = rules{"MQTT-3.8.3-3", "MQTT-3.8.3-2"}
	// The 3.1.1 text prints this statement as "MQTT-3-8.3-4"; it is the
	// fourth statement of section 3.8.3 and is cited in its evident form.
	ruleSubscribeOptions = rules{"MQTT-3.8.3-4", "MQTT-3.8.3-5"}
	ruleSharedNoLocal    = rules{v5: "MQTT-3.8.3-4"}
	ruleUnsubscribeEmpty = rules{"MQTT-3.10.3-2", "MQTT-3.10.3-2"}
)

// decode reads a SUBSCRIBE. A filter that is well-formed UTF-8 but breaks a
// topic filter rule does not stop decoding: the whole packet is returned
// with the first such violation (reason TopicFilterInvalid), so a server
// can refuse that filter in SUBACK (0x80 / 0x8F) instead of closing.
func (p *Subscribe) decode(c *cursor, _ byte, from Side) (err error) {
	if p.PacketID, err = c.uint16("packet identifier"); err != nil {
		return err
	}
	if p.PacketID == 0 {
		return violation(c.v, TypeSubscribe, rulePacketIDZero, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if c.v == V5 {
		if err := c.properties(&p.Properties, TypeSubscribe, from); err != nil {
			return err
		}
	}
	if c.left() == 0 {
		return violation(c.v, TypeSubscribe, ruleSubscribeEmpty, sec("3.8.3"), ProtocolError,
			"SUBSCRIBE has no topic filter")
	}
	var filterErr error
	for c.left() > 0 {
		f, err := c.stringBytes("topic filter")
		if err != nil {
			return err
		}
		at := c.off
		o, err := c.byte1("subscription options")
		if err != nil {
			return err
		}
		s := Subscription{Filter: string(f), QoS: QoS(o & 3), NoLocal: o&0x04 != 0,
			RetainAsPublished: o&0x08 != 0, RetainHandling: o >> 4 & 3}
		if err := checkOptions(c.v, o, at); err != nil {
			return err
		}
		if err := checkFilter(c.v, TypeSubscribe, s); err != nil {
			if !refusable(err) {
				return err
			}
			if filterErr == nil {
				filterErr = err
			}
		}
		p.Subscriptions = append(p.Subscriptions, s)
	}
	return filterErr
}

func checkOptions(v Version, o byte, at int) error {
	reserved := byte(0xFC) // 3.x: only the QoS bits are defined
	if v == V5 {
		reserved = 0xC0
	}
	if o&reserved != 0 {
		return violation(v, TypeSubscribe, ruleSubscribeOptions, secSubscribeOptions, MalformedPacket,
			"reserved bits set in the subscription options 0x%02X at offset %d", o, at)
	}
	if o&3 == 3 {
		if v == V5 {
			// §3.8.3.1: a Maximum QoS of 3 is a Protocol Error.
			return violation(v, TypeSubscribe, ruleProtocolViolation, secSubscribeOptions, ProtocolError,
				"maximum QoS is 3 at offset %d", at)
		}
		return violation(v, TypeSubscribe, ruleSubscribeOptions, secSubscribeOptions, MalformedPacket,
			"requested QoS is 3 at offset %d", at)
	}
	if v == V5 && o>>4&3 == 3 {
		return violation(v, TypeSubscribe, ruleProtocolViolation, secSubscribeOptions, ProtocolError,
			"retain handling is 3 at offset %d", at)
	}
	return nil
}

// checkFilter applies the topic filter rules, shared subscriptions included.
func checkFilter(v Version, t Type, s Subscription) error {
	f := s.Filter
	if v == V5 && topic.IsShared(f) {
		if _, _, err := topic.ParseShared(f); err != nil {
			return topicViolation(v, t, "shared subscription "+quote(f), err, TopicFilterInvalid)
		}
		if s.NoLocal {
			return violation(v, t, ruleSharedNoLocal, secSubscribeOptions, ProtocolError,
				"no local is set on the shared subscription %s", quote(f))
		}
		return nil
	}
	if err := topic.ValidateFilter(f, v == V5); err != nil {
		return topicViolation(v, t, "topic filter "+quote(f), err, TopicFilterInvalid)
	}
	return nil
}

// refusable tells a filter violation a server may answer in SUBACK (0x80
// in 3.1.1, 0x8F in 5.0) from one that must close the connection.
func refusable(err error) bool {
	vi := AsViolation(err)
	return vi != nil && vi.Reason == TopicFilterInvalid
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + s + "\""
}

func (p *Subscribe) validate(v Version, from Side) error {
	if p.PacketID == 0 {
		return violation(v, TypeSubscribe, rulePacketIDZero, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if v == V5 {
		if err := p.Properties.validate(v, TypeSubscribe, from); err != nil {
			return err
		}
	} else if !p.Properties.Empty() {
		return noProps(v, TypeSubscribe)
	}
	if len(p.Subscriptions) == 0 {
		return violation(v, TypeSubscribe, ruleSubscribeEmpty, sec("3.8.3"), ProtocolError,
			"SUBSCRIBE has no topic filter")
	}
	for _, s := range p.Subscriptions {
		if err := checkField(v, TypeSubscribe, "topic filter", s.Filter); err != nil {
			return err
		}
		if s.QoS > 3 || s.RetainHandling > 3 {
			return violation(v, TypeSubscribe, ruleSubscribeOptions, secSubscribeOptions, MalformedPacket,
				"options out of range for %s", quote(s.Filter))
		}
		if err := checkOptions(v, s.Options(), -1); err != nil {
			return err
		}
		if err := checkFilter(v, TypeSubscribe, s); err != nil {
			return err
		}
	}
	return nil
}

// Suback is the SUBACK packet (§3.9): one code per requested filter, in
// order. In 3.x the codes are 0, 1, 2 or 0x80 (failure; not in 3.1).
type Suback struct {
	PacketID    uint16
	Properties  Properties // 5.0 only
	ReasonCodes []ReasonCode
}

func (*Suback) Type() Type    { return TypeSuback }
func (p *Suback) flags() byte { return 0 }

func (p *Suback) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	q.ReasonCodes = slices.Clone(p.ReasonCodes)
	return &q
}

func (p *Suback) bodySize(v Version) int {
	return ackListSize(p.Properties, len(p.ReasonCodes), v, true)
}
func (p *Unsuback) bodySize(v Version) int {
	return ackListSize(p.Properties, len(p.ReasonCodes), v, v == V5)
}

func ackListSize(props Properties, n int, v Version, codes bool) int {
	size := 2
	if v == V5 {
		size += propsSize(&props)
	}
	if codes {
		size += n
	}
	return size
}

func (p *Suback) appendBody(dst []byte, v Version) []byte {
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Properties.appendTo(dst)
	}
	for _, rc := range p.ReasonCodes {
		dst = append(dst, byte(rc))
	}
	return dst
}

var ruleSubackCodes = rules{"MQTT-3.9.3-2", "MQTT-3.9.3-2"}

func (p *Suback) decode(c *cursor, _ byte, from Side) (err error) {
	if p.PacketID, err = c.uint16("packet identifier"); err != nil {
		return err
	}
	if c.v == V5 {
		if err := c.properties(&p.Properties, TypeSuback, from); err != nil {
			return err
		}
	}
	for _, b := range c.rest() {
		p.ReasonCodes = append(p.ReasonCodes, ReasonCode(b))
	}
	return p.check(c.v)
}

func (p *Suback) check(v Version) error {
	if p.PacketID == 0 {
		return violation(v, TypeSuback, rules{"MQTT-2.3.1-7", "MQTT-2.2.1-6"}, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if len(p.ReasonCodes) == 0 {
		return violation(v, TypeSuback, rules{"MQTT-3.8.4-5", "MQTT-3.8.4-6"}, sec("3.9.3"), ProtocolError,
			"SUBACK carries no return code")
	}
	for i, rc := range p.ReasonCodes {
		ok := subackReasons[rc]
		switch v {
		case V311:
			ok = rc <= 2 || rc == SubackFailure
		case V31:
			ok = rc <= 2
		}
		if !ok {
			return violation(v, TypeSuback, ruleSubackCodes, sec("3.9.3"), ProtocolError,
				"code %d is 0x%02X, which SUBACK may not carry in %s", i, byte(rc), v)
		}
	}
	return nil
}

func (p *Suback) validate(v Version, from Side) error {
	if v == V5 {
		if err := p.Properties.validate(v, TypeSuback, from); err != nil {
			return err
		}
	} else if !p.Properties.Empty() {
		return noProps(v, TypeSuback)
	}
	return p.check(v)
}

// Unsubscribe is the UNSUBSCRIBE packet (§3.10). Flags 0010.
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties // 5.0 only
	Filters    []string
}

func (*Unsubscribe) Type() Type    { return TypeUnsubscribe }
func (p *Unsubscribe) flags() byte { return 2 }

func (p *Unsubscribe) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	q.Filters = slices.Clone(p.Filters)
	return &q
}

func (p *Unsubscribe) bodySize(v Version) int {
	n := 2
	if v == V5 {
		n += propsSize(&p.Properties)
	}
	for _, f := range p.Filters {
		n += 2 + len(f)
	}
	return n
}

func (p *Unsubscribe) appendBody(dst []byte, v Version) []byte {
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Properties.appendTo(dst)
	}
	for _, f := range p.Filters {
		dst = AppendString(dst, f)
	}
	return dst
}

// decode reads an UNSUBSCRIBE; like SUBSCRIBE, an invalid filter is
// returned with the whole packet.
func (p *Unsubscribe) decode(c *cursor, _ byte, from Side) (err error) {
	if p.PacketID, err = c.uint16("packet identifier"); err != nil {
		return err
	}
	if p.PacketID == 0 {
		return violation(c.v, TypeUnsubscribe, rulePacketIDZero, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if c.v == V5 {
		if err := c.properties(&p.Properties, TypeUnsubscribe, from); err != nil {
			return err
		}
	}
	if c.left() == 0 {
		return violation(c.v, TypeUnsubscribe, ruleUnsubscribeEmpty, sec("3.10.3"), ProtocolError,
			"UNSUBSCRIBE has no topic filter")
	}
	var filterErr error
	for c.left() > 0 {
		b, err := c.stringBytes("topic filter")
		if err != nil {
			return err
		}
		f := string(b)
		if err := checkFilter(c.v, TypeUnsubscribe, Subscription{Filter: f}); err != nil {
			if !refusable(err) {
				return err
			}
			if filterErr == nil {
				filterErr = err
			}
		}
		p.Filters = append(p.Filters, f)
	}
	return filterErr
}

func (p *Unsubscribe) validate(v Version, from Side) error {
	if p.PacketID == 0 {
		return violation(v, TypeUnsubscribe, rulePacketIDZero, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if v == V5 {
		if err := p.Properties.validate(v, TypeUnsubscribe, from); err != nil {
			return err
		}
	} else if !p.Properties.Empty() {
		return noProps(v, TypeUnsubscribe)
	}
	if len(p.Filters) == 0 {
		return violation(v, TypeUnsubscribe, ruleUnsubscribeEmpty, sec("3.10.3"), ProtocolError,
			"UNSUBSCRIBE has no topic filter")
	}
	for _, f := range p.Filters {
		if err := checkField(v, TypeUnsubscribe, "topic filter", f); err != nil {
			return err
		}
		if err := checkFilter(v, TypeUnsubscribe, Subscription{Filter: f}); err != nil {
			return err
		}
	}
	return nil
}

// Unsuback is the UNSUBACK packet (§3.11). Reason codes exist in 5.0 only.
type Unsuback struct {
	PacketID    uint16
	Properties  Properties   // 5.0 only
	ReasonCodes []ReasonCode // 5.0 only: one per filter
}

func (*Unsuback) Type() Type    { return TypeUnsuback }
func (p *Unsuback) flags() byte { return 0 }

func (p *Unsuback) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	q.ReasonCodes = slices.Clone(p.ReasonCodes)
	return &q
}

func (p *Unsuback) appendBody(dst []byte, v Version) []byte {
	dst = appendUint16(dst, p.PacketID)
	if v != V5 {
		return dst
	}
	dst = p.Properties.appendTo(dst)
	for _, rc := range p.ReasonCodes {
		dst = append(dst, byte(rc))
	}
	return dst
}

func (p *Unsuback) decode(c *cursor, _ byte, from Side) (err error) {
	if p.PacketID, err = c.uint16("packet identifier"); err != nil {
		return err
	}
	if c.v != V5 {
		if err := c.done(); err != nil {
			return err
		}
		return p.check(c.v)
	}
	if err := c.properties(&p.Properties, TypeUnsuback, from); err != nil {
		return err
	}
	for _, b := range c.rest() {
		p.ReasonCodes = append(p.ReasonCodes, ReasonCode(b))
	}
	return p.check(c.v)
}

func (p *Unsuback) check(v Version) error {
	if p.PacketID == 0 {
		return violation(v, TypeUnsuback, rules{"MQTT-2.3.1-7", "MQTT-2.2.1-6"}, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if v != V5 {
		if len(p.ReasonCodes) > 0 || !p.Properties.Empty() {
			return violation(v, TypeUnsuback, ruleProtocolViolation, sec("3.11"), MalformedPacket,
				"UNSUBACK carries reason codes or properties only in 5.0")
		}
		return nil
	}
	if len(p.ReasonCodes) == 0 {
		return violation(v, TypeUnsuback, ruleProtocolViolation, sec("3.11.3"), ProtocolError,
			"UNSUBACK carries no reason code")
	}
	for i, rc := range p.ReasonCodes {
		if !unsubackReason[rc] {
			return violation(v, TypeUnsuback, rules{v5: "MQTT-3.11.3-2"}, sec("3.11.3"), ProtocolError,
				"code %d is 0x%02X, which UNSUBACK may not carry", i, byte(rc))
		}
	}
	return nil
}

func (p *Unsuback) validate(v Version, from Side) error {
	if v == V5 {
		if err := p.Properties.validate(v, TypeUnsuback, from); err != nil {
			return err
		}
	}
	return p.check(v)
}
