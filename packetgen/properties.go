package packetgen

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// PropID is an MQTT 5.0 property identifier (§2.2.2.2).
type PropID byte

// Property identifiers, table 2-4.
const (
	PropPayloadFormatIndicator          PropID = 0x01
	PropMessageExpiryInterval           PropID = 0x02
	PropContentType                     PropID = 0x03
	PropResponseTopic                   PropID = 0x08
	PropCorrelationData                 PropID = 0x09
	PropSubscriptionIdentifier          PropID = 0x0B
	PropSessionExpiryInterval           PropID = 0x11
	PropAssignedClientIdentifier        PropID = 0x12
	PropServerKeepAlive                 PropID = 0x13
	PropAuthenticationMethod            PropID = 0x15
	PropAuthenticationData              PropID = 0x16
	PropRequestProblemInformation       PropID = 0x17
	PropWillDelayInterval               PropID = 0x18
	PropRequestResponseInformation      PropID = 0x19
	PropResponseInformation             PropID = 0x1A
	PropServerReference                 PropID = 0x1C
	PropReasonString                    PropID = 0x1F
	PropReceiveMaximum                  PropID = 0x21
	PropTopicAliasMaximum               PropID = 0x22
	PropTopicAlias                      PropID = 0x23
	PropMaximumQoS                      PropID = 0x24
	PropRetainAvailable                 PropID = 0x25
	PropUserProperty                    PropID = 0x26
	PropMaximumPacketSize               PropID = 0x27
	PropWildcardSubscriptionAvailable   PropID = 0x28
	PropSubscriptionIdentifierAvailable PropID = 0x29
	PropSharedSubscriptionAvailable     PropID = 0x2A
)

// PropType is the data type of a property value (§1.5).
type PropType byte

const (
	PropByte PropType = iota + 1
	PropUint16
	PropUint32
	PropVarint
	PropString
	PropBinary
	PropStringPair
)

// propWill marks the will properties of CONNECT, which have their own set.
// Type 0 is never a real packet, so its bit is free.
const propWill = TypeReserved

type propInfo struct {
	name    string
	typ     PropType
	allowed uint16 // bit per Type; bit 0 means will properties
	bool01  bool   // value must be 0 or 1 (a Protocol Error otherwise)
	nonZero bool   // value 0 is a Protocol Error
}

func inPackets(ts ...Type) (m uint16) {
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

// propTable is table 2-4 of the 5.0 specification: each identifier's name,
// type and the packets it may appear in.
var propTable = [0x2B]propInfo{
	PropPayloadFormatIndicator:          {"Payload Format Indicator", PropByte, inPackets(TypePublish, propWill), true, false},
	PropMessageExpiryInterval:           {"Message Expiry Interval", PropUint32, inPackets(TypePublish, propWill), false, false},
	PropContentType:                     {"Content Type", PropString, inPackets(TypePublish, propWill), false, false},
	PropResponseTopic:                   {"Response Topic", PropString, inPackets(TypePublish, propWill), false, false},
	PropCorrelationData:                 {"Correlation Data", PropBinary, inPackets(TypePublish, propWill), false, false},
	PropSubscriptionIdentifier:          {"Subscription Identifier", PropVarint, inPackets(TypePublish, TypeSubscribe), false, true},
	PropSessionExpiryInterval:           {"Session Expiry Interval", PropUint32, inPackets(TypeConnect, TypeConnack, TypeDisconnect), false, false},
	PropAssignedClientIdentifier:        {"Assigned Client Identifier", PropString, inPackets(TypeConnack), false, false},
	PropServerKeepAlive:                 {"Server Keep Alive", PropUint16, inPackets(TypeConnack), false, false},
	PropAuthenticationMethod:            {"Authentication Method", PropString, inPackets(TypeConnect, TypeConnack, TypeAuth), false, false},
	PropAuthenticationData:              {"Authentication Data", PropBinary, inPackets(TypeConnect, TypeConnack, TypeAuth), false, false},
	PropRequestProblemInformation:       {"Request Problem Information", PropByte, inPackets(TypeConnect), true, false},
	PropWillDelayInterval:               {"Will Delay Interval", PropUint32, inPackets(propWill), false, false},
	PropRequestResponseInformation:      {"Request Response Information", PropByte, inPackets(TypeConnect), true, false},
	PropResponseInformation:             {"Response Information", PropString, inPackets(TypeConnack), false, false},
	PropServerReference:                 {"Server Reference", PropString, inPackets(TypeConnack, TypeDisconnect), false, false},
	PropReasonString:                    {"Reason String", PropString, inPackets(TypeConnack, TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeSuback, TypeUnsuback, TypeDisconnect, TypeAuth), false, false},
	PropReceiveMaximum:                  {"Receive Maximum", PropUint16, inPackets(TypeConnect, TypeConnack), false, true},
	PropTopicAliasMaximum:               {"Topic Alias Maximum", PropUint16, inPackets(TypeConnect, TypeConnack), false, false},
	PropTopicAlias:                      {"Topic Alias", PropUint16, inPackets(TypePublish), false, true},
	PropMaximumQoS:                      {"Maximum QoS", PropByte, inPackets(TypeConnack), true, false},
	PropRetainAvailable:                 {"Retain Available", PropByte, inPackets(TypeConnack), true, false},
	PropUserProperty:                    {"User Property", PropStringPair, inPackets(TypeConnect, TypeConnack, TypePublish, propWill, TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeSubscribe, TypeSuback, TypeUnsubscribe, TypeUnsuback, TypeDisconnect, TypeAuth), false, false},
	PropMaximumPacketSize:               {"Maximum Packet Size", PropUint32, inPackets(TypeConnect, TypeConnack), false, true},
	PropWildcardSubscriptionAvailable:   {"Wildcard Subscription Available", PropByte, inPackets(TypeConnack), true, false},
	PropSubscriptionIdentifierAvailable: {"Subscription Identifier Available", PropByte, inPackets(TypeConnack), true, false},
	PropSharedSubscriptionAvailable:     {"Shared Subscription Available", PropByte, inPackets(TypeConnack), true, false},
}

func (id PropID) info() (propInfo, bool) {
	if int(id) < len(propTable) && propTable[id].typ != 0 {
		return propTable[id], true
	}
	return propInfo{}, false
}

// String returns the property's name in the specification.
func (id PropID) String() string {
	if in, ok := id.info(); ok {
		return in.name
	}
	return fmt.Sprintf("property 0x%02X", byte(id))
}

// Type returns the property's data type, 0 for an unknown identifier.
func (id PropID) Type() PropType { in, _ := id.info(); return in.typ }

// AllowedIn reports whether the property may appear in packets of type t.
// Pass TypeReserved for the will properties of CONNECT.
func (id PropID) AllowedIn(t Type) bool {
	in, ok := id.info()
	return ok && in.allowed&(1<<t) != 0
}

// PropIDs lists every property identifier in ascending order.
func PropIDs() []PropID {
	var ids []PropID
	for i := range propTable {
		if propTable[i].typ != 0 {
			ids = append(ids, PropID(i))
		}
	}
	return ids
}

// PropSet is a set of property identifiers, one bit each.
type PropSet uint64

// Has reports whether id is in the set.
func (s PropSet) Has(id PropID) bool { return id < 64 && s&(1<<id) != 0 }

// Len is the number of identifiers in the set.
func (s PropSet) Len() int { return bits.OnesCount64(uint64(s)) }

// UserProperty is one name-value pair (0x26); it may repeat and its order is
// kept.
type UserProperty struct {
	Key, Value string
}

// Properties holds the MQTT 5.0 properties of one packet (or of a will).
// A property is present when its bit is in Present: zero is a meaningful
// value for many of them, so presence cannot be told from the value. Set
// fields with Set so both stay in step. User properties and subscription
// identifiers are present when their slices are non-empty.
//
// Raw, when non-nil, replaces the whole property block (the bytes after the
// property length) on AppendUnchecked: it is the way to write duplicate,
// unknown or mistyped properties. Append refuses it.
type Properties struct {
	Present PropSet

	PayloadFormatIndicator          byte
	MessageExpiryInterval           uint32
	ContentType                     string
	ResponseTopic                   string
	CorrelationData                 []byte
	SubscriptionIdentifiers         []uint32 // several only in PUBLISH from a server
	SessionExpiryInterval           uint32
	AssignedClientIdentifier        string
	ServerKeepAlive                 uint16
	AuthenticationMethod            string
	AuthenticationData              []byte
	RequestProblemInformation       byte
	WillDelayInterval               uint32
	RequestResponseInformation      byte
	ResponseInformation             string
	ServerReference                 string
	ReasonString                    string
	ReceiveMaximum                  uint16
	TopicAliasMaximum               uint16
	TopicAlias                      uint16
	MaximumQoS                      byte
	RetainAvailable                 byte
	UserProperties                  []UserProperty
	MaximumPacketSize               uint32
	WildcardSubscriptionAvailable   byte
	SubscriptionIdentifierAvailable byte
	SharedSubscriptionAvailable     byte

	Raw []byte
}

// Has reports whether property id is present.
func (p *Properties) Has(id PropID) bool {
	switch id {
	case PropUserProperty:
		return len(p.UserProperties) > 0
	case PropSubscriptionIdentifier:
		return len(p.SubscriptionIdentifiers) > 0
	}
	return p.Present.Has(id)
}

// Empty reports whether no property is present.
func (p *Properties) Empty() bool {
	return p.Present == 0 && len(p.UserProperties) == 0 && len(p.SubscriptionIdentifiers) == 0 && p.Raw == nil
}

// Set stores a property value and marks it present. v must be of the
// property's Go type: byte for PropByte, uint16, uint32 (also for varints),
// string, []byte, or UserProperty / uint32 to append to the repeatable ones.
func (p *Properties) Set(id PropID, v any) *Properties {
	switch id {
	case PropUserProperty:
		p.UserProperties = append(p.UserProperties, v.(UserProperty))
		return p
	case PropSubscriptionIdentifier:
		p.SubscriptionIdentifiers = append(p.SubscriptionIdentifiers, v.(uint32))
		return p
	}
	switch f := p.field(id).(type) {
	case *byte:
		*f = v.(byte)
	case *uint16:
		*f = v.(uint16)
	case *uint32:
		*f = v.(uint32)
	case *string:
		*f = v.(string)
	case *[]byte:
		*f = v.([]byte)
	default:
		panic(fmt.Sprintf("packetgen: Set of unknown property 0x%02X", byte(id)))
	}
	p.Present |= 1 << id
	return p
}

// Get returns a present single-valued property's value, nil when absent.
func (p *Properties) Get(id PropID) any {
	if !p.Has(id) {
		return nil
	}
	switch f := p.field(id).(type) {
	case *byte:
		return *f
	case *uint16:
		return *f
	case *uint32:
		return *f
	case *string:
		return *f
	case *[]byte:
		return *f
	}
	return nil
}

// field maps an identifier to the struct field holding it.
func (p *Properties) field(id PropID) any {
	switch id {
	case PropPayloadFormatIndicator:
		return &p.PayloadFormatIndicator
	case PropMessageExpiryInterval:
		return &p.MessageExpiryInterval
	case PropContentType:
		return &p.ContentType
	case PropResponseTopic:
		return &p.ResponseTopic
	case PropCorrelationData:
		return &p.CorrelationData
	case PropSessionExpiryInterval:
		return &p.SessionExpiryInterval
	case PropAssignedClientIdentifier:
		return &p.AssignedClientIdentifier
	case PropServerKeepAlive:
		return &p.ServerKeepAlive
	case PropAuthenticationMethod:
		return &p.AuthenticationMethod
	case PropAuthenticationData:
		return &p.AuthenticationData
	case PropRequestProblemInformation:
		return &p.RequestProblemInformation
	case PropWillDelayInterval:
		return &p.WillDelayInterval
	case PropRequestResponseInformation:
		return &p.RequestResponseInformation
	case PropResponseInformation:
		return &p.ResponseInformation
	case PropServerReference:
		return &p.ServerReference
	case PropReasonString:
		return &p.ReasonString
	case PropReceiveMaximum:
		return &p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return &p.TopicAliasMaximum
	case PropTopicAlias:
		return &p.TopicAlias
	case PropMaximumQoS:
		return &p.MaximumQoS
	case PropRetainAvailable:
		return &p.RetainAvailable
	case PropMaximumPacketSize:
		return &p.MaximumPacketSize
	case PropWildcardSubscriptionAvailable:
		return &p.WildcardSubscriptionAvailable
	case PropSubscriptionIdentifierAvailable:
		return &p.SubscriptionIdentifierAvailable
	case PropSharedSubscriptionAvailable:
		return &p.SharedSubscriptionAvailable
	}
	return nil
}

// clone deep-copies the byte slices so the result owns its memory.
func (p *Properties) clone() Properties {
	q := *p
	q.CorrelationData = cloneBytes(p.CorrelationData)
	q.AuthenticationData = cloneBytes(p.AuthenticationData)
	q.Raw = cloneBytes(p.Raw)
	q.SubscriptionIdentifiers = slices.Clone(p.SubscriptionIdentifiers)
	q.UserProperties = slices.Clone(p.UserProperties)
	return q
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// decodeProperties reads a property length and the properties of a packet
// of type t (propWill for will properties), applying the 5.0 rules: known
// identifier, allowed in this packet, at most once unless repeatable, value
// in range, no overrun of the property length.
func (c *cursor) properties(p *Properties, t Type, from Side) error {
	start := c.off
	n, err := c.varint("property length")
	if err != nil {
		return err
	}
	if int(n) > c.left() {
		return violation(c.v, c.t, ruleProtocolViolation, sec("2.2.2.1"), MalformedPacket,
			"property length %d at offset %d overruns the packet, which has %d bytes left", n, start, c.left())
	}
	end := c.off + int(n)
	sub := cursor{b: c.b[:end], off: c.off, v: c.v, t: c.t}
	where := c.t.String()
	if t == propWill {
		where = "will properties"
	}
	for sub.left() > 0 {
		at := sub.off
		// The identifier is a varint; every defined one fits in one byte.
		idv, err := sub.varint("property identifier")
		if err != nil {
			return err
		}
		id := PropID(idv)
		in, ok := id.info()
		if idv > 0x7F || !ok {
			return violation(c.v, c.t, ruleProtocolViolation, sec("2.2.2.2"), MalformedPacket,
				"unknown property identifier 0x%02X at offset %d", idv, at)
		}
		if in.allowed&(1<<t) == 0 {
			// §2.2.2.2: an identifier not valid for the packet is malformed.
			return violation(c.v, c.t, ruleProtocolViolation, sec("2.2.2.2"), MalformedPacket,
				"%s (0x%02X) at offset %d is not allowed in %s", in.name, byte(id), at, where)
		}
		if id != PropUserProperty && !(id == PropSubscriptionIdentifier && c.t == TypePublish) && p.Has(id) {
			return violation(c.v, c.t, ruleProtocolViolation, sec("2.2.2.2"), ProtocolError,
				"%s (0x%02X) at offset %d appears more than once", in.name, byte(id), at)
		}
		field := in.name
		switch in.typ {
		case PropByte, PropUint16, PropUint32:
			var x uint32
			switch in.typ {
			case PropByte:
				var b byte
				b, err = sub.byte1(field)
				x = uint32(b)
			case PropUint16:
				var h uint16
				h, err = sub.uint16(field)
				x = uint32(h)
			default:
				x, err = sub.uint32(field)
			}
			if err != nil {
				return err
			}
			if err := checkPropValue(c.v, c.t, id, in, x, at); err != nil {
				return err
			}
			p.setNumber(id, x)
		case PropVarint: // Subscription Identifier, the only varint property
			x, err := sub.varint(field)
			if err != nil {
				return err
			}
			if err := checkPropValue(c.v, c.t, id, in, x, at); err != nil {
				return err
			}
			p.SubscriptionIdentifiers = append(p.SubscriptionIdentifiers, x)
		case PropString:
			s, err := sub.utf8(field)
			if err != nil {
				return err
			}
			*p.field(id).(*string) = s
			p.Present |= 1 << id
		case PropBinary:
			b, err := sub.binary(field)
			if err != nil {
				return err
			}
			*p.field(id).(*[]byte) = b
			p.Present |= 1 << id
		case PropStringPair:
			k, err := sub.utf8("user property name")
			if err != nil {
				return err
			}
			v, err := sub.utf8("user property value")
			if err != nil {
				return err
			}
			p.UserProperties = append(p.UserProperties, UserProperty{k, v})
		}
	}
	c.off = end
	if err := p.checkCombinations(c.v, c.t, t, from); err != nil {
		return err
	}
	if c.t == TypePublish && from == FromClient && len(p.SubscriptionIdentifiers) > 0 {
		// MQTT-3.3.4-6: only a server puts subscription identifiers in PUBLISH.
		return violation(c.v, c.t, rules{v5: "MQTT-3.3.4-6"}, sec("3.3.4"), ProtocolError,
			"a PUBLISH from a client carries a Subscription Identifier")
	}
	if c.t == TypeSubscribe && len(p.SubscriptionIdentifiers) > 1 {
		return violation(c.v, c.t, ruleProtocolViolation, sec("3.8.2.1.2"), ProtocolError,
			"SUBSCRIBE carries %d Subscription Identifiers; at most one is allowed", len(p.SubscriptionIdentifiers))
	}
	return nil
}

// checkCombinations applies the rules that involve more than one property
// or the packet's direction. pt is the packet, t the property set (the
// will's or the packet's own).
func (p *Properties) checkCombinations(v Version, pt, t Type, from Side) error {
	if p.Present.Has(PropAuthenticationData) && !p.Present.Has(PropAuthenticationMethod) {
		s := sec("3.1.2.11.10") // CONNECT
		switch pt {
		case TypeConnack:
			s = sec("3.2.2.3.18")
		case TypeAuth:
			s = sec("3.15.2.2.3")
		}
		return violation(v, pt, ruleProtocolViolation, s, ProtocolError,
			"Authentication Data without an Authentication Method")
	}
	if p.Present.Has(PropResponseTopic) {
		if err := topic.ValidateName(p.ResponseTopic, true); err != nil {
			var te *topic.Error
			if errors.As(err, &te) && isUTF8Rule(te.Rule) {
				// The encoding fault outranks the wildcard one, as in a
				// Topic Name: it is a Malformed Packet (MQTT-1.5.4-1/2).
				return utf8Violation(v, pt, "Response Topic", err)
			}
			r, s := ruleProtocolViolation, sec("3.1.3.2.6") // will properties
			if t == TypePublish {
				r, s = rules{v5: "MQTT-3.3.2-14"}, sec("3.3.2.3.5")
			}
			return violation(v, pt, r, s, ProtocolError, "Response Topic: %v", err)
		}
	}
	if pt == TypeDisconnect && from == FromServer && p.Present.Has(PropSessionExpiryInterval) {
		return violation(v, pt, rules{v5: "MQTT-3.14.2-2"}, sec("3.14.2.2.2"), ProtocolError,
			"a server sent Session Expiry Interval in DISCONNECT")
	}
	return nil
}

// checkPropValue applies the value rules the specification calls a Protocol
// Error: 0 for Receive Maximum, Topic Alias, Maximum Packet Size and
// Subscription Identifier; anything but 0 or 1 for the boolean bytes.
func checkPropValue(v Version, t Type, id PropID, in propInfo, x uint32, at int) error {
	if (in.bool01 && x > 1) || (in.nonZero && x == 0) {
		r, reason := ruleProtocolViolation, ProtocolError
		if id == PropTopicAlias {
			// §3.3.4: the receiver answers Topic Alias invalid.
			r, reason = rules{v5: "MQTT-3.3.2-8"}, TopicAliasInvalid
		}
		return violation(v, t, r, sec("2.2.2.2"), reason,
			"%s (0x%02X) at offset %d has the value %d, which the specification forbids", id, byte(id), at, x)
	}
	return nil
}

// setNumber stores a byte, two-byte or four-byte property and marks it present.
func (p *Properties) setNumber(id PropID, x uint32) {
	switch f := p.field(id).(type) {
	case *byte:
		*f = byte(x)
	case *uint16:
		*f = uint16(x)
	case *uint32:
		*f = x
	}
	p.Present |= 1 << id
}

// validate applies the decoder's property rules to properties about to be
// encoded, so Append never writes what Decode would refuse. It allocates
// nothing.
func (p *Properties) validate(v Version, t Type, from Side) error {
	where := t.String()
	if t == propWill {
		where = "will properties"
	}
	if p.Raw != nil {
		return violation(v, t, ruleProtocolViolation, secProperties, ProtocolError,
			"raw property bytes in %s are only written by AppendUnchecked", where)
	}
	if err := p.checkCombinations(v, t, t, from); err != nil {
		return err
	}
	for s := uint64(p.Present); s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(s))
		in, ok := id.info()
		if !ok || id == PropUserProperty || id == PropSubscriptionIdentifier {
			return violation(v, t, ruleProtocolViolation, sec("2.2.2.2"), MalformedPacket,
				"Present marks 0x%02X, which is not a single-valued property", byte(id))
		}
		if in.allowed&(1<<t) == 0 {
			return violation(v, t, ruleProtocolViolation, sec("2.2.2.2"), MalformedPacket,
				"%s (0x%02X) is not allowed in %s", in.name, byte(id), where)
		}
		var x uint32
		switch f := p.field(id).(type) {
		case *byte:
			x = uint32(*f)
		case *uint16:
			x = uint32(*f)
		case *uint32:
			x = *f
		case *string:
			if err := checkField(v, t, in.name, *f); err != nil {
				return err
			}
			continue
		case *[]byte:
			if len(*f) > MaxStringLength {
				return violation(v, t, ruleProtocolViolation, secBinary, MalformedPacket,
					"%s is %d bytes, more than %d", in.name, len(*f), MaxStringLength)
			}
			continue
		}
		if err := checkPropValue(v, t, id, in, x, -1); err != nil {
			return err
		}
	}
	if len(p.SubscriptionIdentifiers) > 0 {
		in := propTable[PropSubscriptionIdentifier]
		switch {
		case in.allowed&(1<<t) == 0:
			return violation(v, t, ruleProtocolViolation, sec("2.2.2.2"), ProtocolError,
				"Subscription Identifier is not allowed in %s", where)
		case t == TypePublish && from == FromClient:
			return violation(v, t, rules{v5: "MQTT-3.3.4-6"}, sec("3.3.4"), ProtocolError,
				"a PUBLISH from a client carries a Subscription Identifier")
		case t == TypeSubscribe && len(p.SubscriptionIdentifiers) > 1:
			return violation(v, t, ruleProtocolViolation, sec("3.8.2.1.2"), ProtocolError,
				"SUBSCRIBE carries %d Subscription Identifiers; at most one is allowed", len(p.SubscriptionIdentifiers))
		}
		for _, x := range p.SubscriptionIdentifiers {
			if x == 0 || x > MaxRemainingLength {
				s := sec("3.3.2.3.8")
				if t == TypeSubscribe {
					s = sec("3.8.2.1.2")
				}
				return violation(v, t, ruleProtocolViolation, s, ProtocolError,
					"Subscription Identifier %d is outside 1..%d", x, MaxRemainingLength)
			}
		}
	}
	for _, u := range p.UserProperties {
		if err := checkField(v, t, "user property name", u.Key); err != nil {
			return err
		}
		if err := checkField(v, t, "user property value", u.Value); err != nil {
			return err
		}
	}
	return nil
}

// checkField applies the UTF-8 string rules and the length limit to a
// string about to be encoded.
func checkField(v Version, t Type, field, s string) error {
	if len(s) > MaxStringLength {
		return violation(v, t, ruleProtocolViolation, secUTF8, MalformedPacket,
			"%s is %d bytes, more than %d", field, len(s), MaxStringLength)
	}
	if err := topic.ValidUTF8(s, v == V5); err != nil {
		return utf8Violation(v, t, field, err)
	}
	return nil
}

// size is the number of bytes of the property block without its length.
func (p *Properties) size() int {
	if p.Raw != nil {
		return len(p.Raw)
	}
	n := 0
	for s := uint64(p.Present); s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(s))
		if id == PropSubscriptionIdentifier || id == PropUserProperty {
			continue
		}
		n++
		switch id.Type() {
		case PropByte:
			n++
		case PropUint16:
			n += 2
		case PropUint32:
			n += 4
		case PropString, PropBinary:
			n += 2 + p.lenOf(id)
		}
	}
	for _, x := range p.SubscriptionIdentifiers {
		n += 1 + VarintLen(x)
	}
	for _, u := range p.UserProperties {
		n += 1 + 4 + len(u.Key) + len(u.Value)
	}
	return n
}

func (p *Properties) lenOf(id PropID) int {
	switch f := p.field(id).(type) {
	case *string:
		return len(*f)
	case *[]byte:
		return len(*f)
	}
	return 0
}

// appendTo appends the property length and the properties in ascending
// identifier order, user properties last in their own order.
func (p *Properties) appendTo(dst []byte) []byte {
	dst = AppendVarint(dst, uint32(p.size()))
	if p.Raw != nil {
		return append(dst, p.Raw...)
	}
	for s := uint64(p.Present); s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(s))
		if id == PropSubscriptionIdentifier || id == PropUserProperty {
			continue
		}
		dst = append(dst, byte(id))
		switch f := p.field(id).(type) {
		case *byte:
			dst = append(dst, *f)
		case *uint16:
			dst = appendUint16(dst, *f)
		case *uint32:
			dst = appendUint32(dst, *f)
		case *string:
			dst = AppendString(dst, *f)
		case *[]byte:
			dst = AppendBinary(dst, *f)
		}
	}
	for _, x := range p.SubscriptionIdentifiers {
		dst = append(dst, byte(PropSubscriptionIdentifier))
		dst = AppendVarint(dst, x)
	}
	for _, u := range p.UserProperties {
		dst = append(dst, byte(PropUserProperty))
		dst = AppendString(dst, u.Key)
		dst = AppendString(dst, u.Value)
	}
	return dst
}
