package suites

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// shNeed skips a spec when the broker says it has no shared
// subscriptions, and returns a group's filter for topic.
func shNeed(w *World, topic string) string {
	w.Lacks(!w.Caps().SharedAvailable, "Shared Subscription Available 0")
	return "$share/" + w.ClientID("g") + "/" + topic
}

// shCount tells which member got which payloads.
func shCount(got map[string][]*packetgen.Publish) map[string]int {
	n := map[string]int{}
	for _, ps := range got {
		for _, p := range ps {
			n[string(p.Payload)]++
		}
	}
	return n
}

func init() {
	addSection5("4.8", "Subscriptions", func(s *S) {
		// A shared subscription's filter starts with "$share/", a ShareName
		// of at least one character without '/', '+' or '#', a '/' and a
		// topic filter: a SUBSCRIBE breaking that is refused (SUBACK 0x80
		// or more) or the connection closed.
		s.Spec("MQTT-4.8.2-1 MQTT-4.8.2-2", "refuses shared subscription filters without a ShareName, with a wildcard in it, or without a filter after it",
			Label("shared", "malformed"), func(w *World) {
				shNeed(w, "x")
				bad := []string{"$share//" + w.Topic("t"), "$share/" + w.ClientID("g"), "$share/" + w.ClientID("g") + "/",
					"$share/a+b/" + w.Topic("t"), "$share/a#/" + w.Topic("t")}
				for i, f := range bad {
					c := w.Connect(fmt.Sprintf("s%d", i))
					expectFilterRefused(c, f, "not a valid shared subscription filter")
				}
			})

		// Each message matching a shared subscription goes to one member
		// only, at the QoS granted to that member.
		s.Spec("MQTT-4.8.2-3", "sends each message of a shared subscription to exactly one member, at the QoS granted to that member",
			Label("shared", "qos1", "qos2"), func(w *World) {
				t := w.Topic("work")
				f := shNeed(w, t)
				a, b := w.Connect("a"), w.Connect("b")
				ga := a.Granted5(On(f, 0))
				gb := b.Granted5(On(f, 2))
				pub := w.Connect("pub")
				const n = 10
				q := packetgen.QoS(*w.Cfg().Profile.MaxQoS)
				for i := range n {
					pub.Publish(t, fmt.Sprintf("job%d", i), q, false)
				}
				got := map[string][]*packetgen.Publish{"a": fcDrain(a, nil), "b": fcDrain(b, nil)}
				for name, ps := range got {
					g := map[string]packetgen.QoS{"a": ga, "b": gb}[name]
					for _, p := range ps {
						w.Expectf(p.QoS == min(q, g), fmt.Sprintf("member %s's deliveries at QoS %d (granted %d, published %d)", name, min(q, g), g, q),
							"%s", packetgen.Format(p))
					}
				}
				counts := shCount(got)
				for i := range n {
					w.Expectf(counts[fmt.Sprintf("job%d", i)] == 1, fmt.Sprintf("job%d delivered to exactly one member", i),
						"a: %s; b: %s", pqFormatPublishes(got["a"]), pqFormatPublishes(got["b"]))
				}
			})

		// No retained message is sent for a shared subscription (§4.8.2),
		// though Retain Handling 0 sends them for ordinary ones.
		s.Spec("MQTT-3.3.1-9", "sends no retained messages when a shared subscription is made",
			Label("shared", "retain"), func(w *World) {
				t := w.Topic("r")
				f := shNeed(w, t)
				pqNeedRetain(w)
				w.Connect("pub").Publish(t, "retained", 1, true)
				c := w.Connect("c")
				c.Granted5(On(f, 1))
				pqNothingBeforePing(c, "a shared subscription gets no retained messages")
			})

		// A QoS 2 delivery to a member whose connection breaks is
		// completed to that member when it reconnects, not handed to
		// another.
		s.Spec("MQTT-4.8.2-4", "completes a QoS 2 delivery to the member it started with when that member reconnects",
			Label("shared", "qos2", "session"), func(w *World) {
				pqNeedQoS(w, 2)
				t := w.Topic("q2")
				f := shNeed(w, t)
				a := w.Connect("a", Persistent)
				a.Granted5(On(f, 2))
				pub := w.Connect("pub")
				pub.Publish(t, "exactly once", 2, false)
				first := a.ReceiveNoAck()
				b := w.Connect("b")
				b.Granted5(On(f, 2))
				a.Close()
				b.ExpectNothing("the QoS 2 message stays with member a")
				back, _ := lcReconnect(w, "a", Persistent)
				p := back.ReceiveNoAck()
				w.Expectf(p.PacketID == first.PacketID && string(p.Payload) == "exactly once" && p.Dup,
					fmt.Sprintf("the QoS 2 PUBLISH id=%d sent again to member a with DUP 1", first.PacketID), "%s", packetgen.Format(p))
				back.Ack(p)
				pqNothingBeforePing(b, "the QoS 2 message went to member a only")
			})

		// A QoS 2 message in flight to a member whose session ends goes to
		// no one else.
		s.Spec("MQTT-4.8.2-5", "does not send a QoS 2 message in flight to a member whose session ended to another member",
			Label("shared", "qos2"), func(w *World) {
				pqNeedQoS(w, 2)
				t := w.Topic("q2")
				f := shNeed(w, t)
				a := w.Connect("a") // Session Expiry Interval 0: ends with the connection
				a.Granted5(On(f, 2))
				pub := w.Connect("pub")
				pub.Publish(t, "in flight", 2, false)
				a.ReceiveNoAck()
				b := w.Connect("b")
				b.Granted5(On(f, 2))
				a.Close()
				b.ExpectNothingFor(w.Cfg().Quiet+500*time.Millisecond, "the QoS 2 message was in flight to member a, whose session ended")
			})

		// A QoS 1 message in flight to a member whose session ends SHOULD
		// go to another member.
		s.Spec("MQTT-4.8.2-3", "sends a QoS 1 message in flight to a member whose session ended to another member (SHOULD)",
			Label("shared", "qos1"), func(w *World) {
				pqNeedQoS(w, 1)
				t := w.Topic("q1")
				f := shNeed(w, t)
				a := w.Connect("a")
				a.Granted5(On(f, 1))
				pub := w.Connect("pub")
				pub.Publish(t, "in flight", 1, false)
				a.ReceiveNoAck()
				b := w.Connect("b")
				b.Granted5(On(f, 1))
				a.Close()
				got := fcDrain(b, nil)
				w.Shouldf(len(got) == 1 && string(got[0].Payload) == "in flight",
					"the QoS 1 message in flight to member a, whose session ended, sent to member b", "%s", pqFormatPublishes(got))
				for _, p := range got {
					w.Expectf(p.QoS <= 1, "at most QoS 1, as granted to member b", "%s", packetgen.Format(p))
				}
			})

		// A member that refuses a message (PUBACK or PUBREC of 0x80 or
		// more) ends it: the server sends it to no other member.
		s.Spec("MQTT-4.8.2-6", "discards a message a member refused with PUBACK or PUBREC of 0x80 or more, sending it to no other member",
			Label("shared", "qos1", "qos2"), func(w *World) {
				pqNeedQoS(w, 1)
				t := w.Topic("refused")
				f := shNeed(w, t)
				a := w.Connect("a")
				g := a.Granted5(On(f, 2))
				pub := w.Connect("pub")
				var refused []string
				for q := packetgen.QoS(1); q <= g; q++ {
					payload := fmt.Sprintf("refused at QoS %d", q)
					refused = append(refused, payload)
					pub.Publish(t, payload, q, false)
					p := a.ReceiveNoAck()
					if p.QoS == 1 {
						a.MustSend(&packetgen.Puback{PacketID: p.PacketID, ReasonCode: packetgen.UnspecifiedError})
					} else {
						a.MustSend(&packetgen.Pubrec{PacketID: p.PacketID, ReasonCode: packetgen.UnspecifiedError})
					}
				}
				b := w.Connect("b")
				b.Granted5(On(f, 2))
				a.Close()
				got := fcDrain(b, nil)
				for _, p := range got {
					w.Expectf(!slices.Contains(refused, string(p.Payload)), "no refused message sent to member b", "%s", packetgen.Format(p))
				}
			})
	})
}
