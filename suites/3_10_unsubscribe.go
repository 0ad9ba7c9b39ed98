package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.10", "UNSUBSCRIBE", func(s *S) {
		// The fixed header flags of UNSUBSCRIBE are 0010; the server
		// treats any other value as malformed and closes the connection.
		s.Spec("MQTT-3.10.1-1", "closes the network connection when the UNSUBSCRIBE fixed header flags are not 0010",
			Label("malformed"), func(w *World) {
				flags := []byte{0x0, 0x3, 0xA}
				cs := make([]*Client, len(flags))
				for i, f := range flags {
					cs[i] = w.Connect(fmt.Sprintf("flags%X", f))
					frame := packetgen.FrameOf(&packetgen.Unsubscribe{PacketID: 1, Filters: []string{w.Topic("t")}},
						cs[i].Version()).WithFlags(f)
					cs[i].MustSendRaw(frame.Bytes(), fmt.Sprintf("UNSUBSCRIBE with flags 0x%X", f))
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("UNSUBSCRIBE flags 0x%X", flags[i]))
				}
			})

		// Topic filters in UNSUBSCRIBE are UTF-8 encoded strings: one of
		// multi-byte characters removes the subscription it spells.
		s.Spec("MQTT-3.10.3-1", "removes a subscription named by a topic filter of multi-byte UTF-8 characters",
			Label("utf8"), func(w *World) {
				t := w.Topic("ünï/€/𝄞")
				sub := w.Connect("sub")
				sub.Granted(t, 0)
				sub.Unsubscribe(t)
				pub := w.Connect("pub")
				pub.Publish(t, "gone", publishQoS(w), false)
				sub.ExpectNothing("unsubscribed from " + t)
			})

		// A topic filter that is not well-formed UTF-8 is not a UTF-8
		// encoded string; the server closes the connection (section 1.5.3).
		s.Spec("MQTT-3.10.3-1", "closes the network connection when an UNSUBSCRIBE topic filter is not well-formed UTF-8",
			Label("utf8", "malformed"), func(w *World) {
				bad := []string{"\xFF", "\x80", "\xED\xA0\x80"}
				cs := make([]*Client, len(bad))
				for i, b := range bad {
					cs[i] = w.Connect(fmt.Sprintf("bad%d", i))
					sendUnchecked(cs[i], &packetgen.Unsubscribe{PacketID: 1, Filters: []string{w.Topic("a" + b + "z")}})
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("UNSUBSCRIBE filter holding the ill-formed bytes % X", bad[i]))
				}
			})

		// An UNSUBSCRIBE must carry at least one topic filter; one without
		// is a protocol violation and the server closes.
		s.Spec("MQTT-3.10.3-2", "closes the network connection on an UNSUBSCRIBE without any topic filter",
			Label("malformed"), func(w *World) {
				c := w.Connect("empty")
				sendUnchecked(c, &packetgen.Unsubscribe{PacketID: 7})
				c.ExpectClosed("UNSUBSCRIBE with no payload")
			})

		// UNSUBSCRIBE filters are compared character by character with
		// the client's filters: only an exact match deletes a
		// subscription, never a wildcard that would cover it nor a filter
		// differing in case or a trailing '/'.
		s.Spec("MQTT-3.10.4-1", "deletes only the subscription whose filter is character for character the same",
			Label("wildcard"), func(w *World) {
				t := w.Topic("exact/x")
				sub := w.Connect("sub")
				sub.Granted(t, 0)
				sub.Unsubscribe(w.Topic("exact/+"), w.Topic("exact/#"), w.Topic("#"), w.Topic("exact/X"), t+"/", w.Topic("exact//x"))
				pub := w.Connect("pub")
				pub.Publish(t, "still", publishQoS(w), false)
				got := drainPublishes(w, sub)[0]
				w.Expectf(len(got) == 1 && string(got[0].Topic) == t,
					fmt.Sprintf("the subscription to %q kept (no UNSUBSCRIBE filter was identical) and its message delivered once", t),
					"%v", formatAll(got))
				sub.Unsubscribe(t)
				pub.Publish(t, "gone", publishQoS(w), false)
				sub.ExpectNothing("unsubscribed from " + t + " with the identical filter")
			})

		// Once a subscription is deleted, the server adds no new message
		// for it. (Messages published before the UNSUBSCRIBE may still be
		// completed; only those published after its UNSUBACK count.)
		s.Spec("MQTT-3.10.4-2", "stops delivering messages published after the UNSUBACK",
			Label("qos1"), func(w *World) {
				t := w.Topic("stop")
				sub := w.Connect("sub")
				sub.Granted(t, 1)
				pub := w.Connect("pub")
				pub.Publish(t, "before", publishQoS(w), false)
				got := sub.Receive()
				w.Expectf(string(got.Payload) == "before", "the message published while subscribed", "%s", packetgen.Format(got))
				sub.Unsubscribe(t)
				for q := packetgen.QoS(0); q <= packetgen.QoS(*w.cfg.Profile.MaxQoS); q++ {
					pub.Publish(t, fmt.Sprintf("after at QoS %d", q), q, false)
				}
				sub.ExpectNothing("unsubscribed from " + t)
			})

		// QoS 1 and 2 deliveries the server has started before the
		// subscription is deleted are completed: on a persistent session
		// the unacknowledged PUBLISH packets are sent again when the
		// client reconnects, although the subscription is gone. A message
		// the broker held back (§4.9 lets it keep one in flight) was not
		// started: it may come or not.
		s.Spec("MQTT-3.10.4-3", "completes QoS 1 and 2 deliveries it started before the subscription was deleted",
			Label("qos1", "qos2", "session"), func(w *World) {
				t := w.Topic("inflight")
				sub := w.Connect("sub", Persistent)
				g := sub.Granted(t, 2)
				w.Require(g >= 1, "a subscription granted QoS 1 or more")
				pub := w.Connect("pub")
				published := map[string]bool{}
				for q := packetgen.QoS(1); q <= g; q++ {
					published[fmt.Sprintf("qos%d", q)] = true
					pub.Publish(t, fmt.Sprintf("qos%d", q), q, false)
				}
				started := map[string]*packetgen.Publish{}
				for _, p := range pqNewInbox(sub).burst(int(g)) {
					started[string(p.Payload)] = p
				}
				sub.Unsubscribe(t)
				sub.Close()
				again := w.Connect("sub", Persistent)
				in := pqNewInbox(again)
				resent := map[string]int{}
				in.each(func(p *packetgen.Publish) {
					first := started[string(p.Payload)]
					switch {
					case first == nil && published[string(p.Payload)] && resent[string(p.Payload)] == 0:
						// Held back, never started: the broker may still deliver it.
					case first == nil || p.PacketID != first.PacketID || p.QoS != first.QoS || !p.Dup:
						w.Failf("expected only the unacknowledged PUBLISH packets again, same identifiers, DUP 1; got %s", packetgen.Format(p))
					}
					resent[string(p.Payload)]++
					in.ack(p)
				})
				for payload, p := range started {
					w.Expectf(resent[payload] == 1, fmt.Sprintf("the delivery of %s completed: resent once on reconnection", packetgen.Format(p)),
						"%d copies", resent[payload])
				}
			})

		// The UNSUBACK carries the packet identifier of the UNSUBSCRIBE.
		s.Spec("MQTT-3.10.4-4", "answers UNSUBSCRIBE with an UNSUBACK of the same packet identifier, whatever its value",
			func(w *World) {
				c := w.Connect("unsub")
				t := w.Topic("t")
				c.Granted(t, 0)
				for _, id := range []uint16{0xA55A, 0x0100, 0xFFFF, 0x00FF} {
					c.MustSend(&packetgen.Unsubscribe{PacketID: id, Filters: []string{t}})
					ack := ExpectPacket[*packetgen.Unsuback](c)
					w.Expectf(ack.PacketID == id, fmt.Sprintf("UNSUBACK id=%d (0x%04X)", id, id), "%s", packetgen.Format(ack))
				}
			})

		// The server answers UNSUBSCRIBE with UNSUBACK even when no
		// subscription was deleted.
		s.Spec("MQTT-3.10.4-5", "answers UNSUBACK when the client had no such subscription",
			func(w *World) {
				c := w.Connect("unsub")
				id := uint16(0x1234)
				c.MustSend(&packetgen.Unsubscribe{PacketID: id, Filters: []string{w.Topic("never"), w.Topic("never/+")}})
				ack := ExpectPacket[*packetgen.Unsuback](c)
				w.Expectf(ack.PacketID == id, fmt.Sprintf("UNSUBACK id=%d", id), "%s", packetgen.Format(ack))
				c.Ping()
			})

		// An UNSUBSCRIBE with several filters is handled as that many
		// UNSUBSCRIBEs in a row, answered by one UNSUBACK.
		s.Spec("MQTT-3.10.4-6", "handles an UNSUBSCRIBE with several filters as several UNSUBSCRIBEs answered by one UNSUBACK",
			func(w *World) {
				a, b, c := w.Topic("a"), w.Topic("b"), w.Topic("c")
				sub := w.Connect("sub")
				sub.SubscribeMany([]packetgen.Subscription{{Filter: a}, {Filter: b}, {Filter: c}})
				sub.Unsubscribe(a, w.Topic("none"), c)
				// A second UNSUBACK would show up among the deliveries below.
				pub := w.Connect("pub")
				for _, t := range []string{a, b, c} {
					pub.Publish(t, "to "+t, publishQoS(w), false)
				}
				got := drainPublishes(w, sub)[0]
				w.Expectf(len(got) == 1 && string(got[0].Topic) == b,
					fmt.Sprintf("only the message on %q, the one filter not unsubscribed", b), "%v", formatAll(got))
			})
	})
}
