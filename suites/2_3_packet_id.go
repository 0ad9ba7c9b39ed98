package suites

import (
	"fmt"
	"sort"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// lcOddIDs are packet identifiers whose two bytes differ, so that a
// server that swaps, truncates or renumbers them is caught.
var lcOddIDs = []uint16{0x0102, 0xA55A, 0xFFFF, 0x8001, 0x00FE}

func init() {
	addSection("2.3", "Packet identifier", func(s *S) {
		// PUBLISH with QoS > 0 must carry a non-zero packet identifier:
		// every QoS 1 and QoS 2 PUBLISH the server sends has one.
		s.Spec("MQTT-2.3.1-1", "sends every QoS 1 and QoS 2 PUBLISH with a non-zero packet identifier",
			Label("qos1", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("ids")
				sub := w.Connect("sub")
				granted := sub.Granted(topic, 2)
				w.Require(granted >= 1, "the broker granted QoS 0")
				pub := w.Connect("pub")
				for i := range 4 {
					q := packetgen.QoS(1 + i%2)
					pub.Publish(topic, fmt.Sprintf("m%d", i), q, false)
					p := sub.ReceiveNoAck() // fails on identifier 0
					sub.Ack(p)
				}
			})

		// The same rule seen from the receiving side: SUBSCRIBE,
		// UNSUBSCRIBE and QoS > 0 PUBLISH with identifier 0 break it,
		// and a server treats that as a protocol violation and closes
		// the connection (MQTT-4.8.0-1) rather than acknowledge it.
		s.Spec("MQTT-2.3.1-1", "closes the connection on a SUBSCRIBE, UNSUBSCRIBE or QoS 1 or 2 PUBLISH with packet identifier 0",
			Label("malformed"), func(w *World) {
				packets := []packetgen.Packet{
					&packetgen.Subscribe{Subscriptions: []packetgen.Subscription{{Filter: w.Topic("z")}}},
					&packetgen.Unsubscribe{Filters: []string{w.Topic("z")}},
					&packetgen.Publish{QoS: 1, Topic: []byte(w.Topic("z")), Payload: []byte("x")},
					&packetgen.Publish{QoS: 2, Topic: []byte(w.Topic("z")), Payload: []byte("x")},
				}
				var pending []lcPending
				for i, p := range packets {
					c := w.Connect(fmt.Sprintf("zero%d", i))
					what := packetgen.Format(p) + " with packet identifier 0"
					c.MustSendRaw(packetgen.AppendUnchecked(nil, p, w.Cfg().Version), what)
					pending = append(pending, lcPending{c: c, why: what})
				}
				lcExpectAllClosed(w, pending)
			})

		// An identifier becomes free again once its flow is complete
		// (PUBACK for QoS 1, PUBCOMP for QoS 2), and a PUBLISH that reuses
		// it is a new message: the server must deliver it, not take it
		// for a repeat of the finished one.
		s.Spec("MQTT-2.3.1-3", "treats a PUBLISH that reuses the identifier of a completed flow as a new message",
			Label("qos1", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("reuse")
				sub := w.Connect("sub")
				sub.Granted(topic, 2)
				pub := w.Connect("pub")
				const id = 0x0042
				var sent []string
				for _, q := range []packetgen.QoS{1, 1, 2, 2} {
					payload := fmt.Sprintf("qos%d-%d", q, len(sent))
					pub.MustSend(&packetgen.Publish{QoS: q, PacketID: id, Topic: []byte(topic), Payload: []byte(payload)})
					pub.completeSend(id, q)
					sent = append(sent, payload)
				}
				got := lcPayloads(lcCollect(sub))
				sort.Strings(sent)
				w.Expectf(len(lcMissing(sent, got)) == 0, fmt.Sprintf("all of %q, each published with identifier %d after the previous flow completed", sent, id),
					"%q", got)
			})

		// When the server sends a new QoS > 0 PUBLISH it must pick an
		// identifier not in use: none of the messages in flight to a
		// client (unacknowledged, or QoS 2 awaiting PUBCOMP) may share one.
		s.Spec("MQTT-2.3.1-4", "gives every QoS 1 and QoS 2 PUBLISH in flight to a client an identifier of its own",
			Label("qos1", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("inflight")
				sub := w.Connect("sub")
				granted := sub.Granted(topic, 2)
				w.Require(granted >= 1, "the broker granted QoS 0")
				pub := w.Connect("pub")
				publish := func(from int) {
					for i := from; i < from+4; i++ {
						pub.Publish(topic, fmt.Sprintf("m%d", i), packetgen.QoS(1+i%2), false)
					}
				}
				inUse := map[uint16]string{}
				take := func(ps []*packetgen.Publish) {
					for _, p := range ps {
						if p.QoS == 0 {
							continue
						}
						if prev, dup := inUse[p.PacketID]; dup {
							w.Failf("expected a packet identifier not in use by a message in flight; got %s while %q is in flight with identifier %d",
								packetgen.Format(p), prev, p.PacketID)
						}
						inUse[p.PacketID] = string(p.Payload)
					}
				}
				publish(0)
				first := lcHold(sub)
				w.Expectf(len(first) > 0, "the messages published to "+topic, "nothing")
				take(first)
				// Move the QoS 2 messages on to PUBREL, and keep them there:
				// their identifiers stay in use until PUBCOMP.
				for _, p := range first {
					if p.QoS == 2 {
						sub.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
						rel := ExpectPacket[*packetgen.Pubrel](sub)
						w.Expectf(rel.PacketID == p.PacketID, fmt.Sprintf("PUBREL id=%d", p.PacketID), "%s", packetgen.Format(rel))
					}
				}
				publish(4)
				take(lcHold(sub)) // what fits the broker's window
			})

		// A server re-sending a PUBLISH (to a persistent session that
		// reconnects) must use the identifier it first sent it with.
		s.Spec("MQTT-2.3.1-4", "re-sends an unacknowledged PUBLISH with its original packet identifier",
			Label("qos1", "session"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("resend")
				sub := w.Connect("sub", Persistent)
				w.Require(sub.Granted(topic, 1) == 1, "the broker granted QoS 0")
				pub := w.Connect("pub")
				// Use a few identifiers first, so that the ones in flight are
				// not simply the first a fresh counter hands out.
				for i := range 3 {
					pub.Publish(topic, fmt.Sprintf("acked%d", i), 1, false)
					sub.Receive()
				}
				for i := range 2 {
					pub.Publish(topic, fmt.Sprintf("held%d", i), 1, false)
				}
				held := lcHold(sub)
				w.Expectf(len(held) > 0, "the messages published to "+topic, "nothing")
				ids := map[string]uint16{}
				for _, p := range held {
					ids[string(p.Payload)] = p.PacketID
				}
				sub.Close()
				again, ack := lcReconnect(w, "sub", Persistent)
				lcSessionPresent(w, ack, true, "the session was stored")
				resent := map[string]bool{}
				for _, p := range again.ReceiveAll() {
					id, ok := ids[string(p.Payload)]
					if !ok {
						continue
					}
					resent[string(p.Payload)] = true
					w.Expectf(p.PacketID == id, fmt.Sprintf("the re-sent %q with its original identifier %d", p.Payload, id),
						"%s", packetgen.Format(p))
				}
				for payload := range ids {
					w.Expectf(resent[payload], fmt.Sprintf("the unacknowledged %q re-sent after the reconnect", payload), "no such PUBLISH")
				}
			})

		// A QoS 0 PUBLISH carries no packet identifier: whatever the QoS
		// a message was published with, its QoS 0 delivery holds the
		// topic and then the payload exactly, with no identifier between.
		s.Spec("MQTT-2.3.1-5", "sends QoS 0 PUBLISH packets without a packet identifier, also for messages published at QoS 1 and 2",
			Label("qos1", "qos2"), func(w *World) {
				topic := w.Topic("qos0")
				sub := w.Connect("sub")
				sub.Granted(topic, 0)
				pub := w.Connect("pub")
				for q := packetgen.QoS(0); q <= 2; q++ {
					payload := fmt.Sprintf("published at QoS %d", q)
					pub.Publish(topic, payload, q, false)
					p := sub.Receive()
					w.Expectf(p.QoS == 0 && string(p.Payload) == payload && string(p.Topic) == topic,
						fmt.Sprintf("PUBLISH topic=%q payload=%q at QoS 0, with no identifier bytes before the payload", topic, payload),
						"%s", packetgen.Format(p))
				}
			})

		// PUBACK, PUBREC and PUBREL carry the identifier of the PUBLISH
		// they belong to: the server's PUBACK and PUBREC answer the
		// client's PUBLISH, its PUBREL follows the client's PUBREC.
		s.Spec("MQTT-2.3.1-6", "answers PUBLISH with PUBACK and PUBREC, and PUBREC with PUBREL, carrying the same packet identifier",
			Label("qos1", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("acks")
				c := w.Connect("c")
				c.Granted(topic, 2)
				// Several flows at once, identifiers chosen to show byte
				// order mistakes; the acknowledgements may come in any order.
				want := map[uint16]packetgen.QoS{}
				for i, id := range lcOddIDs {
					q := packetgen.QoS(1 + i%2)
					want[id] = q
					c.MustSend(&packetgen.Publish{QoS: q, PacketID: id, Topic: []byte(topic), Payload: []byte(fmt.Sprintf("id%d", id))})
				}
				deliveries := 0
				released := map[uint16]bool{} // our PUBREC sent, the broker's PUBREL due
				completing := 0               // our PUBREL sent, the broker's PUBCOMP due
				for len(want) > 0 || deliveries < len(lcOddIDs) || len(released) > 0 || completing > 0 {
					switch p := c.NextAnswer(fmt.Sprintf("acknowledgements of %d PUBLISH packets and their delivery back", len(want))).(type) {
					case *packetgen.Puback:
						if want[p.PacketID] == 2 { // the identifier is right, the answer is not this spec's
							w.stepFailed(rulePubrec, "expected PUBREC id=%d at %s; got %s", p.PacketID, c.Name, packetgen.Format(p))
						}
						w.Expectf(want[p.PacketID] == 1, "PUBACK only with the identifier of a QoS 1 PUBLISH awaiting it", "%s", packetgen.Format(p))
						delete(want, p.PacketID)
					case *packetgen.Pubrec:
						if want[p.PacketID] == 1 {
							w.stepFailed(rulePuback, "expected PUBACK id=%d at %s; got %s", p.PacketID, c.Name, packetgen.Format(p))
						}
						w.Expectf(want[p.PacketID] == 2, "PUBREC only with the identifier of a QoS 2 PUBLISH awaiting it", "%s", packetgen.Format(p))
						delete(want, p.PacketID)
						c.MustSend(&packetgen.Pubrel{PacketID: p.PacketID})
						completing++
					case *packetgen.Pubcomp:
						// PUBCOMP pairs with our PUBREL (4.3.3), judged there.
						completing--
					case *packetgen.Publish:
						// Our own messages come back: answer QoS 2 with PUBREC
						// and expect PUBREL with the same identifier.
						deliveries++
						switch p.QoS {
						case 1:
							c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
						case 2:
							released[p.PacketID] = true
							c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
						}
					case *packetgen.Pubrel:
						w.Expectf(released[p.PacketID], "PUBREL only with the identifier of a QoS 2 PUBLISH we answered with PUBREC",
							"%s", packetgen.Format(p))
						delete(released, p.PacketID)
						c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
					default:
						w.Failf("expected acknowledgements and deliveries only; got %s", packetgen.Format(p))
					}
				}
				c.ExpectNothing("every flow is complete")
			})

		// SUBACK and UNSUBACK carry the identifier of the SUBSCRIBE and
		// UNSUBSCRIBE they answer.
		s.Spec("MQTT-2.3.1-7", "answers SUBSCRIBE and UNSUBSCRIBE with SUBACK and UNSUBACK carrying the same packet identifier",
			func(w *World) {
				c := w.Connect("c")
				// Several at once; the answers may come in any order, but
				// each identifier must come back exactly once.
				expectIDs := func(what string, got func() uint16) {
					want := map[uint16]bool{}
					for _, id := range lcOddIDs {
						want[id] = true
					}
					for range lcOddIDs {
						id := got()
						w.Expectf(want[id], fmt.Sprintf("%s carrying an identifier of a %s not yet answered, one of %v", what, what[:len(what)-3], lcOddIDs),
							"%s id=%d", what, id)
						delete(want, id)
					}
				}
				for i, id := range lcOddIDs {
					c.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{{Filter: w.Topic(fmt.Sprint(i))}}})
				}
				expectIDs("SUBACK", func() uint16 { return ExpectPacket[*packetgen.Suback](c).PacketID })
				for i, id := range lcOddIDs {
					c.MustSend(&packetgen.Unsubscribe{PacketID: id, Filters: []string{w.Topic(fmt.Sprint(i))}})
				}
				expectIDs("UNSUBACK", func() uint16 { return ExpectPacket[*packetgen.Unsuback](c).PacketID })
			})
	})
	notTestable("MQTT-2.3.1-2", "binds only the client (choosing unused identifiers for its own packets); the server's side is MQTT-2.3.1-4")
}
