package packetgen

// The four acknowledgements of the QoS 1 and 2 flows share one layout:
// a packet identifier and, in 5.0, an optional reason code and properties.

// Puback acknowledges a QoS 1 PUBLISH (§3.4).
type Puback struct {
	PacketID   uint16
	ReasonCode ReasonCode // 5.0 only
	Properties Properties // 5.0 only
}

// Pubrec is the first acknowledgement of a QoS 2 PUBLISH (§3.5).
type Pubrec Puback

// Pubrel releases a QoS 2 PUBLISH (§3.6). Its fixed header flags are 0010.
type Pubrel Puback

// Pubcomp completes a QoS 2 flow (§3.7).
type Pubcomp Puback

func (*Puback) Type() Type  { return TypePuback }
func (*Pubrec) Type() Type  { return TypePubrec }
func (*Pubrel) Type() Type  { return TypePubrel }
func (*Pubcomp) Type() Type { return TypePubcomp }

func (p *Puback) flags() byte  { return 0 }
func (p *Pubrec) flags() byte  { return 0 }
func (p *Pubrel) flags() byte  { return 2 }
func (p *Pubcomp) flags() byte { return 0 }

func (p *Puback) Clone() Packet  { q := *p; q.Properties = p.Properties.clone(); return &q }
func (p *Pubrec) Clone() Packet  { q := *p; q.Properties = p.Properties.clone(); return &q }
func (p *Pubrel) Clone() Packet  { q := *p; q.Properties = p.Properties.clone(); return &q }
func (p *Pubcomp) Clone() Packet { q := *p; q.Properties = p.Properties.clone(); return &q }

func (p *Puback) bodySize(v Version) int  { return ackSize((*Puback)(p), v) }
func (p *Pubrec) bodySize(v Version) int  { return ackSize((*Puback)(p), v) }
func (p *Pubrel) bodySize(v Version) int  { return ackSize((*Puback)(p), v) }
func (p *Pubcomp) bodySize(v Version) int { return ackSize((*Puback)(p), v) }

func (p *Puback) appendBody(d []byte, v Version) []byte  { return appendAck(d, (*Puback)(p), v) }
func (p *Pubrec) appendBody(d []byte, v Version) []byte  { return appendAck(d, (*Puback)(p), v) }
func (p *Pubrel) appendBody(d []byte, v Version) []byte  { return appendAck(d, (*Puback)(p), v) }
func (p *Pubcomp) appendBody(d []byte, v Version) []byte { return appendAck(d, (*Puback)(p), v) }

func (p *Puback) decode(c *cursor, _ byte, s Side) error  { return decodeAck(c, (*Puback)(p), s) }
func (p *Pubrec) decode(c *cursor, _ byte, s Side) error  { return decodeAck(c, (*Puback)(p), s) }
func (p *Pubrel) decode(c *cursor, _ byte, s Side) error  { return decodeAck(c, (*Puback)(p), s) }
func (p *Pubcomp) decode(c *cursor, _ byte, s Side) error { return decodeAck(c, (*Puback)(p), s) }

func (p *Puback) validate(v Version, s Side) error {
	return validateAck((*Puback)(p), TypePuback, v, s)
}
func (p *Pubrec) validate(v Version, s Side) error {
	return validateAck((*Puback)(p), TypePubrec, v, s)
}
func (p *Pubrel) validate(v Version, s Side) error {
	return validateAck((*Puback)(p), TypePubrel, v, s)
}
func (p *Pubcomp) validate(v Version, s Side) error {
	return validateAck((*Puback)(p), TypePubcomp, v, s)
}

// ackSize is 2 bytes when the reason is Success with no properties (the
// shortest form, which 5.0 §3.4.2.1 allows and 3.x requires).
func ackSize(p *Puback, v Version) int {
	if v != V5 || (p.ReasonCode == 0 && p.Properties.Empty()) {
		return 2
	}
	if p.Properties.Empty() {
		return 3
	}
	return 3 + propsSize(&p.Properties)
}

func appendAck(dst []byte, p *Puback, v Version) []byte {
	dst = appendUint16(dst, p.PacketID)
	switch ackSize(p, v) {
	case 2:
		return dst
	case 3:
		return append(dst, byte(p.ReasonCode))
	}
	dst = append(dst, byte(p.ReasonCode))
	return p.Properties.appendTo(dst)
}

// ruleAckPacketID: PUBACK, PUBREC, PUBREL and PUBCOMP echo the identifier of
// the PUBLISH they acknowledge (MQTT-2.3.1-6 / MQTT-2.2.1-5), which is never 0.
var ruleAckPacketID = rules{"MQTT-2.3.1-6", "MQTT-2.2.1-5"}

func decodeAck(c *cursor, p *Puback, from Side) (err error) {
	if p.PacketID, err = c.uint16("packet identifier"); err != nil {
		return err
	}
	if p.PacketID == 0 {
		return violation(c.v, c.t, ruleAckPacketID, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if c.v != V5 {
		return c.done()
	}
	if c.left() == 0 {
		return nil
	}
	rc, _ := c.byte1("reason code")
	p.ReasonCode = ReasonCode(rc)
	if c.left() > 0 {
		if err := c.properties(&p.Properties, c.t, from); err != nil {
			return err
		}
	}
	if err := c.done(); err != nil {
		return err
	}
	return checkAckReason(c.t, c.v, p.ReasonCode)
}

// ackReasonRule is each acknowledgement's "MUST use one of the ... Reason
// Codes" statement and the section that lists the codes.
var ackReasonRule = map[Type]struct{ rule, section string }{
	TypePuback:  {"MQTT-3.4.2-1", "3.4.2.1"},
	TypePubrec:  {"MQTT-3.5.2-1", "3.5.2.1"},
	TypePubrel:  {"MQTT-3.6.2-1", "3.6.2.1"},
	TypePubcomp: {"MQTT-3.7.2-1", "3.7.2.1"},
}

func checkAckReason(t Type, v Version, rc ReasonCode) error {
	ok := pubackReasons[rc]
	if t == TypePubrel || t == TypePubcomp {
		ok = pubrelReasons[rc]
	}
	if !ok {
		r := ackReasonRule[t]
		return violation(v, t, rules{v5: r.rule}, sec(r.section), ProtocolError,
			"reason code 0x%02X is not one %s may carry", byte(rc), t)
	}
	return nil
}

func validateAck(p *Puback, t Type, v Version, from Side) error {
	if p.PacketID == 0 {
		return violation(v, t, ruleAckPacketID, secPacketID, ProtocolError, "packet identifier is 0")
	}
	if v != V5 {
		if p.ReasonCode != 0 || !p.Properties.Empty() {
			return violation(v, t, ruleProtocolViolation, typeSection(t), MalformedPacket,
				"reason codes and properties exist only in MQTT 5.0")
		}
		return nil
	}
	if err := p.Properties.validate(v, t, from); err != nil {
		return err
	}
	return checkAckReason(t, v, p.ReasonCode)
}
