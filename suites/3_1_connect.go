package suites

import (
	"errors"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Offsets in the body of a 3.1.1 CONNECT (protocol name "MQTT").
const (
	lcLevelOffset    = 6  // protocol level
	lcClientIDOffset = 10 // client identifier, after flags and keep alive
)

// lcAlphabet is the character set every server must accept in client
// identifiers (MQTT-3.1.3-5).
const lcAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// lcMustCloseConnect lists CONNECT packets that break section 3.1 in ways
// no return code describes; each is made from a valid CONNECT of the
// world for name.
var lcMustCloseConnect = []lcBadConnect{
	{"reserved", "the reserved connect flag set", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name)
		return lcConnectBytes(w, cp, lcWithFlags(cp.Flags()|0x01))
	}},
	{"willqos3", "will QoS 3", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name, WithWill(w.Topic("will"), "w", 3, false))
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
	{"willqosnoflag", "will QoS 1 but will flag 0", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name)
		return lcConnectBytes(w, cp, lcWithFlags(cp.Flags()|0x08))
	}},
	{"willretainnoflag", "will retain 1 but will flag 0", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name)
		return lcConnectBytes(w, cp, lcWithFlags(cp.Flags()|0x20))
	}},
	{"noclientid", "no client identifier (the payload is empty)", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name)
		lcNoCredentials(cp)
		return lcConnectBytes(w, cp, func(f packetgen.Frame) packetgen.Frame { return f.Cut(lcClientIDOffset) })
	}},
	{"nowillfields", "will flag 1 but no will topic and message", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name, WithWill(w.Topic("will"), "w", 0, false))
		lcNoCredentials(cp)
		return lcConnectBytes(w, cp, func(f packetgen.Frame) packetgen.Frame {
			return f.Cut(lcClientIDOffset + 2 + len(cp.ClientID))
		})
	}},
	{"idutf8", "ill-formed UTF-8 in the client identifier", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name)
		cp.ClientID += "\xED\xA0\x80"
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
	{"idnull", "U+0000 in the client identifier", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name)
		cp.ClientID += "\x00"
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
	{"willtopicutf8", "ill-formed UTF-8 in the will topic", func(w *World, name string) []byte {
		cp := w.ConnectPacket(name, WithWill(w.Topic("will\xFF"), "w", 0, false))
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
}

// lcBadConnect is a malformed CONNECT, found by its key.
type lcBadConnect struct {
	key, what string
	bytes     func(w *World, name string) []byte
}

// lcBad returns the entry of lcMustCloseConnect with key.
func lcBad(key string) lcBadConnect {
	for _, k := range lcMustCloseConnect {
		if k.key == key {
			return k
		}
	}
	panic("suites: no malformed CONNECT " + key)
}

// lcConnectCase is one CONNECT a spec sends on a connection of its own.
type lcConnectCase struct {
	what  string
	bytes []byte
}

// lcRefuseAll sends each CONNECT on its own connection and requires the
// broker to refuse every one: close, with or without a non-zero CONNACK.
func lcRefuseAll(w *World, cases []lcConnectCase) {
	var pending []lcPending
	for i, k := range cases {
		c := lcSendConnect(w, fmt.Sprintf("r%d", i), k.bytes, "CONNECT with "+k.what)
		pending = append(pending, lcPending{c, "CONNECT with " + k.what, true})
	}
	lcExpectAllClosed(w, pending)
}

func init() {
	addSection("3.1", "CONNECT", func(s *S) {
		// After a network connection is made, the first packet a client
		// sends must be CONNECT; the server closes on anything else.
		s.Spec("MQTT-3.1.0-1", "closes the network connection when the first packet is not CONNECT",
			Label("connect"), func(w *World) {
				c := w.Dial("first")
				c.MustSend(&packetgen.Pingreq{})
				c.ExpectClosed("PINGREQ before CONNECT")
			})

		// The same, seen by other clients: a PUBLISH before CONNECT is
		// not processed, so nobody receives it.
		s.Spec("MQTT-3.1.0-1", "does not deliver a PUBLISH sent before CONNECT",
			Label("connect"), func(w *World) {
				topic := w.Topic("early")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Dial("early")
				c.MustSend(&packetgen.Publish{QoS: 1, PacketID: 1, Topic: []byte(topic), Payload: []byte("before CONNECT")})
				c.ExpectClosed("PUBLISH before CONNECT")
				sub.ExpectNothing("a PUBLISH before CONNECT is not processed")
			})

		// A second CONNECT on a connection is a protocol violation and
		// the server closes the connection.
		s.Spec("MQTT-3.1.0-2", "closes the network connection on a second CONNECT",
			Label("connect"), func(w *World) {
				c := w.Connect("twice")
				c.MustSend(w.ConnectPacket("twice"))
				c.ExpectClosed("second CONNECT")
			})

		// With a protocol name other than "MQTT" the server may close, or
		// go on under some other specification, but must not go on as
		// MQTT 3.1.1: no CONNACK 0, no PINGRESP.
		s.Spec("MQTT-3.1.2-1", "does not accept a CONNECT whose protocol name is not \"MQTT\" as MQTT 3.1.1",
			Label("connect"), func(w *World) {
				for _, name := range []string{"MQTX", "mqtt"} {
					cp := w.ConnectPacket("name" + name)
					cp.ProtocolName = name
					why := fmt.Sprintf("CONNECT with protocol name %q", name)
					c := lcSendConnect(w, "name"+name, packetgen.AppendUnchecked(nil, cp, w.Cfg().Version), why)
					p, err := c.Recv(w.Cfg().Timeout)
					switch {
					case errors.Is(err, wire.ErrTimeout):
						// Silent and open: perhaps another protocol. It must
						// not serve MQTT 3.1.1 requests.
						c.MustSend(&packetgen.Pingreq{})
						if p, err := c.Recv(w.Cfg().Quiet); err == nil {
							_, isPong := p.(*packetgen.Pingresp)
							w.Expectf(!isPong, "no MQTT 3.1.1 service after "+why, "%s", packetgen.Format(p))
						}
					case err != nil:
						// Closed (or bytes of another protocol): allowed.
					default:
						ack, ok := p.(*packetgen.Connack)
						w.Expectf(!ok || ack.ReasonCode != 0, "the connection closed, or refused, after "+why, "%s", packetgen.Format(p))
					}
				}
			})

		// A protocol level the server does not support is answered with
		// CONNACK return code 0x01 and the connection is closed.
		s.Spec("MQTT-3.1.2-2", "answers an unsupported protocol level with CONNACK 0x01 and closes the connection",
			Label("connect"), func(w *World) {
				var cs []*Client
				levels := []byte{0, 42}
				for _, lv := range levels {
					name := fmt.Sprintf("level%d", lv)
					b := lcConnectBytes(w, w.ConnectPacket(name), func(f packetgen.Frame) packetgen.Frame {
						return f.Patch(lcLevelOffset, lv)
					})
					cs = append(cs, lcSendConnect(w, name, b, fmt.Sprintf("CONNECT with protocol level %d", lv)))
				}
				for i, c := range cs {
					lcExpectConnackThenClose(c, 1, fmt.Sprintf("protocol level %d", levels[i]))
				}
			})

		// The reserved connect flag (bit 0) must be 0; the server
		// disconnects a client that sets it.
		s.Spec("MQTT-3.1.2-3", "closes the connection when the reserved connect flag is 1",
			Label("connect", "malformed"), func(w *World) {
				c := lcSendConnect(w, "reserved", lcBad("reserved").bytes(w, "reserved"), "CONNECT with the reserved flag set")
				lcExpectRefused(c, "the reserved connect flag is 1")
			})

		// Clean session 0: the server creates a session when there is
		// none, keeps it after the connection ends (by DISCONNECT or
		// not), and resumes it on the next connection.
		s.Spec("MQTT-3.1.2-4", "keeps a clean-session-0 session after the connection ends and resumes it, subscriptions included",
			Label("session"), func(w *World) {
				pub := w.Connect("pub")
				for _, how := range []string{"DISCONNECT", "an abrupt close"} {
					name := "s" + strings.Fields(how)[len(strings.Fields(how))-1]
					topic := w.Topic(name)
					c := w.Connect(name, Persistent)
					c.Granted(topic, 1)
					if how == "DISCONNECT" {
						c.Leave()
					} else {
						c.Close()
					}
					again, _ := lcReconnect(w, name, Persistent)
					pub.Publish(topic, "after "+how, 1, false)
					p := lcRecvPublish(again, w.Cfg().Timeout, fmt.Sprintf("the message to %q, through the subscription of the resumed session (ended by %s)", topic, how))
					w.Expectf(string(p.Payload) == "after "+how, fmt.Sprintf("payload %q", "after "+how), "%s", packetgen.Format(p))
				}
			})

		// While a clean-session-0 client is away, the server stores the
		// QoS 1 and QoS 2 messages that match its subscriptions (QoS 0
		// ones it may store or not) and delivers them when it returns.
		s.Spec("MQTT-3.1.2-5", "stores QoS 1 and QoS 2 messages for a disconnected clean-session-0 client and delivers them on reconnect",
			Label("session", "qos1", "qos2"), func(w *World) {
				w.Require(*w.Cfg().Profile.MaxQoS >= 1, "needs QoS 1")
				topic := w.Topic("away")
				c := w.Connect("away", Persistent)
				granted := c.Granted(topic, 2)
				w.Require(granted >= 1, "the broker granted QoS 0")
				c.Leave()
				pub := w.Connect("pub")
				for q := packetgen.QoS(0); q <= 2; q++ {
					pub.Publish(topic, fmt.Sprintf("qos%d", q), q, false)
				}
				again, _ := lcReconnect(w, "away", Persistent)
				got := lcCollect(again)
				want := []string{"qos1", "qos2"}
				if q0 := w.Cfg().Profile.QoS0QueuedOffline; q0 != nil && *q0 {
					want = append(want, "qos0")
				}
				missing := lcMissing(want, lcPayloads(got))
				w.Expectf(len(missing) == 0, fmt.Sprintf("the messages %q published while the client was away", want),
					"%q (missing %q)", lcPayloads(got), missing)
				for _, p := range got {
					q := packetgen.QoS(p.Payload[3] - '0')
					w.Expectf(p.QoS == min(q, granted), fmt.Sprintf("%q at QoS %d", p.Payload, min(q, granted)), "%s", packetgen.Format(p))
				}
				if q0 := w.Cfg().Profile.QoS0QueuedOffline; q0 != nil && !*q0 {
					w.Expectf(len(lcMissing([]string{"qos0"}, lcPayloads(got))) == 1, "no QoS 0 message (the profile says QoS 0 is not queued)",
						"%q", lcPayloads(got))
				}
			})

		// Clean session 1: the server discards any previous session, and
		// the new session's state is not reused by a later session.
		s.Spec("MQTT-3.1.2-6", "discards the stored session on clean session 1 and does not keep the clean session's state afterwards",
			Label("session"), func(w *World) {
				kept, fresh := w.Topic("kept"), w.Topic("fresh")
				pub := w.Connect("pub")
				c := w.Connect("c", Persistent)
				c.Granted(kept, 1)
				c.Leave()
				pub.Publish(kept, "queued for the old session", 1, false)

				clean, _ := lcReconnect(w, "c")
				clean.Granted(fresh, 1)
				pub.Publish(kept, "to the old subscription", 1, false)
				clean.ExpectNothing("the old session, its subscription and its queued message are discarded")
				clean.Leave()

				later, ack := lcReconnect(w, "c", Persistent)
				lcSessionPresent(w, ack, false, "the clean session's state is not reused")
				pub.Publish(kept, "after the clean session", 1, false)
				pub.Publish(fresh, "after the clean session", 1, false)
				later.ExpectNothing("no subscription of an earlier session survives")
			})

		// The will message is published when the connection closes
		// without DISCONNECT: here the client drops the connection.
		s.Spec("MQTT-3.1.2-8", "publishes the will message when the client closes the connection without DISCONNECT",
			Label("will"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 2)
				c := w.Connect("gone", WithWill(topic, "gone away", 1, false))
				c.Close()
				lcExpectWill(sub, topic, "gone away", 0, "the connection was closed without DISCONNECT")
				sub.ExpectNothing("the will is published once")
			})

		// ... and here the server closes the connection because of a
		// protocol violation.
		s.Spec("MQTT-3.1.2-8", "publishes the will message when it closes the connection for a protocol violation",
			Label("will", "malformed"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Connect("bad", WithWill(topic, "broke the rules", 0, false))
				lcViolate(c)
				c.ExpectClosed("PUBLISH with QoS 3")
				lcExpectWill(sub, topic, "broke the rules", 0, "the server closed the connection for a protocol violation")
			})

		// ... and here the client stays silent past its keep alive.
		s.Spec("MQTT-3.1.2-8", "publishes the will message when the keep alive expires",
			Label("will", "keepalive", "slow"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				w.Connect("silent", KeepAlive(1), WithWill(topic, "fell silent", 0, false))
				lcExpectWill(sub, topic, "fell silent", 1500*time.Millisecond, "keep alive 1 s expired")
			})

		// With the will flag 1 the server uses the will QoS: the will is
		// published at that QoS (delivered at most at the subscriber's).
		s.Spec("MQTT-3.1.2-9", "publishes the will message at the will QoS",
			Label("will", "qos1", "qos2"), func(w *World) {
				sub := w.Connect("sub")
				for q := packetgen.QoS(0); q <= packetgen.QoS(*w.Cfg().Profile.MaxQoS); q++ {
					topic := w.Topic(fmt.Sprintf("will%d", q))
					granted := sub.Granted(topic, 2)
					payload := fmt.Sprintf("will at QoS %d", q)
					c := w.Connect(fmt.Sprintf("q%d", q), WithWill(topic, payload, q, false))
					c.Close()
					p := lcExpectWill(sub, topic, payload, 0, "closed without DISCONNECT")
					w.Expectf(p.QoS == min(q, granted), fmt.Sprintf("the will with will QoS %d at QoS %d (subscription granted %d)", q, min(q, granted), granted),
						"%s", packetgen.Format(p))
				}
			})

		// With the will flag 1 the will topic and message must follow in
		// the payload: a CONNECT that ends before them is malformed.
		s.Spec("MQTT-3.1.2-9", "closes the connection when the will flag is 1 but the will topic and message are missing",
			Label("will", "malformed"), func(w *World) {
				c := lcSendConnect(w, "nowill", lcBad("nowillfields").bytes(w, "nowill"), "CONNECT with "+lcBad("nowillfields").what)
				lcExpectRefused(c, lcBad("nowillfields").what)
			})

		// Once published, or discarded on DISCONNECT, the will is removed
		// from the session: later connections of the same persistent
		// session that end abruptly publish no will of their own.
		s.Spec("MQTT-3.1.2-10", "removes the will from the session once it is published or discarded by DISCONNECT",
			Label("will", "session"), func(w *World) {
				published, discarded := w.Topic("published"), w.Topic("discarded")
				sub := w.Connect("sub")
				sub.Granted(published, 1)
				sub.Granted(discarded, 1)

				a := w.Connect("a", Persistent, WithWill(published, "once", 1, false))
				a.Close()
				lcExpectWill(sub, published, "once", 0, "closed without DISCONNECT")
				a2, _ := lcReconnect(w, "a", Persistent)
				a2.Close()

				b := w.Connect("b", Persistent, WithWill(discarded, "never", 1, false))
				b.Leave()
				b2, _ := lcReconnect(w, "b", Persistent)
				b2.Close()

				lcExpectNoWill(w, sub, "the wills were published or discarded before; the later connections had none")
			})

		// With the will flag 0, the will QoS and retain bits are 0 and no
		// will topic or message is present; a CONNECT that carries will
		// fields without the flag has bytes no field accounts for.
		s.Spec("MQTT-3.1.2-11", "closes the connection when the will flag is 0 but a will topic and message are present",
			Label("will", "malformed"), func(w *World) {
				cp := w.ConnectPacket("extra", WithWill(w.Topic("will"), "w", 0, false))
				lcNoCredentials(cp)
				b := lcConnectBytes(w, cp, lcWithFlags(cp.Flags()&^0x3C))
				lcExpectRefused(lcSendConnect(w, "extra", b, "CONNECT with will flag 0 followed by a will topic and message"),
					"will fields present with will flag 0")
			})

		// With the will flag 0 no will is published when the connection
		// ends, whatever an earlier connection of the same client id
		// carried.
		s.Spec("MQTT-3.1.2-12", "publishes no will when a connection without will flag ends, abruptly or for a protocol violation",
			Label("will", "session"), func(w *World) {
				topic := w.Topic("stale")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Connect("c", Persistent, WithWill(topic, "stale will", 0, false))
				c.Leave()
				again, _ := lcReconnect(w, "c", Persistent)
				lcViolate(again)
				again.ExpectClosed("PUBLISH with QoS 3")
				last, _ := lcReconnect(w, "c")
				last.Close()
				lcExpectNoWill(w, sub, "the connections that ended had will flag 0")
			})

		// With the will flag 0, the will QoS must be 0.
		s.Spec("MQTT-3.1.2-13", "closes the connection when the will QoS is not 0 but the will flag is 0",
			Label("will", "malformed"), func(w *World) {
				k := lcBad("willqosnoflag")
				lcExpectRefused(lcSendConnect(w, "willqos", k.bytes(w, "willqos"), "CONNECT with "+k.what), k.what)
			})

		// With the will flag 1, the will QoS must not be 3.
		s.Spec("MQTT-3.1.2-14", "closes the connection when the will QoS is 3",
			Label("will", "malformed"), func(w *World) {
				k := lcBad("willqos3")
				lcExpectRefused(lcSendConnect(w, "willqos3", k.bytes(w, "willqos3"), "CONNECT with "+k.what), k.what)
			})

		// With the will flag 0, the will retain flag must be 0.
		s.Spec("MQTT-3.1.2-15", "closes the connection when will retain is 1 but the will flag is 0",
			Label("will", "malformed"), func(w *World) {
				k := lcBad("willretainnoflag")
				lcExpectRefused(lcSendConnect(w, "willret", k.bytes(w, "willret"), "CONNECT with "+k.what), k.what)
			})

		// Will retain 0: the will is published as a normal message, so a
		// later subscriber does not get it as a retained message.
		s.Spec("MQTT-3.1.2-16", "publishes a will with will retain 0 as a message that is not retained",
			Label("will", "retain"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Connect("c", WithWill(topic, "not retained", 1, false))
				c.Close()
				lcExpectWill(sub, topic, "not retained", 0, "closed without DISCONNECT")
				late := w.Connect("late")
				late.Granted(topic, 1)
				late.ExpectNothing("a will with will retain 0 is not retained")
			})

		// Will retain 1: the will is published as a retained message, so
		// a subscriber that comes later gets it with RETAIN 1.
		s.Spec("MQTT-3.1.2-17", "publishes a will with will retain 1 as a retained message",
			Label("will", "retain"), func(w *World) {
				w.Require(*w.Cfg().Profile.Retain, "needs retained messages")
				topic := w.Topic("will")
				w.noteRetained(topic)
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Connect("c", WithWill(topic, "retained", 1, true))
				c.Close()
				lcExpectWill(sub, topic, "retained", 0, "closed without DISCONNECT")
				late := w.Connect("late")
				late.Granted(topic, 1)
				p := lcRecvPublish(late, w.Cfg().Timeout, "the retained will message for a new subscriber")
				w.Expectf(p.Retain && string(p.Payload) == "retained" && string(p.Topic) == topic,
					fmt.Sprintf("PUBLISH retain topic=%q payload=\"retained\"", topic), "%s", packetgen.Format(p))
			})

		// The user name and password fields are present exactly when
		// their flags say so, and a password needs a user name. A CONNECT
		// that breaks this is malformed and the server must not accept it.
		userCases := []struct{ id, what string }{
			{"MQTT-3.1.2-18", "user name flag 0 but a user name present"},
			{"MQTT-3.1.2-19", "user name flag 1 but no user name"},
			{"MQTT-3.1.2-20", "password flag 0 but a password present"},
			{"MQTT-3.1.2-21", "password flag 1 but no password"},
			{"MQTT-3.1.2-22", "password flag 1 but user name flag 0"},
		}
		for i, k := range userCases {
			s.Spec(k.id, "refuses a CONNECT with "+k.what,
				Label("connect", "malformed"), func(w *World) {
					user, pass, _ := lcCredentials(w)
					cp := w.ConnectPacket("user")
					lcNoCredentials(cp)
					var b []byte
					switch i {
					case 0: // the user name follows the client identifier unflagged
						cp.UsernameFlag, cp.Username = true, user
						b = lcConnectBytes(w, cp, lcWithFlags(cp.Flags()&^0x80))
					case 1:
						b = lcConnectBytes(w, cp, lcWithFlags(cp.Flags()|0x80))
					case 2:
						cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user, true, pass
						b = lcConnectBytes(w, cp, lcWithFlags(cp.Flags()&^0x40))
					case 3:
						cp.UsernameFlag, cp.Username = true, user
						b = lcConnectBytes(w, cp, lcWithFlags(cp.Flags()|0x40))
					case 4:
						cp.PasswordFlag, cp.Password = true, pass
						b = packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
					}
					c := lcSendConnect(w, "user", b, "CONNECT with "+k.what)
					lcExpectRefused(c, k.what)
				})
		}

		// If the keep alive is non-zero and no packet comes for one and a
		// half times it, the server must close the connection. A client
		// that keeps sending (PINGREQ or anything else) is not closed,
		// and keep alive 0 turns the mechanism off. The clients run side
		// by side: the silent one shows when the broker's timer fires.
		s.Spec("MQTT-3.1.2-24", "closes a connection silent for 1.5 x its keep alive, and not ones that keep sending or have keep alive 0",
			Label("keepalive", "slow"), func(w *World) {
				silent := w.Connect("silent", KeepAlive(1))
				start := time.Now()
				pinger := w.Connect("pinger", KeepAlive(1))
				talker := w.Connect("talker", KeepAlive(1))
				idle := w.Connect("idle", KeepAlive(0))
				topic := w.Topic("talk")
				const tick = 400 * time.Millisecond
				limit := 1500*time.Millisecond + w.Grace()
				keepBusy := func() {
					lcStillOpen(pinger, "keep alive 1 s, PINGREQ every 0.4 s")
					talker.MustSend(&packetgen.Publish{Topic: []byte(topic), Payload: []byte("keep")})
				}
				for {
					p, err := silent.Recv(tick)
					if errors.Is(err, wire.ErrClosed) {
						break
					}
					if err == nil {
						w.Failf("expected nothing at the silent client before the broker closes it; got %s", packetgen.Format(p))
					}
					if !errors.Is(err, wire.ErrTimeout) {
						w.Failf("expected the broker to close the silent client; got %s", describeErr(err))
					}
					if time.Since(start) > limit {
						w.Failf("expected the broker to close a client silent for 1.5 x keep alive 1 s (within %v with grace); still open after %v",
							limit, time.Since(start).Round(time.Millisecond))
					}
					keepBusy()
				}
				closedAfter := time.Since(start).Round(time.Millisecond)
				// A while longer: clients whose packets did not count would be
				// closed by now, as the silent one was.
				for end := time.Now().Add(time.Second); time.Now().Before(end); {
					time.Sleep(tick)
					keepBusy()
				}
				why := fmt.Sprintf("the silent client was closed after %v, and this one", closedAfter)
				lcStillOpen(pinger, why+" sent PINGREQ every 0.4 s")
				lcStillOpen(talker, why+" sent PUBLISH every 0.4 s")
				lcStillOpen(idle, why+" has keep alive 0")
			})

		// The payload fields, when present, come in the order client
		// identifier, will topic, will message, user name, password: a
		// server reading them in that order takes each for what it is.
		s.Spec("MQTT-3.1.3-1", "reads client identifier, will topic, will message, user name and password in that order",
			Label("connect", "will"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				user, pass, fromProfile := lcCredentials(w)
				cp := w.ConnectPacket("all", WithWill(topic, "every field", 1, false))
				cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user, true, pass
				c := w.Dial("all")
				ack, err := c.Connect(cp, w.Cfg().Timeout)
				if err != nil {
					w.ifNoAnswer(err, "CONNACK to a CONNECT with every payload field", c.Name)
					w.Failf("expected CONNACK to a CONNECT with every payload field; got %s", describeErr(err))
				}
				if !fromProfile && (ack.ReasonCode == 4 || ack.ReasonCode == 5) {
					Skip(fmt.Sprintf("the broker refused the made-up user %q (%s); set username and password in the profile", user, packetgen.Format(ack)))
				}
				w.Expectf(ack.ReasonCode == 0, "CONNACK 0", "%s", packetgen.Format(ack))
				lcStillOpen(c, "the CONNECT was accepted")
				c.Close()
				lcExpectWill(sub, topic, "every field", 0, "the will topic and message read from their places")
			})

		// The client identifier names the session: a persistent session
		// is found again by its identifier and by no other.
		s.Spec("MQTT-3.1.3-2", "keeps session state per client identifier: the same identifier resumes it, another does not see it",
			Label("session"), func(w *World) {
				topic := w.Topic("mine")
				a := w.Connect("a", Persistent)
				a.Granted(topic, 1)
				a.Leave()
				pub := w.Connect("pub")
				pub.Publish(topic, "for a", 1, false)
				b, ack := lcReconnect(w, "b", Persistent)
				lcSessionPresent(w, ack, false, "client b has no session; a's is not b's")
				b.ExpectNothing("a's queued message is not b's")
				a2, ack := lcReconnect(w, "a", Persistent)
				lcSessionPresent(w, ack, true, "client a's session is stored")
				p := lcRecvPublish(a2, w.Cfg().Timeout, "the message queued for client a")
				w.Expectf(string(p.Payload) == "for a", `payload "for a"`, "%s", packetgen.Format(p))
			})

		// The client identifier must be present, as the first payload
		// field: a CONNECT with an empty payload is malformed.
		s.Spec("MQTT-3.1.3-3", "refuses a CONNECT without a client identifier field",
			Label("connect", "malformed"), func(w *World) {
				k := lcBad("noclientid")
				lcExpectRefused(lcSendConnect(w, "noid", k.bytes(w, "noid"), "CONNECT with "+k.what), k.what)
			})

		// The client identifier is a UTF-8 string as 1.5.3 defines it:
		// ill-formed UTF-8 or U+0000 in it makes the CONNECT malformed.
		s.Spec("MQTT-3.1.3-4", "refuses a client identifier holding ill-formed UTF-8 or U+0000",
			Label("connect", "utf8", "malformed"), func(w *World) {
				lcRefuseAll(w, []lcConnectCase{
					{lcBad("idutf8").what, lcBad("idutf8").bytes(w, "id1")},
					{lcBad("idnull").what, lcBad("idnull").bytes(w, "id2")},
				})
			})

		// The server must accept client identifiers of 1 to 23 bytes made
		// of 0-9, a-z and A-Z.
		s.Spec("MQTT-3.1.3-5", "accepts client identifiers of 1 to 23 characters from 0-9, a-z and A-Z",
			Label("connect"), func(w *World) {
				base := w.ClientID("")
				if len(base) > 12 {
					base = base[len(base)-12:]
				}
				ids := []string{string(lcAlphabet[w.Cfg().Seed%uint64(len(lcAlphabet))])}
				// 23-character identifiers that together use every character.
				for rest := lcAlphabet; rest != ""; {
					n := min(23-len(base), len(rest))
					id := base + rest[:n]
					for len(id) < 23 {
						id += "Z"
					}
					ids = append(ids, id)
					rest = rest[n:]
				}
				for _, id := range ids {
					cp := w.ConnectPacket("ok")
					cp.ClientID = id
					c := w.Dial(id)
					ack, err := c.Connect(cp, w.Cfg().Timeout)
					if err != nil {
						w.ifNoAnswer(err, fmt.Sprintf("CONNACK 0 for client identifier %q", id), c.Name)
						w.Failf("expected CONNACK 0 for client identifier %q; got %s", id, describeErr(err))
					}
					w.Expectf(ack.ReasonCode == 0, fmt.Sprintf("CONNACK 0 for the %d-character client identifier %q", len(id), id), "%s", packetgen.Format(ack))
					c.Leave()
				}
			})

		// A server that accepts a zero-byte client identifier must give
		// the client a unique identifier of its own: two such clients are
		// two sessions, and the second does not take over the first.
		s.Spec("MQTT-3.1.3-6", "gives each client with a zero-byte client identifier a unique identifier, if it accepts them",
			Label("connect"), func(w *World) {
				var cs []*Client
				for _, name := range []string{"anon1", "anon2"} {
					cp := w.ConnectPacket(name)
					cp.ClientID = ""
					c := w.Dial(name)
					ack, err := c.Connect(cp, w.Cfg().Timeout)
					if err != nil {
						w.ifNoAnswer(err, "CONNACK for a zero-byte client identifier with clean session 1", c.Name)
						w.Failf("expected CONNACK for a zero-byte client identifier with clean session 1; got %s", describeErr(err))
					}
					if ack.ReasonCode != 0 {
						// Refusing is allowed; how is judged by MQTT-3.1.3-9.
						Skip("the broker refuses zero-byte client identifiers: " + packetgen.Format(ack))
					}
					cs = append(cs, c)
				}
				topic := w.Topic("anon")
				cs[0].Granted(topic, 1)
				cs[1].Publish(topic, "between anonymous clients", 1, false)
				p := lcRecvPublish(cs[0], w.Cfg().Timeout, "the message from the other anonymous client")
				w.Expectf(string(p.Payload) == "between anonymous clients", `payload "between anonymous clients"`, "%s", packetgen.Format(p))
				lcStillOpen(cs[0], "the second anonymous client got an identifier of its own, not the first one's")
				lcStillOpen(cs[1], "both anonymous clients are connected")
			})

		// A zero-byte client identifier with clean session 0 is answered
		// with CONNACK 0x02 and the connection is closed.
		s.Spec("MQTT-3.1.3-8", "answers a zero-byte client identifier with clean session 0 with CONNACK 0x02 and closes",
			Label("connect", "session"), func(w *World) {
				cp := w.ConnectPacket("empty", Persistent)
				cp.ClientID = ""
				c := lcSendConnect(w, "empty", packetgen.AppendUnchecked(nil, cp, w.Cfg().Version),
					"CONNECT with a zero-byte client identifier and clean session 0")
				lcExpectConnackThenClose(c, 2, "zero-byte client identifier with clean session 0")
			})

		// A server may refuse client identifiers beyond the required set
		// (empty, longer than 23, other characters), but must then say so
		// with CONNACK 0x02 and close; accepting them is also fine.
		s.Spec("MQTT-3.1.3-9", "accepts an unusual client identifier or refuses it with CONNACK 0x02, then closes",
			Label("connect"), func(w *World) {
				base := w.ClientID("odd")
				ids := []string{"", base + strings.Repeat("x", 100), base + "-_.:é/"}
				for _, id := range ids {
					cp := w.ConnectPacket("odd")
					cp.ClientID = id
					name := fmt.Sprintf("id(%d bytes)", len(id))
					c := w.Dial(name)
					c.MustSend(cp)
					p, err := c.Recv(w.Cfg().Timeout)
					if err != nil {
						w.ifNoAnswer(err, fmt.Sprintf("CONNACK 0, or CONNACK 0x02 and a close, for client identifier %q", id), c.Name)
						w.Failf("expected CONNACK 0, or CONNACK 0x02 and a close, for client identifier %q; got %s", id, describeErr(err))
					}
					ack, ok := p.(*packetgen.Connack)
					if !ok || (ack.ReasonCode != 0 && ack.ReasonCode != 2) {
						w.Failf("expected CONNACK 0, or CONNACK 0x02 and a close, for client identifier %q; got %s", id, packetgen.Format(p))
					}
					if ack.ReasonCode == 0 {
						c.Leave()
						continue
					}
					if got := lcWaitClosed(c, fmt.Sprintf("client identifier %q refused with CONNACK 0x02", id)); len(got) > 0 {
						w.Failf("expected the connection closed after CONNACK 0x02; got %s", lcAlsoGot(got)[len(" after "):])
					}
				}
			})

		// The will topic is a UTF-8 string as 1.5.3 defines it.
		s.Spec("MQTT-3.1.3-10", "refuses a will topic holding ill-formed UTF-8 or U+0000",
			Label("will", "utf8", "malformed"), func(w *World) {
				var cases []lcConnectCase
				for i, bad := range []string{"\xFF", "\xED\xBF\xBF", "\x00"} {
					cp := w.ConnectPacket(fmt.Sprintf("wt%d", i), WithWill(w.Topic("will"+bad), "w", 0, false))
					cases = append(cases, lcConnectCase{fmt.Sprintf("will topic bytes % X", []byte(cp.Will.Topic)),
						packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)})
				}
				lcRefuseAll(w, cases)
			})

		// The will topic is a topic name, and wildcards ('+' and '#',
		// wherever they stand) must not be used in a topic name
		// (MQTT-4.7.1-1): the server must not accept such a will.
		s.Spec("MQTT-4.7.1-1", "refuses a CONNECT whose will topic holds a wildcard",
			Label("will", "wildcard", "malformed"), func(w *World) {
				var cases []lcConnectCase
				for i, t := range []string{w.Topic("+"), w.Topic("#"), w.Topic("a+b")} {
					cp := w.ConnectPacket(fmt.Sprintf("wild%d", i), WithWill(t, "w", 0, false))
					cases = append(cases, lcConnectCase{fmt.Sprintf("will topic %q", t), packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)})
				}
				lcRefuseAll(w, cases)
			})

		// The user name is a UTF-8 string as 1.5.3 defines it. (A server
		// may answer CONNACK 0x04, bad user name or password, and close.)
		s.Spec("MQTT-3.1.3-11", "refuses a user name holding ill-formed UTF-8 or U+0000",
			Label("connect", "utf8", "malformed"), func(w *World) {
				user, pass, _ := lcCredentials(w)
				var cases []lcConnectCase
				for i, bad := range []string{"\xFF", "\xC0\xAF", "\x00"} {
					cp := w.ConnectPacket(fmt.Sprintf("un%d", i))
					cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user+bad, true, pass
					cases = append(cases, lcConnectCase{fmt.Sprintf("user name bytes % X", []byte(cp.Username)),
						packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)})
				}
				lcRefuseAll(w, cases)
			})

		// A CONNECT that does not conform to section 3.1 is answered by
		// closing the connection without any CONNACK.
		s.Spec("MQTT-3.1.4-1", "closes the connection without CONNACK on a CONNECT that breaks section 3.1",
			Label("connect", "malformed"), func(w *World) {
				var pending []lcPending
				for i, k := range lcMustCloseConnect {
					c := lcSendConnect(w, fmt.Sprintf("m%d", i), k.bytes(w, fmt.Sprintf("m%d", i)), "CONNECT with "+k.what)
					pending = append(pending, lcPending{c: c, why: "CONNECT with " + k.what})
				}
				lcExpectAllClosed(w, pending)
			})

		// A CONNECT with the client identifier of a connected client makes
		// the server close the existing client's connection.
		s.Spec("MQTT-3.1.4-2", "closes the existing connection when a new one connects with the same client identifier",
			Label("connect"), func(w *World) {
				old := w.Connect("same")
				taker, _ := lcReconnect(w, "same")
				old.ExpectClosed("a new connection took its client identifier")
				lcStillOpen(taker, "the new connection replaced the old one")
			})

		// Taking over a connected client's identifier still goes through
		// the clean session processing: clean session 0 resumes the live
		// session, clean session 1 discards it.
		s.Spec("MQTT-3.1.4-3", "resumes the session of a connected client on a takeover with clean session 0 and discards it with clean session 1",
			Label("connect", "session"), func(w *World) {
				topic := w.Topic("live")
				pub := w.Connect("pub")
				first := w.Connect("same", Persistent)
				first.Granted(topic, 1)
				second, ack := lcReconnect(w, "same", Persistent)
				first.ExpectClosed("taken over")
				lcSessionPresent(w, ack, true, "a takeover with clean session 0 resumes the live session")
				pub.Publish(topic, "to the resumed session", 1, false)
				p := lcRecvPublish(second, w.Cfg().Timeout, "the message through the resumed session's subscription")
				w.Expectf(string(p.Payload) == "to the resumed session", `payload "to the resumed session"`, "%s", packetgen.Format(p))

				third, ack := lcReconnect(w, "same")
				second.ExpectClosed("taken over")
				lcSessionPresent(w, ack, false, "a takeover with clean session 1 discards the session")
				pub.Publish(topic, "to the discarded session", 1, false)
				third.ExpectNothing("the subscription went with the discarded session")
			})

		// A valid CONNECT is acknowledged with CONNACK return code 0,
		// whatever its options.
		s.Spec("MQTT-3.1.4-4", "accepts valid CONNECT packets of every option with CONNACK 0",
			Label("connect", "will"), func(w *World) {
				variants := []struct {
					name string
					opts []ConnectOption
				}{
					{"clean", nil},
					{"persist", []ConnectOption{Persistent}},
					{"ka0", []ConnectOption{KeepAlive(0)}},
					{"kamax", []ConnectOption{KeepAlive(65535)}},
					{"will0", []ConnectOption{WithWill(w.Topic("w0"), "", 0, false)}},
					{"will1", []ConnectOption{WithWill(w.Topic("w1"), "will", 1, false)}},
					{"will2", []ConnectOption{Persistent, WithWill(w.Topic("w2"), "will", 2, false)}},
				}
				if *w.Cfg().Profile.Retain {
					variants = append(variants, struct {
						name string
						opts []ConnectOption
					}{"willret", []ConnectOption{WithWill(w.Topic("wr"), "will", 1, true)}})
				}
				for _, v := range variants {
					c, ack := w.ConnectAck(v.name, v.opts...)
					w.Expectf(ack.ReasonCode == 0, fmt.Sprintf("CONNACK 0 for %s", packetgen.Format(w.ConnectPacket(v.name, v.opts...))),
						"%s", packetgen.Format(ack))
					c.Leave()
				}
			})

		// When the server refuses a CONNECT it must not process what the
		// client sent after it (clients may send before CONNACK).
		s.Spec("MQTT-3.1.4-5", "does not process packets sent after a CONNECT it refuses",
			Label("connect", "retain"), func(w *World) {
				topic := w.Topic("after")
				w.noteRetained(topic) // in case a broker stores it after all
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				empty := w.ConnectPacket("empty", Persistent)
				empty.ClientID = ""
				refused := []struct {
					name, what string
					connect    []byte
				}{
					{"empty", "a zero-byte client identifier with clean session 0", packetgen.AppendUnchecked(nil, empty, w.Cfg().Version)},
					{"level", "protocol level 42", lcConnectBytes(w, w.ConnectPacket("level"), func(f packetgen.Frame) packetgen.Frame {
						return f.Patch(lcLevelOffset, 42)
					})},
				}
				for _, r := range refused {
					b := append([]byte(nil), r.connect...)
					b = packetgen.AppendUnchecked(b, &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: topic, QoS: 1}}}, w.Cfg().Version)
					b = packetgen.AppendUnchecked(b, &packetgen.Publish{QoS: 1, PacketID: 2, Retain: *w.Cfg().Profile.Retain, Topic: []byte(topic), Payload: []byte("after a refused CONNECT")}, w.Cfg().Version)
					b = packetgen.AppendUnchecked(b, &packetgen.Pingreq{}, w.Cfg().Version)
					c := lcSendConnect(w, r.name, b, "CONNECT with "+r.what+", then SUBSCRIBE, PUBLISH and PINGREQ in the same write")
					lcExpectRefused(c, "CONNECT with "+r.what+" is refused; what follows it is not processed")
				}
				watch := []*Client{sub}
				if *w.Cfg().Profile.Retain {
					// A retained message would come right after SUBACK.
					late := w.Connect("late")
					late.Granted(topic, 1)
					watch = append(watch, late)
				}
				lcExpectNothingAll(w, "the PUBLISH after a refused CONNECT is not processed, so nothing is delivered or retained", watch...)
			})
	})
	notTestable("MQTT-3.1.2-23", "binds only the client (sending PINGREQ in time); the server's side is MQTT-3.1.2-24")
	notTestable("MQTT-3.1.3-7", "binds only the client (clean session 1 with a zero-byte identifier); the server's side is MQTT-3.1.3-8")
}
