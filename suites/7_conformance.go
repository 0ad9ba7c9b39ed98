package suites

import (
	"fmt"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("7", "Conformance", func(s *S) {
		// A conformant implementation needs nothing defined outside the
		// specification to interoperate: a client using only what 3.1.1
		// defines connects, subscribes, publishes and receives.
		s.Spec("MQTT-7.0.0-2", "serves a client that uses nothing outside the specification",
			func(w *World) {
				t := w.Topic("plain")
				c := w.Connect("plain")
				c.Granted(t, 0)
				c.Publish(t, "plain", 0, false)
				got := c.Receive()
				w.Expectf(string(got.Topic) == t && string(got.Payload) == "plain",
					"the client's own message back through its subscription", "%s", packetgen.Format(got))
			})

		// The server serves MQTT over an ordered, lossless byte stream:
		// packets are bytes of a stream, not messages of the transport.
		// A CONNECT written one byte at a time, and several packets in one
		// write, must be read as the packets they are.
		s.Spec("MQTT-7.1.1-1", "reads packets from the byte stream whatever the TCP writes: one byte at a time, several packets at once",
			func(w *World) {
				c := w.Dial("stream")
				cp := w.ConnectPacket("stream")
				b := packetgen.AppendUnchecked(nil, cp, cp.ProtocolLevel)
				for i := range b {
					c.MustSendRaw(b[i:i+1], fmt.Sprintf("CONNECT byte %d of %d", i+1, len(b)))
					time.Sleep(time.Millisecond) // defeat coalescing: separate segments
				}
				ack := ExpectPacket[*packetgen.Connack](c)
				w.Expectf(ack.ReasonCode == 0, "CONNACK 0 for a CONNECT written byte by byte", "%s", packetgen.Format(ack))

				t := w.Topic("stream")
				v := c.Version()
				var burst []byte
				burst = packetgen.AppendUnchecked(burst, &packetgen.Subscribe{PacketID: 1,
					Subscriptions: []packetgen.Subscription{{Filter: t}}}, v)
				burst = packetgen.AppendUnchecked(burst, &packetgen.Pingreq{}, v)
				c.MustSendRaw(burst, "SUBSCRIBE and PINGREQ in one write")
				ExpectPacket[*packetgen.Suback](c)
				ExpectPacket[*packetgen.Pingresp](c)
				burst = burst[:0]
				for range 3 {
					burst = packetgen.AppendUnchecked(burst, &packetgen.Publish{Topic: []byte(t), Payload: []byte("burst")}, v)
				}
				burst = packetgen.AppendUnchecked(burst, &packetgen.Pingreq{}, v)
				c.MustSendRaw(burst, "three PUBLISH and PINGREQ in one write")
				var pubs, pongs int
				for pubs < 3 || pongs < 1 {
					switch p := c.NextAnswer("the three messages back and a PINGRESP"); p.(type) {
					case *packetgen.Publish:
						pubs++
					case *packetgen.Pingresp:
						pongs++
					default:
						w.Failf("expected PUBLISH and PINGRESP; got %s", packetgen.Format(p))
					}
				}
				w.Expectf(pubs == 3 && pongs == 1, "the three messages back and one PINGRESP",
					"%d PUBLISH and %d PINGRESP", pubs, pongs)
			})
	})

	notTestable("MQTT-7.0.0-1", "concerns a server that also connects out to other servers (a bridge); "+
		"its client side is not reachable from the wire the suite drives")
	notTestable("MQTT-7.1.2-1", "binds only the client")
}
