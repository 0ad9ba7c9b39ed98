package suites

import (
	"errors"
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// fcReceiveMax connects a subscriber with Receive Maximum rm, subscribed
// to topic at q, and publishes n messages at q to it.
func fcReceiveMax(w *World, rm uint16, q packetgen.QoS, n int) (*Client, string) {
	t := w.Topic("flow")
	sub := w.Connect("sub", WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropReceiveMaximum, rm) }))
	pqGrantedAtLeast(sub, t, q)
	pub := w.Connect("pub")
	for i := range n {
		pub.Publish(t, fmt.Sprintf("m%d", i), q, false)
	}
	return sub, t
}

func init() {
	addSection5("4.9", "Flow Control", func(s *S) {
		// The server has at most the client's Receive Maximum QoS 1 and 2
		// PUBLISH packets unacknowledged: its send quota starts there, a
		// PUBACK or PUBCOMP gives one back (a PUBREC does not), and at 0
		// it sends no more until one comes back.
		for _, q := range []packetgen.QoS{1, 2} {
			s.Spec("MQTT-3.3.4-9 MQTT-4.9.0-1 MQTT-4.9.0-2", fmt.Sprintf("keeps at most the client's Receive Maximum of QoS %d PUBLISH packets unacknowledged", q),
				Label("flow", fmt.Sprintf("qos%d", q)), func(w *World) {
					pqNeedQoS(w, q)
					const rm, n = 2, 5
					sub, _ := fcReceiveMax(w, rm, q, n)
					// The server's send quota starts anywhere from 1 to the
					// client's Receive Maximum (MQTT-4.9.0-1: ejabberd keeps
					// one message in flight), never above it.
					first := sub.ReceiveAllNoAck()
					if len(first) == 0 {
						w.inconclusive("no PUBLISH came within %s of %d published", w.cfg.Quiet, n)
					}
					w.Expectf(len(first) <= rm, fmt.Sprintf("at most %d PUBLISH packets, the client's Receive Maximum, before any acknowledgement", rm),
						"%d: %s", len(first), pqFormatPublishes(first))
					if q == 2 {
						// PUBREC keeps the message in flight until PUBCOMP.
						sub.MustSend(&packetgen.Pubrec{PacketID: first[0].PacketID})
						rel := ExpectPacket[*packetgen.Pubrel](sub)
						w.Expectf(rel.PacketID == first[0].PacketID, fmt.Sprintf("PUBREL id=%d", first[0].PacketID), "%s", packetgen.Format(rel))
						if len(first) == rm {
							pqNothingBeforePing(sub, "PUBREC does not give back send quota; only PUBCOMP does")
						}
						sub.MustSend(&packetgen.Pubcomp{PacketID: first[0].PacketID})
					} else {
						sub.MustSend(&packetgen.Puback{PacketID: first[0].PacketID})
					}
					next := sub.ReceiveAllNoAck()
					w.Expectf(len(first)-1+len(next) <= rm, fmt.Sprintf("at most %d PUBLISH packets unacknowledged once one flow completed", rm),
						"%d still unacknowledged and %d more: %s", len(first)-1, len(next), pqFormatPublishes(next))
					rest := fcDrain(sub, append(first[1:], next...))
					all := len(first) + len(next) + len(rest)
					if all < n {
						// Fewer is a message lost, not one sent beyond the quota.
						w.stepFailed([]string{"MQTT-4.5.0-1"}, "expected %d messages once every one was acknowledged; got %d", n, all)
					}
					w.Expectf(all == n, fmt.Sprintf("%d messages once every one was acknowledged", n), "%d", all)
				})
		}

		// With its send quota at 0 the server goes on with every other
		// packet: PINGRESP, SUBACK, UNSUBACK, PUBACK for what the client
		// publishes.
		s.Spec("MQTT-3.3.4-10 MQTT-4.9.0-3", "answers PINGREQ, SUBSCRIBE, UNSUBSCRIBE and PUBLISH while its send quota to the client is used up",
			Label("flow", "qos1"), func(w *World) {
				pqNeedQoS(w, 1)
				sub, t := fcReceiveMax(w, 1, 1, 3)
				p := sub.ReceiveNoAck()
				sub.Ping()
				sub.Granted(w.Topic("other"), 1)
				sub.Unsubscribe(w.Topic("other"))
				sub.Publish(w.Topic("mine"), "while blocked", 1, false)
				sub.Ping()
				rest := fcDrain(sub, []*packetgen.Publish{p})
				w.Expectf(len(rest) == 2, fmt.Sprintf("the two messages to %q still held once the first was acknowledged", t), "%s", pqFormatPublishes(rest))
			})

		// A client that sends more QoS 2 PUBLISH packets unanswered by
		// PUBCOMP than the server's Receive Maximum commits a protocol
		// error: the server closes, with DISCONNECT 0x93 first (SHOULD).
		s.Spec("MQTT-4.13.1-1", "closes the connection when the client exceeds the server's Receive Maximum, with DISCONNECT 0x93",
			Label("flow", "qos2", "capabilities"), func(w *World) {
				caps := w.Caps()
				w.Lacks(caps.ReceiveMaximum > 100, fmt.Sprintf("Receive Maximum %d: too many flows to open", caps.ReceiveMaximum))
				w.SendsRefused()
				pqNeedQoS(w, 2)
				c := w.Connect("c")
				t := w.Topic("over")
				for i := range int(caps.ReceiveMaximum) {
					id := c.ID()
					c.MustSend(&packetgen.Publish{Topic: []byte(t), Payload: []byte(fmt.Sprint(i)), QoS: 2, PacketID: id})
					rec := ExpectPacket[*packetgen.Pubrec](c)
					w.Expectf(rec.PacketID == id && !rec.ReasonCode.IsError(), fmt.Sprintf("PUBREC id=%d with 0x00 within the Receive Maximum of %d", id, caps.ReceiveMaximum),
						"%s", packetgen.Format(rec))
				}
				c.MustSend(&packetgen.Publish{Topic: []byte(t), Payload: []byte("one too many"), QoS: 2, PacketID: c.ID()})
				c.ExpectClosedBy(fmt.Sprintf("%d QoS 2 PUBLISH packets unreleased, one more than Receive Maximum %d", caps.ReceiveMaximum+1, caps.ReceiveMaximum),
					withDisconnect(packetgen.ReceiveMaximumExceeded))
			})
	})
}

// fcDrain acknowledges pending, then reads until Quiet passes with
// nothing, acknowledging every PUBLISH that comes and completing QoS 2
// flows (PUBREL gets PUBCOMP) in whatever order the packets interleave:
// each freed place in the window may let another PUBLISH in. It returns
// the PUBLISH packets that came.
func fcDrain(c *Client, pending []*packetgen.Publish) []*packetgen.Publish {
	ack := func(p *packetgen.Publish) {
		switch p.QoS {
		case 1:
			c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
		case 2:
			c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
		}
	}
	for _, p := range pending {
		ack(p)
	}
	var got []*packetgen.Publish
	for {
		p, err := c.Recv(c.w.cfg.Quiet)
		if err != nil {
			if !errors.Is(err, wire.ErrTimeout) {
				c.w.Failf("expected PUBLISH and PUBREL packets at %s; got %s", c.Name, describeErr(err))
			}
			return got
		}
		switch p := p.(type) {
		case *packetgen.Publish:
			got = append(got, p)
			ack(p)
		case *packetgen.Pubrel:
			c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
		default:
			c.w.Failf("expected PUBLISH and PUBREL packets at %s; got %s", c.Name, packetgen.Format(p))
		}
	}
}
