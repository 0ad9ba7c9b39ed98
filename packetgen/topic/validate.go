package topic

import "strconv"

// ValidateName checks a topic name as carried by PUBLISH or as a Will Topic
// (section 4.7): at least one byte, at most 65,535 bytes, well-formed UTF-8,
// no U+0000 and no wildcard character. v5 selects the statement IDs of MQTT
// 5.0 instead of 3.1.1. The only error it returns is an *Error; when the
// name breaks both an encoding rule and a wildcard rule, the encoding fault
// is the one reported, wherever it sits.
//
// The zero-length topic name that 5.0 allows together with a Topic Alias is
// the codec's concern: resolve the alias first, then validate.
func ValidateName[T Text](name T, v5 bool) error {
	if e := checkLength(name, v5); e != nil {
		return e
	}
	if e := scan(name, 0, v5, kindName); e != nil {
		return e
	}
	return nil
}

// ValidateFilter checks a topic filter as carried by SUBSCRIBE or
// UNSUBSCRIBE (section 4.7): the rules of ValidateName, except that '+' may
// stand as a whole level and '#' as the whole last level. As there, an
// encoding fault outranks a misplaced wildcard. It does not treat
// "$share/" specially: for a 5.0 shared subscription call ParseShared, which
// checks the ShareName and then the filter after it.
func ValidateFilter[T Text](filter T, v5 bool) error {
	if e := checkLength(filter, v5); e != nil {
		return e
	}
	if e := scan(filter, 0, v5, kindFilter); e != nil {
		return e
	}
	return nil
}

// Levels returns the number of levels in a topic name or filter: one more
// than the number of '/' separators, since adjacent, leading and trailing
// separators delimit zero-length levels (4.7.1.1). The empty string is not a
// topic and has 0 levels.
func Levels[T Text](s T) int {
	if len(s) == 0 {
		return 0
	}
	n := 1
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			n++
		}
	}
	return n
}

func checkLength[T Text](s T, v5 bool) *Error {
	if len(s) == 0 {
		return newError(ruleEmpty.id(v5), "a topic name or filter must be at least one character long") // MQTT-4.7.3-1
	}
	if len(s) > MaxLength {
		return newError(ruleLength.id(v5), "topic is "+strconv.Itoa(len(s))+" bytes, more than 65535: "+quote(s)) // MQTT-4.7.3-3
	}
	return nil
}

// kind says which rules scan applies on top of the UTF-8 ones.
type kind uint8

const (
	kindString kind = iota // any UTF-8 string: only section 1.5.3 / 1.5.4
	kindName               // topic name: no wildcards at all
	kindFilter             // topic filter: wildcards in their places
)

// Byte classes for scan, so the common case (an ordinary ASCII byte) costs
// one table load and one branch.
const (
	classPlain   = iota // ASCII other than the three below
	classSpecial        // U+0000, '+', '#'
	classHigh           // first byte of a multi-byte sequence, or junk
)

var classes = func() (t [256]uint8) {
	for i := 0x80; i < 256; i++ {
		t[i] = classHigh
	}
	t[0], t['+'], t['#'] = classSpecial, classSpecial, classSpecial
	return t
}()

// scan applies the UTF-8 rules, and for names and filters the section 4.7
// rules, to s[from:]. Offsets in the Detail are from the start of s, so
// ParseShared can check the filter after the ShareName and still point into
// the whole string.
//
// An encoding fault (ill-formed UTF-8, an encoded surrogate, U+0000) is
// reported wherever it sits, even after a misplaced wildcard: it obliges the
// receiver to close the connection (MQTT-1.5.3-1/2, MQTT-1.5.4-1/2), while
// a wildcard fault in a filter may be refused in SUBACK and the connection
// kept. So the first wildcard fault is only remembered, and reported once
// the whole string has been found well encoded.
func scan[T Text](s T, from int, v5 bool, k kind) *Error {
	misplaced, fault := -1, noFault // the first wildcard fault and where
	for i := from; i < len(s); {
		c := s[i]
		switch classes[c] {
		case classPlain:
			i++
			continue
		case classHigh:
			n := seqLen(s, i)
			if n == 0 {
				return utf8Error(s, i, v5) // MQTT-1.5.3-1 / MQTT-1.5.4-1
			}
			i += n
			continue
		}
		if c == 0 {
			what := "U+0000"
			if k != kindString {
				// MQTT-4.7.3-2 restates for topics the rule of 1.5.3 /
				// 1.5.4; the latter is the statement that obliges a
				// receiver to close the connection, so it is the one
				// reported.
				what = "a topic must not contain U+0000, found"
			}
			return newError(ruleUTF8Null.id(v5), what+atByte(s, i)) // MQTT-1.5.3-2 / MQTT-1.5.4-2 (MQTT-4.7.3-2)
		}
		if misplaced < 0 && k != kindString {
			if fault = checkWildcard(s, from, i, k); fault != noFault {
				misplaced = i
			}
		}
		i++
	}
	if misplaced >= 0 {
		return wildcardError(s, misplaced, v5, fault)
	}
	return nil
}

// wildcardFault is the section 4.7 rule a wildcard breaks, if any.
type wildcardFault uint8

const (
	noFault        wildcardFault = iota
	faultInName                  // MQTT-4.7.1-1 / MQTT-4.7.0-1
	faultHashAfter               // '#' not first nor after '/': MQTT-4.7.1-2 / MQTT-4.7.1-1
	faultHashLast                // '#' not the last character
	faultPlus                    // '+' not a whole level: MQTT-4.7.1-3 / MQTT-4.7.1-2
)

// checkWildcard finds the rule the wildcard s[i] breaks for k. It builds
// nothing, so wildcards in a valid filter cost no allocation.
func checkWildcard[T Text](s T, from, i int, k kind) wildcardFault {
	switch {
	case k == kindName:
		return faultInName
	case s[i] == '#' && i > from && s[i-1] != '/':
		return faultHashAfter
	case s[i] == '#' && i+1 != len(s):
		return faultHashLast
	case s[i] == '+' && ((i > from && s[i-1] != '/') || (i+1 < len(s) && s[i+1] != '/')):
		return faultPlus
	}
	return noFault
}

// wildcardError describes fault f of the wildcard at s[i].
func wildcardError[T Text](s T, i int, v5 bool, f wildcardFault) *Error {
	switch f {
	case faultInName:
		return newError(ruleNameWildcard.id(v5), "a topic name must not contain the wildcard "+strconv.QuoteRune(rune(s[i]))+", found"+atByte(s, i)) // MQTT-4.7.1-1 / MQTT-4.7.0-1
	case faultHashAfter:
		return newError(ruleHash.id(v5), `"#" must be on its own or follow "/", found`+atByte(s, i)) // MQTT-4.7.1-2 / MQTT-4.7.1-1
	case faultHashLast:
		return newError(ruleHash.id(v5), `"#" must be the last character of the filter, found`+atByte(s, i)) // MQTT-4.7.1-2 / MQTT-4.7.1-1
	}
	return newError(rulePlus.id(v5), `"+" must occupy an entire level, found`+atByte(s, i)) // MQTT-4.7.1-3 / MQTT-4.7.1-2
}

// atByte ends a Detail line: where in s the offending byte is.
func atByte[T Text](s T, i int) string { return " at byte " + strconv.Itoa(i) + " of " + quote(s) }
