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
	// structure, in the numbering of the version being decoded: 5.0
	// renumbered chapters 1 and 2, so an ill-formed string is §1.5.3 in
	// 3.1.1 but §1.5.4 in 5.0, a wrong remaining length §2.2.3 but §2.1.4.
	// 3.1 packets cite 3.1.1 sections, as they cite 3.1.1 statements.
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

// sections names one part of the specification in each version's
// numbering, as rules does for statements.
type sections struct{ v311, v5 string }

func (s sections) of(v Version) string {
	if v == V5 {
		return s.v5
	}
	return s.v311
}

// sec is a section numbered alike in both versions (most of chapter 3), or
// cited only for the one version its check runs in.
func sec(s string) sections { return sections{s, s} }

// The sections 5.0 renumbered.
var (
	// UTF-8 strings: 3.1.1 §1.5.3, 5.0 §1.5.4.
	secUTF8 = sections{"1.5.3", "1.5.4"}
	// Binary Data, §1.5.6, exists only in 5.0; 3.1.1 has binary fields
	// only in the CONNECT payload (Will Message §3.1.3.3, Password
	// §3.1.3.5), which §3.1.3 describes.
	secBinary = sections{"3.1.3", "1.5.6"}
	// The variable length integer: 3.1.1 describes it under Remaining
	// Length (§2.2.3), 5.0 as the Variable Byte Integer (§1.5.5).
	secVarint    = sections{"2.2.3", "1.5.5"}
	secType      = sections{"2.2.1", "2.1.2"}
	secFlags     = sections{"2.2.2", "2.1.3"}
	secRemaining = sections{"2.2.3", "2.1.4"}
	secPacketID  = sections{"2.3.1", "2.2.1"}
	// Properties exist only in 5.0 (§2.2.2); a 3.1.1 packet that carries
	// them breaks the layout of its variable header (§2.3).
	secProperties = sections{"2.3", "2.2.2"}
	// Subscription options: 3.1.1 defines only the Requested QoS, in the
	// SUBSCRIBE payload (§3.8.3); 5.0 gives the options byte §3.8.3.1.
	secSubscribeOptions = sections{"3.8.3", "3.8.3.1"}
	// Session Present: 3.1.1 §3.2.2.2, 5.0 §3.2.2.1.1 (§3.2.2.2 is the
	// Connect Reason Code there).
	secSessionPresent = sections{"3.2.2.2", "3.2.2.1.1"}
)

// typeSection is the chapter of packet type t, numbered alike in both
// versions: CONNECT is §3.1, PUBACK §3.4, AUTH §3.15.
func typeSection(t Type) sections { return sec(fmt.Sprintf("3.%d", byte(t))) }

func violation(v Version, t Type, r rules, s sections, reason ReasonCode, format string, args ...any) *Violation {
	return &Violation{
		Rule:    r.of(v),
		Section: s.of(v),
		Reason:  reason,
		Packet:  t,
		Detail:  fmt.Sprintf(format, args...),
	}
}
