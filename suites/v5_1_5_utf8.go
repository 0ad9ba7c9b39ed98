package suites

import (
	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection5("1.5", "Data representation", func(s *S) {
		s.Reuse("1.5", "MQTT-1.5.3-1", "MQTT-1.5.4-1")
		s.Reuse("1.5", "MQTT-1.5.3-2", "MQTT-1.5.4-2")
		s.Reuse("1.5", "MQTT-1.5.3-3", "MQTT-1.5.4-3")

		// Both strings of a string pair (a user property) are UTF-8
		// strings: ill-formed UTF-8 or U+0000 in either makes the packet
		// malformed, and the server closes the connection.
		s.Spec("MQTT-1.5.7-1", "closes the connection on ill-formed UTF-8 or U+0000 in the name or value of a user property",
			Label("utf8", "properties", "malformed"), func(w *World) {
				bad := []struct{ key, value, what string }{
					{"k\xFF", "v", "ill-formed UTF-8 in the name"},
					{"k", "\xED\xA0\x80", "a surrogate in the value"},
					{"k\x00", "v", "U+0000 in the name"},
				}
				var cs []*Client
				for i, b := range bad {
					c := w.Connect(string(rune('a' + i)))
					p := &packetgen.Publish{Topic: []byte(w.Topic("up")), Payload: []byte("x")}
					p.Properties.UserProperties = userProps(b.key, b.value)
					sendUnchecked(c, p)
					cs = append(cs, c)
				}
				for i, c := range cs {
					c.ExpectClosedBy("a PUBLISH whose user property has "+bad[i].what, withDisconnect(packetgen.MalformedPacket, packetgen.ProtocolError))
				}
			})

		// A Variable Byte Integer uses the fewest bytes: every length and
		// varint property the server sends decodes under the strict
		// decoder, which rejects longer forms as malformed, naming this
		// statement. Sizes around each boundary of the encoding.
		s.Spec("MQTT-1.5.5-1", "encodes remaining lengths and Subscription Identifiers in the fewest bytes",
			Label("properties"), func(w *World) {
				t := w.Topic("vbi")
				c := w.Connect("c")
				ids := w.Caps().SubIDsAvailable
				sub := On(t, 0)
				if ids {
					sub.SubID = 16384 // three bytes, the least that hold it
				}
				c.Granted5(sub)
				pub := w.Connect("pub")
				for _, n := range []int{100, 130, 16370, 16400} {
					pub.Publish(t, string(make([]byte, n)), 0, false)
					p := c.Receive5()
					w.Expectf(len(p.Payload) == n, "the payload of each size delivered", "%d bytes", len(p.Payload))
				}
			})
	})
}
