package topic

// ValidUTF8 checks the rules every MQTT UTF-8 string obeys (3.1.1 section
// 1.5.3, 5.0 section 1.5.4): well-formed UTF-8 with no encoded surrogates
// (MQTT-1.5.3-1 / MQTT-1.5.4-1) and no U+0000 (MQTT-1.5.3-2 / MQTT-1.5.4-2).
// It does not check the length: a string of more than 65,535 bytes cannot be
// encoded at all, which is the codec's business. Code points the
// specification only discourages (U+0001..U+001F, U+007F..U+009F,
// non-characters such as U+FFFF) are accepted, and U+FEFF is an ordinary
// character that must not be stripped (MQTT-1.5.3-3), so it is too.
func ValidUTF8[T Text](s T, v5 bool) error {
	if e := scan(s, 0, v5, kindString); e != nil {
		return e
	}
	return nil
}

// seqLen returns the length of the well-formed UTF-8 sequence that starts
// with the non-ASCII byte s[i], or 0 if it is ill-formed. It is the table of
// well-formed byte sequences in Unicode chapter 3 (Table 3-7), restated in
// RFC 3629 section 4: it refuses over-long forms (C0, C1, E0 80..9F, F0
// 80..8F), code points above U+10FFFF (F4 90.., F5..FF), stray continuation
// bytes, truncated sequences and the surrogates U+D800..U+DFFF (ED A0..BF),
// which MQTT-1.5.3-1 names explicitly. We keep our own table rather than
// call unicode/utf8 so that it works on either Text shape without a
// conversion, and so the surrogate rule is visible here rather than implied.
func seqLen[T Text](s T, i int) int {
	c := s[i]
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	n := 0
	switch {
	case c >= 0xC2 && c <= 0xDF:
		n = 2
	case c == 0xE0:
		n, lo = 3, 0xA0 // E0 80..9F would be over-long
	case c == 0xED:
		n, hi = 3, 0x9F // ED A0..BF encodes U+D800..U+DFFF (MQTT-1.5.3-1)
	case c >= 0xE1 && c <= 0xEF:
		n = 3
	case c == 0xF0:
		n, lo = 4, 0x90 // F0 80..8F would be over-long
	case c >= 0xF1 && c <= 0xF3:
		n = 4
	case c == 0xF4:
		n, hi = 4, 0x8F // F4 90.. is above U+10FFFF
	default:
		return 0 // 80..BF (continuation), C0, C1, F5..FF
	}
	if len(s)-i < n {
		return 0
	}
	if b := s[i+1]; b < lo || b > hi {
		return 0
	}
	for k := 2; k < n; k++ {
		if b := s[i+k]; b < 0x80 || b > 0xBF {
			return 0
		}
	}
	return n
}

// utf8Error describes the ill-formed sequence at s[i].
func utf8Error[T Text](s T, i int, v5 bool) *Error {
	what := "ill-formed UTF-8 (byte 0x" + hex2(s[i]) + ")"
	if s[i] == 0xED && i+1 < len(s) && s[i+1] >= 0xA0 && s[i+1] <= 0xBF {
		what = "an encoded surrogate (U+D800..U+DFFF)"
	}
	return newError(ruleUTF8.id(v5), what+atByte(s, i))
}

func hex2(b byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&15]})
}
