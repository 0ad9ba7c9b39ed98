package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.12", "PINGREQ", func(s *S) {
		// The server answers every PINGREQ with a PINGRESP: one at a
		// time, several sent at once, and with keep alive 0.
		s.Spec("MQTT-3.12.4-1", "answers every PINGREQ with a PINGRESP, also several sent at once",
			Label("keepalive"), func(w *World) {
				var cs []*Client
				for _, ka := range []uint16{60, 0} {
					c := w.Connect(fmt.Sprintf("ka%d", ka), KeepAlive(ka))
					c.Ping()
					c.Ping()
					const n = 5
					var b []byte
					for range n {
						b = packetgen.AppendUnchecked(b, &packetgen.Pingreq{}, w.Cfg().Version)
					}
					c.MustSendRaw(b, fmt.Sprintf("%d PINGREQ in one write", n))
					for i := range n {
						p := c.NextAnswer(fmt.Sprintf("PINGRESP %d of %d", i+1, n))
						w.Expectf(p.Type() == packetgen.TypePingresp, fmt.Sprintf("PINGRESP %d of %d", i+1, n), "%s", packetgen.Format(p))
					}
					cs = append(cs, c)
				}
				lcExpectNothingAll(w, "one PINGRESP per PINGREQ", cs...)
			})
	})
}
