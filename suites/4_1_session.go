package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("4.1", "Storing state", func(s *S) {
		// The server keeps a session's state for as long as the session
		// lasts, across connections with clean session 0: its
		// subscriptions, the QoS 1 and 2 messages sent but not
		// acknowledged, and those that came while the client was away.
		s.Spec("MQTT-4.1.0-1", "keeps subscriptions, unacknowledged and queued QoS 1 and 2 messages of a session across reconnects",
			Label("session", "qos1", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				one, two := w.Topic("one"), w.Topic("two")
				c := w.Connect("c", Persistent)
				w.Require(c.Granted(one, 1) == 1, "the broker granted QoS 0")
				c.Granted(two, 2)
				pub := w.Connect("pub")
				pub.Publish(one, "in flight", 1, false)
				held := c.ReceiveNoAck()
				w.Expectf(string(held.Payload) == "in flight", `the message "in flight"`, "%s", packetgen.Format(held))
				c.Close() // without acknowledging it
				pub.Publish(one, "queued qos1", 1, false)
				pub.Publish(two, "queued qos2", 2, false)

				again, ack := lcReconnect(w, "c", Persistent)
				lcSessionPresent(w, ack, true, "the session is stored")
				want := []string{"in flight", "queued qos1", "queued qos2"}
				got := lcPayloads(lcCollect(again))
				missing := lcMissing(want, got)
				w.Expectf(len(missing) == 0, fmt.Sprintf("%q after the reconnect", want), "%q (missing %q)", got, missing)

				again.Close()
				last, _ := lcReconnect(w, "c", Persistent)
				last.ExpectNothing("every message was acknowledged on the previous connection")
				pub.Publish(two, "live", 1, false)
				p := lcRecvPublish(last, w.Cfg().Timeout, "the live message through the subscription kept across two reconnects")
				w.Expectf(string(p.Payload) == "live", `payload "live"`, "%s", packetgen.Format(p))
			})

		// The session also keeps the QoS 2 messages received from the
		// client and not yet released: the client finishes the flow with
		// PUBREL on its next connection, and the message is delivered
		// exactly once (whether the server passes it on at PUBLISH or at
		// PUBREL).
		s.Spec("MQTT-4.1.0-1", "keeps an unreleased incoming QoS 2 message across a reconnect and delivers it exactly once",
			Label("session", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 2, "needs QoS 2")
				topic := w.Topic("q2")
				sub := w.Connect("sub")
				sub.Granted(topic, 2)
				c := w.Connect("c", Persistent)
				const id = 0x0A0B
				c.MustSend(&packetgen.Publish{QoS: 2, PacketID: id, Topic: []byte(topic), Payload: []byte("exactly once")})
				rec := ExpectPacket[*packetgen.Pubrec](c)
				w.Expectf(rec.PacketID == id, fmt.Sprintf("PUBREC id=%d", id), "%s", packetgen.Format(rec))
				c.Close() // before PUBREL

				again, ack := lcReconnect(w, "c", Persistent)
				lcSessionPresent(w, ack, true, "the session is stored")
				again.MustSend(&packetgen.Pubrel{PacketID: id})
				comp := pqPubcompAfterResume(again, id)
				w.Expectf(comp.PacketID == id, fmt.Sprintf("PUBCOMP id=%d", id), "%s", packetgen.Format(comp))
				got := lcCollect(sub)
				w.Expectf(len(got) == 1 && string(got[0].Payload) == "exactly once", `the message "exactly once" delivered once`,
					"%d deliveries: %q", len(got), lcPayloads(got))
			})

		// A session lasts at least as long as its connection: a clean
		// session keeps its subscriptions and the messages waiting for
		// acknowledgement, however many, while the client is connected.
		s.Spec("MQTT-4.1.0-2", "keeps a clean session's subscriptions and pending messages for as long as its connection lasts",
			Label("session", "qos1"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("many")
				c := w.Connect("c")
				w.Require(c.Granted(topic, 1) == 1, "the broker granted QoS 0")
				pub := w.Connect("pub")
				const n = 40
				var want []string
				for i := range n {
					want = append(want, fmt.Sprintf("m%02d", i))
					pub.Publish(topic, want[i], 1, false)
				}
				// Hold the first ones unacknowledged: the rest wait in the
				// session (beyond the broker's in-flight window, if any).
				held := lcHold(c)
				w.Expectf(len(held) > 0, "the messages published to "+topic, "nothing")
				// An unrelated client coming and going changes nothing.
				other := w.Connect("other")
				other.Leave()
				for _, p := range held {
					c.Ack(p)
				}
				got := append(lcPayloads(held), lcPayloads(lcCollect(c))...)
				missing := lcMissing(want, got)
				w.Expectf(len(missing) == 0, fmt.Sprintf("all %d messages", n), "%d, missing %q", len(got), missing)
				pub.Publish(topic, "still subscribed", 1, false)
				p := lcRecvPublish(c, w.Cfg().Timeout, "a message through the subscription of the still connected clean session")
				w.Expectf(string(p.Payload) == "still subscribed", `payload "still subscribed"`, "%s", packetgen.Format(p))
			})
	})
}
