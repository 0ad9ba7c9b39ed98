package packetgen

import (
	"errors"
	"fmt"
)

// Violation is a rule of the specification a packet breaks. Every decode
// and strict-encode failure is a *Violation; match it with errors.As.
type Violation struct {
	// Rule is the normative statement the packet breaks, for example
	// "MQTT-3.8.1-1". Where the specification states a requirement without
	// numbering it (property duplicates, for instance) Rule names the
	// numbered statement that makes the receiver close the connection
	// (MQTT-4.8.0-1 in 3.1.1, MQTT-4.13.1-1 in 5.0) and Section points at
	// the unnumbered text.
	Rule string
	// Section is the specification section that defines the broken
	// structure, for example "3.8.3.1".
	Section string
	// Reason is what a 5.0 receiver reports: MalformedPacket (0x81) or
	// ProtocolError (0x82) mostly; UnsupportedProtocolVersion,
	// ClientIdentifierNotValid, PacketTooLarge, TopicNameInvalid and
	// TopicFilterInvalid where the specification asks for them.
	Reason ReasonCode
	// Packet is the type being decoded (TypeReserved before it is known).
	Packet Type
	// Detail says, in one line, what is wrong and where.
	Detail string
}

func (v *Violation) Error() string {
	sec := ""
	if v.Section != "" {
		sec = " (§" + v.Section + ")"
	}
	return fmt.Sprintf("%s%s %s: %s: %s", v.Rule, sec, v.Reason, v.Packet, v.Detail)
}

// AsViolation returns the *Violation in err's chain, or nil.
func AsViolation(err error) *Violation {
	var v *Violation
	if errors.As(err, &v) {
		return v
	}
	return nil
}

// ErrIncomplete is returned by Decode when b holds only the start of a
// packet: read more bytes and call again. It is not a violation.
var ErrIncomplete = errors.New("packetgen: incomplete packet")

// rules picks the statement ID for the version in use. MQTT 5.0 renumbered
// most statements, so each check names both.
type rules struct{ v311, v5 string }

func (r rules) of(v Version) string {
	if v == V5 {
		return r.v5
	}
	return r.v311
}

// Generic closing rules used where the specification states a requirement
// without numbering it.
var ruleProtocolViolation = rules{"MQTT-4.8.0-1", "MQTT-4.13.1-1"}

func violation(v Version, t Type, r rules, section string, reason ReasonCode, format string, args ...any) *Violation {
	return &Violation{
		Rule:    r.of(v),
		Section: section,
		Reason:  reason,
		Packet:  t,
		Detail:  fmt.Sprintf(format, args...),
	}
}
