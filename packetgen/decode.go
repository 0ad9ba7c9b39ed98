package packetgen

import "reflect"

// Header is a parsed fixed header (§2.2).
type Header struct {
	Type      Type
	Flags     byte // low nibble of the first byte
	Remaining int  // remaining length: the size of the body
	Size      int  // bytes the fixed header itself takes (2 to 5)
}

// PacketSize is the whole packet's size, fixed header included.
func (h Header) PacketSize() int { return h.Size + h.Remaining }

var ruleReservedFlags = rules{"MQTT-2.2.2-2", "MQTT-2.1.3-1"}

// packetTooLarge names what a packet over the receiver's size limit
// breaks. 5.0 has a statement for each direction: a client must not exceed
// the server's Maximum Packet Size (MQTT-3.2.2-15, §3.2.2.3.6), a server
// the client's (MQTT-3.1.2-24, §3.1.2.11.4); without the property the
// limit is what the remaining length can say. 3.1.1 has no limit but that
// one; a receiver that sets a smaller one closes the connection as on any
// protocol violation (MQTT-4.8.0-1).
func packetTooLarge(from Side) (rules, sections) {
	if from == FromServer {
		return rules{"MQTT-4.8.0-1", "MQTT-3.1.2-24"}, sections{"2.2.3", "3.1.2.11.4"}
	}
	return rules{"MQTT-4.8.0-1", "MQTT-3.2.2-15"}, sections{"2.2.3", "3.2.2.3.6"}
}

// Decoder holds what decoding needs to know about a connection. The zero
// value decodes 3.1.1 from either side with the specification's size limit.
type Decoder struct {
	// Version is the protocol level agreed in CONNECT. CONNECT itself is
	// decoded by its own level; with Version 0 other packets are decoded as
	// 3.1.1.
	Version Version
	// Side is who sent the bytes: FromClient on a server. With AnySide the
	// direction rules are not applied.
	Side Side
	// MaxPacketSize bounds the whole packet, fixed header included; 0 means
	// MaxPacketSize. A larger declared length is refused before any byte of
	// the body is read.
	MaxPacketSize int
}

func (d *Decoder) version() Version {
	if d.Version == 0 {
		return V311
	}
	return d.Version
}

// ParseHeader parses the fixed header at the front of b. It returns
// ErrIncomplete when b ends inside the header, and a *Violation for a
// reserved packet type, wrong flags, a remaining length over four bytes
// (or not minimal in 5.0), a packet larger than MaxPacketSize, or a packet
// that flows the wrong way.
func (d *Decoder) ParseHeader(b []byte) (Header, error) {
	if len(b) == 0 {
		return Header{}, ErrIncomplete
	}
	v := d.version()
	h := Header{Type: Type(b[0] >> 4), Flags: b[0] & 0x0F}
	if err := d.checkTypeAndFlags(h, v); err != nil {
		return h, err
	}
	x, n, st := parseVarint(b[1:])
	switch st {
	case varintShort:
		return h, ErrIncomplete
	case varintTooLong:
		return h, violation(v, h.Type, ruleProtocolViolation, secVarint, MalformedPacket,
			"the remaining length is longer than 4 bytes: % X ...", b[1:5])
	case varintNotMinim:
		if v == V5 {
			return h, violation(v, h.Type, rules{v5: "MQTT-1.5.5-1"}, secVarint, MalformedPacket,
				"the remaining length %d is encoded in %d bytes, more than the minimum", x, n)
		}
	}
	h.Remaining, h.Size = int(x), 1+n
	if max := d.maxSize(); h.PacketSize() > max {
		r, s := packetTooLarge(d.Side)
		return h, violation(v, h.Type, r, s, PacketTooLarge,
			"the packet declares %d bytes, more than the maximum packet size %d", h.PacketSize(), max)
	}
	return h, nil
}

func (d *Decoder) maxSize() int {
	if d.MaxPacketSize <= 0 || d.MaxPacketSize > MaxPacketSize {
		return MaxPacketSize
	}
	return d.MaxPacketSize
}

func (d *Decoder) checkTypeAndFlags(h Header, v Version) error {
	t := h.Type
	if t == TypeReserved || (t == TypeAuth && v != V5) {
		return violation(v, t, ruleProtocolViolation, secType, MalformedPacket,
			"packet type %d is reserved in %s", byte(t), v)
	}
	if t == TypePublish {
		return checkPublishFlags(v, h.Flags)
	}
	want := fixedFlags[t]
	// 3.1 marked PUBREL, SUBSCRIBE and UNSUBSCRIBE as QoS 1 messages, so a
	// 3.1 sender may set DUP (0x8) on a retransmission of them.
	if h.Flags != want && !(v == V31 && want == 2 && h.Flags == 0xA) {
		r := ruleReservedFlags
		switch t {
		case TypePubrel:
			r = rules{"MQTT-3.6.1-1", "MQTT-3.6.1-1"}
		case TypeSubscribe:
			r = rules{"MQTT-3.8.1-1", "MQTT-3.8.1-1"}
		case TypeUnsubscribe:
			r = rules{"MQTT-3.10.1-1", "MQTT-3.10.1-1"}
		case TypeDisconnect:
			r = rules{"MQTT-3.14.1-1", "MQTT-3.14.1-1"}
		case TypeAuth:
			r = rules{v5: "MQTT-3.15.1-1"}
		}
		return violation(v, t, r, secFlags, MalformedPacket,
			"fixed header flags are 0x%X, must be 0x%X", h.Flags, want)
	}
	if d.Side != AnySide {
		if s := sentBy(t, v); s != AnySide && s != d.Side {
			return violation(v, t, ruleProtocolViolation, secType, ProtocolError,
				"%s is sent only by a %s, but it came from the %s", t, s, d.Side)
		}
	}
	return nil
}

// Decode decodes the packet at the front of b and reports how many bytes
// it took. It returns ErrIncomplete when b holds only part of a packet.
//
// Byte fields of the packet alias b. A *Violation normally comes with a nil
// packet; the exceptions carry everything a server needs to answer rather
// than just close: a CONNECT with an unknown protocol name or level (fields
// up to the level filled in) or a refused client identifier (complete), and
// a SUBSCRIBE or UNSUBSCRIBE whose only fault is an invalid topic filter
// (complete, so SUBACK can refuse that one filter).
func (d *Decoder) Decode(b []byte) (Packet, int, error) {
	h, err := d.ParseHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < h.PacketSize() {
		return nil, 0, ErrIncomplete
	}
	p, err := d.DecodeBody(h, b[h.Size:h.PacketSize()])
	return p, h.PacketSize(), err
}

// DecodeBody decodes the body of a packet whose header is h; body is
// exactly h.Remaining bytes.
func (d *Decoder) DecodeBody(h Header, body []byte) (Packet, error) {
	v := d.version()
	p := New(h.Type, v)
	if p == nil {
		return nil, violation(v, h.Type, ruleProtocolViolation, secType, MalformedPacket,
			"packet type %d is reserved in %s", byte(h.Type), v)
	}
	c := cursor{b: body, v: v, t: h.Type}
	err := p.decode(&c, h.Flags, d.Side)
	if err == nil {
		return p, nil
	}
	if keepOnError(p, err) {
		return p, err
	}
	return nil, err
}

// keepOnError tells which violations come with their packet (see Decode).
func keepOnError(p Packet, err error) bool {
	vi := AsViolation(err)
	if vi == nil {
		return false
	}
	switch p.(type) {
	case *Connect:
		return vi.Reason == UnsupportedProtocolVersion || vi.Reason == ClientIdentifierNotValid
	case *Subscribe, *Unsubscribe:
		return refusable(vi)
	}
	return false
}

// DecodeInto decodes the packet at the front of b into p, which must be of
// the packet's type; it allocates nothing for a 3.x PUBLISH. It returns the
// bytes taken, ErrIncomplete, or a *Violation.
func (d *Decoder) DecodeInto(b []byte, p Packet) (int, error) {
	h, err := d.ParseHeader(b)
	if err != nil {
		return 0, err
	}
	if len(b) < h.PacketSize() {
		return 0, ErrIncomplete
	}
	if p.Type() != h.Type {
		return 0, violation(d.version(), h.Type, ruleProtocolViolation, secType, ProtocolError,
			"expected %s, got %s", p.Type(), h.Type)
	}
	body := b[h.Size:h.PacketSize()]
	if pub, ok := p.(*Publish); ok {
		return h.PacketSize(), pub.DecodeBody(h.Flags, body, d.version(), d.Side)
	}
	// A reused packet starts empty, as a new one would.
	reflect.ValueOf(p).Elem().SetZero()
	c := cursor{b: body, v: d.version(), t: h.Type}
	return h.PacketSize(), p.decode(&c, h.Flags, d.Side)
}

// Decode decodes one packet of version v from the front of b (see
// Decoder.Decode).
func Decode(b []byte, v Version) (Packet, int, error) {
	d := Decoder{Version: v}
	return d.Decode(b)
}
