package packetgen

// Encoder writes packets of one version for one side of a connection.
type Encoder struct {
	Version Version
	// Side is who sends: FromClient for a client. AnySide skips the
	// direction rules.
	Side Side
}

// Append validates p and appends its canonical encoding to dst. It
// allocates nothing when dst has room. A packet that breaks a rule is not
// written: the error is a *Violation and dst is returned unchanged.
func (e Encoder) Append(dst []byte, p Packet) ([]byte, error) {
	v := e.Version
	if v == 0 {
		v = V311
	}
	if c, ok := p.(*Connect); ok {
		v = c.level(v)
	}
	if e.Side != AnySide {
		if s := sentBy(p.Type(), v); s != AnySide && s != e.Side {
			return dst, violation(v, p.Type(), ruleProtocolViolation, secType, ProtocolError,
				"%s is sent only by a %s", p.Type(), s)
		}
	}
	if err := p.validate(v, e.Side); err != nil {
		return dst, err
	}
	n := p.bodySize(v)
	if n > MaxRemainingLength {
		r, s := packetTooLarge(e.Side)
		return dst, violation(v, p.Type(), r, s, PacketTooLarge,
			"the body is %d bytes, more than a remaining length can say", n)
	}
	return appendPacket(dst, p, v, n), nil
}

func appendPacket(dst []byte, p Packet, v Version, n int) []byte {
	dst = append(dst, byte(p.Type())<<4|p.flags())
	dst = AppendVarint(dst, uint32(n))
	return p.appendBody(dst, v)
}

// Size is the number of bytes p encodes to as version v, fixed header
// included: what a Maximum Packet Size limits (§3.1.2.11.4).
func Size(p Packet, v Version) int {
	if v == 0 {
		v = V311
	}
	n := p.bodySize(v)
	return 1 + VarintLen(uint32(n)) + n
}

// Append validates p and appends it, as version v from either side.
func Append(dst []byte, p Packet, v Version) ([]byte, error) {
	return Encoder{Version: v}.Append(dst, p)
}

// Encode returns p's encoding as version v in a new slice.
func Encode(p Packet, v Version) ([]byte, error) {
	return Append(nil, p, v)
}

// AppendUnchecked appends p's encoding without validating anything: QoS 3,
// packet identifier 0, invalid UTF-8 in strings, wildcards in topic names,
// properties in the wrong packet or Properties.Raw are all written as they
// are. The remaining length is true to the body; use Frame to lie about it.
func AppendUnchecked(dst []byte, p Packet, v Version) []byte {
	if v == 0 {
		v = V311
	}
	if c, ok := p.(*Connect); ok {
		v = c.level(v)
	}
	return appendPacket(dst, p, v, p.bodySize(v))
}
