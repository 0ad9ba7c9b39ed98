package topic

import "strconv"

// sharePrefix marks a 5.0 shared subscription filter (section 4.8.2).
const sharePrefix = "$share/"

// IsShared reports whether filter has the form of an MQTT 5.0 shared
// subscription, "$share/{ShareName}/{filter}", that is whether it starts with
// "$share/". It says nothing about validity: call ParseShared for that. In
// 3.1.1 such a filter is an ordinary one, so ask only for 5.0 sessions.
func IsShared[T Text](filter T) bool {
	return len(filter) >= len(sharePrefix) && string(filter[:len(sharePrefix)]) == sharePrefix
}

// ParseShared splits a 5.0 shared subscription filter
// "$share/{ShareName}/{filter}" into its ShareName (group) and the topic
// filter after it (inner), checking both (section 4.8.2): the whole string is
// at most 65,535 bytes of valid UTF-8 with no U+0000, it starts with
// "$share/" and the ShareName is at least one character (MQTT-4.8.2-1), the
// ShareName contains no '/', '+' or '#' and is followed by '/' and a valid
// topic filter (MQTT-4.8.2-2, then the section 4.7 rules for the filter).
// The encoding is checked first, over the whole string: a fault there
// closes the connection (MQTT-1.5.4-1, MQTT-1.5.4-2) and so outranks every
// structural fault, wherever it sits. Errors carry 5.0 statement IDs, since
// only 5.0 has shared subscriptions, and byte offsets into the whole
// string. group and inner alias filter.
func ParseShared(filter string) (group, inner string, err error) {
	if len(filter) > MaxLength {
		return "", "", checkLength(filter, true) // MQTT-4.7.3-3
	}
	if e := scan(filter, 0, true, kindString); e != nil {
		return "", "", e // MQTT-1.5.4-1 / MQTT-1.5.4-2 (MQTT-4.7.3-2)
	}
	if !IsShared(filter) {
		return "", "", newError(ruleShareName, "a shared subscription must start with \"$share/\": "+quote(filter)) // MQTT-4.8.2-1
	}
	rest := filter[len(sharePrefix):]
	n := 0
	for n < len(rest) && rest[n] != '/' {
		n++
	}
	if n == 0 {
		return "", "", newError(ruleShareName, "the ShareName must be at least one character long: "+quote(filter)) // MQTT-4.8.2-1
	}
	group = rest[:n]
	for i := len(sharePrefix); i < len(sharePrefix)+n; i++ {
		// A multi-byte sequence never contains an ASCII byte, so a byte
		// test is exact on the well-formed string.
		if c := filter[i]; c == '+' || c == '#' {
			return "", "", newError(ruleShareSyntax, "the ShareName must not contain "+strconv.QuoteRune(rune(c))+", found"+atByte(filter, i)) // MQTT-4.8.2-2
		}
	}
	if n == len(rest) {
		return "", "", newError(ruleShareSyntax, "the ShareName must be followed by \"/\" and a topic filter: "+quote(filter)) // MQTT-4.8.2-2
	}
	start := len(sharePrefix) + n + 1
	if start == len(filter) {
		return "", "", newError(ruleShareSyntax, "the \"/\" after the ShareName must be followed by a topic filter: "+quote(filter)) // MQTT-4.8.2-2
	}
	if e := scan(filter, start, true, kindFilter); e != nil {
		return "", "", e // section 4.7 rules for {filter}
	}
	return group, filter[start:], nil
}
