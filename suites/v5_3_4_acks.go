package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// akCodes are the reason codes each acknowledgement may carry (§3.4.2.1,
// §3.5.2.1, §3.6.2.1, §3.7.2.1).
var (
	akPubackCodes = []packetgen.ReasonCode{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}
	akPubrelCodes = []packetgen.ReasonCode{0x00, 0x92}
)

func akIn(rc packetgen.ReasonCode, codes []packetgen.ReasonCode) bool {
	for _, c := range codes {
		if rc == c {
			return true
		}
	}
	return false
}

func init() {
	addSection5("3.4", "Acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP)", func(s *S) {
		// PUBACK and PUBREC carry a PUBACK/PUBREC Reason Code: 0x00 for a
		// message with subscribers, 0x00 or 0x10 (no matching subscribers)
		// for one without. (The decoder also rejects other codes.)
		s.Spec("MQTT-3.4.2-1 MQTT-3.5.2-1", "answers PUBLISH with PUBACK and PUBREC of 0x00, or 0x10 when no one subscribes",
			Label("qos1", "qos2"), func(w *World) {
				pqNeedQoS(w, 1)
				t := w.Topic("acks")
				sub := w.Connect("sub")
				sub.Granted(t, 2)
				c := w.Connect("pub")
				for q := packetgen.QoS(1); q <= packetgen.QoS(*w.Cfg().Profile.MaxQoS); q++ {
					for _, k := range []struct {
						topic string
						ok    []packetgen.ReasonCode
						what  string
					}{
						{t, []packetgen.ReasonCode{0x00}, "with a subscriber"},
						{w.Topic("nobody"), []packetgen.ReasonCode{0x00, 0x10}, "without subscribers"},
					} {
						rc := c.PublishPacket(Message(k.topic, "x", q, nil))
						w.Expectf(akIn(rc, k.ok) && akIn(rc, akPubackCodes), fmt.Sprintf("reason code %v for a QoS %d PUBLISH %s", k.ok, q, k.what), "0x%02X", byte(rc))
					}
				}
				fcDrain(sub, nil)
			})

		// The server's PUBREL carries 0x00, or 0x92 for a PUBREC whose
		// identifier it does not know; its PUBCOMP 0x00, or 0x92 for a
		// PUBREL it does not know.
		s.Spec("MQTT-3.6.2-1 MQTT-3.7.2-1", "uses PUBREL and PUBCOMP reason codes: 0x00, or 0x92 for an identifier it does not know",
			Label("qos2"), func(w *World) {
				pqNeedQoS(w, 2)
				t := w.Topic("q2")
				sub := w.Connect("sub")
				pqGrantedAtLeast(sub, t, 2)
				pub := w.Connect("pub")
				pub.Publish(t, "x", 2, false)
				p := sub.ReceiveNoAck()
				sub.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
				rel := ExpectPacket[*packetgen.Pubrel](sub)
				w.Expectf(rel.ReasonCode == 0, "PUBREL 0x00 for a PUBREC it knows", "%s", packetgen.Format(rel))
				sub.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
				sub.MustSend(&packetgen.Pubrec{PacketID: 4321})
				if got, err := sub.Recv(w.Cfg().Quiet); err == nil {
					if r, ok := got.(*packetgen.Pubrel); ok {
						w.Expectf(akIn(r.ReasonCode, akPubrelCodes), "PUBREL 0x00 or 0x92", "%s", packetgen.Format(r))
						sub.MustSend(&packetgen.Pubcomp{PacketID: r.PacketID})
					}
				}
				pub.MustSend(&packetgen.Pubrel{PacketID: 4321})
				comp := ExpectPacket[*packetgen.Pubcomp](pub)
				w.Expectf(comp.PacketID == 4321 && akIn(comp.ReasonCode, akPubrelCodes), "PUBCOMP id=4321 with 0x00 or 0x92", "%s", packetgen.Format(comp))
				w.Shouldf(comp.ReasonCode == packetgen.PacketIdentifierNotFound, "PUBCOMP 0x92 (Packet Identifier not found) for a PUBREL it does not know",
					"%s", packetgen.Format(comp))
			})

		// Reason String and User Properties stay out of acknowledgements
		// they would make larger than the client's Maximum Packet Size.
		s.Spec("MQTT-3.4.2-2 MQTT-3.4.2-3 MQTT-3.5.2-2 MQTT-3.5.2-3 MQTT-3.6.2-2 MQTT-3.6.2-3 MQTT-3.7.2-2 MQTT-3.7.2-3",
			"keeps PUBACK, PUBREC, PUBREL and PUBCOMP within the client's Maximum Packet Size",
			Label("qos1", "qos2", "packet-size"), func(w *World) {
				pqNeedQoS(w, 1)
				limit := caLimit(w, 8)
				small := WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) })
				c := w.Connect("c", small)
				for q := packetgen.QoS(1); q <= packetgen.QoS(*w.Cfg().Profile.MaxQoS); q++ {
					p := Message(w.Topic("nobody"), "x", q, nil)
					p.PacketID = c.ID()
					c.MustSend(p)
					caCheckSize(w, c.NextAnswer("PUBACK or PUBREC"), limit)
					if q == 2 {
						c.MustSend(&packetgen.Pubrel{PacketID: p.PacketID})
						caCheckSize(w, c.NextAnswer("PUBCOMP"), limit)
					}
				}
				c.MustSend(&packetgen.Pubrel{PacketID: 999})
				caCheckSize(w, c.NextAnswer("PUBCOMP for an unknown PUBREL"), limit)
				c.MustSend(&packetgen.Pubrec{PacketID: 998})
				if p, err := c.Recv(w.Cfg().Quiet); err == nil {
					caCheckSize(w, p, limit)
				}
			})
	})
	addSection5("3.6", "PUBREL", func(s *S) {
		s.Reuse("3.6", "MQTT-3.6.1-1", "MQTT-3.6.1-1")
	})
}
