package packetgen_test

// Differential test: packetgen's strict decoder against two independent Go
// codecs, fed the same bytes.
//
//   - mochi: github.com/mochi-mqtt/server/v2/packets, driven the way the
//     mochi broker reads a packet from a client (clients.go ReadPacket and
//     server.go processPacket): FixedHeader.Decode on the first byte,
//     DecodeLength, the type's XxxDecode with ProtocolVersion set on the
//     Packet, then the XxxValidate the broker applies (CONNECT, PUBLISH,
//     SUBSCRIBE, UNSUBSCRIBE, AUTH). Speaks 3.1.1 and 5.0.
//   - paho: github.com/eclipse/paho.golang/packets.ReadPacket on an
//     io.Reader over the bytes. The package implements MQTT 5.0 only: it
//     reads a property block in every packet, so it cannot be given 3.1.1
//     bytes at all.
//
// Valid packets are built with packetgen structs and packetgen.Encode; every
// oracle must accept them and agree on the key fields. Malformed inputs must
// be refused by packetgen with a *packetgen.Violation naming a rule; what
// each oracle does with them is recorded, and every place an oracle departs
// from the specification is listed in knownDivergences. The test fails when
// that table is wrong in either direction, so a new oracle release that
// fixes (or breaks) something shows up here.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	ppackets "github.com/eclipse/paho.golang/packets"
	mpackets "github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttbench/mqttbench/packetgen"
)

// outcome is what a decoder did with one input.
type outcome uint8

const (
	accepts    outcome = iota + 1 // decoded without error, fields agree with packetgen
	rejects                       // returned an error
	panics                        // panicked
	misdecodes                    // decoded without error, but a key field differs
	cannot                        // the oracle cannot be given this input
)

func (o outcome) String() string {
	switch o {
	case accepts:
		return "accepts"
	case rejects:
		return "rejects"
	case panics:
		return "panics"
	case misdecodes:
		return "misdecodes"
	case cannot:
		return "cannot"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// divergence is one place where an oracle departs from the specification
// (or from packetgen, which implements it).
type divergence struct {
	oracle string
	// name is a case name from validCorpus or malformedCorpus; "3.1.1 *"
	// stands for every case of that version.
	name   string
	got    outcome
	does   string // what the oracle does with the input
	breaks string // the statement (or section) its behaviour breaks
}

// knownDivergences is the exact list of cases where an oracle does not do
// what the specification says: it accepts a malformed input, refuses or
// misreads a valid one, panics, or cannot be asked. Every other
// (oracle, case) pair is expected to reject malformed input and to accept
// valid input with the same key fields as packetgen.
var knownDivergences = []divergence{
	// paho.golang/packets is an MQTT 5.0 codec only.
	{"paho", "3.1.1 *", cannot,
		"not run: packets has no protocol version; every Unpack reads a 5.0 property length, so 3.1.1 bytes would be misparsed",
		"3.1.1 (the whole protocol level)"},

	// --- valid packets an oracle gets wrong ---
	{"mochi", "3.1.1 CONNECT will with empty payload", rejects,
		"ConnectValidate: ErrProtocolViolationWillFlagNoPayload when the will payload is empty",
		"3.1.1 §3.1.3.3: the Will Message is a two-byte length and zero or more bytes"},
	{"mochi", "5.0 CONNECT will with empty payload", rejects,
		"ConnectValidate: ErrProtocolViolationWillFlagNoPayload when the will payload is empty",
		"5.0 §3.1.3.4: Will Payload is Binary Data, which may be empty"},
	{"mochi", "3.1.1 CONNECT user name with empty password", rejects,
		"ConnectValidate: ErrProtocolViolationFlagNoPassword when the password flag is set and the password is empty",
		"3.1.1 §3.1.3.5: the Password is 0 to 65535 bytes of binary data"},
	{"mochi", "5.0 CONNECT user name with empty password", rejects,
		"ConnectValidate: ErrProtocolViolationFlagNoPassword when the password flag is set and the password is empty",
		"5.0 §3.1.3.6: the password is Binary Data, which may be empty"},
	{"mochi", "5.0 DISCONNECT reason code only", misdecodes,
		"DisconnectDecode reads the reason code only when Remaining > 1, so a 1-byte body (04) decodes as reason 0x00 Normal disconnection",
		"5.0 §3.14.2.1: the Reason Code is the byte after the fixed header; property length may be omitted when the Remaining Length is 1"},
	{"paho", "5.0 DISCONNECT normal, no body", rejects,
		"Disconnect.Unpack reads a reason code byte unconditionally: EOF on Remaining Length 0",
		"5.0 §3.14.2.1: Remaining Length 0 means reason 0x00 and no properties"},
	{"mochi", "5.0 AUTH success, no body", rejects,
		"AuthDecode reads a reason code byte unconditionally: ErrMalformedReasonCode on Remaining Length 0",
		"5.0 §3.15.2.1: reason 0x00 with no properties may be sent with Remaining Length 0"},

	// --- malformed input an oracle accepts: fixed header ---
	{"paho", "5.0 SUBSCRIBE reserved flags 0000", accepts,
		"ReadPacket never checks the flags nibble of types other than PUBLISH",
		"MQTT-3.8.1-1"},
	{"paho", "5.0 PUBREL reserved flags 0000", accepts,
		"ReadPacket never checks the flags nibble of types other than PUBLISH",
		"MQTT-3.6.1-1"},
	{"paho", "5.0 PINGREQ reserved flags 0001", accepts,
		"ReadPacket never checks the flags nibble of types other than PUBLISH",
		"MQTT-2.1.3-1"},
	{"paho", "5.0 PUBLISH QoS 3", accepts,
		"ReadPacket copies the QoS bits (3) into Publish.QoS without a range check",
		"MQTT-3.3.1-4"},
	{"paho", "5.0 PUBLISH DUP on QoS 0", accepts,
		"ReadPacket sets Duplicate whatever the QoS",
		"MQTT-3.3.1-2"},
	{"paho", "5.0 PUBLISH remaining length in 5 bytes", accepts,
		"decodeVBI keeps reading continuation bytes with no length limit",
		"5.0 §1.5.5: a Variable Byte Integer is at most four bytes (MQTT-4.13.1-1 Malformed Packet)"},
	{"mochi", "5.0 PUBLISH remaining length in 5 bytes", accepts,
		"DecodeLength only checks the value (≤ 268435455), not the number of bytes: 89 80 80 80 00 is length 9",
		"5.0 §1.5.5: a Variable Byte Integer is at most four bytes (MQTT-4.13.1-1 Malformed Packet)"},
	{"mochi", "3.1.1 PUBLISH remaining length in 5 bytes", accepts,
		"DecodeLength only checks the value (≤ 268435455), not the number of bytes: 88 80 80 80 00 is length 8",
		"3.1.1 §2.2.3: the Remaining Length is at most four bytes (MQTT-4.8.0-1)"},
	{"paho", "5.0 PUBLISH remaining length not minimal", accepts,
		"decodeVBI accepts 89 00 for 9",
		"MQTT-1.5.5-1"},
	{"mochi", "5.0 PUBLISH remaining length not minimal", accepts,
		"DecodeLength accepts 89 00 for 9",
		"MQTT-1.5.5-1"},
	{"paho", "5.0 PUBLISH property length not minimal", accepts,
		"decodeVBI accepts 80 00 for 0",
		"MQTT-1.5.5-1"},
	{"mochi", "5.0 PUBLISH property length not minimal", accepts,
		"DecodeLength accepts 80 00 for 0",
		"MQTT-1.5.5-1"},

	// --- PUBLISH body ---
	{"paho", "5.0 PUBLISH packet identifier 0", accepts,
		"Publish.Unpack does not check the packet identifier",
		"MQTT-2.2.1-3"},
	{"paho", "5.0 PUBLISH topic invalid UTF-8", accepts,
		"readString converts bytes to a Go string without validating UTF-8",
		"MQTT-1.5.4-1"},
	{"paho", "5.0 PUBLISH topic encoded surrogate", accepts,
		"readString accepts ED A0 80 (U+D800 encoded in UTF-8)",
		"MQTT-1.5.4-1"},
	{"paho", "5.0 PUBLISH topic contains U+0000", accepts,
		"readString accepts U+0000",
		"MQTT-1.5.4-2"},
	{"paho", "5.0 PUBLISH topic contains +", accepts,
		"Publish.Unpack does not check the topic name for wildcards",
		"MQTT-4.7.0-1 and MQTT-3.3.2-2"},
	{"paho", "5.0 PUBLISH topic is #", accepts,
		"Publish.Unpack does not check the topic name for wildcards",
		"MQTT-4.7.0-1 and MQTT-3.3.2-2"},
	{"paho", "5.0 PUBLISH empty topic without alias", accepts,
		"Publish.Unpack accepts a zero-length topic with no Topic Alias",
		"MQTT-4.7.3-1"},
	{"paho", "5.0 PUBLISH topic alias 0", accepts,
		"Properties.Unpack stores Topic Alias 0 without a range check",
		"MQTT-3.3.2-8"},
	{"paho", "5.0 PUBLISH payload format indicator 2", accepts,
		"Properties.Unpack stores any byte as Payload Format Indicator",
		"5.0 §3.3.2.3.2: values other than 0 and 1 are a Protocol Error (MQTT-4.13.1-1)"},
	{"mochi", "5.0 PUBLISH payload format indicator 2", accepts,
		"Properties.Decode stores any byte as PayloadFormat",
		"5.0 §3.3.2.3.2: values other than 0 and 1 are a Protocol Error (MQTT-4.13.1-1)"},
	{"paho", "5.0 PUBLISH duplicate message expiry", accepts,
		"Properties.Unpack overwrites the first Message Expiry Interval with the second",
		"5.0 §3.3.2.3.3: including a property more than once is a Protocol Error (MQTT-4.13.1-1)"},
	{"mochi", "5.0 PUBLISH duplicate message expiry", accepts,
		"Properties.Decode overwrites the first Message Expiry Interval with the second",
		"5.0 §3.3.2.3.3: including a property more than once is a Protocol Error (MQTT-4.13.1-1)"},

	// --- CONNECT ---
	{"paho", "5.0 CONNECT reserved flag set", accepts,
		"Connect.UnpackFlags ignores bit 0 of the connect flags",
		"MQTT-3.1.2-3"},
	{"paho", "5.0 CONNECT will QoS without will flag", accepts,
		"Connect.Unpack keeps WillQOS=1 with WillFlag=0",
		"MQTT-3.1.2-11"},
	{"mochi", "5.0 CONNECT will QoS without will flag", accepts,
		"ConnectValidate checks will QoS only when the will flag is set",
		"MQTT-3.1.2-11"},
	{"mochi", "3.1.1 CONNECT will QoS without will flag", accepts,
		"ConnectValidate checks will QoS only when the will flag is set",
		"MQTT-3.1.2-13"},
	{"paho", "5.0 CONNECT will retain without will flag", accepts,
		"Connect.Unpack keeps WillRetain with WillFlag=0",
		"MQTT-3.1.2-13"},
	{"paho", "5.0 CONNECT will QoS 3", accepts,
		"Connect.Unpack keeps WillQOS=3",
		"MQTT-3.1.2-12"},
	{"mochi", "3.1.1 CONNECT password without user name", accepts,
		"neither ConnectDecode nor ConnectValidate ties the password flag to the user name flag",
		"MQTT-3.1.2-22"},
	{"paho", "5.0 CONNECT protocol name MQTX", accepts,
		"Connect.Unpack stores any protocol name",
		"MQTT-3.1.2-1"},
	{"paho", "5.0 CONNECT protocol level 6", accepts,
		"Connect.Unpack stores any protocol level and goes on reading 5.0 fields",
		"MQTT-3.1.2-2"},
	{"paho", "5.0 CONNECT client id invalid UTF-8", accepts,
		"readString converts bytes to a Go string without validating UTF-8",
		"MQTT-1.5.4-1"},
	{"paho", "5.0 CONNECT will topic contains #", accepts,
		"Connect.Unpack does not check the will topic for wildcards",
		"MQTT-4.7.0-1: the Will Topic is a topic name (§3.1.3.3), which holds no wildcards"},
	{"mochi", "5.0 CONNECT will topic contains #", accepts,
		"neither ConnectDecode nor ConnectValidate checks the will topic for wildcards",
		"MQTT-4.7.0-1: the Will Topic is a topic name (§3.1.3.3), which holds no wildcards"},
	{"mochi", "3.1.1 CONNECT will topic contains #", accepts,
		"neither ConnectDecode nor ConnectValidate checks the will topic for wildcards",
		"MQTT-4.7.1-1: the Will Topic is a topic name (3.1.1 §3.1.3.2), which holds no wildcards"},
	{"paho", "5.0 CONNECT trailing byte", accepts,
		"Connect.Unpack stops after the last field and ignores what is left",
		"MQTT-4.13.1-1, 5.0 §2.1.4: the Remaining Length is the exact size of the variable header and payload (Malformed Packet)"},
	{"mochi", "5.0 CONNECT trailing byte", accepts,
		"ConnectDecode stops after the last field and ignores what is left",
		"MQTT-4.13.1-1, 5.0 §2.1.4: the Remaining Length is the exact size of the variable header and payload (Malformed Packet)"},
	{"mochi", "3.1.1 CONNECT trailing byte", accepts,
		"ConnectDecode stops after the last field and ignores what is left",
		"3.1.1 §2.2.3: the Remaining Length is the exact size of the variable header and payload (MQTT-4.8.0-1)"},
	{"paho", "5.0 CONNECT duplicate session expiry", accepts,
		"Properties.Unpack overwrites the first Session Expiry Interval with the second",
		"MQTT-4.13.1-1, 5.0 §3.1.2.11.2: including Session Expiry Interval more than once is a Protocol Error"},
	{"mochi", "5.0 CONNECT duplicate session expiry", accepts,
		"Properties.Decode overwrites the first Session Expiry Interval with the second",
		"MQTT-4.13.1-1, 5.0 §3.1.2.11.2: including Session Expiry Interval more than once is a Protocol Error"},
	{"paho", "5.0 CONNECT will delay interval in CONNECT properties", accepts,
		"ValidProperties lists Will Delay Interval for CONNECT because will properties are unpacked as CONNECT",
		"MQTT-4.13.1-1, 5.0 §2.2.2.2: Will Delay Interval belongs to the Will Properties only (Protocol Error elsewhere)"},
	{"paho", "5.0 CONNECT request problem information 2", accepts,
		"Properties.Unpack stores any byte as Request Problem Information",
		"MQTT-4.13.1-1, 5.0 §3.1.2.11.7: values other than 0 and 1 are a Protocol Error"},
	{"mochi", "5.0 CONNECT request problem information 2", accepts,
		"Properties.Decode stores any byte as RequestProblemInfo",
		"MQTT-4.13.1-1, 5.0 §3.1.2.11.7: values other than 0 and 1 are a Protocol Error"},
	{"paho", "5.0 CONNECT receive maximum 0", accepts,
		"Properties.Unpack stores Receive Maximum 0",
		"MQTT-4.13.1-1, 5.0 §3.1.2.11.3: Receive Maximum 0 is a Protocol Error"},
	{"mochi", "5.0 CONNECT receive maximum 0", accepts,
		"Properties.Decode stores ReceiveMaximum 0",
		"MQTT-4.13.1-1, 5.0 §3.1.2.11.3: Receive Maximum 0 is a Protocol Error"},

	// --- CONNACK ---
	{"paho", "5.0 CONNACK reserved flags set", accepts,
		"Connack.Unpack reads bit 0 and ignores bits 1-7",
		"MQTT-4.13.1-1, 5.0 §3.2.2.1: bits 7-1 are reserved and MUST be 0 (Malformed Packet)"},
	{"mochi", "5.0 CONNACK reserved flags set", accepts,
		"ConnackDecode reads bit 0 and ignores bits 1-7",
		"MQTT-4.13.1-1, 5.0 §3.2.2.1: bits 7-1 are reserved and MUST be 0 (Malformed Packet)"},
	{"mochi", "3.1.1 CONNACK reserved flags set", accepts,
		"ConnackDecode reads bit 0 and ignores bits 1-7",
		"3.1.1 §3.2.2.1: bits 7-1 are reserved and MUST be 0 (MQTT-4.8.0-1)"},
	{"mochi", "3.1.1 CONNACK return code 6", accepts,
		"ConnackDecode stores any return code",
		"3.1.1 §3.2.2.3: return codes 6-255 are reserved (MQTT-4.8.0-1)"},

	// --- SUBSCRIBE / UNSUBSCRIBE ---
	{"paho", "5.0 SUBSCRIBE packet identifier 0", accepts,
		"Subscribe.Unpack does not check the packet identifier",
		"MQTT-2.2.1-3"},
	{"paho", "5.0 SUBSCRIBE without filters", accepts,
		"Subscribe.Unpack returns a SUBSCRIBE with no subscriptions",
		"MQTT-3.8.3-2"},
	{"paho", "5.0 SUBSCRIBE options reserved bits", accepts,
		"SubOptions.Unpack masks the options byte and ignores bits 6-7",
		"MQTT-3.8.3-5"},
	{"mochi", "5.0 SUBSCRIBE options reserved bits", accepts,
		"Subscription.decode masks the options byte and ignores bits 6-7",
		"MQTT-3.8.3-5"},
	{"paho", "5.0 SUBSCRIBE retain handling 3", accepts,
		"SubOptions.Unpack stores RetainHandling 3",
		"MQTT-4.13.1-1, 5.0 §3.8.3.1: Retain Handling 3 is a Protocol Error"},
	{"mochi", "5.0 SUBSCRIBE retain handling 3", accepts,
		"Subscription.decode stores RetainHandling 3",
		"MQTT-4.13.1-1, 5.0 §3.8.3.1: Retain Handling 3 is a Protocol Error"},
	{"paho", "5.0 SUBSCRIBE options QoS 3", accepts,
		"SubOptions.Unpack stores QoS 3",
		"MQTT-3.8.3-5"},
	{"paho", "5.0 SUBSCRIBE filter invalid UTF-8", accepts,
		"readString converts bytes to a Go string without validating UTF-8",
		"MQTT-1.5.4-1"},
	{"mochi", "5.0 SUBSCRIBE cut before options", panics,
		"SubscribeDecode indexes buf[offset] for the options byte without a bounds check: index out of range (a client can crash a mochi broker goroutine)",
		"MQTT-4.13.1-1, 5.0 §2.1.4 / §3.8.3: a field running past the Remaining Length is a Malformed Packet, to be refused"},
	{"paho", "5.0 SUBSCRIBE subscription identifier 0", accepts,
		"decodeVBI stores Subscription Identifier 0",
		"MQTT-4.13.1-1, 5.0 §3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error"},
	{"mochi", "5.0 SUBSCRIBE subscription identifier 0", accepts,
		"Properties.Decode stores SubscriptionIdentifier 0",
		"MQTT-4.13.1-1, 5.0 §3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error"},
	{"paho", "5.0 UNSUBSCRIBE without filters", accepts,
		"Unsubscribe.Unpack returns an UNSUBSCRIBE with no topics",
		"MQTT-3.10.3-2"},
	{"paho", "5.0 UNSUBSCRIBE packet identifier 0", accepts,
		"Unsubscribe.Unpack does not check the packet identifier",
		"MQTT-2.2.1-3"},

	// --- acknowledgements and others ---
	{"paho", "5.0 PUBACK packet identifier 0", accepts,
		"Puback.Unpack does not check the packet identifier",
		"MQTT-2.2.1-3"},
	{"mochi", "5.0 PUBACK packet identifier 0", accepts,
		"PubackDecode does not check the packet identifier",
		"MQTT-2.2.1-3"},
	{"mochi", "3.1.1 PUBACK packet identifier 0", accepts,
		"PubackDecode does not check the packet identifier",
		"MQTT-2.3.1-1"},
	{"mochi", "3.1.1 PUBACK trailing byte", accepts,
		"PubackDecode reads the packet identifier and ignores the rest",
		"3.1.1 §3.4.1: PUBACK has Remaining Length 2 (MQTT-4.8.0-1)"},
	{"paho", "5.0 PUBACK reason code not allowed", accepts,
		"Puback.Unpack stores any reason code",
		"MQTT-4.13.1-1, 5.0 §3.4.2.1: PUBACK reason codes are limited to table 3-4 (Protocol Error)"},
	{"mochi", "5.0 PUBACK reason code not allowed", accepts,
		"PubackDecode stores any reason code; the broker never checks PUBACK codes (ReasonCodeValid has no PUBACK case)",
		"MQTT-4.13.1-1, 5.0 §3.4.2.1: PUBACK reason codes are limited to table 3-4 (Protocol Error)"},
	{"mochi", "3.1.1 PINGREQ with a body", accepts,
		"PINGREQ has no decode step; the body is never looked at",
		"3.1.1 §3.12: PINGREQ has Remaining Length 0 (MQTT-4.8.0-1)"},
	{"paho", "5.0 PINGREQ with a body", accepts,
		"Pingreq.Unpack ignores the body",
		"MQTT-4.13.1-1, 5.0 §3.12: PINGREQ has Remaining Length 0 (Malformed Packet)"},
	{"mochi", "5.0 PINGREQ with a body", accepts,
		"PINGREQ has no decode step; the body is never looked at",
		"MQTT-4.13.1-1, 5.0 §3.12: PINGREQ has Remaining Length 0 (Malformed Packet)"},
	{"mochi", "3.1.1 DISCONNECT with a body", accepts,
		"DisconnectDecode ignores the body in 3.1.1",
		"3.1.1 §3.14: DISCONNECT has Remaining Length 0 (MQTT-4.8.0-1)"},
	{"mochi", "3.1.1 UNSUBACK with a reason code", accepts,
		"UnsubackDecode ignores what follows the packet identifier in 3.1.1",
		"3.1.1 §3.11: UNSUBACK has Remaining Length 2 (MQTT-4.8.0-1)"},
	{"mochi", "3.1.1 SUBACK return code 3", accepts,
		"SubackDecode stores any return code",
		"MQTT-3.9.3-2"},
	{"paho", "5.0 SUBACK reason code not allowed", accepts,
		"Suback.Unpack stores any reason code",
		"MQTT-4.13.1-1, 5.0 §3.9.3: SUBACK reason codes are limited to table 3-8 (Protocol Error)"},
	{"mochi", "5.0 SUBACK reason code not allowed", accepts,
		"SubackDecode stores any reason code",
		"MQTT-4.13.1-1, 5.0 §3.9.3: SUBACK reason codes are limited to table 3-8 (Protocol Error)"},
	{"paho", "5.0 DISCONNECT trailing byte", accepts,
		"Disconnect.Unpack ignores what follows the property block",
		"MQTT-4.13.1-1, 5.0 §2.1.4: the Remaining Length is the exact size of the variable header and payload (Malformed Packet)"},
	{"mochi", "5.0 DISCONNECT trailing byte", accepts,
		"DisconnectDecode ignores what follows the property block",
		"MQTT-4.13.1-1, 5.0 §2.1.4: the Remaining Length is the exact size of the variable header and payload (Malformed Packet)"},
	{"paho", "5.0 AUTH reason code not allowed", accepts,
		"Auth.Unpack stores any reason code",
		"MQTT-3.15.2-1: AUTH reason codes are 0x00, 0x18 and 0x19"},
}

// ---- corpora ----

// validCase is a packet the specification allows.
type validCase struct {
	name string
	v    packetgen.Version
	p    packetgen.Packet
}

// badCase is an input the specification forbids; rule is the statement
// it breaks.
type badCase struct {
	name string
	v    packetgen.Version
	rule string
	b    []byte
}

var versions = []packetgen.Version{packetgen.V311, packetgen.V5}

func caseName(v packetgen.Version, s string) string { return v.String() + " " + s }

func props(set func(p *packetgen.Properties)) packetgen.Properties {
	var p packetgen.Properties
	set(&p)
	return p
}

func validCorpus() []validCase {
	var cs []validCase
	add := func(v packetgen.Version, name string, p packetgen.Packet) {
		cs = append(cs, validCase{caseName(v, name), v, p})
	}
	for _, v := range versions {
		v5 := v == packetgen.V5
		full := &packetgen.Connect{
			ProtocolLevel: v, CleanStart: true, KeepAlive: 30, ClientID: "bench-1",
			Will:         &packetgen.Will{QoS: 1, Retain: true, Topic: "will/bench-1", Payload: []byte("gone")},
			UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("secret"),
		}
		if v5 {
			full.Properties = props(func(p *packetgen.Properties) {
				p.Set(packetgen.PropSessionExpiryInterval, uint32(3600))
				p.Set(packetgen.PropReceiveMaximum, uint16(10))
				p.Set(packetgen.PropMaximumPacketSize, uint32(1<<20))
				p.Set(packetgen.PropTopicAliasMaximum, uint16(5))
				p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "region", Value: "eu"})
			})
			full.Will.Properties = props(func(p *packetgen.Properties) {
				p.Set(packetgen.PropWillDelayInterval, uint32(5))
				p.Set(packetgen.PropPayloadFormatIndicator, byte(1))
				p.Set(packetgen.PropMessageExpiryInterval, uint32(60))
				p.Set(packetgen.PropContentType, "text/plain")
			})
		}
		add(v, "CONNECT will, user name, password", full)
		add(v, "CONNECT empty client id", &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60})
		add(v, "CONNECT will with empty payload", &packetgen.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "c",
			Will: &packetgen.Will{Topic: "w"}})
		add(v, "CONNECT user name with empty password", &packetgen.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "c",
			UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte{}})

		ack := &packetgen.Connack{SessionPresent: true}
		if v5 {
			ack.Properties = props(func(p *packetgen.Properties) {
				p.Set(packetgen.PropAssignedClientIdentifier, "auto-7")
				p.Set(packetgen.PropServerKeepAlive, uint16(120))
				p.Set(packetgen.PropReceiveMaximum, uint16(20))
				p.Set(packetgen.PropTopicAliasMaximum, uint16(10))
				p.Set(packetgen.PropMaximumQoS, byte(1))
				p.Set(packetgen.PropReasonString, "welcome")
			})
		}
		add(v, "CONNACK session present", ack)
		refused := &packetgen.Connack{ReasonCode: 5}
		if v5 {
			refused.ReasonCode = 0x87
		}
		add(v, "CONNACK refused", refused)

		add(v, "PUBLISH QoS 0", &packetgen.Publish{Topic: []byte("a/b"), Payload: []byte("hello")})
		add(v, "PUBLISH QoS 1 retain", &packetgen.Publish{QoS: 1, Retain: true, PacketID: 7,
			Topic: []byte("sensors/température/☃"), Payload: bytes.Repeat([]byte{0, 1, 0xFF}, 100)})
		add(v, "PUBLISH QoS 2 dup", &packetgen.Publish{QoS: 2, Dup: true, PacketID: 65535,
			Topic: []byte("$SYS/x"), Payload: nil})
		if v5 {
			add(v, "PUBLISH QoS 1 properties", &packetgen.Publish{QoS: 1, PacketID: 9, Topic: []byte("req/1"),
				Payload: []byte(`{"n":1}`),
				Properties: props(func(p *packetgen.Properties) {
					p.Set(packetgen.PropPayloadFormatIndicator, byte(1))
					p.Set(packetgen.PropMessageExpiryInterval, uint32(30))
					p.Set(packetgen.PropTopicAlias, uint16(3))
					p.Set(packetgen.PropResponseTopic, "resp/1")
					p.Set(packetgen.PropCorrelationData, []byte{1, 2, 3})
					p.Set(packetgen.PropContentType, "application/json")
					p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "a", Value: "1"})
					p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "a", Value: "2"})
				})})
			add(v, "PUBLISH empty topic with alias", &packetgen.Publish{Payload: []byte("x"),
				Properties: props(func(p *packetgen.Properties) { p.Set(packetgen.PropTopicAlias, uint16(3)) })})
		}

		for _, a := range ackCases(v) {
			add(v, a.name, a.p)
		}

		sub := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{
			{Filter: "a/+", QoS: 0}, {Filter: "b/#", QoS: 1}, {Filter: "c", QoS: 2}, {Filter: "+/+/#", QoS: 1},
		}}
		if v5 {
			sub.Subscriptions = append(sub.Subscriptions,
				packetgen.Subscription{Filter: "d", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
				packetgen.Subscription{Filter: "$share/g/e/+", QoS: 2, RetainHandling: 1})
			sub.Properties = props(func(p *packetgen.Properties) {
				p.Set(packetgen.PropSubscriptionIdentifier, uint32(42))
				p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "v"})
			})
		}
		add(v, "SUBSCRIBE", sub)
		codes := []packetgen.ReasonCode{0, 1, 2, 0x80}
		if v5 {
			codes = []packetgen.ReasonCode{0, 1, 2, 0x87, 0x8F, 0x9E}
		}
		subAck := &packetgen.Suback{PacketID: 1, ReasonCodes: codes}
		if v5 {
			subAck.Properties = props(func(p *packetgen.Properties) { p.Set(packetgen.PropReasonString, "partly") })
		}
		add(v, "SUBACK", subAck)
		add(v, "UNSUBSCRIBE", &packetgen.Unsubscribe{PacketID: 2, Filters: []string{"a/+", "b/#"}})
		unsubAck := &packetgen.Unsuback{PacketID: 2}
		if v5 {
			unsubAck.ReasonCodes = []packetgen.ReasonCode{0x00, 0x11}
		}
		add(v, "UNSUBACK", unsubAck)
		add(v, "PINGREQ", &packetgen.Pingreq{})
		add(v, "PINGRESP", &packetgen.Pingresp{})
		add(v, "DISCONNECT normal, no body", &packetgen.Disconnect{})
		if v5 {
			add(v, "DISCONNECT reason code only", &packetgen.Disconnect{ReasonCode: 0x04})
			add(v, "DISCONNECT reason and properties", &packetgen.Disconnect{ReasonCode: 0x8E,
				Properties: props(func(p *packetgen.Properties) {
					p.Set(packetgen.PropReasonString, "taken over")
					p.Set(packetgen.PropServerReference, "other:1883")
				})})
			add(v, "AUTH continue", &packetgen.Auth{ReasonCode: 0x18,
				Properties: props(func(p *packetgen.Properties) {
					p.Set(packetgen.PropAuthenticationMethod, "SCRAM-SHA-1")
					p.Set(packetgen.PropAuthenticationData, []byte("nonce"))
				})})
			add(v, "AUTH success, no body", &packetgen.Auth{})
		}
	}
	return cs
}

func ackCases(v packetgen.Version) []struct {
	name string
	p    packetgen.Packet
} {
	type c = struct {
		name string
		p    packetgen.Packet
	}
	cs := []c{
		{"PUBACK", &packetgen.Puback{PacketID: 7}},
		{"PUBREC", &packetgen.Pubrec{PacketID: 8}},
		{"PUBREL", &packetgen.Pubrel{PacketID: 8}},
		{"PUBCOMP", &packetgen.Pubcomp{PacketID: 8}},
	}
	if v == packetgen.V5 {
		reason := props(func(p *packetgen.Properties) { p.Set(packetgen.PropReasonString, "why") })
		cs = append(cs,
			c{"PUBACK reason code only", &packetgen.Puback{PacketID: 7, ReasonCode: 0x10}},
			c{"PUBREC reason and properties", &packetgen.Pubrec{PacketID: 8, ReasonCode: 0x80, Properties: reason}},
			c{"PUBREL reason code only", &packetgen.Pubrel{PacketID: 8, ReasonCode: 0x92}},
			c{"PUBCOMP reason and properties", &packetgen.Pubcomp{PacketID: 8, ReasonCode: 0x92, Properties: reason}},
		)
	}
	return cs
}

// Offsets inside a CONNECT body: 00 04 'M' 'Q' 'T' 'T' level flags ...
const connectFlagsAt = 7

func malformedCorpus() []badCase {
	var cs []badCase
	for _, v := range versions {
		v5 := v == packetgen.V5
		r := func(v311, v50 string) string {
			if v5 {
				return v50
			}
			return v311
		}
		add := func(name, rule string, b []byte) {
			cs = append(cs, badCase{caseName(v, name), v, rule, b})
		}
		raw := func(p packetgen.Packet) []byte { return packetgen.AppendUnchecked(nil, p, v) }
		frame := func(p packetgen.Packet) packetgen.Frame { return packetgen.FrameOf(p, v) }
		pub := func(topic string) *packetgen.Publish {
			return &packetgen.Publish{QoS: 1, PacketID: 1, Topic: []byte(topic), Payload: []byte("p")}
		}
		conn := func() *packetgen.Connect {
			return &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 10, ClientID: "c"}
		}
		sub := func(opts byte) []byte {
			// Subscription options are written raw so that any bit can be set.
			f := frame(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a"}}})
			return f.Patch(len(f.Body)-1, opts).Bytes()
		}
		withProps := func(p packetgen.Packet, set func(*packetgen.Properties), rawProps ...byte) []byte {
			var pp *packetgen.Properties
			switch p := p.(type) {
			case *packetgen.Publish:
				pp = &p.Properties
			case *packetgen.Connect:
				pp = &p.Properties
			case *packetgen.Subscribe:
				pp = &p.Properties
			case *packetgen.Disconnect:
				pp = &p.Properties
			}
			if set != nil {
				set(pp)
			}
			if rawProps != nil {
				pp.Raw = rawProps
			}
			return raw(p)
		}
		u32 := func(x uint32) []byte { return packetgen.AppendUint32(nil, x) }

		// Fixed header.
		add("SUBSCRIBE reserved flags 0000", "MQTT-3.8.1-1",
			frame(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a"}}}).WithFlags(0).Bytes())
		add("PUBREL reserved flags 0000", "MQTT-3.6.1-1", frame(&packetgen.Pubrel{PacketID: 1}).WithFlags(0).Bytes())
		add("PINGREQ reserved flags 0001", r("MQTT-2.2.2-2", "MQTT-2.1.3-1"), frame(&packetgen.Pingreq{}).WithFlags(1).Bytes())
		add("PUBLISH QoS 3", "MQTT-3.3.1-4", raw(&packetgen.Publish{QoS: 3, PacketID: 1, Topic: []byte("a"), Payload: []byte("p")}))
		add("PUBLISH DUP on QoS 0", "MQTT-3.3.1-2", frame(&packetgen.Publish{Topic: []byte("a")}).WithFlags(0x8).Bytes())
		add("PUBLISH remaining length in 5 bytes", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(pub("a/b")).WithLengthBytes(5).Bytes())
		add("packet type 0", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), []byte{0x00, 0x00})
		if v5 {
			add("PUBLISH remaining length not minimal", "MQTT-1.5.5-1", frame(pub("a/b")).WithLengthBytes(2).Bytes())
			// Property length 0 written as 80 00, right after the packet identifier.
			f := frame(pub("a/b"))
			body := slices.Concat(f.Body[:2+3+2], []byte{0x80, 0x00}, f.Body[2+3+2+1:])
			f.Body = body
			add("PUBLISH property length not minimal", "MQTT-1.5.5-1", f.Bytes())
		} else {
			add("packet type 15", "MQTT-4.8.0-1", []byte{0xF0, 0x00})
		}

		// PUBLISH body.
		add("PUBLISH packet identifier 0", r("MQTT-2.3.1-1", "MQTT-2.2.1-3"),
			raw(&packetgen.Publish{QoS: 1, Topic: []byte("a"), Payload: []byte("p")}))
		add("PUBLISH topic invalid UTF-8", r("MQTT-1.5.3-1", "MQTT-1.5.4-1"), raw(pub("a/\xff")))
		add("PUBLISH topic encoded surrogate", r("MQTT-1.5.3-1", "MQTT-1.5.4-1"), raw(pub("a/\xed\xa0\x80")))
		add("PUBLISH topic contains U+0000", r("MQTT-1.5.3-2", "MQTT-1.5.4-2"), raw(pub("a/\x00")))
		add("PUBLISH topic contains +", r("MQTT-4.7.1-1", "MQTT-4.7.0-1"), raw(pub("a/+/c")))
		add("PUBLISH topic is #", r("MQTT-4.7.1-1", "MQTT-4.7.0-1"), raw(pub("#")))
		add("PUBLISH empty topic without alias", "MQTT-4.7.3-1", raw(pub("")))
		add("PUBLISH cut inside topic", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(pub("abc/def")).Cut(4).Bytes())
		add("PUBLISH cut inside packet identifier", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(pub("abc")).Cut(6).Bytes())
		if v5 {
			add("PUBLISH topic alias 0", "MQTT-3.3.2-8", withProps(pub("a"), nil, 0x23, 0, 0))
			add("PUBLISH payload format indicator 2", "MQTT-4.13.1-1", withProps(pub("a"), nil, 0x01, 2))
			add("PUBLISH duplicate message expiry", "MQTT-4.13.1-1",
				withProps(pub("a"), nil, slices.Concat([]byte{0x02}, u32(10), []byte{0x02}, u32(20))...))
			add("PUBLISH unknown property 0x05", "MQTT-4.13.1-1", withProps(pub("a"), nil, 0x05, 0x00))
			add("PUBLISH property length overruns packet", "MQTT-4.13.1-1",
				frame(withPropsPacket(pub("a"))).Patch(5, 0x40).Bytes())
			add("PUBLISH cut inside properties", "MQTT-4.13.1-1",
				frame(withPropsPacket(pub("a"))).Cut(8).Bytes())
			add("PUBLISH session expiry property", "MQTT-4.13.1-1",
				withProps(pub("a"), nil, slices.Concat([]byte{0x11}, u32(10))...))
		}

		// CONNECT.
		add("CONNECT reserved flag set", "MQTT-3.1.2-3", frame(conn()).Patch(connectFlagsAt, 0x03).Bytes())
		add("CONNECT will QoS without will flag", r("MQTT-3.1.2-13", "MQTT-3.1.2-11"), frame(conn()).Patch(connectFlagsAt, 0x0A).Bytes())
		add("CONNECT will retain without will flag", r("MQTT-3.1.2-15", "MQTT-3.1.2-13"), frame(conn()).Patch(connectFlagsAt, 0x22).Bytes())
		willConn := conn()
		willConn.Will = &packetgen.Will{QoS: 1, Topic: "w", Payload: []byte("x")}
		add("CONNECT will QoS 3", r("MQTT-3.1.2-14", "MQTT-3.1.2-12"), frame(willConn).Patch(connectFlagsAt, 0x1E).Bytes())
		hashWill := conn()
		hashWill.Will = &packetgen.Will{QoS: 1, Topic: "w/#", Payload: []byte("x")}
		add("CONNECT will topic contains #", r("MQTT-4.7.1-1", "MQTT-4.7.0-1"), raw(hashWill))
		add("CONNECT protocol name MQTX", "MQTT-3.1.2-1", frame(conn()).Patch(5, 'X').Bytes())
		add("CONNECT protocol level 6", "MQTT-3.1.2-2", frame(conn()).Patch(6, 6).Bytes())
		add("CONNECT client id invalid UTF-8", r("MQTT-1.5.3-1", "MQTT-1.5.4-1"),
			raw(&packetgen.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "c\xc0"}))
		add("CONNECT cut after keep alive", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(conn()).Cut(10).Bytes())
		trailing := conn()
		trailing.UsernameFlag, trailing.Username = true, "u"
		add("CONNECT trailing byte", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(trailing).WithTrailing(0).Bytes())
		if v5 {
			add("CONNECT duplicate session expiry", "MQTT-4.13.1-1",
				withProps(conn(), nil, slices.Concat([]byte{0x11}, u32(10), []byte{0x11}, u32(20))...))
			add("CONNECT will delay interval in CONNECT properties", "MQTT-4.13.1-1",
				withProps(conn(), nil, slices.Concat([]byte{0x18}, u32(10))...))
			add("CONNECT topic alias property", "MQTT-4.13.1-1", withProps(conn(), nil, 0x23, 0, 1))
			add("CONNECT request problem information 2", "MQTT-4.13.1-1", withProps(conn(), nil, 0x17, 2))
			add("CONNECT receive maximum 0", "MQTT-4.13.1-1", withProps(conn(), nil, 0x21, 0, 0))
		} else {
			pw := conn()
			pw.PasswordFlag, pw.Password = true, []byte("pw")
			add("CONNECT password without user name", "MQTT-3.1.2-22", raw(pw))
		}

		// CONNACK.
		add("CONNACK reserved flags set", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(&packetgen.Connack{}).Patch(0, 0x02).Bytes())
		if !v5 {
			add("CONNACK return code 6", "MQTT-4.8.0-1", frame(&packetgen.Connack{}).Patch(1, 6).Bytes())
		}

		// SUBSCRIBE / UNSUBSCRIBE.
		add("SUBSCRIBE packet identifier 0", r("MQTT-2.3.1-1", "MQTT-2.2.1-3"),
			raw(&packetgen.Subscribe{Subscriptions: []packetgen.Subscription{{Filter: "a"}}}))
		add("SUBSCRIBE without filters", r("MQTT-3.8.3-3", "MQTT-3.8.3-2"), raw(&packetgen.Subscribe{PacketID: 1}))
		add("SUBSCRIBE options QoS 3", r("MQTT-3.8.3-4", "MQTT-3.8.3-5"), sub(0x03))
		add("SUBSCRIBE filter invalid UTF-8", r("MQTT-1.5.3-1", "MQTT-1.5.4-1"),
			raw(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a/\xff"}}}))
		cutSub := frame(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a"}}})
		add("SUBSCRIBE cut before options", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), cutSub.Cut(len(cutSub.Body)-1).Bytes())
		if v5 {
			add("SUBSCRIBE options reserved bits", "MQTT-3.8.3-5", sub(0x40))
			add("SUBSCRIBE retain handling 3", "MQTT-4.13.1-1", sub(0x30))
			add("SUBSCRIBE subscription identifier 0", "MQTT-4.13.1-1",
				withProps(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a"}}}, nil, 0x0B, 0x00))
		} else {
			add("SUBSCRIBE options reserved bits", "MQTT-3.8.3-4", sub(0x04))
		}
		add("UNSUBSCRIBE without filters", "MQTT-3.10.3-2", raw(&packetgen.Unsubscribe{PacketID: 1}))
		add("UNSUBSCRIBE packet identifier 0", r("MQTT-2.3.1-1", "MQTT-2.2.1-3"),
			raw(&packetgen.Unsubscribe{Filters: []string{"a"}}))

		// Acknowledgements and the rest.
		add("PUBACK packet identifier 0", r("MQTT-2.3.1-1", "MQTT-2.2.1-3"), raw(&packetgen.Puback{}))
		add("PINGREQ with a body", r("MQTT-4.8.0-1", "MQTT-4.13.1-1"), frame(&packetgen.Pingreq{}).WithTrailing(0).Bytes())
		if v5 {
			add("PUBACK reason code not allowed", "MQTT-4.13.1-1", raw(&packetgen.Puback{PacketID: 1, ReasonCode: 0x04}))
			add("SUBACK reason code not allowed", "MQTT-4.13.1-1", raw(&packetgen.Suback{PacketID: 1, ReasonCodes: []packetgen.ReasonCode{0x10}}))
			add("DISCONNECT trailing byte", "MQTT-4.13.1-1",
				frame(&packetgen.Disconnect{ReasonCode: 0x04, Properties: props(func(p *packetgen.Properties) {
					p.Set(packetgen.PropReasonString, "x")
				})}).WithTrailing(0).Bytes())
			add("AUTH reason code not allowed", "MQTT-3.15.2-1", raw(&packetgen.Auth{ReasonCode: 0x04}))
		} else {
			add("SUBACK return code 3", "MQTT-3.9.3-2", raw(&packetgen.Suback{PacketID: 1, ReasonCodes: []packetgen.ReasonCode{3}}))
			add("PUBACK trailing byte", "MQTT-4.8.0-1", frame(&packetgen.Puback{PacketID: 1}).WithTrailing(0).Bytes())
			add("DISCONNECT with a body", "MQTT-4.8.0-1", frame(&packetgen.Disconnect{}).WithTrailing(0).Bytes())
			add("UNSUBACK with a reason code", "MQTT-4.8.0-1", frame(&packetgen.Unsuback{PacketID: 1}).WithTrailing(0).Bytes())
		}
	}
	return cs
}

// withPropsPacket gives a v5 PUBLISH a small property block (Message Expiry
// Interval 10) whose length byte sits at body offset 5 for a one-byte topic.
func withPropsPacket(p *packetgen.Publish) *packetgen.Publish {
	p.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(10))
	return p
}

// ---- decoding into a neutral form ----

// fields is what a decoder saw, as strings under library-neutral keys, so
// that three codecs can be compared with one map comparison. Numeric and
// string properties are recorded only when non-zero/non-empty: mochi keeps
// no presence bit for many of them.
type fields map[string]string

func (f fields) set(k string, v any) { f[k] = fmt.Sprint(v) }
func (f fields) flag(k string, on bool) {
	if on {
		f[k] = "1"
	}
}
func (f fields) num(k string, x uint64) {
	if x != 0 {
		f[k] = strconv.FormatUint(x, 10)
	}
}
func (f fields) str(k, s string) {
	if s != "" {
		f[k] = strconv.Quote(s)
	}
}
func (f fields) bin(k string, b []byte) {
	if len(b) > 0 {
		f[k] = fmt.Sprintf("%X", b)
	}
}

func ptr[T ~uint8 | ~uint16 | ~uint32 | ~int](p *T) uint64 {
	if p == nil {
		return 0
	}
	return uint64(*p)
}

func codesHex[T ~byte](cs []T) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%02X", byte(c))
	}
	return b.String()
}

func subString(filter string, qos byte, nl, rap bool, rh byte) string {
	s := fmt.Sprintf("%s:%d", filter, qos)
	if nl {
		s += ",nl"
	}
	if rap {
		s += ",rap"
	}
	if rh != 0 {
		s += fmt.Sprintf(",rh%d", rh)
	}
	return s
}

// diff lists the keys on which two field sets disagree.
func (f fields) diff(g fields) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(maps.Collect(func(yield func(string, bool) bool) {
		for k := range f {
			yield(k, true)
		}
		for k := range g {
			yield(k, true)
		}
	}))) {
		if f[k] != g[k] {
			out = append(out, fmt.Sprintf("%s: packetgen %q, oracle %q", k, f[k], g[k]))
		}
	}
	return out
}

func pgFields(p packetgen.Packet) fields {
	f := fields{"type": p.Type().String()}
	switch p := p.(type) {
	case *packetgen.Connect:
		f.set("level", byte(p.ProtocolLevel))
		f.set("proto", p.ProtocolName)
		f.flag("clean", p.CleanStart)
		f.set("keepalive", p.KeepAlive)
		f.set("client", p.ClientID)
		if w := p.Will; w != nil {
			f.set("will", fmt.Sprintf("qos=%d retain=%t topic=%q payload=%X", w.QoS, w.Retain, w.Topic, w.Payload))
			pgProps(f, "w.", &w.Properties)
		}
		if p.UsernameFlag {
			f.set("user", p.Username)
		}
		if p.PasswordFlag {
			f.set("password", fmt.Sprintf("%X", p.Password))
		}
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Connack:
		f.flag("session-present", p.SessionPresent)
		f.set("code", fmt.Sprintf("%02X", byte(p.ReasonCode)))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Publish:
		f.set("qos", byte(p.QoS))
		f.flag("dup", p.Dup)
		f.flag("retain", p.Retain)
		f.num("id", uint64(p.PacketID))
		f.set("topic", string(p.Topic))
		f.set("payload", fmt.Sprintf("%X", p.Payload))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Puback:
		pgAck(f, p.PacketID, p.ReasonCode, &p.Properties)
	case *packetgen.Pubrec:
		pgAck(f, p.PacketID, p.ReasonCode, &p.Properties)
	case *packetgen.Pubrel:
		pgAck(f, p.PacketID, p.ReasonCode, &p.Properties)
	case *packetgen.Pubcomp:
		pgAck(f, p.PacketID, p.ReasonCode, &p.Properties)
	case *packetgen.Subscribe:
		f.set("id", p.PacketID)
		var subs []string
		for _, s := range p.Subscriptions {
			subs = append(subs, subString(s.Filter, byte(s.QoS), s.NoLocal, s.RetainAsPublished, s.RetainHandling))
		}
		f.set("filters", strings.Join(subs, " "))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Suback:
		f.set("id", p.PacketID)
		f.set("codes", codesHex(p.ReasonCodes))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Unsubscribe:
		f.set("id", p.PacketID)
		f.set("filters", strings.Join(p.Filters, " "))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Unsuback:
		f.set("id", p.PacketID)
		f.str("codes", codesHex(p.ReasonCodes))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Disconnect:
		f.set("code", fmt.Sprintf("%02X", byte(p.ReasonCode)))
		pgProps(f, "p.", &p.Properties)
	case *packetgen.Auth:
		f.set("code", fmt.Sprintf("%02X", byte(p.ReasonCode)))
		pgProps(f, "p.", &p.Properties)
	}
	return f
}

func pgAck(f fields, id uint16, rc packetgen.ReasonCode, p *packetgen.Properties) {
	f.set("id", id)
	f.set("code", fmt.Sprintf("%02X", byte(rc)))
	pgProps(f, "p.", p)
}

func userString(n int, kv func(i int) (string, string)) string {
	var parts []string
	for i := range n {
		k, v := kv(i)
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ";")
}

func pgProps(f fields, pre string, p *packetgen.Properties) {
	f.num(pre+"payload-format", uint64(p.PayloadFormatIndicator))
	f.num(pre+"message-expiry", uint64(p.MessageExpiryInterval))
	f.str(pre+"content-type", p.ContentType)
	f.str(pre+"response-topic", p.ResponseTopic)
	f.bin(pre+"correlation-data", p.CorrelationData)
	var ids []string
	for _, x := range p.SubscriptionIdentifiers {
		ids = append(ids, strconv.FormatUint(uint64(x), 10))
	}
	f.str(pre+"subscription-id", strings.Join(ids, ","))
	f.num(pre+"session-expiry", uint64(p.SessionExpiryInterval))
	f.str(pre+"assigned-client-id", p.AssignedClientIdentifier)
	f.num(pre+"server-keep-alive", uint64(p.ServerKeepAlive))
	f.str(pre+"auth-method", p.AuthenticationMethod)
	f.bin(pre+"auth-data", p.AuthenticationData)
	f.num(pre+"request-problem-info", uint64(p.RequestProblemInformation))
	f.num(pre+"will-delay", uint64(p.WillDelayInterval))
	f.num(pre+"request-response-info", uint64(p.RequestResponseInformation))
	f.str(pre+"response-info", p.ResponseInformation)
	f.str(pre+"server-reference", p.ServerReference)
	f.str(pre+"reason-string", p.ReasonString)
	f.num(pre+"receive-maximum", uint64(p.ReceiveMaximum))
	f.num(pre+"topic-alias-maximum", uint64(p.TopicAliasMaximum))
	f.num(pre+"topic-alias", uint64(p.TopicAlias))
	f.num(pre+"maximum-qos", uint64(p.MaximumQoS))
	f.num(pre+"retain-available", uint64(p.RetainAvailable))
	f.str(pre+"user", userString(len(p.UserProperties), func(i int) (string, string) {
		return p.UserProperties[i].Key, p.UserProperties[i].Value
	}))
	f.num(pre+"maximum-packet-size", uint64(p.MaximumPacketSize))
	f.num(pre+"wildcard-sub-available", uint64(p.WildcardSubscriptionAvailable))
	f.num(pre+"sub-id-available", uint64(p.SubscriptionIdentifierAvailable))
	f.num(pre+"shared-sub-available", uint64(p.SharedSubscriptionAvailable))
}

// ---- mochi ----

// mochiDecode decodes b the way a mochi broker reads a packet from a client
// whose CONNECT carried version v (see the file comment).
func mochiDecode(b []byte, v packetgen.Version) (fields, error) {
	var pk mpackets.Packet
	if len(b) == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	if err := pk.FixedHeader.Decode(b[0]); err != nil {
		return nil, fmt.Errorf("FixedHeader.Decode: %w", err)
	}
	n, bu, err := mpackets.DecodeLength(bytes.NewReader(b[1:]))
	if err != nil {
		return nil, fmt.Errorf("DecodeLength: %w", err)
	}
	pk.FixedHeader.Remaining = n
	if 1+bu+n > len(b) {
		return nil, io.ErrUnexpectedEOF
	}
	if 1+bu+n < len(b) {
		return nil, fmt.Errorf("test bug: %d bytes after the packet", len(b)-1-bu-n)
	}
	pk.ProtocolVersion = byte(v)
	body := b[1+bu:]
	var code mpackets.Code
	switch pk.FixedHeader.Type {
	case mpackets.Connect:
		if err = pk.ConnectDecode(body); err == nil {
			code = pk.ConnectValidate()
		}
	case mpackets.Connack:
		err = pk.ConnackDecode(body)
	case mpackets.Publish:
		if err = pk.PublishDecode(body); err == nil {
			// The broker's default Capabilities.TopicAliasMaximum.
			code = pk.PublishValidate(65535)
		}
	case mpackets.Puback:
		err = pk.PubackDecode(body)
	case mpackets.Pubrec:
		err = pk.PubrecDecode(body)
	case mpackets.Pubrel:
		err = pk.PubrelDecode(body)
	case mpackets.Pubcomp:
		err = pk.PubcompDecode(body)
	case mpackets.Subscribe:
		if err = pk.SubscribeDecode(body); err == nil {
			code = pk.SubscribeValidate()
		}
	case mpackets.Suback:
		err = pk.SubackDecode(body)
	case mpackets.Unsubscribe:
		if err = pk.UnsubscribeDecode(body); err == nil {
			code = pk.UnsubscribeValidate()
		}
	case mpackets.Unsuback:
		err = pk.UnsubackDecode(body)
	case mpackets.Pingreq, mpackets.Pingresp:
	case mpackets.Disconnect:
		err = pk.DisconnectDecode(body)
	case mpackets.Auth:
		if err = pk.AuthDecode(body); err == nil {
			code = pk.AuthValidate()
		}
	default:
		err = fmt.Errorf("invalid packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if code.Code != 0 {
		return nil, fmt.Errorf("validate: %w", code)
	}
	return mochiFields(&pk, v), nil
}

func mochiFields(pk *mpackets.Packet, v packetgen.Version) fields {
	t := packetgen.Type(pk.FixedHeader.Type)
	f := fields{"type": t.String()}
	v5 := v == packetgen.V5
	code := func(rc byte) { f.set("code", fmt.Sprintf("%02X", rc)) }
	switch t {
	case packetgen.TypeConnect:
		c := &pk.Connect
		f.set("level", pk.ProtocolVersion)
		f.set("proto", string(c.ProtocolName))
		f.flag("clean", c.Clean)
		f.set("keepalive", c.Keepalive)
		f.set("client", c.ClientIdentifier)
		if c.WillFlag {
			f.set("will", fmt.Sprintf("qos=%d retain=%t topic=%q payload=%X", c.WillQos, c.WillRetain, c.WillTopic, c.WillPayload))
			mochiProps(f, "w.", &c.WillProperties)
		}
		if c.UsernameFlag {
			f.set("user", string(c.Username))
		}
		if c.PasswordFlag {
			f.set("password", fmt.Sprintf("%X", c.Password))
		}
	case packetgen.TypeConnack:
		f.flag("session-present", pk.SessionPresent)
		code(pk.ReasonCode)
	case packetgen.TypePublish:
		f.set("qos", pk.FixedHeader.Qos)
		f.flag("dup", pk.FixedHeader.Dup)
		f.flag("retain", pk.FixedHeader.Retain)
		f.num("id", uint64(pk.PacketID))
		f.set("topic", pk.TopicName)
		f.set("payload", fmt.Sprintf("%X", pk.Payload))
	case packetgen.TypePuback, packetgen.TypePubrec, packetgen.TypePubrel, packetgen.TypePubcomp:
		f.set("id", pk.PacketID)
		code(pk.ReasonCode)
	case packetgen.TypeSubscribe:
		f.set("id", pk.PacketID)
		var subs []string
		for _, s := range pk.Filters {
			subs = append(subs, subString(s.Filter, s.Qos, s.NoLocal, s.RetainAsPublished, s.RetainHandling))
		}
		f.set("filters", strings.Join(subs, " "))
	case packetgen.TypeSuback:
		f.set("id", pk.PacketID)
		f.set("codes", codesHex(pk.ReasonCodes))
	case packetgen.TypeUnsubscribe:
		f.set("id", pk.PacketID)
		var fs []string
		for _, s := range pk.Filters {
			fs = append(fs, s.Filter)
		}
		f.set("filters", strings.Join(fs, " "))
	case packetgen.TypeUnsuback:
		f.set("id", pk.PacketID)
		f.str("codes", codesHex(pk.ReasonCodes))
	case packetgen.TypeDisconnect, packetgen.TypeAuth:
		code(pk.ReasonCode)
	}
	if v5 {
		mochiProps(f, "p.", &pk.Properties)
	}
	return f
}

func mochiProps(f fields, pre string, p *mpackets.Properties) {
	f.num(pre+"payload-format", uint64(p.PayloadFormat))
	f.num(pre+"message-expiry", uint64(p.MessageExpiryInterval))
	f.str(pre+"content-type", p.ContentType)
	f.str(pre+"response-topic", p.ResponseTopic)
	f.bin(pre+"correlation-data", p.CorrelationData)
	var ids []string
	for _, x := range p.SubscriptionIdentifier {
		ids = append(ids, strconv.Itoa(x))
	}
	f.str(pre+"subscription-id", strings.Join(ids, ","))
	f.num(pre+"session-expiry", uint64(p.SessionExpiryInterval))
	f.str(pre+"assigned-client-id", p.AssignedClientID)
	f.num(pre+"server-keep-alive", uint64(p.ServerKeepAlive))
	f.str(pre+"auth-method", p.AuthenticationMethod)
	f.bin(pre+"auth-data", p.AuthenticationData)
	f.num(pre+"request-problem-info", uint64(p.RequestProblemInfo))
	f.num(pre+"will-delay", uint64(p.WillDelayInterval))
	f.num(pre+"request-response-info", uint64(p.RequestResponseInfo))
	f.str(pre+"response-info", p.ResponseInfo)
	f.str(pre+"server-reference", p.ServerReference)
	f.str(pre+"reason-string", p.ReasonString)
	f.num(pre+"receive-maximum", uint64(p.ReceiveMaximum))
	f.num(pre+"topic-alias-maximum", uint64(p.TopicAliasMaximum))
	f.num(pre+"topic-alias", uint64(p.TopicAlias))
	f.num(pre+"maximum-qos", uint64(p.MaximumQos))
	f.num(pre+"retain-available", uint64(p.RetainAvailable))
	f.str(pre+"user", userString(len(p.User), func(i int) (string, string) { return p.User[i].Key, p.User[i].Val }))
	f.num(pre+"maximum-packet-size", uint64(p.MaximumPacketSize))
	f.num(pre+"wildcard-sub-available", uint64(p.WildcardSubAvailable))
	f.num(pre+"sub-id-available", uint64(p.SubIDAvailable))
	f.num(pre+"shared-sub-available", uint64(p.SharedSubAvailable))
}

// ---- paho ----

// pahoDecode decodes b with packets.ReadPacket. The caller has checked v is 5.0.
func pahoDecode(b []byte, _ packetgen.Version) (fields, error) {
	r := bytes.NewReader(b)
	cp, err := ppackets.ReadPacket(r)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("test bug: %d bytes after the packet", r.Len())
	}
	f := fields{"type": packetgen.Type(cp.Type).String()}
	code := func(rc byte) { f.set("code", fmt.Sprintf("%02X", rc)) }
	ack := func(id uint16, rc byte, p *ppackets.Properties) {
		f.set("id", id)
		code(rc)
		pahoProps(f, "p.", p)
	}
	switch p := cp.Content.(type) {
	case *ppackets.Connect:
		f.set("level", p.ProtocolVersion)
		f.set("proto", p.ProtocolName)
		f.flag("clean", p.CleanStart)
		f.set("keepalive", p.KeepAlive)
		f.set("client", p.ClientID)
		if p.WillFlag {
			f.set("will", fmt.Sprintf("qos=%d retain=%t topic=%q payload=%X", p.WillQOS, p.WillRetain, p.WillTopic, p.WillMessage))
			pahoProps(f, "w.", p.WillProperties)
		}
		if p.UsernameFlag {
			f.set("user", p.Username)
		}
		if p.PasswordFlag {
			f.set("password", fmt.Sprintf("%X", p.Password))
		}
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Connack:
		f.flag("session-present", p.SessionPresent)
		code(p.ReasonCode)
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Publish:
		f.set("qos", p.QoS)
		f.flag("dup", p.Duplicate)
		f.flag("retain", p.Retain)
		f.num("id", uint64(p.PacketID))
		f.set("topic", p.Topic)
		f.set("payload", fmt.Sprintf("%X", p.Payload))
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Puback:
		ack(p.PacketID, p.ReasonCode, p.Properties)
	case *ppackets.Pubrec:
		ack(p.PacketID, p.ReasonCode, p.Properties)
	case *ppackets.Pubrel:
		ack(p.PacketID, p.ReasonCode, p.Properties)
	case *ppackets.Pubcomp:
		ack(p.PacketID, p.ReasonCode, p.Properties)
	case *ppackets.Subscribe:
		f.set("id", p.PacketID)
		var subs []string
		for _, s := range p.Subscriptions {
			subs = append(subs, subString(s.Topic, s.QoS, s.NoLocal, s.RetainAsPublished, s.RetainHandling))
		}
		f.set("filters", strings.Join(subs, " "))
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Suback:
		f.set("id", p.PacketID)
		f.set("codes", codesHex(p.Reasons))
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Unsubscribe:
		f.set("id", p.PacketID)
		f.set("filters", strings.Join(p.Topics, " "))
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Unsuback:
		f.set("id", p.PacketID)
		f.str("codes", codesHex(p.Reasons))
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Disconnect:
		code(p.ReasonCode)
		pahoProps(f, "p.", p.Properties)
	case *ppackets.Auth:
		code(p.ReasonCode)
		pahoProps(f, "p.", p.Properties)
	}
	return f, nil
}

func pahoProps(f fields, pre string, p *ppackets.Properties) {
	if p == nil {
		return
	}
	f.num(pre+"payload-format", ptr(p.PayloadFormat))
	f.num(pre+"message-expiry", ptr(p.MessageExpiry))
	f.str(pre+"content-type", p.ContentType)
	f.str(pre+"response-topic", p.ResponseTopic)
	f.bin(pre+"correlation-data", p.CorrelationData)
	if p.SubscriptionIdentifier != nil {
		f.str(pre+"subscription-id", strconv.Itoa(*p.SubscriptionIdentifier))
	}
	f.num(pre+"session-expiry", ptr(p.SessionExpiryInterval))
	f.str(pre+"assigned-client-id", p.AssignedClientID)
	f.num(pre+"server-keep-alive", ptr(p.ServerKeepAlive))
	f.str(pre+"auth-method", p.AuthMethod)
	f.bin(pre+"auth-data", p.AuthData)
	f.num(pre+"request-problem-info", ptr(p.RequestProblemInfo))
	f.num(pre+"will-delay", ptr(p.WillDelayInterval))
	f.num(pre+"request-response-info", ptr(p.RequestResponseInfo))
	f.str(pre+"response-info", p.ResponseInfo)
	f.str(pre+"server-reference", p.ServerReference)
	f.str(pre+"reason-string", p.ReasonString)
	f.num(pre+"receive-maximum", ptr(p.ReceiveMaximum))
	f.num(pre+"topic-alias-maximum", ptr(p.TopicAliasMaximum))
	f.num(pre+"topic-alias", ptr(p.TopicAlias))
	f.num(pre+"maximum-qos", ptr(p.MaximumQOS))
	f.num(pre+"retain-available", ptr(p.RetainAvailable))
	f.str(pre+"user", userString(len(p.User), func(i int) (string, string) { return p.User[i].Key, p.User[i].Value }))
	f.num(pre+"maximum-packet-size", ptr(p.MaximumPacketSize))
	f.num(pre+"wildcard-sub-available", ptr(p.WildcardSubAvailable))
	f.num(pre+"sub-id-available", ptr(p.SubIDAvailable))
	f.num(pre+"shared-sub-available", ptr(p.SharedSubAvailable))
}

// ---- the harness ----

type oracle struct {
	name   string
	speaks func(v packetgen.Version) bool
	decode func(b []byte, v packetgen.Version) (fields, error)
}

var oracles = []oracle{
	{"mochi", func(v packetgen.Version) bool { return v == packetgen.V311 || v == packetgen.V5 }, mochiDecode},
	{"paho", func(v packetgen.Version) bool { return v == packetgen.V5 }, pahoDecode},
}

// result is one oracle's outcome on one input, with what explains it.
type result struct {
	got    outcome
	detail string
}

// run feeds b to o; want, when non-nil, is packetgen's reading of a valid
// packet to compare fields with.
func (o oracle) run(b []byte, v packetgen.Version, want fields) (res result) {
	if !o.speaks(v) {
		return result{cannot, "does not speak " + v.String()}
	}
	defer func() {
		if r := recover(); r != nil {
			res = result{panics, fmt.Sprint(r)}
		}
	}()
	got, err := o.decode(b, v)
	if err != nil {
		return result{rejects, err.Error()}
	}
	if want != nil {
		if d := want.diff(got); len(d) > 0 {
			return result{misdecodes, strings.Join(d, "; ")}
		}
	}
	return result{accepts, ""}
}

// expected returns the table entry for (oracle, case) and the outcome a
// conformant decoder would have without one.
func expected(o, name string, def outcome, used map[int]bool) (divergence, outcome) {
	for i, d := range knownDivergences {
		if d.oracle != o {
			continue
		}
		if d.name == name || (strings.HasSuffix(d.name, " *") && strings.HasPrefix(name, strings.TrimSuffix(d.name, "*"))) {
			used[i] = true
			return d, d.got
		}
	}
	return divergence{}, def
}

func TestOracleDivergences(t *testing.T) {
	used := map[int]bool{}
	names := map[string]bool{}
	check := func(t *testing.T, name string, v packetgen.Version, b []byte, want fields, def outcome) {
		for _, o := range oracles {
			res := o.run(b, v, want)
			d, exp := expected(o.name, name, def, used)
			if d.name != "" && d.got == def {
				t.Errorf("knownDivergences entry (%s, %q) lists the conformant outcome %s: not a divergence", o.name, d.name, def)
			}
			t.Logf("%-5s %-10s %s", o.name, res.got, res.detail)
			if res.got != exp {
				if d.name == "" {
					t.Errorf("%s %s, expected %s: %s\n  input % X\n  (an unlisted divergence: add it to knownDivergences with what %s does and the statement it breaks)",
						o.name, res.got, exp, res.detail, b, o.name)
				} else {
					t.Errorf("%s %s, but knownDivergences says %s (%s): %s\n  input % X\n  (update or remove the entry)",
						o.name, res.got, exp, d.does, res.detail, b)
				}
			}
		}
	}

	t.Run("valid", func(t *testing.T) {
		for _, c := range validCorpus() {
			names[c.name] = true
			t.Run(c.name, func(t *testing.T) {
				b, err := packetgen.Encode(c.p, c.v)
				if err != nil {
					t.Fatalf("packetgen.Encode: %v", err)
				}
				d := packetgen.Decoder{Version: c.v}
				p, n, err := d.Decode(b)
				if err != nil || n != len(b) {
					t.Fatalf("packetgen decode of its own encoding: n=%d/%d err=%v\n  input % X", n, len(b), err, b)
				}
				t.Logf("% X", b)
				check(t, c.name, c.v, b, pgFields(p), accepts)
			})
		}
	})

	t.Run("malformed", func(t *testing.T) {
		for _, c := range malformedCorpus() {
			if names[c.name] {
				t.Fatalf("case name %q used twice", c.name)
			}
			names[c.name] = true
			t.Run(c.name, func(t *testing.T) {
				t.Logf("% X", c.b)
				d := packetgen.Decoder{Version: c.v}
				_, n, err := d.Decode(c.b)
				var vi *packetgen.Violation
				switch {
				case !errors.As(err, &vi):
					t.Errorf("packetgen: want a *packetgen.Violation, got n=%d err=%v\n  input % X", n, err, c.b)
				case vi.Rule == "":
					t.Errorf("packetgen: violation without a rule: %v\n  input % X", vi, c.b)
				case vi.Rule != c.rule:
					// The case's rule is the statement the input is built to
					// break; packetgen may cite a more specific or a generic
					// one. Logged, not failed: the table below is the test.
					t.Logf("packetgen cites %s, case expects %s: %v", vi.Rule, c.rule, vi)
				default:
					t.Logf("packetgen: %v", vi)
				}
				for _, d := range knownDivergences {
					if d.name == c.name && !strings.Contains(d.breaks, c.rule) {
						t.Errorf("knownDivergences entry (%s, %q) says it breaks %q; the case is built to break %s",
							d.oracle, d.name, d.breaks, c.rule)
					}
				}
				check(t, c.name, c.v, c.b, nil, rejects)
			})
		}
	})

	if t.Failed() {
		return // a failing subset would report every entry as stale
	}
	for i, d := range knownDivergences {
		if !used[i] {
			t.Errorf("knownDivergences[%d] (%s, %q) matches no case: remove it or fix the name", i, d.oracle, d.name)
		}
		if d.does == "" || d.breaks == "" {
			t.Errorf("knownDivergences[%d] (%s, %q) must say what the oracle does and which statement that breaks", i, d.oracle, d.name)
		}
	}
}
