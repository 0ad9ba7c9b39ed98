package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("4.4", "Message delivery retry", func(s *S) {
		// When a clean-session-0 client reconnects, the server sends again
		// every PUBLISH (QoS > 0) it has not had acknowledged, with its
		// original packet identifier; acknowledged ones are not sent again.
		s.Spec("MQTT-4.4.0-1", "sends unacknowledged QoS 1 and 2 PUBLISH packets again with their identifiers when the session resumes",
			Label("qos1", "qos2", "session"), func(w *World) {
				pqNeedQoS(w, 1)
				t := w.Topic("retry")
				sub := w.Connect("sub", Persistent)
				g := pqGrantedAtLeast(sub, t, 1)
				pub := w.Connect("pub")
				qs := []packetgen.QoS{1, g, 1, g, 1}
				for i, q := range qs {
					pub.Publish(t, fmt.Sprintf("message %d", i), q, false)
				}
				unacked := map[uint16]*packetgen.Publish{}
				var acked *packetgen.Publish
				for range qs {
					p := sub.ReceiveNoAck()
					if string(p.Payload) == "message 2" { // QoS 1: acknowledged, so done with
						sub.MustSend(&packetgen.Puback{PacketID: p.PacketID})
						acked = p
						continue
					}
					unacked[p.PacketID] = p
				}
				sub.Ping() // the PUBACK has been processed
				sub = pqResume(w, sub, "sub")
				for range len(unacked) {
					p := sub.ReceiveNoAck()
					orig := unacked[p.PacketID]
					w.Expectf(orig != nil && p.QoS == orig.QoS && string(p.Payload) == string(orig.Payload),
						fmt.Sprintf("each unacknowledged message sent again with its packet identifier and QoS, and not the acknowledged %s",
							packetgen.Format(acked)),
						"%s (still unacknowledged: %d)", packetgen.Format(p), len(unacked))
					delete(unacked, p.PacketID)
				}
				sub.ExpectNothing("only the unacknowledged messages are sent again")
			})

		// A PUBREL the server has sent and not had completed by PUBCOMP is
		// sent again, with its identifier, when the session resumes.
		s.Spec("MQTT-4.4.0-1", "sends an uncompleted PUBREL again with its identifier when the session resumes",
			Label("qos2", "session"), func(w *World) {
				pqNeedQoS(w, 2)
				t := w.Topic("retry")
				sub := w.Connect("sub", Persistent)
				pqGrantedAtLeast(sub, t, 2)
				pub := w.Connect("pub")
				pub.Publish(t, "released", 2, false)
				p := sub.ReceiveNoAck()
				sub.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
				rel := ExpectPacket[*packetgen.Pubrel](sub)
				w.Expectf(rel.PacketID == p.PacketID, fmt.Sprintf("PUBREL id=%d", p.PacketID), "%s", packetgen.Format(rel))
				sub = pqResume(w, sub, "sub")
				got := sub.Next(fmt.Sprintf("PUBREL id=%d sent again", p.PacketID))
				again, ok := got.(*packetgen.Pubrel)
				w.Expectf(ok && again.PacketID == p.PacketID, fmt.Sprintf("PUBREL id=%d sent again", p.PacketID), "%s", packetgen.Format(got))
				sub.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
				pqNothingBeforePing(sub, "the QoS 2 flow is complete")
			})
	})
}
