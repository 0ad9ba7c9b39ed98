package packetgen

import "fmt"

// Version is the protocol level carried in CONNECT.
type Version byte

// Protocol levels. MQTT 3.1 uses the protocol name "MQIsdp", the others "MQTT".
const (
	V31  Version = 3
	V311 Version = 4
	V5   Version = 5
)

// String returns the version as users write it: "3.1", "3.1.1" or "5.0".
func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return fmt.Sprintf("level-%d", byte(v))
}

// Valid reports whether v is a protocol level this codec speaks.
func (v Version) Valid() bool { return v == V31 || v == V311 || v == V5 }

// ProtocolName is the protocol name CONNECT carries for this version.
func (v Version) ProtocolName() string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// ParseVersion accepts "3.1", "3.1.1", "5", "5.0" and the levels "3", "4".
func ParseVersion(s string) (Version, error) {
	switch s {
	case "3.1", "3":
		return V31, nil
	case "3.1.1", "4":
		return V311, nil
	case "5", "5.0":
		return V5, nil
	}
	return 0, fmt.Errorf("unknown MQTT version %q (want 3.1, 3.1.1 or 5)", s)
}

// Type is the MQTT control packet type, the high nibble of the first byte.
type Type byte

// Control packet types. 0 is reserved in every version; 15 is reserved
// before 5.0, where it is AUTH.
const (
	TypeReserved    Type = 0
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
	TypeAuth        Type = 15
)

var typeNames = [16]string{
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

func (t Type) String() string {
	if t < 16 {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE(%d)", byte(t))
}

// fixedFlags is the value the low nibble of the first byte must hold for
// every type but PUBLISH (MQTT-2.2.2-1 in 3.1.1, MQTT-2.1.3-1 in 5.0).
var fixedFlags = [16]byte{TypePubrel: 2, TypeSubscribe: 2, TypeUnsubscribe: 2}

// Side says who sent a packet. Some packets only flow one way (CONNACK only
// from a server, SUBSCRIBE only from a client), and a few rules differ.
type Side byte

const (
	// AnySide accepts packets of either direction.
	AnySide Side = iota
	// FromClient marks bytes a client sent (what a broker decodes).
	FromClient
	// FromServer marks bytes a server sent (what a client decodes).
	FromServer
)

func (s Side) String() string {
	switch s {
	case FromClient:
		return "client"
	case FromServer:
		return "server"
	}
	return "any"
}

// sentBy tells which side may send a packet type.
func sentBy(t Type, v Version) Side {
	switch t {
	case TypeConnect, TypeSubscribe, TypeUnsubscribe, TypePingreq:
		return FromClient
	case TypeConnack, TypeSuback, TypeUnsuback, TypePingresp:
		return FromServer
	case TypeDisconnect:
		if v != V5 {
			return FromClient // only 5.0 lets a server send DISCONNECT
		}
	}
	return AnySide
}

// QoS is a quality of service level. 3 is never valid on the wire.
type QoS byte

const (
	QoS0 QoS = 0
	QoS1 QoS = 1
	QoS2 QoS = 2
)

// Limits from the specification.
const (
	// MaxRemainingLength is the largest value four varint bytes can hold.
	MaxRemainingLength = 268435455
	// MaxPacketSize is the largest whole packet: 1 type byte, 4 length
	// bytes and the largest remaining length.
	MaxPacketSize = 1 + 4 + MaxRemainingLength
	// MaxStringLength bounds every UTF-8 string and binary field.
	MaxStringLength = 65535
)
