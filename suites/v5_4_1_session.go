package suites

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection5("4.1", "Session State", func(s *S) {
		s.Reuse("4.1", "MQTT-4.1.0-2", "MQTT-4.1.0-1", "a clean session's", "a session's")
		s.Reuse("4.1", "MQTT-4.1.0-1", "MQTT-3.1.2-5")

		// The server discards a session once its connection is closed and
		// the Session Expiry Interval has passed: the interval of CONNECT,
		// or of DISCONNECT when the client changed it there; 0xFFFFFFFF
		// never expires. Sessions in parallel share the wait.
		s.Spec("MQTT-4.1.0-2", "discards a session whose Session Expiry Interval passed while it was offline, as CONNECT or DISCONNECT set it",
			Label("session", "expiry"), func(w *World) {
				type session struct {
					name, what string
					connect    uint32
					disconnect *uint32
					kept       bool
				}
				one, long := uint32(1), uint32(300)
				sessions := []session{
					{"exp1", "Session Expiry Interval 1 s", 1, nil, false},
					{"down", "300 s, changed to 1 s by DISCONNECT", 300, &one, false},
					{"up", "1 s, changed to 300 s by DISCONNECT", 1, &long, true},
					{"never", "0xFFFFFFFF (never expires)", 0xFFFFFFFF, nil, true},
				}
				pub := w.Connect("pub")
				for _, k := range sessions {
					c := w.Connect(k.name, Persistent, SessionExpiry(k.connect))
					c.Granted(w.Topic(k.name), 1)
					d := &packetgen.Disconnect{}
					if k.disconnect != nil {
						d.Properties.Set(packetgen.PropSessionExpiryInterval, *k.disconnect)
					}
					c.MustSend(d)
					c.Conn.ExpectClosed(w.Cfg().Timeout) //nolint:errcheck // the server SHOULD close
				}
				for _, k := range sessions {
					pub.Publish(w.Topic(k.name), "queued for "+k.name, 1, false)
				}
				time.Sleep(time.Second + w.Grace())
				for _, k := range sessions {
					c, ack := lcReconnect(w, k.name, Persistent)
					lcSessionPresent(w, ack, k.kept, fmt.Sprintf("%s, offline for %v", k.what, time.Second+w.Grace()))
					if k.kept {
						p := c.Receive5()
						w.Expectf(string(p.Payload) == "queued for "+k.name, fmt.Sprintf("the message queued for the kept session (%s)", k.what),
							"%s", packetgen.Format(p))
					} else {
						pqNothingBeforePing(c, fmt.Sprintf("the expired session (%s) took its queue along", k.what))
					}
				}
			})
	})
}
