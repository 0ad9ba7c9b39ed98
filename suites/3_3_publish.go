package suites

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
)

func init() {
	addSection("3.3", "PUBLISH", func(s *S) {
		pqPublishFlags(s)
		pqPublishRetain(s)
		pqPublishTopic(s)
		pqPublishResponse(s)
	})
}

// pqPublishFlags: DUP and QoS (3.3.1.1, 3.3.1.2).
func pqPublishFlags(s *S) {
	// A server that sends a PUBLISH again must set DUP 1. The one time
	// 3.1.1 requires it to send again is when a clean-session-0 client
	// resumes with messages still unacknowledged (MQTT-4.4.0-1). A broker
	// that keeps fewer messages in flight than were published (§4.9)
	// sends the rest once the first are acknowledged: those are left
	// unacknowledged in turn, and the session resumed again, until every
	// message has been sent twice.
	s.Spec("MQTT-3.3.1-1", "sets DUP 1 on a PUBLISH it sends again when the session resumes",
		Label("qos1", "qos2", "session"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("dup")
			sub := w.Connect("sub", Persistent)
			g := pqGrantedAtLeast(sub, t, 1)
			pub := w.Connect("pub")
			var qs []packetgen.QoS
			for q := packetgen.QoS(1); q <= g; q++ {
				qs = append(qs, q)
				pub.Publish(t, fmt.Sprintf("sent at QoS %d", q), q, false)
			}
			in := pqNewInbox(sub)
			first := map[string]*packetgen.Publish{} // first deliveries not yet sent again, by payload
			resent := map[string]bool{}
			firstDelivery := func(p *packetgen.Publish) {
				if p.Dup {
					w.stepFailed(ruleDupFirst, "expected DUP 0 on the first delivery of a message at %s; got %s", sub.Name, packetgen.Format(p))
				}
				first[string(p.Payload)] = p
			}
			for _, p := range in.burst(len(qs)) {
				firstDelivery(p)
			}
			for len(first) > 0 {
				sub = pqResume(w, sub, "sub")
				in = pqNewInbox(sub)
				again := first
				first = map[string]*packetgen.Publish{}
				in.each(func(p *packetgen.Publish) {
					orig := again[string(p.Payload)]
					switch {
					case orig != nil:
						w.Expectf(p.Dup && p.QoS == orig.QoS && p.PacketID == orig.PacketID,
							"each unacknowledged PUBLISH sent again with DUP 1, its QoS, payload and packet identifier",
							"%s; first delivered as %s", packetgen.Format(p), packetgen.Format(orig))
						delete(again, string(p.Payload))
						resent[string(p.Payload)] = true
						in.ack(p)
					case resent[string(p.Payload)] || first[string(p.Payload)] != nil:
						w.Failf("expected each message sent again once, and not after its acknowledgement; got %s", packetgen.Format(p))
					default: // held back until the ones in flight were acknowledged: left unacknowledged in turn
						firstDelivery(p)
					}
				})
				w.Expectf(len(again) == 0, "each unacknowledged PUBLISH sent again when the session resumes",
					"not sent again: %s", pqFormatPublishes(slices.Collect(maps.Values(again))))
			}
			if len(resent) < len(qs) {
				// A message never delivered is lost, not sent without DUP.
				w.stepFailed([]string{"MQTT-4.5.0-1"}, "expected each of the %d messages delivered to %s; got %d", len(qs), sub.Name, len(resent))
			}
		})

	// DUP must be 0 on every QoS 0 PUBLISH, including a message that was
	// published at QoS 1 or 2 with DUP 1 and is delivered at QoS 0.
	s.Spec("MQTT-3.3.1-2", "sends DUP 0 on every QoS 0 PUBLISH, also for a message published with DUP 1 at a higher QoS",
		Label("qos1", "qos2"), func(w *World) {
			t := w.Topic("dup0")
			sub := w.Connect("sub")
			sub.Granted(t, 0)
			pub := w.Connect("pub")
			var sent []*packetgen.Publish
			for q := packetgen.QoS(0); q <= pqMaxQoS(w); q++ {
				sent = append(sent, pqStartPublish(pub, t, fmt.Appendf(nil, "published at QoS %d", q), q, false, q > 0))
			}
			pqCompletePublishes(pub, sent)
			// A QoS 0 PUBLISH with DUP 1 fails to decode in pqCollect,
			// naming MQTT-3.3.1-2.
			for _, p := range pqCollect(sub, len(sent)) {
				w.Expectf(p.QoS == 0 && !p.Dup, "QoS 0 and DUP 0 on a QoS 0 subscription", "%s", packetgen.Format(p))
			}
		})

	// DUP on an outgoing PUBLISH says only whether that PUBLISH is a
	// retransmission: DUP 1 on the incoming PUBLISH must not be passed on,
	// neither to live subscribers nor on the retained copy.
	s.Spec("MQTT-3.3.1-3", "does not pass an incoming DUP 1 on to subscribers, live or from the retained store",
		Label("qos1", "qos2", "retain"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("live")
			sub := w.Connect("sub")
			g := pqGrantedAtLeast(sub, t, 1)
			pub := w.Connect("pub")
			var sent []*packetgen.Publish
			for q := packetgen.QoS(1); q <= g; q++ {
				sent = append(sent, pqStartPublish(pub, t, fmt.Appendf(nil, "QoS %d with DUP 1", q), q, false, true))
			}
			pqCompletePublishes(pub, sent)
			for _, p := range pqCollect(sub, len(sent)) {
				w.Expectf(!p.Dup, "DUP 0 on a first delivery, whatever DUP the publisher sent", "%s", packetgen.Format(p))
			}
			if !*w.Cfg().Profile.Retain {
				return
			}
			rt := w.Topic("retained")
			pqCompletePublishes(pub, []*packetgen.Publish{pqStartPublish(pub, rt, []byte("retained with DUP 1"), 1, true, true)})
			late := w.Connect("late")
			late.Granted(rt, 1)
			p := pqCollect(late, 1)[0]
			w.Expectf(!p.Dup && p.Retain, "the retained message with DUP 0 and RETAIN 1", "%s", packetgen.Format(p))
		})

	// A PUBLISH with both QoS bits set is malformed: the server closes the
	// network connection.
	s.Spec("MQTT-3.3.1-4", "closes the network connection on a PUBLISH with both QoS bits set",
		Label("malformed"), func(w *World) {
			c := w.Connect("qos3")
			p := &packetgen.Publish{Topic: []byte(w.Topic("qos3")), QoS: 1, PacketID: 1, Payload: []byte("qos 3")}
			f := packetgen.FrameOf(p, w.Cfg().Version).WithFlags(0x6)
			c.MustSendRaw(f.Bytes(), "PUBLISH with QoS bits 11 (flags 0x6) id=1 topic="+string(p.Topic))
			c.ExpectClosed("PUBLISH with QoS 3")
		})
}

// pqPublishRetain: RETAIN (3.3.1.3).
func pqPublishRetain(s *S) {
	// A retained message is stored with its QoS for future subscribers,
	// who get it at the minimum of that QoS and the QoS granted to them
	// (3.8.4). QoS 0 retained messages are left out: the server may drop
	// them at any time (MQTT-3.3.1-7).
	s.Spec("MQTT-3.3.1-5", "stores a retained message with its QoS and sends it to later subscribers at the lower of that QoS and the granted QoS",
		Label("retain", "qos1", "qos2"), func(w *World) {
			pqNeedRetain(w)
			pqNeedQoS(w, 1)
			pub := w.Connect("pub")
			var topics []string
			for q := packetgen.QoS(1); q <= pqMaxQoS(w); q++ {
				t := w.Topic(fmt.Sprintf("q%d", q))
				topics = append(topics, t)
				pub.Publish(t, fmt.Sprintf("stored at QoS %d", q), q, true)
			}
			// The message belongs to the server now, not to the publisher.
			pub.Leave()
			var subs []*Client
			for sq := packetgen.QoS(0); sq <= pqMaxQoS(w); sq++ {
				sub := w.Connect(fmt.Sprintf("sub%d", sq))
				subs = append(subs, sub)
				for i, t := range topics {
					stored := packetgen.QoS(i + 1)
					g := sub.Granted(t, sq)
					p := pqCollect(sub, 1)[0]
					want := pqMinQoS(stored, g)
					w.Expectf(string(p.Topic) == t && p.Retain && p.QoS == want && string(p.Payload) == fmt.Sprintf("stored at QoS %d", stored),
						fmt.Sprintf("the message retained at QoS %d on %q, with RETAIN 1 at QoS %d (subscription granted QoS %d)", stored, t, want, g),
						"%s", packetgen.Format(p))
				}
			}
			for _, sub := range subs {
				pqNothingBeforePing(sub, "one retained message per topic")
			}
		})

	// When a subscription is made, the last retained message of every
	// topic it matches is sent, through wildcard filters too.
	s.Spec("MQTT-3.3.1-6", "sends the last retained message of each matching topic when a subscription is made, through wildcards too",
		Label("retain", "wildcard", "qos1"), func(w *World) {
			pqNeedRetain(w)
			pqNeedQoS(w, 1)
			a, bc := w.Topic("a"), w.Topic("b/c")
			pub := w.Connect("pub")
			pub.Publish(a, "a first", 1, true)
			pub.Publish(a, "a last", 1, true)
			pub.Publish(bc, "b/c", 1, true)
			pub.Publish(w.Topic("x"), "not retained", 1, false)
			want := map[string]string{a: "a last", bc: "b/c"}
			check := func(c *Client, filter string) {
				c.Granted(filter, 1)
				var expect []string
				for t := range want {
					if topic.Match(filter, t) {
						expect = append(expect, t+"="+want[t])
					}
				}
				got := pqCollect(c, len(expect))
				var seen []string
				for _, p := range got {
					w.Expectf(p.Retain, "RETAIN 1 on a retained message sent for a new subscription", "%s", packetgen.Format(p))
					seen = append(seen, string(p.Topic)+"="+string(p.Payload))
				}
				sort.Strings(expect)
				sort.Strings(seen)
				w.Expectf(slices.Equal(seen, expect), fmt.Sprintf("for %q the last retained message of each matching topic %v", filter, expect),
					"%s", pqFormatPublishes(got))
			}
			exact := w.Connect("exact")
			check(exact, a)
			subs := []*Client{exact}
			if pqHasWildcards(w) {
				all, one := w.Connect("all"), w.Connect("one")
				check(all, w.Topic("#"))
				check(one, w.Topic("+"))
				subs = append(subs, all, one)
			}
			for _, sub := range subs {
				pqNothingBeforePing(sub, "nothing beyond the last retained message of each matching topic")
			}
		})

	// A QoS 0 retained message makes the server discard the message
	// retained before; it should keep the new one but may drop it.
	s.Spec("MQTT-3.3.1-7", "replaces the retained message with a QoS 0 retained message, or drops both, never keeping the old one",
		Label("retain", "qos1"), func(w *World) {
			pqNeedRetain(w)
			pqNeedQoS(w, 1)
			t := w.Topic("r")
			pub := w.Connect("pub")
			pub.Publish(t, "old at QoS 1", 1, true)
			pub.Publish(t, "new at QoS 0", 0, true)
			pub.Ping() // the QoS 0 PUBLISH has been processed
			sub := w.Connect("sub")
			sub.Granted(t, 1)
			got := pqCollect(sub, -1)
			ok := len(got) == 0 || len(got) == 1 && string(got[0].Payload) == "new at QoS 0" && got[0].QoS == 0 && got[0].Retain
			w.Expectf(ok, `the QoS 0 retained message "new at QoS 0" with RETAIN 1, or nothing`, "%s", pqFormatPublishes(got))
		})

	// A message sent because a new subscription was made carries RETAIN 1.
	s.Spec("MQTT-3.3.1-8", "sets RETAIN 1 on retained messages sent because of a new subscription",
		Label("retain", "wildcard", "qos1", "qos2"), func(w *World) {
			pqNeedRetain(w)
			pqNeedQoS(w, 1)
			pub := w.Connect("pub")
			var topics []string
			for q := packetgen.QoS(1); q <= pqMaxQoS(w); q++ {
				t := w.Topic(fmt.Sprintf("q%d", q))
				topics = append(topics, t)
				pub.Publish(t, fmt.Sprintf("retained at QoS %d", q), q, true)
			}
			sub := w.Connect("exact")
			for _, t := range topics {
				sub.Granted(t, pqMaxQoS(w))
				p := pqCollect(sub, 1)[0]
				w.Expectf(p.Retain && string(p.Topic) == t, fmt.Sprintf("the message retained on %q with RETAIN 1", t), "%s", packetgen.Format(p))
			}
			if pqHasWildcards(w) {
				wild := w.Connect("wild")
				wild.Granted(w.Topic("+"), pqMaxQoS(w))
				for _, p := range pqCollect(wild, len(topics)) {
					w.Expectf(p.Retain, "RETAIN 1 on each retained message sent for a wildcard subscription", "%s", packetgen.Format(p))
				}
			}
		})

	// A message sent because it matches an established subscription
	// carries RETAIN 0, however it was published.
	s.Spec("MQTT-3.3.1-9", "sends RETAIN 0 to established subscriptions even when the message was published with RETAIN 1",
		Label("retain", "qos1", "qos2"), func(w *World) {
			t := w.Topic("live")
			sub := w.Connect("sub")
			g := sub.Granted(t, pqMaxQoS(w))
			pub := w.Connect("pub")
			var sent []*packetgen.Publish
			for q := packetgen.QoS(0); q <= pqMaxQoS(w); q++ {
				sent = append(sent, pqStartPublish(pub, t, fmt.Appendf(nil, "retained at QoS %d", q), q, true, false))
			}
			pqCompletePublishes(pub, sent)
			for _, p := range pqCollect(sub, len(sent)) {
				w.Expectf(!p.Retain, fmt.Sprintf("RETAIN 0 on live delivery (subscription granted QoS %d)", g), "%s", packetgen.Format(p))
			}
		})

	// A retained message with an empty payload is delivered to current
	// subscribers as normal (RETAIN 0) and removes the retained message
	// of its topic: later subscribers get none.
	s.Spec("MQTT-3.3.1-10", "delivers an empty retained message as normal and removes the topic's retained message",
		Label("retain", "qos1"), func(w *World) {
			pqNeedRetain(w)
			pqNeedQoS(w, 1)
			t1, t0 := w.Topic("by-qos1"), w.Topic("by-qos0")
			pub := w.Connect("pub")
			pub.Publish(t1, "to delete", 1, true)
			pub.Publish(t0, "to delete", 1, true)
			subs := []packetgen.Subscription{{Filter: t1, QoS: 1}, {Filter: t0, QoS: 1}}
			existing := w.Connect("existing")
			existing.SubscribeMany(subs)
			pqCollect(existing, 2) // the retained messages
			pub.Publish(t1, "", 1, true)
			pub.Publish(t0, "", 0, true)
			got := pqCollect(existing, 2)
			for _, p := range got {
				w.Expectf(len(p.Payload) == 0 && !p.Retain, "the empty message delivered as normal: RETAIN 0, empty payload",
					"%s", packetgen.Format(p))
			}
			later := w.Connect("later")
			for i, rc := range later.SubscribeMany(subs) {
				w.Expectf(rc <= 2, fmt.Sprintf("%q granted", subs[i].Filter), "SUBACK code 0x%02X", byte(rc))
			}
			pqExpectNoMore(w, "the retained messages were removed by empty retained messages", existing, later)
		})

	// A zero-byte retained message is never stored, so never sent as a
	// retained message.
	s.Spec("MQTT-3.3.1-11", "does not store a zero-byte retained message",
		Label("retain", "wildcard"), func(w *World) {
			pqNeedRetain(w)
			pub := w.Connect("pub")
			var subs []packetgen.Subscription
			for q := packetgen.QoS(0); q <= pqMaxQoS(w); q++ {
				t := w.Topic(fmt.Sprintf("q%d", q))
				pub.Publish(t, "", q, true)
				subs = append(subs, packetgen.Subscription{Filter: t, QoS: pqMaxQoS(w)})
			}
			pub.Ping()
			exact := w.Connect("exact")
			exact.SubscribeMany(subs)
			clients := []*Client{exact}
			if pqHasWildcards(w) {
				wild := w.Connect("wild")
				wild.Granted(w.Topic("#"), pqMaxQoS(w))
				clients = append(clients, wild)
			}
			pqExpectNoMore(w, "zero-byte retained messages are not stored", clients...)
		})

	// A message published with RETAIN 0 is not stored, and neither
	// replaces nor removes the topic's retained message (not even with an
	// empty payload).
	s.Spec("MQTT-3.3.1-12", "neither stores a RETAIN 0 message nor lets it replace or remove the retained message",
		Label("retain", "qos1"), func(w *World) {
			pqNeedRetain(w)
			pqNeedQoS(w, 1)
			kept, bare := w.Topic("kept"), w.Topic("bare")
			pub := w.Connect("pub")
			pub.Publish(kept, "retained", 1, true)
			pub.Publish(kept, "not retained", 1, false)
			pub.Publish(kept, "", 1, false)
			pub.Publish(bare, "not retained", 1, false)
			sub := w.Connect("sub")
			sub.SubscribeMany([]packetgen.Subscription{{Filter: kept, QoS: 1}, {Filter: bare, QoS: 1}})
			got := pqCollect(sub, -1)
			ok := len(got) == 1 && string(got[0].Topic) == kept && string(got[0].Payload) == "retained" && got[0].Retain
			w.Expectf(ok, fmt.Sprintf(`only the message retained on %q ("retained", RETAIN 1)`, kept), "%s", pqFormatPublishes(got))
		})
}

// pqPublishTopic: the topic name (3.3.2.1).
func pqPublishTopic(s *S) {
	// The topic name is the first field of PUBLISH and a UTF-8 string:
	// a PUBLISH whose topic name is not well-formed UTF-8, or runs past
	// the end of the packet, is malformed and closes the connection.
	s.Spec("MQTT-3.3.2-1", "closes the network connection on a PUBLISH whose topic name is not UTF-8 or not complete",
		Label("malformed", "utf8", "topics"), func(w *World) {
			v := w.Cfg().Version
			bad := w.Connect("notutf8")
			p := &packetgen.Publish{Topic: []byte(w.Topic("bad") + "\xff"), Payload: []byte("x")}
			bad.MustSendRaw(packetgen.AppendUnchecked(nil, p, v), fmt.Sprintf("PUBLISH topic=%q (byte 0xFF is not UTF-8)", p.Topic))
			bad.ExpectClosed("topic name is not UTF-8")

			short := w.Connect("short")
			f := packetgen.FrameOf(&packetgen.Publish{Topic: []byte(w.Topic("short"))}, v).Cut(4)
			short.MustSendRaw(f.Bytes(), "PUBLISH whose topic name length runs past the end of the packet")
			short.ExpectClosed("incomplete topic name")
		})

	// The topic name is a UTF-8 string: the server passes multi-byte
	// characters on unchanged.
	s.Spec("MQTT-3.3.2-1", "delivers a topic name with multi-byte UTF-8 characters unchanged",
		Label("utf8", "topics"), func(w *World) {
			t := w.Topic("caf\u00e9/\u65e5\u672c/\U0001F600")
			sub := w.Connect("sub")
			sub.Granted(t, 0)
			pub := w.Connect("pub")
			pub.Publish(t, "utf-8", 0, false)
			p := pqCollect(sub, 1)[0]
			w.Expectf(string(p.Topic) == t, fmt.Sprintf("topic %q", t), "%s", packetgen.Format(p))
		})

	// A topic name holds no wildcard character: a PUBLISH with one is a
	// protocol violation and closes the connection (4.8), and the server
	// never sends such a topic name on.
	s.Spec("MQTT-3.3.2-2", "closes the network connection on a PUBLISH whose topic name contains a wildcard character",
		Label("topics", "wildcard", "malformed"), func(w *World) {
			var watch *Client
			if pqHasWildcards(w) {
				watch = w.Connect("watch")
				watch.Granted(w.Topic("#"), 0)
			}
			for i, name := range []string{w.Topic("+"), w.Topic("a/#"), w.Topic("a+b"), w.Topic("c#")} {
				c := w.Connect(fmt.Sprintf("pub%d", i))
				p := &packetgen.Publish{Topic: []byte(name), Payload: []byte("wildcard")}
				c.MustSendRaw(packetgen.AppendUnchecked(nil, p, w.Cfg().Version), packetgen.Format(p))
				c.ExpectClosed(fmt.Sprintf("wildcard in topic name %q", name))
			}
			if watch != nil {
				watch.ExpectNothing("a PUBLISH with a wildcard topic name is not delivered")
			}
		})

	// The topic name of a PUBLISH the server sends matches the filter of
	// the subscription it is sent for.
	s.Spec("MQTT-3.3.2-3", "sends PUBLISH only with topic names matching the subscription's filter",
		Label("topics", "wildcard"), func(w *World) {
			filters := []string{w.Topic("a")}
			names := []string{w.Topic("a"), w.Topic("ab"), w.Topic("a/b"), w.Topic("A"), w.Topic("a/")}
			if pqHasWildcards(w) {
				filters = append(filters, w.Topic("+/x"), w.Topic("y/#"))
				names = append(names, w.Topic("b/x"), w.Topic("b/x/z"), w.Topic("b/c/x"), w.Topic("y"), w.Topic("y/b/c"), w.Topic("x/y"), w.Topic("b/y"))
			}
			sub := w.Connect("sub")
			for _, f := range filters {
				sub.Granted(f, 0)
			}
			pub := w.Connect("pub")
			var want []string
			for _, n := range names {
				pub.Publish(n, n, 0, false)
				if slices.ContainsFunc(filters, func(f string) bool { return topic.Match(f, n) }) {
					want = append(want, n)
				}
			}
			pub.Ping()
			got := pqCollect(sub, -1)
			var seen []string
			for _, p := range got {
				ok := slices.ContainsFunc(filters, func(f string) bool { return topic.Match(f, string(p.Topic)) })
				w.Expectf(ok, fmt.Sprintf("topic names matching %q", filters), "%s", packetgen.Format(p))
				seen = append(seen, string(p.Topic))
			}
			sort.Strings(seen)
			sort.Strings(want)
			w.Expectf(slices.Equal(seen, want), fmt.Sprintf("one message on each of %q", want), "%s", pqFormatPublishes(got))
		})
}

// pqPublishResponse: the response (3.3.4) and the actions (3.3.5).
func pqPublishResponse(s *S) {
	// The server answers a PUBLISH as its QoS says: nothing for QoS 0,
	// PUBACK for QoS 1, PUBREC for QoS 2, with the PUBLISH's identifier.
	s.Spec("MQTT-3.3.4-1", "answers PUBLISH with nothing at QoS 0, PUBACK at QoS 1 and PUBREC at QoS 2",
		Label("qos1", "qos2"), func(w *World) {
			t := w.Topic("t")
			c := w.Connect("pub")
			c.MustSend(&packetgen.Publish{Topic: []byte(t), Payload: []byte("QoS 0")})
			c.Ping() // nothing may come before the PINGRESP
			if pqMaxQoS(w) >= 1 {
				c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 1, PacketID: 0x1234, Payload: []byte("QoS 1")})
				a := ExpectPacket[*packetgen.Puback](c)
				w.Expectf(a.PacketID == 0x1234, "PUBACK id=4660", "%s", packetgen.Format(a))
			}
			if pqMaxQoS(w) >= 2 {
				c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 2, PacketID: 0xFEDC, Payload: []byte("QoS 2")})
				r := ExpectPacket[*packetgen.Pubrec](c)
				w.Expectf(r.PacketID == 0xFEDC, "PUBREC id=65244", "%s", packetgen.Format(r))
				c.MustSend(&packetgen.Pubrel{PacketID: 0xFEDC})
				cp := ExpectPacket[*packetgen.Pubcomp](c)
				w.Expectf(cp.PacketID == 0xFEDC, "PUBCOMP id=65244", "%s", packetgen.Format(cp))
			}
			pqNothingBeforePing(c, "every PUBLISH has been answered once")
		})

	// A message is delivered respecting the QoS of the matching
	// subscription: at the minimum of its published QoS and the QoS
	// granted (3.8.4).
	s.Spec("MQTT-3.3.5-1", "delivers a message at the lower of its published QoS and the QoS granted to the subscription",
		Label("qos1", "qos2"), func(w *World) {
			t := w.Topic("t")
			var subs []*Client
			var granted []packetgen.QoS
			for q := packetgen.QoS(0); q <= 2; q++ {
				c := w.Connect(fmt.Sprintf("sub%d", q))
				subs = append(subs, c)
				granted = append(granted, c.Granted(t, q))
			}
			pub := w.Connect("pub")
			var sent []*packetgen.Publish
			for q := packetgen.QoS(0); q <= pqMaxQoS(w); q++ {
				sent = append(sent, pqStartPublish(pub, t, fmt.Appendf(nil, "%d", q), q, false, false))
			}
			pqCompletePublishes(pub, sent)
			for i, c := range subs {
				got := pqCollect(c, len(sent))
				seen := map[string]bool{}
				for _, p := range got {
					pq, ok := pqParseQoS(p.Payload)
					want := pqMinQoS(pq, granted[i])
					w.Expectf(ok && !seen[string(p.Payload)] && p.QoS == want,
						fmt.Sprintf("each message once, at QoS min(published, granted %d)", granted[i]),
						"%s (payload is the published QoS) among %s", packetgen.Format(p), pqFormatPublishes(got))
					seen[string(p.Payload)] = true
				}
			}
		})

	// When overlapping subscriptions match, the message is delivered at
	// the highest QoS among them; the server may add one further copy per
	// other matching subscription, each at that subscription's QoS.
	s.Spec("MQTT-3.3.5-1", "delivers a message matching overlapping subscriptions at the highest of their QoS, once or once per subscription",
		Label("wildcard", "qos1", "qos2"), func(w *World) {
			w.Require(pqHasWildcards(w), "needs wildcard subscriptions")
			pqNeedQoS(w, 1)
			t := w.Topic("x/a")
			all, one := w.Topic("x/#"), w.Topic("x/+")
			// The highest QoS comes first, last and in the middle, so a
			// server that keeps the first or the last match is caught.
			cases := [][]packetgen.Subscription{
				{{Filter: t, QoS: 2}, {Filter: all, QoS: 1}},
				{{Filter: one, QoS: 0}, {Filter: t, QoS: 2}},
				{{Filter: all, QoS: 0}, {Filter: one, QoS: 2}, {Filter: t, QoS: 1}},
			}
			subs := make([]*Client, len(cases))
			granted := make([][]packetgen.ReasonCode, len(cases))
			for i, c := range cases {
				subs[i] = w.Connect(fmt.Sprintf("sub%d", i))
				granted[i] = subs[i].SubscribeMany(c)
			}
			pub := w.Connect("pub")
			pq := pqMaxQoS(w)
			pub.Publish(t, "overlap", pq, false)
			received := pqCollectAll(w, subs...)
			for i, got := range received {
				var due []packetgen.QoS // the QoS each matching subscription is due
				for j, rc := range granted[i] {
					w.Expectf(rc <= 2, fmt.Sprintf("%q granted", cases[i][j].Filter), "SUBACK code 0x%02X", byte(rc))
					due = append(due, pqMinQoS(pq, packetgen.QoS(rc)))
				}
				var qos []packetgen.QoS
				for _, p := range got {
					w.Expectf(string(p.Topic) == t && string(p.Payload) == "overlap", fmt.Sprintf("the message published on %q", t), "%s", packetgen.Format(p))
					qos = append(qos, p.QoS)
				}
				w.Expectf(pqOverlapDeliveryOK(qos, due),
					fmt.Sprintf("for subscriptions %s (published QoS %d, due QoS %v): one copy at QoS %d, and at most one further copy per other subscription at its QoS",
						pqFormatSubs(cases[i], granted[i]), pq, due, slices.Max(due)),
					"%s", pqFormatPublishes(got))
			}
		})

	// A server that does not authorize a PUBLISH either acknowledges it as
	// its QoS says or closes the connection; it has no way to refuse. A
	// PUBLISH to $SYS is one many brokers refuse; whether this one does or
	// not, those are the only two answers allowed.
	s.Spec("MQTT-3.3.5-2", "acknowledges or closes on a PUBLISH it may not authorize ($SYS), never answering otherwise",
		Label("qos1", "qos2", "topics"), func(w *World) {
			pqNeedQoS(w, 1)
			for q := packetgen.QoS(1); q <= pqMaxQoS(w); q++ {
				c := w.Connect(fmt.Sprintf("q%d", q))
				p := &packetgen.Publish{Topic: []byte("$SYS/" + w.Topic("denied")), QoS: q, PacketID: 7, Payload: []byte("may be denied")}
				c.MustSend(p)
				got, err := c.Recv(w.Cfg().Timeout)
				if err != nil {
					w.ifNoAnswer(err, fmt.Sprintf("%s id=7 or the connection closed", pqAckName(q)), c.Name)
					w.Expectf(pqIsClosed(err), fmt.Sprintf("a %s id=7 or the connection closed", pqAckName(q)), "%s", describeErr(err))
					continue
				}
				ok := false
				switch a := got.(type) {
				case *packetgen.Puback:
					ok = q == 1 && a.PacketID == 7
				case *packetgen.Pubrec:
					ok = q == 2 && a.PacketID == 7
				}
				w.Expectf(ok, fmt.Sprintf("a %s id=7 or the connection closed", pqAckName(q)), "%s", packetgen.Format(got))
			}
		})
}

// pqOverlapDeliveryOK: the copies of one message delivered to a client with
// overlapping subscriptions, due QoS each, follow MQTT-3.3.5-1 when one
// copy has the highest due QoS and the copies' QoS are a sub-multiset of
// the due QoS (one further copy at most per other subscription).
func pqOverlapDeliveryOK(got, due []packetgen.QoS) bool {
	if len(got) == 0 || !slices.Contains(got, slices.Max(due)) {
		return false
	}
	left := slices.Clone(due)
	for _, q := range got {
		i := slices.Index(left, q)
		if i < 0 {
			return false
		}
		left = slices.Delete(left, i, i+1)
	}
	return true
}

func pqFormatSubs(subs []packetgen.Subscription, granted []packetgen.ReasonCode) string {
	s := ""
	for i, sub := range subs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q QoS %d (granted %d)", sub.Filter, sub.QoS, granted[i])
	}
	return s
}

// pqParseQoS reads a payload holding a single QoS digit.
func pqParseQoS(b []byte) (packetgen.QoS, bool) {
	if len(b) != 1 || b[0] < '0' || b[0] > '2' {
		return 0, false
	}
	return packetgen.QoS(b[0] - '0'), true
}

func pqAckName(q packetgen.QoS) string {
	if q == 2 {
		return "PUBREC"
	}
	return "PUBACK"
}
