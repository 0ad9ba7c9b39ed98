package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// MQTT-4.13.1-1 and §3.14.2.1: when the broker ends a 5.0 connection it
// first sends DISCONNECT with the reason, as the last packet
// (MQTT-3.14.4-1), then closes (MQTT-3.14.4-2); the DISCONNECT carries no
// Session Expiry Interval (MQTT-3.14.2-2). None of these is a normal end,
// so the client's will is published (MQTT-3.1.2-8).
func TestV5ServerDisconnectReasons(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		mods []func(*packetgen.Connect)
		// provoke makes the broker end c.
		provoke func(t *testing.T, s *Server, c *wire.Conn)
		want    packetgen.ReasonCode
		noWill  bool // the will's watcher is gone too
	}{
		{name: "0x81 malformed: PUBLISH with QoS 3", want: packetgen.MalformedPacket,
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				must(t, c.SendRaw([]byte{0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, "PUBLISH QoS 3"))
			}},
		{name: "0x81 malformed: DISCONNECT with reserved flags", want: packetgen.MalformedPacket,
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				must(t, c.SendRaw([]byte{0xE1, 0x00}, "DISCONNECT flags 0001"))
			}},
		// MQTT-3.1.0-2.
		{name: "0x82 second CONNECT", want: packetgen.ProtocolError,
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				must(t, c.Send(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "again"}))
			}},
		// §4.12: AUTH on a connection that did not authenticate with a
		// method.
		{name: "0x82 AUTH without a method", want: packetgen.ProtocolError,
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				a := &packetgen.Auth{ReasonCode: packetgen.ReAuthenticate}
				a.Properties.Set(packetgen.PropAuthenticationMethod, "SCRAM-SHA-256")
				must(t, c.Send(a))
			}},
		// MQTT-3.1.2-22: keep alive 1 s, silent (the grace shortened to
		// 0.3 to keep the test short; TestWill waits the full 1.5 s).
		{name: "0x8D keep alive", want: packetgen.KeepAliveTimeout, opts: Options{KeepaliveGrace: 0.3},
			mods:    []func(*packetgen.Connect){func(cp *packetgen.Connect) { cp.KeepAlive = 1 }},
			provoke: func(*testing.T, *Server, *wire.Conn) {}},
		// MQTT-3.1.4-3.
		{name: "0x8E session taken over", want: packetgen.SessionTakenOver,
			provoke: func(t *testing.T, s *Server, c *wire.Conn) { connect5(t, s, c.Name, true) }},
		{name: "0x8B server shutting down", want: packetgen.ServerShuttingDown, noWill: true,
			provoke: func(t *testing.T, s *Server, _ *wire.Conn) { go s.Close() }}, //nolint:errcheck
		{name: "0x93 receive maximum exceeded", want: packetgen.ReceiveMaximumExceeded, opts: Options{ReceiveMaximum: 1},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				must(t, c.Send(pub("rm", "1", 2, 1)))
				must(t, c.Send(pub("rm", "2", 2, 2)))
			}},
		{name: "0x94 topic alias invalid", want: packetgen.TopicAliasInvalid, opts: Options{TopicAliasMaximum: 1},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				p := pub("ta", "x", 0, 0)
				p.Properties.Set(packetgen.PropTopicAlias, uint16(2))
				must(t, c.Send(p))
			}},
		{name: "0x95 packet too large", want: packetgen.PacketTooLarge, opts: Options{MaxPacketSize: 256},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				go c.Send(pub("big", strings.Repeat("x", 300), 0, 0)) //nolint:errcheck // the broker stops reading
			}},
		{name: "0x99 payload format invalid", want: packetgen.PayloadFormatInvalid, opts: Options{ValidatePayloadFormat: true},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				p := pub("pf", "\xff", 0, 0)
				p.Properties.Set(packetgen.PropPayloadFormatIndicator, byte(1))
				must(t, c.Send(p))
			}},
		{name: "0x9A retain not supported", want: packetgen.RetainNotSupported, opts: Options{DisableRetain: true},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				p := pub("r", "x", 0, 0)
				p.Retain = true
				must(t, c.Send(p))
			}},
		{name: "0x9B QoS not supported", want: packetgen.QoSNotSupported, opts: Options{MaxQoS: 1},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) { must(t, c.Send(pub("q", "x", 2, 1))) }},
		{name: "0xA1 subscription identifiers not supported", want: packetgen.SubscriptionIdentifiersNotSupported,
			opts: Options{DisableSubscriptionIDs: true},
			provoke: func(t *testing.T, _ *Server, c *wire.Conn) {
				sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "s"}}}
				sp.Properties.Set(packetgen.PropSubscriptionIdentifier, uint32(3))
				must(t, c.Send(sp))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			watcher, _ := connect5(t, s, "watcher", true)
			subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "will/#", QoS: 1})
			c, _ := connect5(t, s, "victim", true, append([]func(*packetgen.Connect){withWill5()}, tc.mods...)...)
			tc.provoke(t, s, c)
			d := expectServerDisconnect(t, c, 3*time.Second)
			if d.ReasonCode != tc.want {
				t.Fatalf("DISCONNECT %s, want %s", d.ReasonCode, tc.want)
			}
			if tc.noWill {
				return
			}
			if w := expectPublish(t, watcher); string(w.Topic) != "will/victim" {
				t.Fatalf("got %s, want the will", packetgen.Format(w))
			}
		})
	}
}

// MQTT-3.14.0-1 (MQTT-3.2.0-1): no DISCONNECT before a successful CONNACK.
// A first packet that is not CONNECT, a malformed or refused CONNECT, a
// client that never sends CONNECT and a shutdown during the handshake are
// all answered by a close, at most after one CONNACK with an error code.
func TestV5NoDisconnectBeforeConnack(t *testing.T) {
	connect5Raw := func(mod func(*packetgen.Connect)) []byte {
		cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "c", CleanStart: true}
		mod(cp)
		return packetgen.AppendUnchecked(nil, cp, packetgen.V5)
	}
	for _, tc := range []struct {
		name string
		opts Options
		send []byte // nil: nothing
		// shutdown closes the server after sending.
		shutdown bool
	}{
		{name: "PUBLISH first", send: packetgen.AppendUnchecked(nil, pub("t", "x", 0, 0), packetgen.V5)},
		{name: "PINGREQ first", send: []byte{0xC0, 0x00}},
		{name: "CONNECT with the reserved flag", send: func() []byte {
			b := connect5Raw(func(*packetgen.Connect) {})
			b[9] |= 0x01 // the connect flags byte: 2+1 header, 2+4 name, 1 level
			return b
		}()},
		{name: "CONNECT with a property CONNECT cannot carry", send: connect5Raw(func(cp *packetgen.Connect) {
			cp.Properties.Set(packetgen.PropTopicAlias, uint16(1))
		})},
		{name: "CONNECT with a duplicated property", send: connect5Raw(func(cp *packetgen.Connect) {
			cp.Properties.Raw = []byte{0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}
		})},
		{name: "CONNECT with Receive Maximum 0", send: connect5Raw(func(cp *packetgen.Connect) {
			cp.Properties.Raw = []byte{0x21, 0, 0}
		})},
		// MQTT-3.1.3-4: the client identifier must be UTF-8.
		{name: "CONNECT with a client identifier that is not UTF-8", send: connect5Raw(func(cp *packetgen.Connect) {
			cp.ClientID = "bad\xff"
		})},
		{name: "refused CONNECT", opts: Options{Users: map[string]string{"u": "p"}}, send: connect5Raw(func(*packetgen.Connect) {})},
		{name: "no CONNECT in time", opts: Options{ConnectTimeout: 200 * time.Millisecond}},
		{name: "shutdown before CONNECT", shutdown: true},
		{name: "shutdown during enhanced authentication", opts: Options{AuthMethod: scramMethod(t)}, shutdown: true,
			send: connect5Raw(func(cp *packetgen.Connect) {
				cp.Properties.Set(packetgen.PropAuthenticationMethod, "SCRAM-SHA-256")
				cp.Properties.Set(packetgen.PropAuthenticationData, []byte("n,,n=u,r=abcdefghijkl"))
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			c := rawPipe5(t, s, tc.name)
			if tc.send != nil {
				c.SendRaw(tc.send, tc.name) //nolint:errcheck // the broker may close first
			}
			if tc.shutdown {
				time.Sleep(50 * time.Millisecond)
				go s.Close() //nolint:errcheck
			}
			got, err := c.ExpectClosed(wait)
			if err != nil {
				t.Fatalf("not closed: %v (got %s)", err, formatAll(got))
			}
			t.Logf("closed after %s", formatAll(got))
			for i, p := range got {
				switch p := p.(type) {
				case *packetgen.Connack:
					if i > 0 || !p.ReasonCode.IsError() {
						t.Fatalf("got %s: only one CONNACK, with an error code, may come", formatAll(got))
					}
				case *packetgen.Auth:
					// The enhanced authentication's challenge.
				default:
					t.Fatalf("got %s before CONNACK", formatAll(got))
				}
			}
		})
	}
}

// MQTT-3.1.2-29: with Request Problem Information 0 the broker sends no
// Reason String or User Property on anything but PUBLISH, CONNACK and
// DISCONNECT: PUBACK, PUBREC, PUBCOMP, SUBACK and UNSUBACK carry none, also
// when they report an error. CONNACK refusals and DISCONNECT still come.
func TestV5RequestProblemInformationZero(t *testing.T) {
	s := newServer(t, Options{ValidatePayloadFormat: true})
	c, _ := connect5(t, s, "quiet", true, withProp(packetgen.PropRequestProblemInformation, byte(0)))
	bad := pub("nobody", "\xff", 1, 2)
	bad.Properties.Set(packetgen.PropPayloadFormatIndicator, byte(1))
	badSub := &packetgen.Subscribe{PacketID: 3, Subscriptions: []packetgen.Subscription{{Filter: "a/#/b"}, {Filter: "ok"}}}
	for _, send := range []packetgen.Packet{
		pub("nobody", "x", 1, 1), // PUBACK 0x10
		bad,                      // PUBACK 0x99
		pub("nobody", "x", 2, 3), // PUBREC 0x10
		&packetgen.Pubrel{PacketID: 3},
		&packetgen.Pubrel{PacketID: 77}, // PUBCOMP 0x92
		badSub,                          // SUBACK 0x8F, 0x00
		&packetgen.Unsubscribe{PacketID: 4, Filters: []string{"never"}}, // UNSUBACK 0x11
	} {
		must(t, c.SendRaw(packetgen.AppendUnchecked(nil, send, packetgen.V5), packetgen.Format(send)))
		got, err := c.Recv(wait)
		if err != nil {
			t.Fatalf("answer to %s: %v", packetgen.Format(send), err)
		}
		var props packetgen.Properties
		switch p := got.(type) {
		case *packetgen.Puback:
			props = p.Properties
		case *packetgen.Pubrec:
			props = p.Properties
		case *packetgen.Pubcomp:
			props = p.Properties
		case *packetgen.Suback:
			props = p.Properties
		case *packetgen.Unsuback:
			props = p.Properties
		default:
			t.Fatalf("answer to %s: %s", packetgen.Format(send), packetgen.Format(got))
		}
		if props.Has(packetgen.PropReasonString) || props.Has(packetgen.PropUserProperty) {
			t.Fatalf("answer to %s: %s carries problem information", packetgen.Format(send), packetgen.Format(got))
		}
	}
	must(t, c.Send(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "quiet"}))
	if d := expectServerDisconnect(t, c, wait); d.ReasonCode != packetgen.ProtocolError {
		t.Fatalf("DISCONNECT %s, want 0x82", d.ReasonCode)
	}
}

// A 3.1.1 connection has no DISCONNECT from the server: the same faults
// just close it.
func TestV311NoServerDisconnect(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect(t, s, "old", true)
	must(t, c.Send(&packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: "old"}))
	expectClosedSilently(t, c, "second CONNECT")
	old, _ := connect(t, s, "same", true)
	connect(t, s, "same", true)
	expectClosedSilently(t, old, "takeover")
}
