package packetgen

import (
	"errors"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// cursor walks a packet body. Every read is bounds-checked against the
// remaining length, so a field that claims more bytes than are left is a
// Malformed Packet, never an out-of-range read or an allocation.
type cursor struct {
	b   []byte
	off int
	v   Version
	t   Type
}

func (c *cursor) left() int { return len(c.b) - c.off }

// short reports a field that runs past the end of the packet.
func (c *cursor) short(field string, need int) *Violation {
	return violation(c.v, c.t, ruleProtocolViolation, secRemaining, MalformedPacket,
		"%s needs %d bytes at offset %d but the remaining length leaves %d", field, need, c.off, c.left())
}

func (c *cursor) byte1(field string) (byte, error) {
	if c.left() < 1 {
		return 0, c.short(field, 1)
	}
	x := c.b[c.off]
	c.off++
	return x, nil
}

func (c *cursor) uint16(field string) (uint16, error) {
	if c.left() < 2 {
		return 0, c.short(field, 2)
	}
	x := uint16(c.b[c.off])<<8 | uint16(c.b[c.off+1])
	c.off += 2
	return x, nil
}

func (c *cursor) uint32(field string) (uint32, error) {
	if c.left() < 4 {
		return 0, c.short(field, 4)
	}
	b := c.b[c.off:]
	x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	c.off += 4
	return x, nil
}

func (c *cursor) varint(field string) (uint32, error) {
	x, n, st := parseVarint(c.b[c.off:])
	switch st {
	case varintShort:
		return 0, c.short(field, 1)
	case varintTooLong:
		return 0, violation(c.v, c.t, ruleProtocolViolation, secVarint, MalformedPacket,
			"%s at offset %d is a variable byte integer longer than 4 bytes", field, c.off)
	case varintNotMinim:
		if c.v == V5 {
			return 0, violation(c.v, c.t, rules{v5: "MQTT-1.5.5-1"}, secVarint, MalformedPacket,
				"%s at offset %d uses %d bytes for the value %d, more than the minimum", field, c.off, n, x)
		}
	}
	c.off += n
	return x, nil
}

// binary reads a Binary Data field (5.0 §1.5.6; in 3.1.1 the Will Message
// and Password, §3.1.3), aliasing the input.
func (c *cursor) binary(field string) ([]byte, error) { return c.prefixed(field, secBinary) }

// stringBytes reads the bytes of a UTF-8 string field without checking
// them, aliasing the input, for a caller that applies the UTF-8 rules and
// its own (a topic name or filter) in one pass.
func (c *cursor) stringBytes(field string) ([]byte, error) { return c.prefixed(field, secUTF8) }

// prefixed reads a two-byte length and that many bytes, aliasing the
// input. Its only failure is a field that runs past the end of the packet;
// s is the section of the field's data type. The field name is only used
// to build an error: nothing is allocated on the way through.
func (c *cursor) prefixed(field string, s sections) ([]byte, error) {
	if c.left() < 2 {
		return nil, violation(c.v, c.t, ruleProtocolViolation, s, MalformedPacket,
			"%s length needs 2 bytes at offset %d but the remaining length leaves %d", field, c.off, c.left())
	}
	n := int(c.b[c.off])<<8 | int(c.b[c.off+1])
	if c.left()-2 < n {
		return nil, violation(c.v, c.t, ruleProtocolViolation, s, MalformedPacket,
			"%s at offset %d declares %d bytes but the remaining length leaves %d", field, c.off, n, c.left()-2)
	}
	start := c.off + 2
	c.off = start + n
	return c.b[start:c.off:c.off], nil
}

// utf8Bytes reads a UTF-8 string field and checks the rules every MQTT
// string obeys (MQTT-1.5.3-1/2 in 3.1.1, MQTT-1.5.4-1/2 in 5.0) without
// allocating.
func (c *cursor) utf8Bytes(field string) ([]byte, error) {
	b, err := c.stringBytes(field)
	if err != nil {
		return nil, err
	}
	if err := c.checkUTF8(field, b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkUTF8 applies the UTF-8 string rules to the bytes of a string field.
func (c *cursor) checkUTF8(field string, b []byte) error {
	if err := topic.ValidUTF8(b, c.v == V5); err != nil {
		return utf8Violation(c.v, c.t, field, err)
	}
	return nil
}

// utf8 reads a UTF-8 string field as a Go string (a copy).
func (c *cursor) utf8(field string) (string, error) {
	b, err := c.utf8Bytes(field)
	return string(b), err
}

var (
	ruleUTF8Wellformed = rules{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}
	ruleUTF8Null       = rules{"MQTT-1.5.3-2", "MQTT-1.5.4-2"}
)

// isUTF8Rule tells the statements of the UTF-8 string rules, whose
// breach always closes the connection.
func isUTF8Rule(rule string) bool {
	switch rule {
	case ruleUTF8Wellformed.v311, ruleUTF8Wellformed.v5, ruleUTF8Null.v311, ruleUTF8Null.v5:
		return true
	}
	return false
}

// utf8Violation wraps a topic package error about a string field.
func utf8Violation(v Version, t Type, field string, err error) *Violation {
	var te *topic.Error
	if !errors.As(err, &te) {
		return violation(v, t, ruleUTF8Wellformed, secUTF8, MalformedPacket, "%s: %v", field, err)
	}
	return &Violation{Rule: te.Rule, Section: secUTF8.of(v), Reason: MalformedPacket, Packet: t, Detail: field + ": " + te.Detail}
}

// rest returns what is left of the body, aliasing the input.
func (c *cursor) rest() []byte {
	x := c.b[c.off:len(c.b):len(c.b)]
	c.off = len(c.b)
	return x
}

// done rejects bytes left over after the last field (MQTT-2.2.3 makes the
// remaining length the exact size of what follows).
func (c *cursor) done() error {
	if c.left() == 0 {
		return nil
	}
	return violation(c.v, c.t, ruleProtocolViolation, secRemaining, MalformedPacket,
		"%d unexpected bytes after the last field at offset %d", c.left(), c.off)
}

func appendUint16(dst []byte, x uint16) []byte { return append(dst, byte(x>>8), byte(x)) }

func appendUint32(dst []byte, x uint32) []byte {
	return append(dst, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
}

// AppendString appends a two-byte length and s. It does not check s: the
// caller decides whether the bytes are legal.
func AppendString(dst []byte, s string) []byte {
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// AppendBinary appends a two-byte length and b, unchecked like AppendString.
func AppendBinary(dst []byte, b []byte) []byte {
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// AppendUint16 appends x big-endian, for building bodies by hand.
func AppendUint16(dst []byte, x uint16) []byte { return appendUint16(dst, x) }

// AppendUint32 appends x big-endian, for building bodies by hand.
func AppendUint32(dst []byte, x uint32) []byte { return appendUint32(dst, x) }
