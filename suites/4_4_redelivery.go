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
		// The spec needs one of each: it leaves unacknowledged what the
		// broker sends before it waits (§4.9 lets it send one at a time)
		// and acknowledges the oldest to get the next.
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
				in := pqNewInbox(sub)
				unacked := map[uint16]*packetgen.Publish{}
				var order, acked []*packetgen.Publish // order: unacknowledged, oldest first
				sent := map[string]bool{}             // payloads delivered before the session resumed
				take := func(ps []*packetgen.Publish) {
					for _, p := range ps {
						sent[string(p.Payload)] = true
						if string(p.Payload) == "message 2" { // QoS 1: acknowledged, so done with
							in.ack(p)
							acked = append(acked, p)
							continue
						}
						unacked[p.PacketID] = p
						order = append(order, p)
					}
				}
				for n := 0; n < len(qs); {
					ps := in.burst(len(qs) - n)
					take(ps)
					if n += len(ps); n < len(qs) && len(order) > 0 {
						if len(acked) > 0 {
							break // one of each: the rest stays with the broker
						}
						// The broker waits for an acknowledgement.
						oldest := order[0]
						order = order[1:]
						delete(unacked, oldest.PacketID)
						in.ack(oldest)
						acked = append(acked, oldest)
					}
				}
				take(in.settle())
				sub.Ping() // the acknowledgements have been processed
				if len(unacked) == 0 {
					w.inconclusive("every message the broker sent was acknowledged before it sent more: none left to send again")
				}
				sub = pqResume(w, sub, "sub")
				in = pqNewInbox(sub)
				again := map[uint16]int{}
				in.each(func(p *packetgen.Publish) {
					orig := unacked[p.PacketID]
					switch {
					case orig != nil && p.QoS == orig.QoS && string(p.Payload) == string(orig.Payload):
						again[p.PacketID]++
						w.Expectf(again[p.PacketID] == 1, "each unacknowledged message sent again once", "%s twice", packetgen.Format(p))
					case sent[string(p.Payload)]:
						w.Failf("expected each unacknowledged message sent again with its packet identifier and QoS, and not the acknowledged %s; got %s",
							pqFormatPublishes(acked), packetgen.Format(p))
					}
					// Anything else was never sent: a first delivery, due now.
					in.ack(p)
				})
				for id, p := range unacked {
					w.Expectf(again[id] == 1, fmt.Sprintf("the unacknowledged %s sent again with its packet identifier and QoS", packetgen.Format(p)),
						"not sent again (still unacknowledged: %d)", len(unacked)-len(again))
				}
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
