package suites

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("4.3", "Quality of Service levels and protocol flows", func(s *S) {
		qosZero(s)
		qosOne(s)
		qosTwoOutbound(s)
		qosTwoInbound(s)
	})
}

// qosZero: the server as sender of QoS 0 (4.3.1).
func qosZero(s *S) {
	// A QoS 0 message goes out as one PUBLISH with QoS 0 and DUP 0; no
	// answer is expected and none is sent again.
	s.Spec("MQTT-4.3.1-1", "sends a QoS 0 message once, as a PUBLISH with QoS 0 and DUP 0",
		func(w *World) {
			t := w.Topic("q0")
			sub := w.Connect("sub")
			g := sub.Granted(t, pqMaxQoS(w))
			pub := w.Connect("pub")
			pub.Publish(t, "at most once", 0, false)
			p := sub.ReceiveNoAck()
			w.Expectf(p.QoS == 0 && !p.Dup && string(p.Payload) == "at most once",
				fmt.Sprintf(`PUBLISH QoS 0, DUP 0, payload "at most once" (subscription granted QoS %d)`, g), "%s", packetgen.Format(p))
			sub.ExpectNothing("a QoS 0 message is sent once and never again")
		})
}

// qosOne: QoS 1, the server as sender and as receiver (4.3.2).
func qosOne(s *S) {
	// As QoS 1 sender the server sends PUBLISH with QoS 1, DUP 0 and a
	// packet identifier no other unacknowledged message of the session
	// uses, and the message stays unacknowledged until its PUBACK. The
	// server may keep as few as one in flight (§4.9): when it stops, the
	// oldest is acknowledged to let the next out.
	s.Spec("MQTT-4.3.2-1", "sends QoS 1 messages with DUP 0 and packet identifiers not held by unacknowledged messages",
		Label("qos1"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("q1")
			sub := w.Connect("sub")
			pqGrantedAtLeast(sub, t, 1)
			pub := w.Connect("pub")
			in := pqNewInbox(sub)
			held := map[uint16]string{}    // unacknowledged: id -> payload
			var order []*packetgen.Publish // unacknowledged, oldest first
			release := func(p *packetgen.Publish) {
				in.ack(p)
				delete(held, p.PacketID)
				order = slices.DeleteFunc(order, func(q *packetgen.Publish) bool { return q == p })
			}
			receive := func(n int) {
				for got := 0; got < n; {
					ps := in.burst(n - got)
					for _, p := range ps {
						prev, clash := held[p.PacketID]
						w.Expectf(p.QoS == 1 && !p.Dup && !clash, "PUBLISH QoS 1, DUP 0, with an identifier no unacknowledged message holds",
							"%s (id held by %q: %v)", packetgen.Format(p), prev, clash)
						held[p.PacketID] = string(p.Payload)
						order = append(order, p)
					}
					if got += len(ps); got < n {
						release(order[0]) // the broker waits for an acknowledgement
					}
				}
			}
			for i := range 3 {
				pub.Publish(t, fmt.Sprintf("first %d", i), 1, false)
			}
			receive(3)
			// Acknowledge one while others may still be held: its
			// identifier may be used again.
			release(order[len(order)/2])
			sub.Ping()
			for i := range 3 {
				pub.Publish(t, fmt.Sprintf("second %d", i), 1, false)
			}
			receive(3)
			for len(order) > 0 {
				release(order[0])
			}
			pqNothingBeforePing(sub, "every QoS 1 message has been acknowledged")
		})

	// As QoS 1 receiver the server answers PUBACK with the PUBLISH's
	// identifier, and after that treats a PUBLISH with the same identifier
	// as a new message, whatever its DUP flag.
	s.Spec("MQTT-4.3.2-2", "acknowledges a QoS 1 PUBLISH with PUBACK and treats a later PUBLISH with the same identifier as new, even with DUP 1",
		Label("qos1"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("q1")
			sub := w.Connect("sub")
			sub.Granted(t, 1)
			c := w.Connect("pub")
			const id = 0x0B0C
			for _, p := range []*packetgen.Publish{
				{Topic: []byte(t), QoS: 1, PacketID: id, Payload: []byte("first")},
				{Topic: []byte(t), QoS: 1, PacketID: id, Dup: true, Payload: []byte("first")},
				{Topic: []byte(t), QoS: 1, PacketID: id, Payload: []byte("second")},
			} {
				c.MustSend(p)
				a := ExpectPacket[*packetgen.Puback](c)
				w.Expectf(a.PacketID == id, fmt.Sprintf("PUBACK id=%d", id), "%s", packetgen.Format(a))
			}
			got := pqCollect(sub, 3)
			seen := pqPayloads(got)
			slices.Sort(seen)
			w.Expectf(slices.Equal(seen, []string{"first", "first", "second"}),
				`three deliveries: "first" twice (the DUP 1 PUBLISH after PUBACK is a new publication) and "second"`, "%s", pqFormatPublishes(got))
		})
}

// qosTwoOutbound: QoS 2, the server as sender (4.3.3).
func qosTwoOutbound(s *S) {
	// As QoS 2 sender the server sends PUBLISH with QoS 2, DUP 0 and an
	// unused identifier, answers each PUBREC with a PUBREL carrying the
	// same identifier, and is done at PUBCOMP: several flows at once,
	// acknowledged out of order, all complete. The flows in flight at once
	// are those the broker sends before it waits (§4.9 lets it send one
	// at a time); the next come once they are complete.
	s.Spec("MQTT-4.3.3-1", "sends QoS 2 messages with DUP 0, releases each on its PUBREC and stops at PUBCOMP, with flows acknowledged out of order",
		Label("qos2"), func(w *World) {
			pqNeedQoS(w, 2)
			t := w.Topic("q2")
			sub := w.Connect("sub")
			pqGrantedAtLeast(sub, t, 2)
			pub := w.Connect("pub")
			const n = 3
			for i := range n {
				pub.Publish(t, fmt.Sprintf("exactly once %d", i), 2, false)
			}
			in := pqNewInbox(sub)
			var all []*packetgen.Publish
			most := 0
			for len(all) < n {
				ps := in.burst(n - len(all))
				most = max(most, len(ps))
				ids := map[uint16]bool{} // in flight
				for _, p := range ps {
					w.Expectf(p.QoS == 2 && !p.Dup && !ids[p.PacketID], "PUBLISH QoS 2, DUP 0, with an identifier no unacknowledged message holds",
						"%s after %s", packetgen.Format(p), pqFormatPublishes(all))
					ids[p.PacketID] = true
					all = append(all, p)
				}
				for i := range ps { // last first: [2 0 1]
					sub.MustSend(&packetgen.Pubrec{PacketID: ps[(i+len(ps)-1)%len(ps)].PacketID})
				}
				for _, rel := range pqPubrels(sub, len(ps)) {
					w.Expectf(ids[rel.PacketID], "a PUBREL for each PUBREC, with its identifier", "%s", packetgen.Format(rel))
					delete(ids, rel.PacketID)
				}
				for _, i := range pqShuffle(len(ps)) { // [1 2 0]
					sub.MustSend(&packetgen.Pubcomp{PacketID: ps[i].PacketID})
				}
			}
			if most == 1 {
				AddReportEntry("note", "the broker kept one QoS 2 message in flight at a time: no flows to acknowledge out of order")
			}
			pqNothingBeforePing(sub, "every QoS 2 flow is complete")
		})

	// Once the server has sent PUBREL it must not send the PUBLISH again,
	// not even when the session resumes before PUBCOMP (then it sends the
	// PUBREL again, MQTT-4.4.0-1).
	s.Spec("MQTT-4.3.3-1", "does not send a QoS 2 PUBLISH again once it has sent PUBREL, even when the session resumes",
		Label("qos2", "session"), func(w *World) {
			pqNeedQoS(w, 2)
			t := w.Topic("q2")
			sub := w.Connect("sub", Persistent)
			pqGrantedAtLeast(sub, t, 2)
			pub := w.Connect("pub")
			pub.Publish(t, "released", 2, false)
			p := sub.ReceiveNoAck()
			id := p.PacketID
			sub.MustSend(&packetgen.Pubrec{PacketID: id})
			rel := ExpectPacket[*packetgen.Pubrel](sub)
			w.Expectf(rel.PacketID == id, fmt.Sprintf("PUBREL id=%d", id), "%s", packetgen.Format(rel))
			pqNothingBeforePing(sub, "the PUBLISH is not sent again after PUBREL")
			sub = pqResume(w, sub, "sub")
			for {
				got, err := sub.Recv(w.Cfg().Quiet)
				if err != nil {
					w.Expectf(!pqIsClosed(err), "the connection open", "%s", describeErr(err))
					return // silence: nothing sent again (a missing PUBREL is MQTT-4.4.0-1's)
				}
				r, ok := got.(*packetgen.Pubrel)
				w.Expectf(ok && r.PacketID == id, fmt.Sprintf("at most PUBREL id=%d, never the released PUBLISH", id), "%s", packetgen.Format(got))
				sub.MustSend(&packetgen.Pubcomp{PacketID: id})
			}
		})
}

// qosTwoInbound: QoS 2, the server as receiver (4.3.3).
func qosTwoInbound(s *S) {
	// As QoS 2 receiver the server answers PUBREC; until PUBREL it answers
	// a repeated PUBLISH with the same identifier with PUBREC again and
	// delivers nothing twice; it answers PUBREL with PUBCOMP; after that
	// the identifier starts a new message.
	s.Spec("MQTT-4.3.3-2", "delivers a QoS 2 message once despite a repeated PUBLISH before PUBREL, and treats its identifier as new after PUBCOMP",
		Label("qos2"), func(w *World) {
			pqNeedQoS(w, 2)
			t := w.Topic("q2")
			sub := w.Connect("sub")
			sub.Granted(t, 2)
			c := w.Connect("pub")
			const id = 0x0A0B
			expectAck := func(got packetgen.Packet, what string) {
				var gotID uint16
				switch a := got.(type) {
				case *packetgen.Pubrec:
					gotID = a.PacketID
				case *packetgen.Pubcomp:
					gotID = a.PacketID
				}
				w.Expectf(got.Type().String() == what && gotID == id, fmt.Sprintf("%s id=%d", what, id), "%s", packetgen.Format(got))
			}
			c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 2, PacketID: id, Payload: []byte("once")})
			expectAck(c.NextAnswer("PUBREC"), "PUBREC")
			c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 2, PacketID: id, Dup: true, Payload: []byte("once")})
			expectAck(c.NextAnswer("PUBREC for the repeated PUBLISH"), "PUBREC")
			c.MustSend(&packetgen.Pubrel{PacketID: id})
			expectAck(c.NextAnswer("PUBCOMP"), "PUBCOMP")
			c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 2, PacketID: id, Payload: []byte("again")})
			expectAck(c.NextAnswer("PUBREC for a new message with the identifier"), "PUBREC")
			c.MustSend(&packetgen.Pubrel{PacketID: id})
			expectAck(c.NextAnswer("PUBCOMP"), "PUBCOMP")
			got := pqCollect(sub, 2)
			pqExpectNoMore(w, "two messages, each delivered once", sub)
			seen := pqPayloads(got)
			slices.Sort(seen)
			w.Expectf(slices.Equal(seen, []string{"again", "once"}), `"once" delivered once and "again" once`, "%s", pqFormatPublishes(got))
		})

	// Several inbound QoS 2 flows at once, released out of order: each
	// PUBREL gets its PUBCOMP and each message is delivered once.
	s.Spec("MQTT-4.3.3-2", "completes several inbound QoS 2 flows released out of order, delivering each message once",
		Label("qos2"), func(w *World) {
			pqNeedQoS(w, 2)
			t := w.Topic("q2")
			sub := w.Connect("sub")
			sub.Granted(t, 2)
			c := w.Connect("pub")
			var ids []uint16
			for i := range 3 {
				ids = append(ids, pqStartPublish(c, t, fmt.Appendf(nil, "in flight %d", i), 2, false, false).PacketID)
			}
			recs := map[uint16]bool{}
			for range ids {
				r := ExpectPacket[*packetgen.Pubrec](c)
				w.Expectf(slices.Contains(ids, r.PacketID) && !recs[r.PacketID], fmt.Sprintf("one PUBREC for each of ids %v", ids), "%s", packetgen.Format(r))
				recs[r.PacketID] = true
			}
			for _, i := range []int{2, 0, 1} {
				c.MustSend(&packetgen.Pubrel{PacketID: ids[i]})
			}
			for range ids {
				cp := ExpectPacket[*packetgen.Pubcomp](c)
				w.Expectf(recs[cp.PacketID], fmt.Sprintf("one PUBCOMP for each released id of %v", ids), "%s", packetgen.Format(cp))
				delete(recs, cp.PacketID)
			}
			got := pqCollect(sub, 3)
			pqExpectNoMore(w, "three messages, each delivered once", sub)
			seen := pqPayloads(got)
			slices.Sort(seen)
			w.Expectf(slices.Equal(seen, []string{"in flight 0", "in flight 1", "in flight 2"}), "each message delivered once",
				"%s", pqFormatPublishes(got))
		})

	// The receiver keeps the state of a QoS 2 flow in the session: a
	// client that resumes its session and sends the PUBREL it owes gets
	// PUBCOMP, and the message is delivered exactly once.
	s.Spec("MQTT-4.3.3-2", "completes an inbound QoS 2 flow whose PUBREL comes after the session resumes, delivering the message once",
		Label("qos2", "session"), func(w *World) {
			pqNeedQoS(w, 2)
			t := w.Topic("q2")
			sub := w.Connect("sub")
			sub.Granted(t, 2)
			c := w.Connect("pub", Persistent)
			id := c.ID()
			c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 2, PacketID: id, Payload: []byte("across sessions")})
			rec := ExpectPacket[*packetgen.Pubrec](c)
			w.Expectf(rec.PacketID == id, fmt.Sprintf("PUBREC id=%d", id), "%s", packetgen.Format(rec))
			c = pqResume(w, c, "pub")
			c.MustSend(&packetgen.Pubrel{PacketID: id})
			cp := pqPubcompAfterResume(c, id)
			w.Expectf(cp.PacketID == id, fmt.Sprintf("PUBCOMP id=%d", id), "%s", packetgen.Format(cp))
			got := pqCollect(sub, 1)
			pqExpectNoMore(w, "the message is delivered exactly once", sub, c)
			w.Expectf(string(got[0].Payload) == "across sessions", `"across sessions" delivered once`, "%s", pqFormatPublishes(got))
		})
}
