package broker

import "github.com/mqttbench/mqttbench/packetgen"

// message is an application message on its way through the broker. It is
// never changed after it is made, so sessions share it.
type message struct {
	topic   []byte
	payload []byte
	qos     packetgen.QoS
	retain  bool
}

// outbound is a QoS 1 or 2 message sent to a client and not yet
// completely acknowledged.
type outbound struct {
	msg      *message
	qos      packetgen.QoS
	id       uint16
	retain   bool
	released bool // PUBREC received and PUBREL sent: waiting for PUBCOMP
}

// publishPacket builds the PUBLISH that delivers m at qos.
func (m *message) publishPacket(qos packetgen.QoS, id uint16, retain, dup bool) *packetgen.Publish {
	return &packetgen.Publish{Topic: m.topic, Payload: m.payload, QoS: qos, PacketID: id, Retain: retain, Dup: dup}
}
