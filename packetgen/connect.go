package packetgen

import (
	"errors"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// Connect is the CONNECT packet (3.1.1 §3.1, 5.0 §3.1): the first packet a
// client sends.
type Connect struct {
	// ProtocolName is "MQTT", or "MQIsdp" for 3.1. Empty means the one
	// ProtocolLevel implies.
	ProtocolName  string
	ProtocolLevel Version
	// CleanStart is Clean Session in 3.1 and 3.1.1.
	CleanStart bool
	KeepAlive  uint16
	Properties Properties // 5.0 only
	ClientID   string
	// Will is nil when the will flag is 0.
	Will *Will
	// UsernameFlag and PasswordFlag say whether the fields are present;
	// an empty user name is not an absent one.
	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
}

// Will is the will message a CONNECT carries.
type Will struct {
	QoS        QoS
	Retain     bool
	Properties Properties // 5.0 only
	Topic      string
	Payload    []byte
}

// Connect flag bits (§3.1.2.3).
const (
	connectReserved     = 0x01
	connectCleanStart   = 0x02
	connectWillFlag     = 0x04
	connectWillQoSShift = 3
	connectWillRetain   = 0x20
	connectPassword     = 0x40
	connectUsername     = 0x80
)

func (*Connect) Type() Type    { return TypeConnect }
func (p *Connect) flags() byte { return 0 }

// Clone returns a deep copy.
func (p *Connect) Clone() Packet {
	q := *p
	q.Properties = p.Properties.clone()
	q.Password = cloneBytes(p.Password)
	if p.Will != nil {
		w := *p.Will
		w.Properties = p.Will.Properties.clone()
		w.Payload = cloneBytes(p.Will.Payload)
		q.Will = &w
	}
	return &q
}

// level is the version the packet encodes: its own when set, else v.
func (p *Connect) level(v Version) Version {
	if p.ProtocolLevel != 0 {
		return p.ProtocolLevel
	}
	return v
}

func (p *Connect) name(v Version) string {
	if p.ProtocolName != "" {
		return p.ProtocolName
	}
	return p.level(v).ProtocolName()
}

// Flags returns the connect flags byte the packet encodes to.
func (p *Connect) Flags() byte {
	var f byte
	if p.CleanStart {
		f |= connectCleanStart
	}
	if p.Will != nil {
		f |= connectWillFlag | byte(p.Will.QoS&3)<<connectWillQoSShift
		if p.Will.Retain {
			f |= connectWillRetain
		}
	}
	if p.PasswordFlag {
		f |= connectPassword
	}
	if p.UsernameFlag {
		f |= connectUsername
	}
	return f
}

func (p *Connect) bodySize(v Version) int {
	v = p.level(v)
	n := 2 + len(p.name(v)) + 1 + 1 + 2 + 2 + len(p.ClientID)
	if v == V5 {
		n += propsSize(&p.Properties)
	}
	if w := p.Will; w != nil {
		if v == V5 {
			n += propsSize(&w.Properties)
		}
		n += 2 + len(w.Topic) + 2 + len(w.Payload)
	}
	if p.UsernameFlag {
		n += 2 + len(p.Username)
	}
	if p.PasswordFlag {
		n += 2 + len(p.Password)
	}
	return n
}

func (p *Connect) appendBody(dst []byte, v Version) []byte {
	v = p.level(v)
	dst = AppendString(dst, p.name(v))
	dst = append(dst, byte(v), p.Flags())
	dst = appendUint16(dst, p.KeepAlive)
	if v == V5 {
		dst = p.Properties.appendTo(dst)
	}
	dst = AppendString(dst, p.ClientID)
	if w := p.Will; w != nil {
		if v == V5 {
			dst = w.Properties.appendTo(dst)
		}
		dst = AppendString(dst, w.Topic)
		dst = AppendBinary(dst, w.Payload)
	}
	if p.UsernameFlag {
		dst = AppendString(dst, p.Username)
	}
	if p.PasswordFlag {
		dst = AppendBinary(dst, p.Password)
	}
	return dst
}

var (
	ruleProtocolName   = rules{"MQTT-3.1.2-1", "MQTT-3.1.2-1"}
	ruleProtocolLevel  = rules{"MQTT-3.1.2-2", "MQTT-3.1.2-2"}
	ruleConnectReserve = rules{"MQTT-3.1.2-3", "MQTT-3.1.2-3"}
	ruleWillQoSNoFlag  = rules{"MQTT-3.1.2-13", "MQTT-3.1.2-11"}
	ruleWillQoS3       = rules{"MQTT-3.1.2-14", "MQTT-3.1.2-12"}
	ruleWillRetainFlag = rules{"MQTT-3.1.2-15", "MQTT-3.1.2-13"}
	rulePasswordNoUser = rules{"MQTT-3.1.2-22", ""}
	ruleEmptyClientID  = rules{"MQTT-3.1.3-8", ""}
	ruleClientIDReject = rules{"MQTT-3.1.3-9", "MQTT-3.1.3-8"}
)

// protocolOK reports whether name and level form a protocol this codec
// speaks: MQIsdp 3, MQTT 4 and MQTT 5.
func protocolOK(name string, level Version) (nameOK, levelOK bool) {
	switch name {
	case "MQIsdp":
		return true, level == V31
	case "MQTT":
		return true, level == V311 || level == V5
	}
	return false, false
}

// decode reads a CONNECT. When the protocol name or level is unknown, or
// the client identifier is refused, the returned violation comes with the
// fields decoded so far filled in, so a server can answer with the right
// CONNACK (see Decoder.Decode).
func (p *Connect) decode(c *cursor, flags byte, from Side) error {
	name, err := c.utf8("protocol name")
	if err != nil {
		return err
	}
	p.ProtocolName = name
	lv, err := c.byte1("protocol level")
	if err != nil {
		return err
	}
	p.ProtocolLevel = Version(lv)
	nameOK, levelOK := protocolOK(name, p.ProtocolLevel)
	if !nameOK {
		return violation(c.v, TypeConnect, ruleProtocolName, sec("3.1.2.1"), UnsupportedProtocolVersion,
			"protocol name %q is neither \"MQTT\" nor \"MQIsdp\"", name)
	}
	if !levelOK {
		return violation(c.v, TypeConnect, ruleProtocolLevel, sec("3.1.2.2"), UnsupportedProtocolVersion,
			"protocol level %d is not supported with protocol name %q", lv, name)
	}
	// From here on the packet's own version decides the rules.
	c.v = p.ProtocolLevel
	v := c.v
	f, err := c.byte1("connect flags")
	if err != nil {
		return err
	}
	if f&connectReserved != 0 {
		return violation(v, TypeConnect, ruleConnectReserve, sec("3.1.2.3"), MalformedPacket,
			"the reserved connect flag (bit 0) is set: flags 0x%02X", f)
	}
	p.CleanStart = f&connectCleanStart != 0
	willQoS := QoS(f >> connectWillQoSShift & 3)
	if f&connectWillFlag == 0 {
		if willQoS != 0 {
			return violation(v, TypeConnect, ruleWillQoSNoFlag, sec("3.1.2.6"), MalformedPacket,
				"will QoS is %d but the will flag is 0", willQoS)
		}
		if f&connectWillRetain != 0 {
			return violation(v, TypeConnect, ruleWillRetainFlag, sec("3.1.2.7"), MalformedPacket,
				"will retain is set but the will flag is 0")
		}
	} else if willQoS == 3 {
		return violation(v, TypeConnect, ruleWillQoS3, sec("3.1.2.6"), MalformedPacket, "will QoS is 3")
	}
	if v != V5 && f&connectPassword != 0 && f&connectUsername == 0 {
		return violation(v, TypeConnect, rulePasswordNoUser, sec("3.1.2.9"), MalformedPacket,
			"the password flag is set without the user name flag")
	}
	if p.KeepAlive, err = c.uint16("keep alive"); err != nil {
		return err
	}
	if v == V5 {
		if err := c.properties(&p.Properties, TypeConnect, from); err != nil {
			return err
		}
	}
	if p.ClientID, err = c.utf8("client identifier"); err != nil {
		return err
	}
	if f&connectWillFlag != 0 {
		w := &Will{QoS: willQoS, Retain: f&connectWillRetain != 0}
		p.Will = w
		if v == V5 {
			if err := c.properties(&w.Properties, propWill, from); err != nil {
				return err
			}
		}
		t, err := c.stringBytes("will topic")
		if err != nil {
			return promised(err, ruleWillFields, v)
		}
		// One pass checks UTF-8 and the topic name rules.
		if err := topic.ValidateName(t, v == V5); err != nil {
			return topicViolation(v, TypeConnect, "will topic", err, TopicNameInvalid)
		}
		w.Topic = string(t)
		if w.Payload, err = c.binary("will payload"); err != nil {
			return promised(err, ruleWillFields, v)
		}
	}
	if f&connectUsername != 0 {
		p.UsernameFlag = true
		b, err := c.stringBytes("user name")
		if err != nil {
			return promised(err, ruleUsernameField, v)
		}
		if err := c.checkUTF8("user name", b); err != nil {
			return err
		}
		p.Username = string(b)
	}
	if f&connectPassword != 0 {
		p.PasswordFlag = true
		if p.Password, err = c.binary("password"); err != nil {
			return promised(err, rulePasswordField, v)
		}
	}
	if err := c.done(); err != nil {
		return err
	}
	return p.checkClientID(v)
}

// checkClientID applies the client identifier rules a single CONNECT shows.
// The packet is complete when this fails, so a server can answer CONNACK
// with return code 2 / reason 0x85 and close.
func (p *Connect) checkClientID(v Version) error {
	switch v {
	case V311:
		if p.ClientID == "" && !p.CleanStart {
			return violation(v, TypeConnect, ruleEmptyClientID, sec("3.1.3.1"), ClientIdentifierNotValid,
				"an empty client identifier needs clean session 1")
		}
	case V31:
		// 3.1 §3.1 payload: the identifier is 1 to 23 characters.
		if n := len(p.ClientID); n == 0 || n > 23 {
			return violation(v, TypeConnect, ruleClientIDReject, sec("3.1.3.1"), ClientIdentifierNotValid,
				"a 3.1 client identifier must be 1 to 23 characters, this one has %d bytes", n)
		}
	}
	return nil
}

func (p *Connect) validate(v Version, from Side) error {
	v = p.level(v)
	if nameOK, levelOK := protocolOK(p.name(v), v); !nameOK || !levelOK {
		return violation(v, TypeConnect, ruleProtocolLevel, sec("3.1.2.2"), UnsupportedProtocolVersion,
			"protocol %q level %d is not one this codec speaks", p.name(v), byte(v))
	}
	if p.PasswordFlag && !p.UsernameFlag && v != V5 {
		return violation(v, TypeConnect, rulePasswordNoUser, sec("3.1.2.9"), MalformedPacket,
			"the password flag is set without the user name flag")
	}
	if err := checkField(v, TypeConnect, "client identifier", p.ClientID); err != nil {
		return err
	}
	if v == V5 {
		if err := p.Properties.validate(v, TypeConnect, from); err != nil {
			return err
		}
	} else if !p.Properties.Empty() {
		return noProps(v, TypeConnect)
	}
	if w := p.Will; w != nil {
		if w.QoS > 2 {
			return violation(v, TypeConnect, ruleWillQoS3, sec("3.1.2.6"), MalformedPacket, "will QoS is %d", w.QoS)
		}
		if err := topic.ValidateName(w.Topic, v == V5); err != nil {
			return topicViolation(v, TypeConnect, "will topic", err, TopicNameInvalid)
		}
		if len(w.Payload) > MaxStringLength {
			return tooLong(v, TypeConnect, "will payload", len(w.Payload))
		}
		if v == V5 {
			if err := w.Properties.validate(v, propWill, from); err != nil {
				return err
			}
		} else if !w.Properties.Empty() {
			return noProps(v, TypeConnect)
		}
	}
	if p.UsernameFlag {
		if err := checkField(v, TypeConnect, "user name", p.Username); err != nil {
			return err
		}
	}
	if len(p.Password) > MaxStringLength {
		return tooLong(v, TypeConnect, "password", len(p.Password))
	}
	if !p.PasswordFlag && len(p.Password) > 0 || !p.UsernameFlag && p.Username != "" {
		return violation(v, TypeConnect, ruleProtocolViolation, sec("3.1.2.8"), MalformedPacket,
			"a user name or password is set but its flag is 0")
	}
	return p.checkClientID(v)
}

// The payload fields a connect flag promises (MQTT-3.1.2-9, -19, -21 in
// 3.1.1; -9, -17, -19 in 5.0).
var (
	ruleWillFields    = rules{"MQTT-3.1.2-9", "MQTT-3.1.2-9"}
	ruleUsernameField = rules{"MQTT-3.1.2-19", "MQTT-3.1.2-17"}
	rulePasswordField = rules{"MQTT-3.1.2-21", "MQTT-3.1.2-19"}
)

// promised names the flag's statement when a field the flag promises is
// missing: err is the overrun of reading it (the packet ends where the
// field should be).
func promised(err error, r rules, v Version) error {
	if vi := AsViolation(err); vi != nil {
		vi.Rule = r.of(v)
	}
	return err
}

func noProps(v Version, t Type) error {
	return violation(v, t, ruleProtocolViolation, secProperties, MalformedPacket,
		"properties exist only in MQTT 5.0, not in %s", v)
}

func tooLong(v Version, t Type, field string, n int) error {
	return violation(v, t, ruleProtocolViolation, secBinary, MalformedPacket,
		"%s is %d bytes, more than %d", field, n, MaxStringLength)
}

// topicViolation turns a topic package error into a Violation. The UTF-8
// rules always make a Malformed Packet; in 3.1.1, which has no reason
// codes, so does everything but an invalid filter (which a server may
// refuse in SUBACK).
func topicViolation(v Version, t Type, field string, err error, reason ReasonCode) error {
	var te *topic.Error
	if !errors.As(err, &te) {
		return err
	}
	section := "4.7"
	switch {
	case isUTF8Rule(te.Rule):
		reason, section = MalformedPacket, secUTF8.of(v)
	case strings.HasPrefix(te.Rule, "MQTT-4.8.2-"):
		section = "4.8.2" // shared subscriptions, which only 5.0 parses
	case v != V5 && reason != TopicFilterInvalid:
		reason = MalformedPacket
	}
	return &Violation{Rule: te.Rule, Section: section, Reason: reason, Packet: t, Detail: field + ": " + te.Detail}
}

// propsSize is the encoded size of a property block with its length.
func propsSize(p *Properties) int {
	n := p.size()
	return VarintLen(uint32(n)) + n
}
