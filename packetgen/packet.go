package packetgen

// Packet is one MQTT control packet. The set of implementations is closed:
// *Connect, *Connack, *Publish, *Puback, *Pubrec, *Pubrel, *Pubcomp,
// *Subscribe, *Suback, *Unsubscribe, *Unsuback, *Pingreq, *Pingresp,
// *Disconnect and *Auth.
type Packet interface {
	// Type is the control packet type.
	Type() Type
	// Clone returns a deep copy that shares no memory with the receiver.
	Clone() Packet

	// flags is the low nibble of the first byte.
	flags() byte
	// bodySize is the remaining length the packet encodes to.
	bodySize(v Version) int
	// appendBody appends the variable header and payload, unchecked.
	appendBody(dst []byte, v Version) []byte
	// validate checks what Decode would check, for a packet about to be
	// sent by from.
	validate(v Version, from Side) error
	// decode fills the packet from its body; flags is the low nibble.
	decode(c *cursor, flags byte, from Side) error
}

// New returns an empty packet of type t, or nil for a type the version
// does not define (0 always, 15 before 5.0).
func New(t Type, v Version) Packet {
	switch t {
	case TypeConnect:
		return &Connect{}
	case TypeConnack:
		return &Connack{}
	case TypePublish:
		return &Publish{}
	case TypePuback:
		return &Puback{}
	case TypePubrec:
		return &Pubrec{}
	case TypePubrel:
		return &Pubrel{}
	case TypePubcomp:
		return &Pubcomp{}
	case TypeSubscribe:
		return &Subscribe{}
	case TypeSuback:
		return &Suback{}
	case TypeUnsubscribe:
		return &Unsubscribe{}
	case TypeUnsuback:
		return &Unsuback{}
	case TypePingreq:
		return &Pingreq{}
	case TypePingresp:
		return &Pingresp{}
	case TypeDisconnect:
		return &Disconnect{}
	case TypeAuth:
		if v == V5 {
			return &Auth{}
		}
	}
	return nil
}
