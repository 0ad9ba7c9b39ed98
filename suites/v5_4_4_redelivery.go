package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection5("4.4", "Message delivery retry", func(s *S) {
		s.Reuse("4.4", "MQTT-4.4.0-1: sends unacknowledged", "MQTT-4.4.0-1 MQTT-4.3.2-3 MQTT-4.3.3-3")
		s.Reuse("4.4", "MQTT-4.4.0-1: sends an uncompleted", "MQTT-4.4.0-1 MQTT-4.3.3-5")

		// A PUBACK or PUBREC of 0x80 or more acknowledges the PUBLISH: the
		// server does not send it again, not even when the session
		// resumes.
		s.Spec("MQTT-4.4.0-2", "does not send a PUBLISH again that the client answered with PUBACK or PUBREC of 0x80 or more",
			Label("qos1", "qos2", "session"), func(w *World) {
				pqNeedQoS(w, 1)
				t := w.Topic("refused")
				sub := w.Connect("sub", Persistent)
				g := pqGrantedAtLeast(sub, t, 1)
				pub := w.Connect("pub")
				for q := packetgen.QoS(1); q <= g; q++ {
					pub.Publish(t, fmt.Sprintf("refused at QoS %d", q), q, false)
					p := sub.ReceiveNoAck()
					if p.QoS == 1 {
						sub.MustSend(&packetgen.Puback{PacketID: p.PacketID, ReasonCode: packetgen.UnspecifiedError})
					} else {
						sub.MustSend(&packetgen.Pubrec{PacketID: p.PacketID, ReasonCode: packetgen.UnspecifiedError})
					}
				}
				pqNothingBeforePing(sub, "the refused messages are acknowledged, not sent again")
				back := pqResume(w, sub, "sub")
				pqNothingBeforePing(back, "the refused messages are not sent again when the session resumes")
			})
	})
}
