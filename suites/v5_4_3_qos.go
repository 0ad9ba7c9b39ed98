package suites

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection5("4.3", "Quality of Service levels and protocol flows", func(s *S) {
		s.Reuse("4.3", "MQTT-4.3.1-1", "MQTT-4.3.1-1")
		s.Reuse("4.3", "MQTT-4.3.2-1", "MQTT-4.3.2-1 MQTT-4.3.2-2")
		s.Reuse("4.3", "MQTT-4.3.2-2", "MQTT-4.3.2-4 MQTT-4.3.2-5")
		s.Reuse("4.3", "MQTT-4.3.3-1: sends", "MQTT-4.3.3-1 MQTT-4.3.3-2 MQTT-4.3.3-4")
		s.Reuse("4.3", "MQTT-4.3.3-1: does not send", "MQTT-4.3.3-6")
		s.Reuse("4.3", "MQTT-4.3.3-2: delivers", "MQTT-4.3.3-8 MQTT-4.3.3-10 MQTT-4.3.3-12")
		s.Reuse("4.3", "MQTT-4.3.3-2: completes several", "MQTT-4.3.3-11")
		s.Reuse("4.3", "MQTT-4.3.3-2: completes an inbound", "MQTT-4.3.3-11")

		// Once the server has sent a QoS 2 PUBLISH, message expiry no
		// longer applies to it: unacknowledged past its expiry interval,
		// it is sent again when the session resumes.
		s.Spec("MQTT-4.3.3-7", "does not expire a QoS 2 message it has started to send: an unacknowledged one is sent again after its expiry",
			Label("qos2", "expiry", "session"), func(w *World) {
				pqNeedQoS(w, 2)
				t := w.Topic("q2")
				sub := w.Connect("sub", Persistent)
				pqGrantedAtLeast(sub, t, 2)
				w.Connect("pub").Deliver(Message(t, "expires in 1 s", 2, func(p *packetgen.Properties) {
					p.Set(packetgen.PropMessageExpiryInterval, uint32(1))
				}))
				first := sub.ReceiveNoAck()
				sub.Close()
				time.Sleep(time.Second + 500*time.Millisecond)
				back, _ := lcReconnect(w, "sub", Persistent)
				p := back.ReceiveNoAck()
				w.Expectf(string(p.Payload) == string(first.Payload) && p.PacketID == first.PacketID && p.Dup,
					fmt.Sprintf("the unacknowledged QoS 2 PUBLISH id=%d sent again with DUP 1 after its expiry interval", first.PacketID),
					"%s", packetgen.Format(p))
				back.Ack(p)
			})

		// As QoS 2 receiver the server completes the flow even when the
		// message's expiry interval passed before PUBREL.
		s.Spec("MQTT-4.3.3-13", "answers PUBREL with PUBCOMP after the message's expiry interval has passed",
			Label("qos2", "expiry"), func(w *World) {
				pqNeedQoS(w, 2)
				c := w.Connect("pub")
				p := Message(w.Topic("q2"), "expires in 1 s", 2, func(p *packetgen.Properties) {
					p.Set(packetgen.PropMessageExpiryInterval, uint32(1))
				})
				p.PacketID = c.ID()
				c.MustSend(p)
				rec := expectAnswer[*packetgen.Pubrec](c, c.lastSent, rulePubrec, "PUBREC")
				w.Expectf(rec.PacketID == p.PacketID, fmt.Sprintf("PUBREC id=%d", p.PacketID), "%s", packetgen.Format(rec))
				time.Sleep(time.Second + 500*time.Millisecond)
				c.MustSend(&packetgen.Pubrel{PacketID: p.PacketID})
				comp := ExpectPacket[*packetgen.Pubcomp](c)
				w.Expectf(comp.PacketID == p.PacketID && !comp.ReasonCode.IsError(), fmt.Sprintf("PUBCOMP id=%d with 0x00", p.PacketID), "%s", packetgen.Format(comp))
			})

		// After PUBREC with 0x80 or more the identifier is free: a PUBLISH
		// that uses it again is a new message. A server refuses a message
		// when it validates a payload marked UTF-8 (Payload Format
		// Indicator 1) and finds it is not; one that does not validate
		// leaves nothing to judge.
		s.Spec("MQTT-4.3.3-9", "treats a PUBLISH that reuses the identifier of one it refused with PUBREC 0x80 or more as a new message",
			Label("qos2", "properties"), func(w *World) {
				pqNeedQoS(w, 2)
				t := w.Topic("q2")
				sub := w.Connect("sub")
				sub.Granted(t, 2)
				c := w.Connect("pub")
				bad := Message(t, "\xFF not UTF-8", 2, func(p *packetgen.Properties) { p.Set(packetgen.PropPayloadFormatIndicator, byte(1)) })
				bad.PacketID = 7
				c.MustSend(bad)
				if p, err := c.Recv(w.cfg.Timeout); err == nil {
					if d, ok := p.(*packetgen.Disconnect); ok && d.ReasonCode == packetgen.PayloadFormatInvalid {
						// DISCONNECT 0x99 is the other answer §3.3.2.3.2 allows:
						// no refused identifier is left to reuse.
						c.closedAfter(d)
						Skip("the broker answered the invalid payload with DISCONNECT 0x99, not PUBREC: no identifier to reuse")
					}
					c.held = append(c.held, p)
				}
				rec := expectAnswer[*packetgen.Pubrec](c, c.lastSent, rulePubrec, "PUBREC id=7")
				if !rec.ReasonCode.IsError() {
					c.MustSend(&packetgen.Pubrel{PacketID: 7})
					ExpectPacket[*packetgen.Pubcomp](c)
					Skip("the broker accepted a payload marked UTF-8 that is not: nothing refused to judge")
				}
				good := Message(t, "the new message", 2, nil)
				good.PacketID = 7
				rc := c.PublishPacket(good)
				w.Expectf(!rc.IsError(), "PUBREC 0x00 for the new message with identifier 7", "0x%02X", byte(rc))
				p := sub.Receive5()
				w.Expectf(string(p.Payload) == "the new message", `"the new message" delivered`, "%s", packetgen.Format(p))
			})
	})
}
