package suites

import (
	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.1", "CONNECT", func(s *S) {
		// After a network connection is made, the first packet a client
		// sends must be CONNECT; the server closes on anything else.
		s.Spec("MQTT-3.1.0-1", "closes the network connection when the first packet is not CONNECT",
			Label("connect"), func(w *World) {
				c := w.Dial("first")
				c.MustSend(&packetgen.Pingreq{})
				c.ExpectClosed("PINGREQ before CONNECT")
			})

		// A second CONNECT on a connection is a protocol violation and
		// the server closes the connection.
		s.Spec("MQTT-3.1.0-2", "closes the network connection on a second CONNECT",
			Label("connect"), func(w *World) {
				c := w.Connect("twice")
				c.MustSend(w.ConnectPacket("twice"))
				c.ExpectClosed("second CONNECT")
			})

		// The server must acknowledge CONNECT with CONNACK return code 0
		// when it accepts the connection.
		s.Spec("MQTT-3.2.0-1 MQTT-3.2.2-1", "answers a valid CONNECT with CONNACK 0 and session present 0 on a clean session",
			Label("connect"), func(w *World) {
				_, ack := w.ConnectAck("hello")
				w.Expectf(ack.ReasonCode == 0 && !ack.SessionPresent, "CONNACK code 0, session present 0",
					"%s", packetgen.Format(ack))
			})
	})
}
