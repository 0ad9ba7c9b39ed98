package packetgen

// Connack is the CONNACK packet (3.1.1 §3.2, 5.0 §3.2).
type Connack struct {
	// SessionPresent does not exist in 3.1, where the byte is unused.
	SessionPresent bool
	// ReasonCode is the 3.x return code (0 to 5) or the 5.0 reason code.
	ReasonCode ReasonCode
	Properties Properties // 5.0 only
}

func (*Connack) Type() Type    { return TypeConnack }
func (p *Connack) flags() byte { return 0 }

func (p *Connack) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	return &q
}

func (p *Connack) bodySize(v Version) int {
	if v == V5 {
		return 2 + propsSize(&p.Properties)
	}
	return 2
}

func (p *Connack) appendBody(dst []byte, v Version) []byte {
	var f byte
	if p.SessionPresent && v != V31 {
		f = 1
	}
	dst = append(dst, f, byte(p.ReasonCode))
	if v == V5 {
		dst = p.Properties.appendTo(dst)
	}
	return dst
}

var (
	ruleConnackFlags   = rules{"MQTT-4.8.0-1", "MQTT-3.2.2-1"}
	ruleSessionPresent = rules{"MQTT-3.2.2-4", "MQTT-3.2.2-6"}
)

func (p *Connack) decode(c *cursor, flags byte, from Side) error {
	f, err := c.byte1("connect acknowledge flags")
	if err != nil {
		return err
	}
	rc, err := c.byte1("return code")
	if err != nil {
		return err
	}
	p.ReasonCode = ReasonCode(rc)
	if c.v == V31 {
		// 3.1 defines no flags; the byte is "reserved, not used".
		if err := c.done(); err != nil {
			return err
		}
		return p.check(c.v)
	}
	if f&0xFE != 0 {
		return violation(c.v, TypeConnack, ruleConnackFlags, sec("3.2.2.1"), MalformedPacket,
			"reserved connect acknowledge flags are set: 0x%02X", f)
	}
	p.SessionPresent = f&1 != 0
	if c.v == V5 {
		if err := c.properties(&p.Properties, TypeConnack, from); err != nil {
			return err
		}
	}
	if err := c.done(); err != nil {
		return err
	}
	return p.check(c.v)
}

func (p *Connack) check(v Version) error {
	if v == V5 {
		if !connackReasons[p.ReasonCode] {
			return violation(v, TypeConnack, rules{v5: "MQTT-3.2.2-8"}, sec("3.2.2.2"), ProtocolError,
				"reason code 0x%02X is not one CONNACK may carry", byte(p.ReasonCode))
		}
	} else if p.ReasonCode > 5 {
		return violation(v, TypeConnack, rules{v311: "MQTT-3.2.2-6"}, sec("3.2.2.3"), ProtocolError,
			"return code %d is reserved", byte(p.ReasonCode))
	}
	if p.SessionPresent && p.ReasonCode != 0 && v != V31 {
		return violation(v, TypeConnack, ruleSessionPresent, secSessionPresent, ProtocolError,
			"session present is 1 with the refusing code 0x%02X", byte(p.ReasonCode))
	}
	return nil
}

func (p *Connack) validate(v Version, from Side) error {
	if v == V5 {
		if err := p.Properties.validate(v, TypeConnack, from); err != nil {
			return err
		}
	} else if !p.Properties.Empty() {
		return noProps(v, TypeConnack)
	}
	return p.check(v)
}
