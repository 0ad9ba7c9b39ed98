package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// lcRefusedConnects are CONNECT packets a server answers with a non-zero
// return code (or, for MQTT-3.2.2-4 and -5 to judge, at least may): a
// zero-byte client identifier with clean session 0 (0x02, MQTT-3.1.3-8)
// and unsupported protocol levels (0x01, MQTT-3.1.2-2), one of them for a
// client identifier that has a stored session, where an accepted CONNECT
// would get session present 1.
func lcRefusedConnects(w *World) []lcConnectCase {
	stored := w.Connect("stored", Persistent)
	stored.Leave()
	empty := w.ConnectPacket("empty", Persistent)
	empty.ClientID = ""
	level := func(name string, lv byte, opts ...ConnectOption) []byte {
		return lcConnectBytes(w, w.ConnectPacket(name, opts...), func(f packetgen.Frame) packetgen.Frame {
			return f.Patch(lcLevelOffset, lv)
		})
	}
	return []lcConnectCase{
		{"a zero-byte client identifier and clean session 0", packetgen.AppendUnchecked(nil, empty, w.Cfg().Version)},
		{"protocol level 42", level("level", 42)},
		{"protocol level 0, clean session 0, for a client identifier with a stored session", level("stored", 0, Persistent)},
	}
}

func init() {
	addSection("3.2", "CONNACK", func(s *S) {
		// The first packet the server sends is CONNACK, and a valid
		// CONNECT with clean session 1 gets return code 0 with session
		// present 0.
		s.Spec("MQTT-3.2.0-1 MQTT-3.2.2-1", "answers a valid CONNECT with CONNACK 0 and session present 0 on a clean session",
			Label("connect"), func(w *World) {
				_, ack := w.ConnectAck("hello")
				w.Expectf(ack.ReasonCode == 0 && !ack.SessionPresent, "CONNACK code 0, session present 0",
					"%s", packetgen.Format(ack))
			})

		// CONNACK comes first even when the client sends more packets
		// right after CONNECT, without waiting: their answers (SUBACK, a
		// retained message, PINGRESP) come after it.
		s.Spec("MQTT-3.2.0-1", "sends CONNACK before answering packets the client sent right after CONNECT",
			Label("connect"), func(w *World) {
				topic := w.Topic("early")
				retained := *w.Cfg().Profile.Retain
				if retained {
					w.Connect("pub").Publish(topic, "retained", 1, true)
				}
				b := packetgen.AppendUnchecked(nil, w.ConnectPacket("eager"), w.Cfg().Version)
				b = packetgen.AppendUnchecked(b, &packetgen.Subscribe{PacketID: 7, Subscriptions: []packetgen.Subscription{{Filter: topic}}}, w.Cfg().Version)
				b = packetgen.AppendUnchecked(b, &packetgen.Pingreq{}, w.Cfg().Version)
				c := lcSendConnect(w, "eager", b, "CONNECT, SUBSCRIBE and PINGREQ in one write")
				first := c.NextAnswer("CONNACK")
				ack, ok := first.(*packetgen.Connack)
				w.Expectf(ok && ack.ReasonCode == 0, "CONNACK 0 as the first packet", "%s", packetgen.Format(first))
				var suback, pong bool
				for !suback || !pong {
					switch p := c.NextAnswer("SUBACK and PINGRESP").(type) {
					case *packetgen.Suback:
						suback = true
					case *packetgen.Pingresp:
						pong = true
					case *packetgen.Publish:
						w.Expectf(retained, "SUBACK and PINGRESP", "%s", packetgen.Format(p))
					default:
						w.Failf("expected SUBACK and PINGRESP after CONNACK; got %s", packetgen.Format(p))
					}
				}
			})

		// ... and before the messages stored for a resumed session.
		s.Spec("MQTT-3.2.0-1", "sends CONNACK before the messages queued for a resumed session",
			Label("connect", "session"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("queued")
				c := w.Connect("c", Persistent)
				w.Require(c.Granted(topic, 1) == 1, "the broker granted QoS 0")
				c.Leave()
				pub := w.Connect("pub")
				for i := range 3 {
					pub.Publish(topic, fmt.Sprintf("queued%d", i), 1, false)
				}
				again := w.Dial("c")
				again.MustSend(w.ConnectPacket("c", Persistent))
				first := again.NextAnswer("CONNACK")
				ack, ok := first.(*packetgen.Connack)
				w.Expectf(ok && ack.ReasonCode == 0, "CONNACK 0 as the first packet, before the queued messages", "%s", packetgen.Format(first))
				w.Expectf(len(lcCollect(again)) > 0, "the queued messages after CONNACK", "none")
			})

		// Clean session 1: session present 0, even when a session was
		// stored for the client identifier.
		s.Spec("MQTT-3.2.2-1", "sets session present 0 for clean session 1 even when a session was stored",
			Label("connect", "session"), func(w *World) {
				c := w.Connect("c", Persistent)
				c.Granted(w.Topic("t"), 1)
				c.Leave()
				again, ack := lcReconnect(w, "c")
				lcSessionPresent(w, ack, false, "clean session 1 after a stored session")
				again.Leave()
			})

		// Clean session 0 with a stored session: session present 1,
		// however the previous connection ended.
		s.Spec("MQTT-3.2.2-2", "sets session present 1 when resuming a stored session, after DISCONNECT or an abrupt close",
			Label("connect", "session"), func(w *World) {
				for _, abrupt := range []bool{false, true} {
					name := fmt.Sprintf("c%v", abrupt)
					c := w.Connect(name, Persistent)
					c.Granted(w.Topic(name), 1)
					how := "DISCONNECT"
					if abrupt {
						how = "an abrupt close"
						c.Close()
					} else {
						c.Leave()
					}
					_, ack := lcReconnect(w, name, Persistent)
					lcSessionPresent(w, ack, true, "the session was stored when the previous connection ended with "+how)
				}
			})

		// Clean session 0 without a stored session: session present 0,
		// both for a new client identifier and after a clean session
		// (which leaves nothing stored).
		s.Spec("MQTT-3.2.2-3", "sets session present 0 for clean session 0 when no session is stored",
			Label("connect", "session"), func(w *World) {
				c, ack := lcReconnect(w, "new", Persistent)
				lcSessionPresent(w, ack, false, "a client identifier never seen")
				c.Leave()
				d := w.Connect("wasclean")
				d.Granted(w.Topic("t"), 1)
				d.Leave()
				_, ack = lcReconnect(w, "wasclean", Persistent)
				lcSessionPresent(w, ack, false, "the previous session was a clean one and ended with its connection")
			})

		// A CONNACK with a non-zero return code has session present 0.
		s.Spec("MQTT-3.2.2-4", "sets session present 0 in every CONNACK with a non-zero return code",
			Label("connect", "session"), func(w *World) {
				judged := 0
				for i, k := range lcRefusedConnects(w) {
					c := lcSendConnect(w, fmt.Sprintf("k%d", i), k.bytes, "CONNECT with "+k.what)
					p, err := c.Recv(w.Cfg().Timeout)
					if err != nil {
						continue // closed without CONNACK: nothing to judge here
					}
					if ack, ok := p.(*packetgen.Connack); ok && ack.ReasonCode != 0 {
						judged++
						w.Expectf(!ack.SessionPresent, "session present 0 with return code "+fmt.Sprintf("0x%02X", byte(ack.ReasonCode))+" (CONNECT with "+k.what+")",
							"%s", packetgen.Format(ack))
					}
				}
				w.Require(judged > 0, "the broker sent no refusing CONNACK to judge")
			})

		// After a CONNACK with a non-zero return code the server closes
		// the connection.
		s.Spec("MQTT-3.2.2-5", "closes the connection after a CONNACK with a non-zero return code",
			Label("connect"), func(w *World) {
				judged := 0
				for i, k := range lcRefusedConnects(w) {
					c := lcSendConnect(w, fmt.Sprintf("k%d", i), k.bytes, "CONNECT with "+k.what)
					p, err := c.Recv(w.Cfg().Timeout)
					if err != nil {
						continue // closed without CONNACK: nothing to judge here
					}
					if ack, ok := p.(*packetgen.Connack); ok && ack.ReasonCode != 0 {
						judged++
						if got := lcWaitClosed(c, fmt.Sprintf("after %s", packetgen.Format(ack))); len(got) > 0 {
							w.Failf("expected the connection closed right after %s; got %s", packetgen.Format(ack), lcAlsoGot(got)[len(" after "):])
						}
					}
				}
				w.Require(judged > 0, "the broker sent no refusing CONNACK to judge")
			})

		// When no return code fits (the CONNECT is malformed: a reserved
		// flag set, will QoS 3), the server closes without CONNACK.
		s.Spec("MQTT-3.2.2-6", "closes the connection without CONNACK when no return code applies",
			Label("connect", "malformed"), func(w *World) {
				var pending []lcPending
				for i, k := range []lcBadConnect{lcBad("reserved"), lcBad("willqos3")} {
					name := fmt.Sprintf("m%d", i)
					c := lcSendConnect(w, name, k.bytes(w, name), "CONNECT with "+k.what)
					pending = append(pending, lcPending{c: c, why: "CONNECT with " + k.what})
				}
				lcExpectAllClosed(w, pending)
			})
	})
}
