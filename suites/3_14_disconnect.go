package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.14", "DISCONNECT", func(s *S) {
		// The server validates that the reserved bits of DISCONNECT are
		// 0 and disconnects the client if not. A valid DISCONNECT also
		// ends the connection, so the will tells them apart: a refused
		// DISCONNECT is a protocol violation, after which the will is
		// published (MQTT-3.1.2-8), not a DISCONNECT that discards it.
		s.Spec("MQTT-3.14.1-1", "treats a DISCONNECT with reserved bits set as a protocol violation: closes and publishes the will",
			Label("will", "malformed"), func(w *World) {
				sub := w.Connect("sub")
				flags := []byte{0x1, 0x2, 0x4, 0x8}
				for _, f := range flags {
					sub.Granted(w.Topic(fmt.Sprintf("will%X", f)), 0)
				}
				var cs []*Client
				for _, f := range flags {
					topic := w.Topic(fmt.Sprintf("will%X", f))
					c := w.Connect(fmt.Sprintf("f%X", f), WithWill(topic, fmt.Sprintf("flags 0x%X", f), 0, false))
					c.MustSendRaw(packetgen.FrameOf(&packetgen.Disconnect{}, w.Cfg().Version).WithFlags(f).Bytes(),
						fmt.Sprintf("DISCONNECT with fixed header flags 0x%X", f))
					cs = append(cs, c)
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("DISCONNECT with flags 0x%X", flags[i]))
				}
				got := map[string]bool{}
				for range flags {
					p := lcRecvPublish(sub, w.Cfg().Timeout+w.Cfg().Grace, "the wills of the clients whose DISCONNECT had reserved bits set")
					got[string(p.Payload)] = true
				}
				for _, f := range flags {
					w.Expectf(got[fmt.Sprintf("flags 0x%X", f)], fmt.Sprintf("the will of the client that sent DISCONNECT with flags 0x%X", f), "none")
				}
			})

		// On DISCONNECT the server discards the will without publishing
		// it, whether the client then closes the connection or leaves it
		// to the server to close.
		s.Spec("MQTT-3.14.4-3", "discards the will on DISCONNECT without publishing it",
			Label("will"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				a := w.Connect("a", WithWill(topic, "from a", 1, false))
				a.Leave()
				b := w.Connect("b", Persistent, WithWill(topic, "from b", 1, false))
				b.MustSend(&packetgen.Disconnect{})
				b.Recv(w.Cfg().Quiet) //nolint:errcheck // the server should close; either way is fine
				b.Close()
				lcExpectNoWill(w, sub, "both clients sent DISCONNECT")
			})
	})
	notTestable("MQTT-3.14.4-1", "binds only the client (closing the connection after sending DISCONNECT); the server only SHOULD close it")
	notTestable("MQTT-3.14.4-2", "binds only the client (sending nothing after DISCONNECT)")
}
