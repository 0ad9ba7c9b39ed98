package suites

import (
	"bytes"
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("4.5", "Message receipt", func(s *S) {
		// A message the server has taken ownership of goes into the
		// session of every client with a matching subscription, whether
		// connected or not, and of no other client.
		s.Spec("MQTT-4.5.0-1", "adds a message to the session of every client with a matching subscription, connected or not",
			Label("qos1", "session"), func(w *World) {
				pqNeedQoS(w, 1)
				t := w.Topic("owned")
				online := w.Connect("online")
				pqGrantedAtLeast(online, t, 1)
				offline := w.Connect("offline", Persistent)
				pqGrantedAtLeast(offline, t, 1)
				offline.Leave()
				other := w.Connect("other")
				other.Granted(w.Topic("other"), 1)
				pub := w.Connect("pub")
				pub.Publish(t, "owned", 1, false)
				got := pqCollect(online, 1)
				w.Expectf(string(got[0].Payload) == "owned", `"owned" at the connected subscriber`, "%s", pqFormatPublishes(got))
				back, ack := w.ConnectAck("offline", Persistent)
				w.Expectf(ack.ReasonCode == 0 && ack.SessionPresent, "CONNACK code 0 with session present 1 for the stored session",
					"%s", packetgen.Format(ack))
				got = pqCollect(back, 1)
				w.Expectf(string(got[0].Payload) == "owned", `"owned" at the subscriber that was offline, when it resumes`, "%s", pqFormatPublishes(got))
				pqExpectNoMore(w, "each matching session gets the message once; others none", online, back, other)
			})

		// Payloads of any size the broker takes, from zero bytes to the
		// profile's max_payload, reach subscribers intact at every QoS.
		s.Spec("MQTT-4.5.0-1", "delivers zero-byte payloads and payloads of the profile's max_payload bytes intact at every QoS",
			Label("qos1", "qos2"), func(w *World) {
				t := w.Topic("sizes")
				sub := w.Connect("sub")
				g := sub.Granted(t, pqMaxQoS(w))
				big := pqPatternPayload(w.Cfg().Profile.MaxPayload)
				pub := w.Connect("pub")
				var sent []*packetgen.Publish
				for q := packetgen.QoS(0); q <= pqMaxQoS(w); q++ {
					sent = append(sent, pqStartPublish(pub, t, nil, q, false, false))
					sent = append(sent, pqStartPublish(pub, t, big, q, false, false))
				}
				pqCompletePublishes(pub, sent)
				got := pqCollect(sub, len(sent))
				empty, full := 0, 0
				for _, p := range got {
					switch {
					case len(p.Payload) == 0:
						empty++
					case bytes.Equal(p.Payload, big):
						full++
					default:
						w.Failf("expected payloads of 0 or %d bytes (the profile's max_payload), intact; got %d bytes, first difference at byte %d: %s",
							len(big), len(p.Payload), pqFirstDiff(p.Payload, big), packetgen.Format(p))
					}
				}
				n := len(sent) / 2
				w.Expectf(empty == n && full == n, fmt.Sprintf("%d empty and %d full payloads (QoS 0 to %d, granted %d)", n, n, pqMaxQoS(w), g),
					"%d empty and %d full", empty, full)
			})
	})

	notTestable("MQTT-4.5.0-2", "binds only the client: a client must acknowledge every PUBLISH it receives, whether or not it processes the message")
}

// pqFirstDiff is the index of the first byte where a and b differ.
func pqFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
