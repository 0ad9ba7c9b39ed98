package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.8", "SUBSCRIBE", func(s *S) {
		// The fixed header flags of SUBSCRIBE are 0010; the server treats
		// any other value as malformed and closes the connection.
		s.Spec("MQTT-3.8.1-1", "closes the network connection when the SUBSCRIBE fixed header flags are not 0010",
			Label("malformed"), func(w *World) {
				flags := []byte{0x0, 0x3, 0xA}
				cs := make([]*Client, len(flags))
				for i, f := range flags {
					cs[i] = w.Connect(fmt.Sprintf("flags%X", f))
					frame := packetgen.FrameOf(&packetgen.Subscribe{PacketID: 1,
						Subscriptions: []packetgen.Subscription{{Filter: w.Topic("t")}}}, cs[i].Version()).WithFlags(f)
					cs[i].MustSendRaw(frame.Bytes(), fmt.Sprintf("SUBSCRIBE with flags 0x%X", f))
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("SUBSCRIBE flags 0x%X", flags[i]))
				}
			})

		// Topic filters in SUBSCRIBE are UTF-8 encoded strings: a filter
		// of multi-byte characters is a filter like any other, matched as
		// the characters it encodes.
		s.Spec("MQTT-3.8.3-1", "accepts a topic filter of multi-byte UTF-8 characters and delivers what matches it",
			Label("utf8"), func(w *World) {
				t := w.Topic("ünï/€/𝄞")
				sub := w.Connect("sub")
				sub.Granted(t, 0)
				pub := w.Connect("pub")
				pub.Publish(t, "utf8", publishQoS(w), false)
				got := sub.Receive()
				w.Expectf(string(got.Topic) == t, fmt.Sprintf("the message on %q", t), "%s", packetgen.Format(got))
			})

		// A topic filter that is not well-formed UTF-8 is not a UTF-8
		// encoded string; the server closes the connection (section 1.5.3).
		s.Spec("MQTT-3.8.3-1", "closes the network connection when a topic filter is not well-formed UTF-8",
			Label("utf8", "malformed"), func(w *World) {
				bad := []string{"\xFF", "\x80", "\xED\xA0\x80"} // 0xFF, a lone continuation byte, the surrogate U+D800
				cs := make([]*Client, len(bad))
				for i, b := range bad {
					cs[i] = w.Connect(fmt.Sprintf("bad%d", i))
					sendUnchecked(cs[i], &packetgen.Subscribe{PacketID: 1,
						Subscriptions: []packetgen.Subscription{{Filter: w.Topic("a" + b + "z")}}})
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("SUBSCRIBE filter holding the ill-formed bytes % X", bad[i]))
				}
			})

		// A server that does not support wildcards must reject filters
		// that contain them. So a wildcard filter the server grants must
		// work as a wildcard; refusing it (SUBACK 0x80, or closing) is
		// the other lawful answer.
		s.Spec("MQTT-3.8.3-2", "either honours a wildcard filter it grants or refuses it",
			Label("wildcard"), func(w *World) {
				cases := []struct{ filter, topic string }{
					{w.Topic("plus/+"), w.Topic("plus/x")},
					{w.Topic("multi/#"), w.Topic("multi/x/y")},
				}
				pub := w.Connect("pub")
				for i, k := range cases {
					sub := w.Connect(fmt.Sprintf("sub%d", i))
					id := rawSubscribe(sub, k.filter, 0)
					codes, closed := subackOrClosed(sub, id, 1)
					if closed || codes[0] == packetgen.SubackFailure {
						continue // refused: what a server without wildcards must do
					}
					pub.Publish(k.topic, "wild", publishQoS(w), false)
					p, err := sub.Recv(w.cfg.Timeout)
					if err != nil {
						w.Failf("expected the granted filter %q (SUBACK code %d) to deliver the message on %q, or to have been refused; got %s",
							k.filter, codes[0], k.topic, describeErr(err))
					}
					got, ok := p.(*packetgen.Publish)
					w.Expectf(ok && string(got.Topic) == k.topic,
						fmt.Sprintf("the message on %q through the granted filter %q", k.topic, k.filter), "%s", packetgen.Format(p))
				}
			})

		// A SUBSCRIBE must carry at least one topic filter / QoS pair;
		// one without is a protocol violation and the server closes.
		s.Spec("MQTT-3.8.3-3", "closes the network connection on a SUBSCRIBE without any topic filter",
			Label("malformed"), func(w *World) {
				c := w.Connect("empty")
				sendUnchecked(c, &packetgen.Subscribe{PacketID: 7})
				c.ExpectClosed("SUBSCRIBE with no payload")
			})

		// The upper six bits of the requested QoS byte are reserved and
		// the QoS must be 0, 1 or 2: otherwise the SUBSCRIBE is malformed
		// and the server closes. (The text prints this ID "MQTT-3-8.3-4".)
		s.Spec("MQTT-3.8.3-4", "closes the network connection when a requested QoS is 3 or has reserved bits set",
			Label("malformed"), func(w *World) {
				options := []byte{0x03, 0x05, 0x80}
				cs := make([]*Client, len(options))
				for i, o := range options {
					cs[i] = w.Connect(fmt.Sprintf("opt%02X", o))
					rawSubscribe(cs[i], w.Topic("t"), o)
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("requested QoS byte 0x%02X", options[i]))
				}
			})

		// The server answers every SUBSCRIBE with a SUBACK.
		s.Spec("MQTT-3.8.4-1", "answers each of several SUBSCRIBEs sent back to back with a SUBACK",
			func(w *World) {
				c := w.Connect("sub")
				ids := []uint16{11, 12, 13}
				for i, id := range ids {
					c.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{
						{Filter: w.Topic(fmt.Sprintf("f%d", i)), QoS: packetgen.QoS(i)}}})
				}
				got := map[uint16]int{}
				for range ids {
					ack := ExpectPacket[*packetgen.Suback](c)
					got[ack.PacketID]++
				}
				for _, id := range ids {
					w.Expectf(got[id] == 1, fmt.Sprintf("one SUBACK for each of the SUBSCRIBEs %v", ids),
						"SUBACK identifiers %v", got)
				}
				c.ExpectNothing("every SUBSCRIBE was answered once")
			})

		// The SUBACK carries the packet identifier of the SUBSCRIBE it
		// acknowledges.
		s.Spec("MQTT-3.8.4-2", "answers SUBSCRIBE with a SUBACK of the same packet identifier, whatever its value",
			func(w *World) {
				c := w.Connect("sub")
				for i, id := range []uint16{0xA55A, 0x0100, 0xFFFF, 0x00FF} {
					c.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{
						{Filter: w.Topic(fmt.Sprintf("f%d", i))}}})
					ack := ExpectPacket[*packetgen.Suback](c)
					w.Expectf(ack.PacketID == id, fmt.Sprintf("SUBACK id=%d (0x%04X)", id, id), "%s", packetgen.Format(ack))
				}
			})

		// A SUBSCRIBE whose filter is identical to an existing
		// subscription's replaces it, and the retained messages matching
		// the filter are sent again.
		s.Spec("MQTT-3.8.4-3", "sends the retained message again when a subscription is replaced by an identical filter",
			Label("retain"), func(w *World) {
				w.Require(*w.cfg.Profile.Retain, "retained messages")
				t := w.Topic("kept")
				pub := w.Connect("pub")
				pub.Publish(t, "retained", publishQoS(w), true)
				sub := w.Connect("sub")
				rc, early := subscribeTaking(sub, t, 0)
				w.Expectf(rc <= 2, fmt.Sprintf("the subscription to %q granted", t), "SUBACK code 0x%02X", byte(rc))
				var first *packetgen.Publish
				if len(early) > 0 {
					first = early[0] // sent before the SUBACK, as the server may
				} else {
					first = sub.Receive()
				}
				w.Expectf(string(first.Payload) == "retained" && first.Retain,
					"the retained message with RETAIN 1 on subscribing", "%s", packetgen.Format(first))
				id := sub.ID()
				sub.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{{Filter: t}}})
				var acks, again int
				for _, p := range collect(sub) {
					switch p := p.(type) {
					case *packetgen.Suback:
						w.Expectf(p.PacketID == id && len(p.ReasonCodes) == 1, fmt.Sprintf("SUBACK id=%d with one code", id),
							"%s", packetgen.Format(p))
						acks++
					case *packetgen.Publish:
						w.Expectf(string(p.Topic) == t && string(p.Payload) == "retained" && p.Retain,
							fmt.Sprintf("only the retained message on %q, RETAIN 1", t), "%s", packetgen.Format(p))
						again++
					default:
						w.Failf("expected SUBACK and the retained message; got %s", packetgen.Format(p))
					}
				}
				w.Expectf(acks == 1 && again == 1, "one SUBACK and the retained message sent once more",
					"%d SUBACK and %d copies of the retained message", acks, again)
			})

		// Replacing a subscription by an identical filter leaves one
		// subscription, with the new maximum QoS, and does not interrupt
		// the flow of publications: a message published before the
		// replacement is still delivered, one published after it arrives
		// once at the new QoS.
		s.Spec("MQTT-3.8.4-3", "replaces, not duplicates, a subscription to an identical filter, without interrupting the flow",
			Label("qos1"), func(w *World) {
				t := w.Topic("flow")
				sub := w.Connect("sub")
				g1 := sub.Granted(t, 1)
				w.Require(g1 >= 1, "a subscription granted QoS 1, to see the replacement lower it")
				pub := w.Connect("pub")
				pub.Publish(t, "before", 1, false)
				// Replace the subscription with maximum QoS 0, taking
				// whatever arrives before the SUBACK.
				rc, got := subscribeTaking(sub, t, 0)
				w.Expectf(rc == 0, "SUBACK granting the replacement QoS 0", "code 0x%02X", byte(rc))
				pub.Publish(t, "after", 1, false)
				for _, p := range collect(sub) {
					pp, ok := p.(*packetgen.Publish)
					if !ok {
						w.Failf("expected only PUBLISH packets after the SUBACK; got %s", packetgen.Format(p))
					}
					got = append(got, pp)
				}
				var before, after []*packetgen.Publish
				for _, p := range got {
					switch string(p.Payload) {
					case "before":
						before = append(before, p)
					case "after":
						after = append(after, p)
					default:
						w.Failf("expected only the messages \"before\" and \"after\"; got %s", packetgen.Format(p))
					}
				}
				w.Expectf(len(before) == 1 && before[0].QoS <= g1,
					fmt.Sprintf("the message published before the replacement delivered once at QoS %d or less (the flow is not interrupted)", g1),
					"%d copies %v", len(before), formatAll(before))
				w.Expectf(len(after) == 1 && after[0].QoS == 0,
					"the message published after the replacement delivered once, at the new maximum QoS 0",
					"%d copies %v", len(after), formatAll(after))
			})

		// A SUBSCRIBE with several filters is handled as that many
		// SUBSCRIBEs in a row, answered by one SUBACK.
		s.Spec("MQTT-3.8.4-4", "handles a SUBSCRIBE with several filters as several SUBSCRIBEs answered by one SUBACK",
			func(w *World) {
				topics := []string{w.Topic("a"), w.Topic("b"), w.Topic("c")}
				sub := w.Connect("sub")
				codes := sub.SubscribeMany([]packetgen.Subscription{{Filter: topics[0], QoS: 0},
					{Filter: topics[1], QoS: 1}, {Filter: topics[2], QoS: 2}})
				// A second SUBACK would show up among the deliveries below.
				pub := w.Connect("pub")
				for _, t := range topics {
					pub.Publish(t, "to "+t, publishQoS(w), false)
				}
				got := drainPublishes(w, sub)[0]
				for i, t := range topics {
					n := 0
					for _, p := range got {
						if string(p.Topic) == t {
							n++
						}
					}
					w.Expectf(n == 1 && codes[i] <= 2, fmt.Sprintf("each filter subscribed (codes %v) and its message delivered once", codes),
						"%d copies on %q among %v", n, t, formatAll(got))
				}
			})

		// Handled as a sequence, a filter repeated in one SUBSCRIBE is a
		// replacement: one subscription remains, with the later QoS.
		s.Spec("MQTT-3.8.4-4", "treats a filter repeated within one SUBSCRIBE as a replacement by the later one",
			Label("qos1"), func(w *World) {
				t := w.Topic("twice")
				sub := w.Connect("sub")
				codes := sub.SubscribeMany([]packetgen.Subscription{{Filter: t, QoS: 2}, {Filter: t, QoS: 0}})
				w.Expectf(codes[0] <= 2 && codes[1] == 0, "SUBACK granting both (the second QoS 0)", "codes %v", codes)
				w.Require(codes[0] >= 1, "a first grant above QoS 0, to tell the two subscriptions apart")
				pub := w.Connect("pub")
				pub.Publish(t, "once", 1, false)
				got := drainPublishes(w, sub)[0]
				w.Expectf(len(got) == 1 && got[0].QoS == 0,
					"one delivery at QoS 0, the QoS of the later (replacing) subscription",
					"%v", formatAll(got))
			})

		// SUBACK has a return code per filter/QoS pair, each the maximum
		// QoS granted (never more than requested) or 0x80; the granted QoS
		// is then the one messages are delivered at.
		s.Spec("MQTT-3.8.4-5", "returns one code per filter, each the QoS that messages are then delivered at",
			func(w *World) {
				req := []packetgen.QoS{2, 0, 1, 2, 1}
				var subs []packetgen.Subscription
				for i, q := range req {
					subs = append(subs, packetgen.Subscription{Filter: w.Topic(fmt.Sprintf("f%d", i)), QoS: q})
				}
				sub := w.Connect("sub")
				codes := sub.SubscribeMany(subs)
				for i, rc := range codes {
					w.Expectf(rc == packetgen.SubackFailure || packetgen.QoS(rc) <= req[i],
						fmt.Sprintf("code %d to be 0x80 or a QoS no higher than the requested %d", i, req[i]), "0x%02X", byte(rc))
				}
				pub := w.Connect("pub")
				q := packetgen.QoS(*w.cfg.Profile.MaxQoS)
				for _, sb := range subs {
					pub.Publish(sb.Filter, "at max", q, false)
				}
				got := drainPublishes(w, sub)[0]
				for i, sb := range subs {
					var on []*packetgen.Publish
					for _, p := range got {
						if string(p.Topic) == sb.Filter {
							on = append(on, p)
						}
					}
					if codes[i] == packetgen.SubackFailure {
						w.Expectf(len(on) == 0, fmt.Sprintf("nothing on the refused filter %q", sb.Filter), "%v", formatAll(on))
						continue
					}
					want := min(q, packetgen.QoS(codes[i]))
					w.Expectf(len(on) == 1 && on[0].QoS == want,
						fmt.Sprintf("the QoS %d message on %q delivered once at QoS %d, as SUBACK code %d says", q, sb.Filter, want, codes[i]),
						"%v", formatAll(on))
				}
			})

		// Messages are delivered at the minimum of the QoS they were
		// published with and the maximum QoS granted; a QoS 1 message on
		// a QoS 0 subscription may arrive more than once.
		s.Spec("MQTT-3.8.4-6", "delivers each message at the lower of its published QoS and the granted QoS",
			Label("qos1", "qos2"), func(w *World) {
				sub := w.Connect("sub")
				maxPub := packetgen.QoS(*w.cfg.Profile.MaxQoS)
				granted := make([]packetgen.QoS, 3)
				for g := range granted {
					granted[g] = sub.Granted(w.Topic(fmt.Sprintf("g%d", g)), packetgen.QoS(g))
				}
				pub := w.Connect("pub")
				for g := range granted {
					for p := packetgen.QoS(0); p <= maxPub; p++ {
						pub.Publish(w.Topic(fmt.Sprintf("g%d", g)), fmt.Sprintf("p%d", p), p, false)
					}
				}
				got := drainPublishes(w, sub)[0]
				for g := range granted {
					t := w.Topic(fmt.Sprintf("g%d", g))
					for p := packetgen.QoS(0); p <= maxPub; p++ {
						want := min(p, granted[g])
						var copies []*packetgen.Publish
						for _, m := range got {
							if string(m.Topic) == t && string(m.Payload) == fmt.Sprintf("p%d", p) {
								copies = append(copies, m)
							}
						}
						ok := len(copies) >= 1
						for _, m := range copies {
							ok = ok && m.QoS == want
						}
						if want == 2 {
							ok = ok && len(copies) == 1
						}
						w.Expectf(ok, fmt.Sprintf("the QoS %d message on %q (granted QoS %d) delivered at QoS %d", p, t, granted[g], want),
							"%v", formatAll(copies))
					}
				}
			})
	})
}
