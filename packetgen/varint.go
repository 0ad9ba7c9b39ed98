package packetgen

// Variable Byte Integer (3.1.1 §2.2.3, 5.0 §1.5.5): seven bits a byte,
// least significant group first, high bit set on every byte but the last,
// at most four bytes.

// AppendVarint appends x in the minimal encoding. x must be at most
// MaxRemainingLength; larger values are the caller's bug.
func AppendVarint(dst []byte, x uint32) []byte {
	for x >= 0x80 {
		dst = append(dst, byte(x)|0x80)
		x >>= 7
	}
	return append(dst, byte(x))
}

// AppendVarintN appends x padded to exactly n bytes (n may exceed four),
// the non-minimal and over-long encodings the specification forbids. A
// value that needs more than n bytes is truncated to its low 7n bits.
func AppendVarintN(dst []byte, x uint64, n int) []byte {
	for i := 0; i < n; i++ {
		b := byte(x & 0x7F)
		x >>= 7
		if i < n-1 {
			b |= 0x80
		}
		dst = append(dst, b)
	}
	return dst
}

// VarintLen is the number of bytes the minimal encoding of x takes.
func VarintLen(x uint32) int {
	switch {
	case x < 1<<7:
		return 1
	case x < 1<<14:
		return 2
	case x < 1<<21:
		return 3
	}
	return 4
}

// varintState says how parsing a varint from a prefix went.
type varintState byte

const (
	varintOK       varintState = iota
	varintShort                // the prefix ends before the last byte
	varintTooLong              // a fifth byte would be needed
	varintNotMinim             // a trailing 0x80..0x00 group: more bytes than the value needs
)

// parseVarint reads a varint from the front of b. It never reads past the
// fourth byte, so five bytes such as FF FF FF FF 7F fail at once.
func parseVarint(b []byte) (x uint32, n int, st varintState) {
	var shift uint
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, varintShort
		}
		c := b[i]
		x |= uint32(c&0x7F) << shift
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				// The last group is zero: the value fitted in fewer bytes.
				return x, i + 1, varintNotMinim
			}
			return x, i + 1, varintOK
		}
		shift += 7
	}
	return 0, 4, varintTooLong
}
