package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.6", "PUBREL", func(s *S) {
		// The fixed header flags of PUBREL are 0010; the server treats any
		// other value as malformed and closes the network connection.
		// PUBREL packets the server sends are checked for 0010 by the
		// decoder in every QoS 2 spec.
		s.Spec("MQTT-3.6.1-1", "closes the network connection on a PUBREL whose fixed header flags are not 0010",
			Label("qos2", "malformed"), func(w *World) {
				pqNeedQoS(w, 2)
				for _, flags := range []byte{0x0, 0x3, 0x6, 0xA} {
					c := w.Connect(fmt.Sprintf("flags%X", flags))
					id := c.ID()
					c.MustSend(&packetgen.Publish{Topic: []byte(w.Topic("t")), QoS: 2, PacketID: id, Payload: []byte("to release")})
					rec := ExpectPacket[*packetgen.Pubrec](c)
					w.Expectf(rec.PacketID == id, fmt.Sprintf("PUBREC id=%d", id), "%s", packetgen.Format(rec))
					f := packetgen.FrameOf(&packetgen.Pubrel{PacketID: id}, w.Cfg().Version).WithFlags(flags)
					c.MustSendRaw(f.Bytes(), fmt.Sprintf("PUBREL id=%d with flags 0x%X", id, flags))
					c.ExpectClosed(fmt.Sprintf("PUBREL flags 0x%X", flags))
				}
			})
	})
}
