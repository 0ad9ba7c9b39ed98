package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// dcProvoke makes the broker end a connection: each way returns the
// client, what it did and the reason codes that fit it. A server may
// close without DISCONNECT; the specs of this section judge the
// DISCONNECT packets that do come.
type dcProvoke struct {
	what  string
	codes []packetgen.ReasonCode
	do    func(w *World, name string, opts ...ConnectOption) *Client
}

var dcProvocations = []dcProvoke{
	{"a second CONNECT", []packetgen.ReasonCode{packetgen.ProtocolError}, func(w *World, name string, opts ...ConnectOption) *Client {
		c := w.Connect(name, opts...)
		c.MustSend(w.ConnectPacket(name, opts...))
		return c
	}},
	{"a PUBLISH with QoS 3", []packetgen.ReasonCode{packetgen.MalformedPacket}, func(w *World, name string, opts ...ConnectOption) *Client {
		c := w.Connect(name, opts...)
		lcViolate(c)
		return c
	}},
	{"a takeover of its client identifier", []packetgen.ReasonCode{packetgen.SessionTakenOver}, func(w *World, name string, opts ...ConnectOption) *Client {
		c := w.Connect(name, opts...)
		lcReconnect(w, name)
		return c
	}},
	{"a Topic Alias of 0", []packetgen.ReasonCode{packetgen.TopicAliasInvalid, packetgen.ProtocolError}, func(w *World, name string, opts ...ConnectOption) *Client {
		c := w.Connect(name, opts...)
		p := Message(w.Topic("alias"), "x", 0, nil)
		p.Properties.Raw = []byte{0x23, 0, 0}
		sendUnchecked(c, p)
		return c
	}},
}

func init() {
	addSection5("3.14", "DISCONNECT", func(s *S) {
		s.Reuse("3.14", "MQTT-3.14.1-1", "MQTT-3.14.1-1")
		s.Reuse("3.14", "MQTT-3.14.4-3", "MQTT-3.14.4-3", "on DISCONNECT", "on DISCONNECT 0x00")

		// Before a successful CONNACK the server sends no DISCONNECT: a
		// refused or malformed CONNECT, or another first packet, is met
		// with a CONNACK of 0x80 or more, or a bare close.
		s.Spec("MQTT-3.14.0-1", "sends no DISCONNECT before a successful CONNACK, whatever the client's first packet",
			Label("connect", "malformed"), func(w *World) {
				first := []struct {
					what  string
					bytes []byte
				}{
					{"PINGREQ", packetgen.AppendUnchecked(nil, &packetgen.Pingreq{}, packetgen.V5)},
					{"a CONNECT with will QoS 3", lcBad("willqos3").bytes(w, "q3")},
					{"a CONNECT with Receive Maximum 0", func() []byte {
						cp := w.ConnectPacket("rm0")
						cp.Properties.Raw = []byte{0x21, 0, 0}
						return packetgen.AppendUnchecked(nil, cp, packetgen.V5)
					}()},
					{"protocol version 42", lcConnectBytes(w, w.ConnectPacket("v42"), func(f packetgen.Frame) packetgen.Frame {
						return f.Patch(cxLevelOffset, 42)
					})},
				}
				var cs []*Client
				for i, k := range first {
					cs = append(cs, lcSendConnect(w, fmt.Sprintf("k%d", i), k.bytes, k.what))
				}
				for i, c := range cs {
					got, _ := c.Conn.ExpectClosed(w.Cfg().Timeout)
					for _, p := range got {
						if _, ok := p.(*packetgen.Disconnect); ok {
							w.Failf("expected no DISCONNECT before a successful CONNACK (first packet: %s); got %s", first[i].what, lcAlsoGot(got)[len(" after "):])
						}
					}
				}
			})

		// Every DISCONNECT the server sends has a DISCONNECT reason code
		// (the decoder rejects others, naming this statement), and no
		// Session Expiry Interval; nothing follows it, and the server
		// closes the connection.
		s.Spec("MQTT-3.14.2-1 MQTT-3.14.2-2 MQTT-3.14.4-1 MQTT-3.14.4-2", "sends DISCONNECT with a DISCONNECT reason code and no Session Expiry Interval, then nothing but the close",
			Label("disconnect"), func(w *World) {
				seen := 0
				for i, k := range dcProvocations {
					c := k.do(w, fmt.Sprintf("d%d", i), SessionExpiry(60))
					got, err := c.Conn.ExpectClosed(w.Cfg().Timeout)
					if err != nil {
						w.Failf("expected the broker to close the connection after %s; got %s%s", k.what, describeErr(err), lcAlsoGot(got))
					}
					for j, p := range got {
						d, ok := p.(*packetgen.Disconnect)
						if !ok {
							continue
						}
						seen++
						w.Expectf(j == len(got)-1, fmt.Sprintf("nothing after the DISCONNECT (after %s)", k.what), "%s", lcAlsoGot(got)[len(" after "):])
						w.Expectf(d.ReasonCode.IsError(), fmt.Sprintf("a DISCONNECT reason code of 0x80 or more for %s", k.what), "%s", packetgen.Format(d))
						w.Expectf(!d.Properties.Has(packetgen.PropSessionExpiryInterval), "no Session Expiry Interval on the server's DISCONNECT",
							"%s", packetgen.Format(d))
					}
				}
				if seen == 0 {
					Skip("the broker closed every connection without DISCONNECT: nothing to judge")
				}
			})

		// Reason String and User Properties stay out of a DISCONNECT they
		// would make larger than the client's Maximum Packet Size.
		s.Spec("MQTT-3.14.2-3 MQTT-3.14.2-4", "keeps DISCONNECT within the client's Maximum Packet Size",
			Label("disconnect", "packet-size"), func(w *World) {
				limit := caLimit(w, 8)
				small := WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) })
				for i, k := range dcProvocations {
					c := k.do(w, fmt.Sprintf("d%d", i), small)
					got, _ := c.Conn.ExpectClosed(w.Cfg().Timeout)
					for _, p := range got {
						caCheckSize(w, p, limit)
					}
				}
			})

		// The server's DISCONNECT names what went wrong: each of the
		// errors the specification gives a reason code gets it (SHOULD;
		// 0x80 is always accepted), and the connection is closed.
		for _, k := range dcProvocations {
			s.Spec("MQTT-4.13.1-1", fmt.Sprintf("closes the connection on %s, with DISCONNECT %s", k.what, codeList(k.codes)),
				Label("disconnect"), func(w *World) {
					c := k.do(w, "c")
					c.ExpectClosedBy(k.what, withDisconnect(k.codes...))
				})
		}

		// The client's DISCONNECT may change the Session Expiry Interval:
		// to 0 the session ends now; from 0 it is a protocol error.
		s.Spec("MQTT-4.1.0-2", "ends the session at once when DISCONNECT sets the Session Expiry Interval to 0",
			Label("session", "disconnect"), func(w *World) {
				t := w.Topic("t")
				c := w.Connect("c", SessionExpiry(300))
				c.Granted(t, 1)
				d := &packetgen.Disconnect{}
				d.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(0))
				c.MustSend(d)
				c.Conn.ExpectClosed(w.Cfg().Timeout) //nolint:errcheck // the server SHOULD close; the check is the session
				again, ack := lcReconnect(w, "c", Persistent)
				lcSessionPresent(w, ack, false, "DISCONNECT set the Session Expiry Interval to 0")
				w.Connect("pub").Publish(t, "after the session ended", 1, false)
				again.ExpectNothing("the ended session's subscription is gone")
			})
	})
}
