package packetgen

// Frame is a packet as raw parts, for writing what the specification
// forbids: a remaining length that lies or is padded past four bytes, any
// type and flag nibble, a truncated body, trailing garbage. Build one with
// FrameOf and change what should be wrong; Append writes it as it is.
type Frame struct {
	// Header is the first byte: packet type << 4 | flags.
	Header byte
	// Body is everything after the remaining length.
	Body []byte
	// Length is the declared remaining length; LengthAuto means len(Body).
	Length int64
	// LengthBytes forces the remaining length into this many varint bytes
	// (more than needed is non-minimal; five or more is malformed). 0 means
	// the minimal encoding, which must then fit in four bytes.
	LengthBytes int
}

// LengthAuto makes a Frame declare the true length of its body.
const LengthAuto = -1

// FrameOf returns p encoded as v, unchecked, as a Frame to tamper with.
func FrameOf(p Packet, v Version) Frame {
	if v == 0 {
		v = V311
	}
	if c, ok := p.(*Connect); ok {
		v = c.level(v)
	}
	return Frame{
		Header: byte(p.Type())<<4 | p.flags(),
		Body:   p.appendBody(nil, v),
		Length: LengthAuto,
	}
}

// Type is the packet type nibble.
func (f Frame) Type() Type { return Type(f.Header >> 4) }

// WithType returns f with another type nibble, the flags kept.
func (f Frame) WithType(t Type) Frame { f.Header = byte(t)<<4 | f.Header&0x0F; return f }

// WithFlags returns f with another flags nibble.
func (f Frame) WithFlags(flags byte) Frame { f.Header = f.Header&0xF0 | flags&0x0F; return f }

// WithLength returns f declaring n bytes of body whatever it holds.
func (f Frame) WithLength(n int64) Frame { f.Length = n; return f }

// WithLengthBytes returns f with its remaining length padded to n bytes.
func (f Frame) WithLengthBytes(n int) Frame { f.LengthBytes = n; return f }

// Truncated returns f with only the first n bytes of its body but the
// length it declared before: a receiver waits for bytes that never come.
func (f Frame) Truncated(n int) Frame {
	if f.Length == LengthAuto {
		f.Length = int64(len(f.Body))
	}
	f.Body = f.Body[:min(n, len(f.Body)):min(n, len(f.Body))]
	return f
}

// Cut returns f with its body cut to n bytes and the length telling the
// truth: the fields inside run past the end of the packet.
func (f Frame) Cut(n int) Frame {
	f.Body = f.Body[:min(n, len(f.Body)):min(n, len(f.Body))]
	f.Length = LengthAuto
	return f
}

// WithTrailing returns f with extra bytes after its last field, counted in
// the remaining length.
func (f Frame) WithTrailing(b ...byte) Frame {
	f.Body = append(f.Body[:len(f.Body):len(f.Body)], b...)
	f.Length = LengthAuto
	return f
}

// Patch returns f with body bytes from off on overwritten by b (the body
// grows if needed). It is how a single field is made to lie, such as a
// string length prefix.
func (f Frame) Patch(off int, b ...byte) Frame {
	body := append([]byte(nil), f.Body...)
	for len(body) < off+len(b) {
		body = append(body, 0)
	}
	copy(body[off:], b)
	f.Body = body
	return f
}

// Append appends the frame exactly as described.
func (f Frame) Append(dst []byte) []byte {
	dst = append(dst, f.Header)
	n := f.Length
	if n == LengthAuto {
		n = int64(len(f.Body))
	}
	if f.LengthBytes > 0 {
		dst = AppendVarintN(dst, uint64(n), f.LengthBytes)
	} else {
		dst = AppendVarint(dst, uint32(n))
	}
	return append(dst, f.Body...)
}

// Bytes returns the frame's encoding.
func (f Frame) Bytes() []byte { return f.Append(nil) }

// AppendRawProperty appends one property as an identifier byte and raw
// value bytes, for Properties.Raw: duplicates, unknown identifiers and
// values of the wrong type are all possible.
func AppendRawProperty(dst []byte, id byte, value ...byte) []byte {
	return append(append(dst, id), value...)
}
