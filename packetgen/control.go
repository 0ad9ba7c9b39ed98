package packetgen

// Pingreq is the PINGREQ packet (§3.12): no body.
type Pingreq struct{}

// Pingresp is the PINGRESP packet (§3.13): no body.
type Pingresp struct{}

func (*Pingreq) Type() Type                             { return TypePingreq }
func (*Pingreq) flags() byte                            { return 0 }
func (*Pingreq) Clone() Packet                          { return &Pingreq{} }
func (*Pingreq) bodySize(Version) int                   { return 0 }
func (*Pingreq) appendBody(d []byte, _ Version) []byte  { return d }
func (*Pingreq) validate(Version, Side) error           { return nil }
func (*Pingreq) decode(c *cursor, _ byte, _ Side) error { return c.done() }

func (*Pingresp) Type() Type                             { return TypePingresp }
func (*Pingresp) flags() byte                            { return 0 }
func (*Pingresp) Clone() Packet                          { return &Pingresp{} }
func (*Pingresp) bodySize(Version) int                   { return 0 }
func (*Pingresp) appendBody(d []byte, _ Version) []byte  { return d }
func (*Pingresp) validate(Version, Side) error           { return nil }
func (*Pingresp) decode(c *cursor, _ byte, _ Side) error { return c.done() }

// Disconnect is the DISCONNECT packet (§3.14). In 3.x it has no body and
// only a client sends it; in 5.0 either side may, with a reason code.
type Disconnect struct {
	ReasonCode ReasonCode // 5.0 only
	Properties Properties // 5.0 only
}

func (*Disconnect) Type() Type    { return TypeDisconnect }
func (p *Disconnect) flags() byte { return 0 }

func (p *Disconnect) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	return &q
}

// reasonBodySize is shared by DISCONNECT and AUTH: no body for Success
// without properties, one byte for a bare reason code.
func reasonBodySize(rc ReasonCode, props *Properties, v Version) int {
	switch {
	case v != V5 || (rc == 0 && props.Empty()):
		return 0
	case props.Empty():
		return 1
	}
	return 1 + propsSize(props)
}

func appendReasonBody(dst []byte, rc ReasonCode, props *Properties, v Version) []byte {
	switch reasonBodySize(rc, props, v) {
	case 0:
		return dst
	case 1:
		return append(dst, byte(rc))
	}
	return props.appendTo(append(dst, byte(rc)))
}

func decodeReasonBody(c *cursor, rc *ReasonCode, props *Properties, t Type, from Side) error {
	if c.v != V5 || c.left() == 0 {
		return c.done()
	}
	b, _ := c.byte1("reason code")
	*rc = ReasonCode(b)
	if c.left() > 0 {
		if err := c.properties(props, t, from); err != nil {
			return err
		}
	}
	return c.done()
}

func (p *Disconnect) bodySize(v Version) int {
	return reasonBodySize(p.ReasonCode, &p.Properties, v)
}

func (p *Disconnect) appendBody(dst []byte, v Version) []byte {
	return appendReasonBody(dst, p.ReasonCode, &p.Properties, v)
}

func (p *Disconnect) decode(c *cursor, _ byte, from Side) error {
	if err := decodeReasonBody(c, &p.ReasonCode, &p.Properties, TypeDisconnect, from); err != nil {
		return err
	}
	return p.check(c.v, from)
}

func (p *Disconnect) check(v Version, from Side) error {
	if v == V5 && !disconnectFrom[from][p.ReasonCode] {
		return violation(v, TypeDisconnect, rules{v5: "MQTT-3.14.2-1"}, sec("3.14.2.1"), ProtocolError,
			"reason code 0x%02X is not one a %s may send in DISCONNECT", byte(p.ReasonCode), from)
	}
	return nil
}

func (p *Disconnect) validate(v Version, from Side) error {
	if v != V5 {
		if p.ReasonCode != 0 || !p.Properties.Empty() {
			return violation(v, TypeDisconnect, ruleProtocolViolation, sec("3.14"), MalformedPacket,
				"DISCONNECT carries a reason code or properties only in 5.0")
		}
		return nil
	}
	if err := p.Properties.validate(v, TypeDisconnect, from); err != nil {
		return err
	}
	return p.check(v, from)
}

// Auth is the 5.0 AUTH packet (§3.15) for extended authentication.
type Auth struct {
	ReasonCode ReasonCode
	Properties Properties
}

func (*Auth) Type() Type    { return TypeAuth }
func (p *Auth) flags() byte { return 0 }

func (p *Auth) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	return &q
}

func (p *Auth) bodySize(v Version) int { return reasonBodySize(p.ReasonCode, &p.Properties, v) }

func (p *Auth) appendBody(dst []byte, v Version) []byte {
	return appendReasonBody(dst, p.ReasonCode, &p.Properties, v)
}

func (p *Auth) decode(c *cursor, _ byte, from Side) error {
	empty := c.left() == 0
	if err := decodeReasonBody(c, &p.ReasonCode, &p.Properties, TypeAuth, from); err != nil {
		return err
	}
	if empty {
		return nil
	}
	return p.check(c.v)
}

func (p *Auth) check(v Version) error {
	if !authReasons[p.ReasonCode] {
		return violation(v, TypeAuth, rules{v5: "MQTT-3.15.2-1"}, sec("3.15.2.1"), ProtocolError,
			"reason code 0x%02X is not one AUTH may carry", byte(p.ReasonCode))
	}
	if (p.ReasonCode != 0 || !p.Properties.Empty()) && !p.Properties.Present.Has(PropAuthenticationMethod) {
		return violation(v, TypeAuth, ruleProtocolViolation, sec("3.15.2.2.2"), ProtocolError,
			"AUTH with a reason code or properties must carry an Authentication Method")
	}
	return nil
}

func (p *Auth) validate(v Version, from Side) error {
	if v != V5 {
		return violation(v, TypeAuth, ruleProtocolViolation, secType, MalformedPacket,
			"AUTH exists only in MQTT 5.0")
	}
	if err := p.Properties.validate(v, TypeAuth, from); err != nil {
		return err
	}
	return p.check(v)
}
