package suites

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// sbSubIDs returns the subscription identifiers of a PUBLISH, sorted.
func sbSubIDs(p *packetgen.Publish) []uint32 {
	ids := slices.Clone(p.Properties.SubscriptionIdentifiers)
	slices.Sort(ids)
	return ids
}

func init() {
	addSection5("3.8", "SUBSCRIBE", func(s *S) {
		s.Reuse("3.8", "MQTT-3.8.1-1", "MQTT-3.8.1-1")
		s.Reuse("3.8", "MQTT-3.8.3-1", "MQTT-3.8.3-1")
		s.Reuse("3.8", "MQTT-3.8.3-3", "MQTT-3.8.3-2")
		s.Reuse("3.8", "MQTT-3.8.4-1", "MQTT-3.8.4-1")
		s.Reuse("3.8", "MQTT-3.8.4-2", "MQTT-3.8.4-2")
		s.Reuse("3.8", "MQTT-3.8.4-3: replaces", "MQTT-3.8.4-3")
		s.Reuse("3.8", "MQTT-3.8.4-3: sends the retained", "MQTT-3.8.4-4",
			"when a subscription is replaced", "when a subscription with Retain Handling 0 is replaced")
		s.Reuse("3.8", "MQTT-3.8.4-4", "MQTT-3.8.4-5")
		s.Reuse("3.8", "MQTT-3.8.4-5", "MQTT-3.8.4-6 MQTT-3.8.4-7")
		s.Reuse("3.8", "MQTT-3.8.4-6", "MQTT-3.8.4-8")

		// No Local 1: the server does not send a message back to the
		// client identifier that published it, on this connection or
		// another; other subscribers get it.
		s.Spec("MQTT-3.8.3-3", "does not forward a message to its publisher's client identifier through a No Local subscription",
			Label("subscription-options"), func(w *World) {
				t := w.Topic("nl")
				me := w.Connect("me")
				me.Granted5(Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1, NoLocal: true}})
				other := w.Connect("other")
				other.Granted(t, 1)
				me.Publish(t, "from me", 1, false)
				p := other.Receive5()
				w.Expectf(string(p.Payload) == "from me", `"from me" at the other subscriber`, "%s", packetgen.Format(p))
				w.Connect("third").Publish(t, "from other", 1, false)
				p = me.Receive5()
				w.Expectf(string(p.Payload) == "from other", `only "from other" at the No Local subscriber`, "%s", packetgen.Format(p))
				pqNothingBeforePing(me, "No Local: the client's own message is not forwarded to it")
			})

		// No Local on a shared subscription is a protocol error: the
		// server closes the connection (DISCONNECT 0x82 first, SHOULD).
		s.Spec("MQTT-3.8.3-4", "closes the connection on a shared subscription with No Local 1",
			Label("subscription-options", "shared", "malformed"), func(w *World) {
				w.Lacks(!w.Caps().SharedAvailable, "Shared Subscription Available 0")
				c := w.Connect("c")
				sendUnchecked(c, &packetgen.Subscribe{PacketID: c.ID(), Subscriptions: []packetgen.Subscription{
					{Filter: "$share/g/" + w.Topic("nl"), QoS: 1, NoLocal: true}}})
				c.ExpectClosedBy("No Local 1 on a shared subscription", withDisconnect(packetgen.ProtocolError))
			})

		// Bits 6 and 7 of the subscription options are reserved: set, the
		// SUBSCRIBE is malformed and the server closes.
		s.Spec("MQTT-3.8.3-5", "closes the connection when a reserved bit of the subscription options is set",
			Label("subscription-options", "malformed"), func(w *World) {
				options := []byte{0x41, 0x81}
				cs := make([]*Client, len(options))
				for i, o := range options {
					cs[i] = w.Connect(fmt.Sprintf("opt%02X", o))
					rawSubscribe(cs[i], w.Topic("t"), o)
				}
				for i, c := range cs {
					c.ExpectClosedBy(fmt.Sprintf("subscription options 0x%02X", options[i]), withDisconnect(packetgen.MalformedPacket, packetgen.ProtocolError))
				}
			})

		// Overlapping subscriptions with identifiers: a single copy
		// carries the identifiers of all matching subscriptions, several
		// copies each carry their subscription's.
		s.Spec("MQTT-3.3.4-3 MQTT-3.3.4-4 MQTT-3.3.4-5", "sends the Subscription Identifiers of every matching subscription, one copy or several",
			Label("subscription-ids", "wildcard"), func(w *World) {
				caps := w.Caps()
				w.Lacks(!caps.SubIDsAvailable, "Subscription Identifiers Available 0")
				w.Lacks(!caps.WildcardAvailable, "Wildcard Subscription Available 0")
				t := w.Topic("a/b")
				c := w.Connect("c")
				c.Granted5(Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1}, SubID: 7})
				c.Granted5(Sub{Subscription: packetgen.Subscription{Filter: w.Topic("a/+"), QoS: 1}, SubID: 300})
				c.Granted5(On(w.Topic("#"), 1)) // no identifier
				pub := w.Connect("pub")
				pub.Publish(t, "overlap", 1, false)
				got := c.ReceiveAll5()
				var ids []uint32
				for _, p := range got {
					ids = append(ids, p.Properties.SubscriptionIdentifiers...)
				}
				slices.Sort(ids)
				switch len(got) {
				case 1:
					w.Expectf(slices.Equal(ids, []uint32{7, 300}), "one copy carrying the Subscription Identifiers 7 and 300", "%s", pqFormatPublishes(got))
				case 3:
					w.Expectf(slices.Equal(ids, []uint32{7, 300}), "three copies: one with 7, one with 300, one without",
						"%s", pqFormatPublishes(got))
					for _, p := range got {
						w.Expectf(len(p.Properties.SubscriptionIdentifiers) <= 1, "each copy with at most its subscription's identifier", "%s", packetgen.Format(p))
					}
				default:
					w.Failf("expected one copy of the message, or one per matching subscription (3); got %s", pqFormatPublishes(got))
				}
			})

		// A subscription made again with another identifier replaces the
		// old one, identifier included; without one it has none.
		s.Spec("MQTT-3.3.4-3 MQTT-3.8.4-3", "sends the Subscription Identifier of the latest SUBSCRIBE of a filter, and none once it is made without one",
			Label("subscription-ids"), func(w *World) {
				w.Lacks(!w.Caps().SubIDsAvailable, "Subscription Identifiers Available 0")
				t := w.Topic("re")
				c := w.Connect("c")
				pub := w.Connect("pub")
				for _, id := range []uint32{1, 268435455, 0} {
					c.Granted5(Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1}, SubID: id})
					pub.Publish(t, fmt.Sprintf("after id %d", id), 1, false)
					p := c.Receive5()
					want := []uint32{id}
					if id == 0 {
						want = nil
					}
					w.Expectf(slices.Equal(sbSubIDs(p), want), fmt.Sprintf("Subscription Identifiers %v on %q", want, p.Payload), "%s", packetgen.Format(p))
				}
			})

		// Retained messages sent for a subscription carry its identifier.
		s.Spec("MQTT-3.3.4-3", "sends the Subscription Identifier with retained messages sent for a new subscription",
			Label("subscription-ids", "retain"), func(w *World) {
				w.Lacks(!w.Caps().SubIDsAvailable, "Subscription Identifiers Available 0")
				pqNeedRetain(w)
				t := w.Topic("r")
				pub := w.Connect("pub")
				pub.Publish(t, "retained", 1, true)
				c := w.Connect("c")
				c.Granted5(Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1}, SubID: 42})
				p := c.Receive5()
				w.Expectf(slices.Equal(sbSubIDs(p), []uint32{42}), "Subscription Identifier 42 on the retained message", "%s", packetgen.Format(p))
			})
	})
}
