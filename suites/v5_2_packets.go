package suites

import (
	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection5("2", "MQTT Control Packet format", func(s *S) {
		// Reserved flag bits hold the values Table 2-2 lists, in what the
		// server sends and what it accepts.
		s.Reuse("2.2", "MQTT-2.2.2-1", "MQTT-2.1.3-1")
		s.Reuse("2.2", "MQTT-2.2.2-2", "MQTT-2.1.3-1")

		// Packet identifiers.
		s.Reuse("2.3", "MQTT-2.3.1-1: sends", "MQTT-2.2.1-4")
		s.Reuse("2.3", "MQTT-2.3.1-4: gives", "MQTT-2.2.1-4")
		s.Reuse("2.3", "MQTT-2.3.1-1: closes", "MQTT-4.13.1-1")
		s.Reuse("2.3", "MQTT-2.3.1-5", "MQTT-2.2.1-2")
		s.Reuse("2.3", "MQTT-2.3.1-6", "MQTT-2.2.1-5")
		s.Reuse("2.3", "MQTT-2.3.1-7", "MQTT-2.2.1-6")

		// Without properties, a packet that has a property length says 0:
		// the strict decoder rejects any CONNACK, PUBLISH, SUBACK or
		// UNSUBACK without it. A property length of 0 from the client is
		// accepted too.
		s.Spec("MQTT-2.2.2-1", "sends a property length, 0 when there are no properties, and accepts one of 0",
			Label("properties"), func(w *World) {
				t := w.Topic("p")
				c := w.Connect("c")
				c.Granted(t, 1) // SUBSCRIBE with property length 0
				w.Connect("pub").Publish(t, "no properties", 1, false)
				p := c.Receive5()
				w.Expectf(p.Properties.Empty() || !p.Properties.Has(packetgen.PropUserProperty),
					"the PUBLISH without properties forwarded", "%s", packetgen.Format(p))
				c.Unsubscribe(t)
				lcStillOpen(c, "every packet with a property length of 0 was taken")
			})
	})
}
