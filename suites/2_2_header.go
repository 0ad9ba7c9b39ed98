package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("2.2", "Fixed header", func(s *S) {
		// Every packet a server sends must carry the fixed header flags
		// Table 2.2 gives its type (0010 for PUBREL, 0000 for the other
		// packets a server sends; PUBLISH flags must be a valid
		// DUP/QoS/RETAIN). The client decodes strictly, so a packet with
		// other flags fails the spec as malformed.
		s.Spec("MQTT-2.2.2-1", "sends CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK and PINGRESP with the flags Table 2.2 requires",
			Label("qos1", "qos2"), func(w *World) {
				topic := w.Topic("flags")
				sub := w.Connect("sub") // CONNACK
				sub.Granted(topic, 2)
				pub := w.Connect("pub")
				for _, q := range []packetgen.QoS{0, 1, 2} {
					// PUBACK; PUBREC and PUBCOMP at the publisher.
					pub.Publish(topic, fmt.Sprintf("q%d", q), q, false)
					// Receive acknowledges: PUBREC draws the broker's PUBREL.
					sub.Receive()
				}
				sub.Ping()             // PINGRESP
				sub.Unsubscribe(topic) // UNSUBACK
				pub.Ping()             // everything the publisher got was well-formed
				sub.ExpectNothing("all flows are complete")
			})

		// A receiver of a packet whose fixed header flags differ from
		// those Table 2.2 gives its type must close the network
		// connection. (DISCONNECT is judged in 3.14, where the will tells
		// a refused DISCONNECT from an accepted one.)
		s.Spec("MQTT-2.2.2-2", "closes the connection on a packet whose fixed header flags are not those Table 2.2 gives its type",
			Label("malformed"), func(w *World) {
				type bad struct {
					p     packetgen.Packet
					flags byte
				}
				after := []bad{
					{&packetgen.Puback{PacketID: 1}, 0x2},
					{&packetgen.Pubrec{PacketID: 1}, 0x1},
					{&packetgen.Pubrel{PacketID: 1}, 0x0},
					{&packetgen.Pubcomp{PacketID: 1}, 0x4},
					{&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: w.Topic("f")}}}, 0x0},
					{&packetgen.Unsubscribe{PacketID: 1, Filters: []string{w.Topic("f")}}, 0x0},
					{&packetgen.Pingreq{}, 0x8},
				}
				// CONNECT itself, as the first packet.
				cp := w.ConnectPacket("connect")
				first := lcSendConnect(w, "connect",
					packetgen.FrameOf(cp, w.Cfg().Version).WithFlags(0x1).Bytes(), "CONNECT with fixed header flags 0x1")
				pending := []lcPending{{first, "CONNECT with fixed header flags 0x1", true}}
				for i, b := range after {
					c := w.Connect(fmt.Sprintf("t%d", i))
					what := fmt.Sprintf("%s with fixed header flags 0x%X", b.p.Type(), b.flags)
					c.MustSendRaw(packetgen.FrameOf(b.p, w.Cfg().Version).WithFlags(b.flags).Bytes(), what)
					pending = append(pending, lcPending{c, what, false})
				}
				lcExpectAllClosed(w, pending)
			})
	})
}
