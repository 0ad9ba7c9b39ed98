package suites

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Offsets in the body of a 5.0 CONNECT (protocol name "MQTT").
const (
	cxLevelOffset = 6 // protocol level
)

// cxRefused requires a refused 5.0 CONNECT: the broker closes the
// connection, after a CONNACK of 0x80 or more or none at all (§3.1.4). A
// refusing CONNACK has session present 0 (MQTT-3.2.2-6), and no
// DISCONNECT may come before a successful CONNACK (MQTT-3.14.0-1); both
// are steps. It returns the CONNACK, if any.
func cxRefused(c *Client, why string) *packetgen.Connack {
	return cxJudgeRefusal(c, why, lcWaitClosed(c, why))
}

// cxRefusedFor is cxRefused for a spec that refuses a CONNECT only to
// check something of the refusal: a broker that accepts it instead
// breaks rules, the statements that make it refuse, and leaves the spec
// without a verdict.
func cxRefusedFor(c *Client, why string, rules []string) *packetgen.Connack {
	got, err := c.Conn.ExpectClosed(c.w.cfg.Timeout + c.w.cfg.Grace)
	if len(got) > 0 {
		if a, ok := got[0].(*packetgen.Connack); ok && !a.ReasonCode.IsError() {
			c.w.stepFailed(rules, "expected the broker to refuse %s (%s); got %s", c.Name, why, packetgen.Format(a))
		}
	}
	if err != nil {
		c.w.Failf("expected the broker to close the connection of %s (%s); got %s%s", c.Name, why, describeErr(err), lcAlsoGot(got))
	}
	return cxJudgeRefusal(c, why, got)
}

// cxJudgeRefusal judges what came before a close (got): nothing, or a
// CONNACK of 0x80 or more with session present 0.
func cxJudgeRefusal(c *Client, why string, got []packetgen.Packet) *packetgen.Connack {
	var ack *packetgen.Connack
	for i, p := range got {
		switch p := p.(type) {
		case *packetgen.Connack:
			if i == 0 && p.ReasonCode.IsError() {
				ack = p
				if p.SessionPresent {
					c.w.stepFailed([]string{"MQTT-3.2.2-6"}, "expected session present 0 on the refusing %s at %s", packetgen.Format(p), c.Name)
				}
				continue
			}
		case *packetgen.Disconnect:
			if ack == nil {
				c.w.stepFailed(ruleNoDisconnectEarly, "expected no DISCONNECT before a successful CONNACK at %s (%s); got %s",
					c.Name, why, packetgen.Format(p))
			}
		}
		c.w.Failf("expected the broker to refuse %s (%s) by closing the connection, with or without a CONNACK of 0x80 or more; got %s",
			c.Name, why, lcAlsoGot(got)[len(" after "):])
	}
	return ack
}

// firstPacket is got[0], or nil.
func firstPacket(got []packetgen.Packet) packetgen.Packet {
	if len(got) == 0 {
		return nil
	}
	return got[0]
}

// cxSubscribedSession connects name with a session that outlives the
// connection, subscribes it to a topic of its own at QoS 1, leaves, and
// returns the topic.
func cxSubscribedSession(w *World, name string, opts ...ConnectOption) string {
	topic := w.Topic(name)
	c := w.Connect(name, append([]ConnectOption{Persistent}, opts...)...)
	c.Granted(topic, 1)
	c.Leave()
	return topic
}

func init() {
	addSection5("3.1", "CONNECT", func(s *S) {
		s.Reuse("3.1", "MQTT-3.1.0-1", "MQTT-3.1.0-1")
		s.Reuse("3.1", "MQTT-3.1.0-2", "MQTT-3.1.0-2")
		s.Reuse("3.1", "MQTT-3.1.2-3", "MQTT-3.1.2-3")

		// A protocol name other than "MQTT" is not accepted: the server
		// may answer CONNACK 0x84 and must then close, or close at once.
		// A server of several protocols may also take the bytes for
		// another protocol and stay silent, but must not serve MQTT.
		s.Spec("MQTT-3.1.2-1", "closes the connection on a protocol name other than \"MQTT\", after CONNACK 0x84 or none",
			Label("connect"), func(w *World) {
				for _, name := range []string{"MQTX", "mqtt"} {
					cp := w.ConnectPacket("name" + name)
					cp.ProtocolName = name
					why := fmt.Sprintf("CONNECT with protocol name %q", name)
					c := lcSendConnect(w, "name"+name, packetgen.AppendUnchecked(nil, cp, packetgen.V5), why)
					p, err := c.Recv(w.Cfg().Timeout)
					switch {
					case errors.Is(err, wire.ErrTimeout):
						c.MustSend(&packetgen.Pingreq{})
						if p, err := c.Recv(w.Cfg().Quiet); err == nil {
							_, isPong := p.(*packetgen.Pingresp)
							w.Expectf(!isPong, "no MQTT service after "+why, "%s", packetgen.Format(p))
						}
					case err != nil:
						// Closed: allowed.
					default:
						ack, ok := p.(*packetgen.Connack)
						if !ok || !ack.ReasonCode.IsError() {
							w.Failf("expected the connection closed, after CONNACK 0x84 or none (%s); got %s", why, packetgen.Format(p))
						}
						w.Shouldf(ack.ReasonCode == packetgen.UnsupportedProtocolVersion || ack.ReasonCode == packetgen.UnspecifiedError,
							"CONNACK 0x84 (Unsupported Protocol Version)", "%s", packetgen.Format(ack))
						if got := lcWaitClosed(c, why+", after "+packetgen.Format(ack)); len(got) > 0 {
							w.Failf("expected the connection closed after %s; got %s", packetgen.Format(ack), lcAlsoGot(got)[len(" after "):])
						}
					}
				}
			})

		// A protocol version the server does not accept: it may answer
		// CONNACK 0x84 and must close.
		s.Spec("MQTT-3.1.2-2", "closes the connection on a protocol version it does not serve, after CONNACK 0x84 or none",
			Label("connect"), func(w *World) {
				for _, lv := range []byte{0, 6, 42} {
					name := fmt.Sprintf("level%d", lv)
					b := lcConnectBytes(w, w.ConnectPacket(name), func(f packetgen.Frame) packetgen.Frame {
						return f.Patch(cxLevelOffset, lv)
					})
					why := fmt.Sprintf("CONNECT with protocol version %d", lv)
					c := lcSendConnect(w, name, b, why)
					got, err := c.Conn.ExpectClosed(w.Cfg().Timeout)
					if v := packetgen.AsViolation(err); v != nil && strings.Contains(err.Error(), "CONNACK") {
						// A CONNACK in another version's format (3.1.1's
						// 0x01): the server cannot know which the client
						// reads. Allowed, if it closes.
						continue
					}
					if err != nil {
						w.Failf("expected the broker to close the connection (%s); got %s%s", why, describeErr(err), lcAlsoGot(got))
					}
					for i, p := range got {
						if ack, ok := p.(*packetgen.Connack); ok && i == 0 && ack.ReasonCode.IsError() {
							continue
						}
						w.Failf("expected the connection closed, after CONNACK 0x84 or none (%s); got %s", why, lcAlsoGot(got)[len(" after "):])
					}
				}
			})

		// Clean Start 1: the server discards any existing session and
		// starts a new one.
		s.Reuse("3.1", "MQTT-3.1.2-6", "MQTT-3.1.2-4", "clean session 1", "Clean Start 1", "clean session's", "new session's")

		// ... also when the new session is itself one that outlives the
		// connection (Clean Start 1 with a Session Expiry Interval).
		s.Spec("MQTT-3.1.2-4", "discards the existing session on Clean Start 1 even when the new session has a Session Expiry Interval",
			Label("session"), func(w *World) {
				topic := cxSubscribedSession(w, "c")
				pub := w.Connect("pub")
				pub.Publish(topic, "queued for the old session", 1, false)
				c, ack := lcReconnect(w, "c", CleanStart(true), SessionExpiry(300))
				lcSessionPresent(w, ack, false, "Clean Start 1 starts a new session")
				pub.Publish(topic, "to the old subscription", 1, false)
				c.ExpectNothing("the old session, its subscription and its queued message are discarded")
				c.Leave()
				again, ack := lcReconnect(w, "c", Persistent)
				lcSessionPresent(w, ack, true, "the new session of the Clean Start 1 connection was kept (Session Expiry Interval 300)")
				pub.Publish(topic, "to the old subscription, later", 1, false)
				again.ExpectNothing("the new session has no subscription of the old one")
			})

		// Clean Start 0 with a stored session: the server resumes it.
		// The session was stored because its expiry interval is above 0.
		s.Reuse("3.1", "MQTT-3.1.2-4", "MQTT-3.1.2-5 MQTT-3.1.2-23",
			"a clean-session-0 session", "a session with a Session Expiry Interval")
		s.Reuse("3.1", "MQTT-3.1.2-5", "MQTT-3.1.2-23",
			"a disconnected clean-session-0 client", "a disconnected client whose session has a Session Expiry Interval")

		// Clean Start 0 without a stored session: the server creates one
		// (session present 0) and, with an expiry interval, keeps it.
		s.Spec("MQTT-3.1.2-6", "creates a new session on Clean Start 0 when none is stored, and keeps it",
			Label("session"), func(w *World) {
				topic := w.Topic("new")
				c, ack := w.Connect5("c", Persistent)
				lcSessionPresent(w, ack, false, "no session was stored for this client identifier")
				c.Granted(topic, 1)
				c.Leave()
				pub := w.Connect("pub")
				pub.Publish(topic, "to the created session", 1, false)
				again, ack := lcReconnect(w, "c", Persistent)
				lcSessionPresent(w, ack, true, "the session created by the first connection was stored")
				p := lcRecvPublish(again, w.Cfg().Timeout, "the message queued for the created session")
				w.Expectf(string(p.Payload) == "to the created session", `payload "to the created session"`, "%s", packetgen.Format(p))
			})

		// The will is stored with the session and published when the
		// connection closes without DISCONNECT 0x00: abruptly, for a
		// protocol violation, or for the keep alive.
		s.Reuse("3.1", "MQTT-3.1.2-8", "MQTT-3.1.2-7 MQTT-3.1.2-8")

		// DISCONNECT with 0x04 asks the server to publish the will all the
		// same; only 0x00 deletes it.
		s.Spec("MQTT-3.1.2-8", "publishes the will message after DISCONNECT with reason code 0x04 (Disconnect with Will Message)",
			Label("will"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Connect("c", WithWill(topic, "asked for", 1, false))
				c.MustSend(&packetgen.Disconnect{ReasonCode: packetgen.DisconnectWithWill})
				lcExpectWill(sub, topic, "asked for", 0, "DISCONNECT 0x04")
			})

		// The will waits for the Will Delay Interval after the close, or
		// for the end of the session if that comes first.
		s.Spec("MQTT-3.1.2-8", "publishes the will after its Will Delay Interval, or when the session ends if that is sooner",
			Label("will", "expiry"), func(w *World) {
				delayed, ended := w.Topic("delayed"), w.Topic("ended")
				sub := w.Connect("sub")
				sub.Granted(delayed, 1)
				sub.Granted(ended, 1)
				// Will delay 2 s, session 60 s: the delay decides.
				a := w.Connect("a", Persistent, SessionExpiry(60), WithWill(delayed, "after 2 s", 1, false), WillDelay(2))
				// Will delay 60 s, session 1 s: the session's end decides.
				b := w.Connect("b", SessionExpiry(1), WithWill(ended, "session ended", 1, false), WillDelay(60))
				start := time.Now()
				a.Close()
				b.Close()
				got := map[string]time.Duration{}
				deadline := start.Add(2*time.Second + w.Cfg().Timeout + w.Grace())
				for len(got) < 2 && time.Now().Before(deadline) {
					p, err := sub.Recv(time.Until(deadline))
					if err != nil {
						break
					}
					pub, ok := p.(*packetgen.Publish)
					if !ok {
						w.Failf("expected the will messages at %s; got %s", sub.Name, packetgen.Format(p))
					}
					sub.Ack(pub)
					got[string(pub.Topic)] = time.Since(start)
				}
				for _, k := range []struct {
					topic       string
					early, late time.Duration
					what        string
				}{
					{ended, 0, seconds(1) + w.Cfg().Timeout + w.Grace(), "the will of the session that expires after 1 s (Will Delay Interval 60 s)"},
					{delayed, 2*time.Second - 300*time.Millisecond, 2*time.Second + w.Cfg().Timeout + w.Grace(), "the will with a Will Delay Interval of 2 s (Session Expiry Interval 60 s)"},
				} {
					at, ok := got[k.topic]
					if !ok {
						w.Failf("expected %s; got nothing in %v", k.what, k.late.Round(time.Millisecond))
					}
					w.Expectf(at >= k.early && at <= k.late, fmt.Sprintf("%s between %v and %v after the close", k.what, k.early, k.late),
						"it after %v", at.Round(time.Millisecond))
				}
			})

		// The will's presence follows the will flag; Will Delay 0 publishes
		// it at once.
		s.Reuse("3.1", "MQTT-3.1.2-9: closes", "MQTT-3.1.2-9")
		s.Reuse("3.1", "MQTT-3.1.2-9: publishes", "MQTT-3.1.2-12")
		s.Reuse("3.1", "MQTT-3.1.2-10", "MQTT-3.1.2-10")
		s.Reuse("3.1", "MQTT-3.1.2-13", "MQTT-3.1.2-11")
		s.Reuse("3.1", "MQTT-3.1.2-14", "MQTT-3.1.2-12")
		s.Reuse("3.1", "MQTT-3.1.2-15", "MQTT-3.1.2-13")
		s.Reuse("3.1", "MQTT-3.1.2-16", "MQTT-3.1.2-14")
		s.Reuse("3.1", "MQTT-3.1.2-17", "MQTT-3.1.2-15")
		// User name and password flags (5.0 allows a password without a
		// user name, so 3.1.1's MQTT-3.1.2-22 has no counterpart).
		s.Reuse("3.1", "MQTT-3.1.2-18", "MQTT-3.1.2-16")
		s.Reuse("3.1", "MQTT-3.1.2-19", "MQTT-3.1.2-17")
		s.Reuse("3.1", "MQTT-3.1.2-20", "MQTT-3.1.2-18")
		s.Reuse("3.1", "MQTT-3.1.2-21", "MQTT-3.1.2-19")

		// Keep alive: one and a half times the keep alive in force (the
		// Server Keep Alive if the CONNACK has one) without a packet, and
		// the server closes the connection as if the network had failed.
		s.Spec("MQTT-3.1.2-22", "closes a connection silent for 1.5 x the keep alive in force, the Server Keep Alive if it sent one",
			Label("keepalive", "slow"), func(w *World) {
				c, ack := w.Connect5("silent", KeepAlive(1))
				ka := uint16(1)
				if ack.Properties.Has(packetgen.PropServerKeepAlive) {
					ka = ack.Properties.ServerKeepAlive
					if ka == 0 {
						Skip("the broker turned keep alive off (Server Keep Alive 0)")
					}
					if ka > 4 {
						Skip(fmt.Sprintf("the broker imposes a keep alive of %d s (Server Keep Alive): too long to wait for", ka))
					}
				}
				start := time.Now()
				limit := seconds(uint32(ka))*3/2 + w.Grace()
				got, err := c.Conn.ExpectClosed(limit)
				if err != nil {
					w.Failf("expected the broker to close a client silent for 1.5 x keep alive %d s (within %v with grace); got %s%s",
						ka, limit, describeErr(err), lcAlsoGot(got))
				}
				for _, p := range got {
					if d, ok := p.(*packetgen.Disconnect); ok && d.ReasonCode.IsError() {
						continue
					}
					w.Failf("expected only the close (or DISCONNECT 0x8D first) at %s; got %s", c.Name, lcAlsoGot(got)[len(" after "):])
				}
				early := seconds(uint32(ka)) - 200*time.Millisecond
				w.Expectf(time.Since(start) >= early, fmt.Sprintf("the close no sooner than the keep alive of %d s", ka),
					"it after %v", time.Since(start).Round(time.Millisecond))
			})

		// The session outlives the connection when its expiry interval is
		// above 0, and ends with it at 0 (or absent).
		s.Spec("MQTT-3.1.2-23", "keeps the session after the connection closes when the Session Expiry Interval is above 0, and not when it is 0",
			Label("session"), func(w *World) {
				kept := cxSubscribedSession(w, "kept", SessionExpiry(60))
				gone := cxSubscribedSession(w, "gone", SessionExpiry(0))
				pub := w.Connect("pub")
				pub.Publish(kept, "for the kept session", 1, false)
				pub.Publish(gone, "for the ended session", 1, false)
				k, ack := lcReconnect(w, "kept", Persistent)
				lcSessionPresent(w, ack, true, "Session Expiry Interval 60: the session outlives the connection")
				p := lcRecvPublish(k, w.Cfg().Timeout, "the message queued for the kept session")
				w.Expectf(string(p.Payload) == "for the kept session", `payload "for the kept session"`, "%s", packetgen.Format(p))
				g, ack := lcReconnect(w, "gone", Persistent)
				lcSessionPresent(w, ack, false, "Session Expiry Interval 0: the session ended with the connection")
				g.ExpectNothing("the ended session's subscription and queue are gone")
			})

		// Request Response Information 0 (or absent) forbids Response
		// Information in the CONNACK.
		s.Spec("MQTT-3.1.2-28", "sends no Response Information when the client did not ask for it",
			Label("connect"), func(w *World) {
				for _, v := range []struct {
					name string
					opts []ConnectOption
				}{
					{"rri0", []ConnectOption{WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropRequestResponseInformation, byte(0)) })}},
					{"norri", nil},
				} {
					c, ack := w.Connect5(v.name, v.opts...)
					w.Expectf(!ack.Properties.Has(packetgen.PropResponseInformation),
						"a CONNACK without Response Information (Request Response Information 0 or absent)", "%s", packetgen.Format(ack))
					c.Leave()
				}
			})

		cxLimits(s)
		s.Reuse("3.1", "MQTT-3.1.3-1", "MQTT-3.1.3-1", "will topic, will message", "will properties, will topic, will payload")
		s.Reuse("3.1", "MQTT-3.1.3-2", "MQTT-3.1.3-2")
		s.Reuse("3.1", "MQTT-3.1.3-3", "MQTT-3.1.3-3")
		s.Reuse("3.1", "MQTT-3.1.3-4", "MQTT-3.1.3-4")
		s.Reuse("3.1", "MQTT-3.1.3-5", "MQTT-3.1.3-5")
		s.Reuse("3.1", "MQTT-3.1.3-6", "MQTT-3.1.3-6")

		// A zero-byte client identifier that the server accepts gets one
		// assigned, named in the CONNACK, and unused by any other session.
		s.Spec("MQTT-3.1.3-7 MQTT-3.2.2-16", "returns an Assigned Client Identifier for a zero-byte client identifier, new and different for each client",
			Label("connect"), func(w *World) {
				live := w.Connect("live", Persistent)
				var assigned []string
				for _, name := range []string{"anon1", "anon2"} {
					cp := w.ConnectPacket(name)
					cp.ClientID = ""
					c := w.Dial(name)
					ack, err := c.Connect(cp, w.Cfg().Timeout)
					if err != nil {
						w.ifNoAnswer(err, "CONNACK for a zero-byte client identifier", c.Name)
						w.Failf("expected CONNACK for a zero-byte client identifier; got %s", describeErr(err))
					}
					if ack.ReasonCode != 0 {
						Skip("the broker refuses zero-byte client identifiers: " + packetgen.Format(ack))
					}
					id, ok := ack.Properties.Get(packetgen.PropAssignedClientIdentifier).(string)
					if !ok || id == "" {
						w.Failf("expected an Assigned Client Identifier in the CONNACK to a zero-byte client identifier; got %s", packetgen.Format(ack))
					}
					assigned = append(assigned, id)
				}
				w.Expectf(assigned[0] != assigned[1], "two different Assigned Client Identifiers", "%q twice", assigned[0])
				for _, id := range assigned {
					w.Expectf(id != w.ClientID("live"), "assigned identifiers unused by any session", "%q, the identifier of a connected client", id)
				}
				lcStillOpen(live, "the assigned identifiers did not take over a connected client")
			})

		// A server may refuse client identifiers beyond the required set,
		// with CONNACK 0x85 or none, and must then close.
		s.Spec("MQTT-3.1.3-8", "accepts an unusual client identifier or refuses it and closes, with CONNACK 0x85 or none",
			Label("connect"), func(w *World) {
				base := w.ClientID("odd")
				for _, id := range []string{base + strings.Repeat("x", 100), base + "-_.:é/"} {
					cp := w.ConnectPacket("odd")
					cp.ClientID = id
					name := fmt.Sprintf("id(%d bytes)", len(id))
					c := w.Dial(name)
					c.MustSend(cp)
					p, err := c.Recv(w.Cfg().Timeout)
					if err != nil {
						if errors.Is(err, wire.ErrClosed) {
							continue // refused without CONNACK
						}
						w.ifNoAnswer(err, fmt.Sprintf("CONNACK for client identifier %q", id), c.Name)
						w.Failf("expected CONNACK, or a close, for client identifier %q; got %s", id, describeErr(err))
					}
					ack, ok := p.(*packetgen.Connack)
					if !ok {
						w.Failf("expected CONNACK, or a close, for client identifier %q; got %s", id, packetgen.Format(p))
					}
					if ack.ReasonCode == 0 {
						c.Leave()
						continue
					}
					w.Shouldf(ack.ReasonCode == packetgen.ClientIdentifierNotValid || ack.ReasonCode == packetgen.UnspecifiedError,
						"CONNACK 0x85 (Client Identifier not valid) for a refused identifier", "%s", packetgen.Format(ack))
					if got := lcWaitClosed(c, fmt.Sprintf("client identifier %q refused with %s", id, packetgen.Format(ack))); len(got) > 0 {
						w.Failf("expected the connection closed after %s; got %s", packetgen.Format(ack), lcAlsoGot(got)[len(" after "):])
					}
				}
			})

		// A new connection to the session before the Will Delay Interval
		// has passed: the will is not sent.
		s.Spec("MQTT-3.1.3-9", "does not send the will when the session is resumed before its Will Delay Interval has passed",
			Label("will", "session"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				c := w.Connect("c", Persistent, WithWill(topic, "too soon", 1, false), WillDelay(2))
				c.Close()
				lcReconnect(w, "c", Persistent)
				sub.ExpectNothingFor(seconds(2)+w.Grace(), "the session was resumed within the Will Delay Interval of 2 s")
			})

		// The will's user properties are published in their order.
		s.Spec("MQTT-3.1.3-10", "publishes the will's user properties in their order, repeated names included",
			Label("will", "properties"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				props := userProps("b", "1", "a", "2", "b", "3", "é", "")
				c := w.Connect("c", WithWill(topic, "with properties", 1, false), WillProps(func(p *packetgen.Properties) {
					p.UserProperties = append(p.UserProperties, props...)
				}))
				c.Close()
				p := lcExpectWill(sub, topic, "with properties", 0, "closed without DISCONNECT")
				w.Expectf(pfSameUserProps(p.Properties.UserProperties, props), fmt.Sprintf("the will's user properties %v", props),
					"%v", p.Properties.UserProperties)
			})

		// The will's other properties travel with it as they travel with
		// any application message.
		s.Spec("MQTT-3.3.2-4 MQTT-3.3.2-15 MQTT-3.3.2-16 MQTT-3.3.2-20", "publishes the will with its Payload Format Indicator, Response Topic, Correlation Data and Content Type unaltered",
			Label("will", "properties"), func(w *World) {
				topic := w.Topic("will")
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				want := packetgen.Properties{}
				want.Set(packetgen.PropPayloadFormatIndicator, byte(1))
				want.Set(packetgen.PropResponseTopic, w.Topic("reply"))
				want.Set(packetgen.PropCorrelationData, []byte{0, 1, 0xFF})
				want.Set(packetgen.PropContentType, "text/plain; charset=utf-8")
				c := w.Connect("c", WithWill(topic, "gone", 1, false), WillProps(func(p *packetgen.Properties) { *p = want }))
				c.Close()
				p := lcExpectWill(sub, topic, "gone", 0, "closed without DISCONNECT")
				pfExpectSameProps(w, p, &want)
			})

		s.Reuse("3.1", "MQTT-3.1.3-10", "MQTT-3.1.3-11")
		s.Reuse("3.1", "MQTT-4.7.1-1", "MQTT-4.7.0-1")
		s.Reuse("3.1", "MQTT-3.1.3-11", "MQTT-3.1.3-12")

		// A CONNECT that does not match section 3.1 is refused: the server
		// closes, after a CONNACK of 0x80 or more or none.
		s.Spec("MQTT-3.1.4-1", "closes the connection on a CONNECT that breaks section 3.1, with a CONNACK of 0x80 or more or none",
			Label("connect", "malformed"), func(w *World) {
				var cases []lcConnectCase
				for i, k := range lcMustCloseConnect {
					cases = append(cases, lcConnectCase{k.what, k.bytes(w, fmt.Sprintf("m%d", i))})
				}
				for i, k := range cxBadProperties {
					cp := w.ConnectPacket(fmt.Sprintf("p%d", i))
					cp.Properties.Raw = k.raw
					cases = append(cases, lcConnectCase{k.what, packetgen.AppendUnchecked(nil, cp, packetgen.V5)})
				}
				lcRefuseAll(w, cases)
			})

		// A CONNECT that fails the server's checks (here a wrong
		// password) is refused and the connection closed.
		s.Spec("MQTT-3.1.4-2", "closes the connection when the credentials are wrong, with a CONNACK of 0x80 or more or none",
			Label("connect", "auth"), func(w *World) {
				user := w.Cfg().Profile.Username
				if user == "" {
					Skip("profile: no user name, so no wrong password to try")
				}
				cp := w.ConnectPacket("wrong")
				cp.PasswordFlag, cp.Password = true, []byte(w.Cfg().Profile.Password+"-not")
				c := lcSendConnect(w, "wrong", packetgen.AppendUnchecked(nil, cp, packetgen.V5), "CONNECT with a wrong password")
				p, err := c.Recv(w.Cfg().Timeout)
				if ack, ok := p.(*packetgen.Connack); err == nil && ok && ack.ReasonCode == 0 {
					Skip("the broker accepts any password for " + user)
				}
				if err != nil && !errors.Is(err, wire.ErrClosed) {
					w.ifNoAnswer(err, "a CONNACK of 0x80 or more, or a close", c.Name)
				}
				if err == nil {
					ack, ok := p.(*packetgen.Connack)
					if !ok || !ack.ReasonCode.IsError() {
						w.Failf("expected the connection refused (a wrong password); got %s", packetgen.Format(p))
					}
					lcWaitClosed(c, "a wrong password, after "+packetgen.Format(ack))
				}
			})

		// A client identifier already connected: the server closes the
		// existing connection, with DISCONNECT 0x8E first.
		s.Spec("MQTT-3.1.4-3", "closes the existing connection, after DISCONNECT 0x8E, when a new one takes its client identifier",
			Label("connect"), func(w *World) {
				old := w.Connect("same")
				taker, _ := lcReconnect(w, "same")
				old.ExpectClosedBy("a new connection took its client identifier", withDisconnect(packetgen.SessionTakenOver))
				lcStillOpen(taker, "the new connection replaced the old one")
			})

		s.Reuse("3.1", "MQTT-3.1.4-3", "MQTT-3.1.4-4", "clean session 0", "Clean Start 0", "clean session 1", "Clean Start 1")
		s.Reuse("3.1", "MQTT-3.1.4-4", "MQTT-3.1.4-5", "CONNACK 0", "CONNACK 0x00")

		// Valid CONNECTs with 5.0 properties are accepted too.
		s.Spec("MQTT-3.1.4-5", "accepts valid CONNECT packets with every CONNECT and will property with CONNACK 0x00",
			Label("connect", "will", "properties"), func(w *World) {
				all := WithProps(func(p *packetgen.Properties) {
					p.Set(packetgen.PropSessionExpiryInterval, uint32(10))
					p.Set(packetgen.PropReceiveMaximum, uint16(10))
					p.Set(packetgen.PropMaximumPacketSize, uint32(1<<20))
					p.Set(packetgen.PropTopicAliasMaximum, uint16(10))
					p.Set(packetgen.PropRequestResponseInformation, byte(1))
					p.Set(packetgen.PropRequestProblemInformation, byte(0))
					p.UserProperties = userProps("k", "v", "k", "v2")
				})
				will := WillProps(func(p *packetgen.Properties) {
					p.Set(packetgen.PropWillDelayInterval, uint32(0))
					p.Set(packetgen.PropPayloadFormatIndicator, byte(1))
					p.Set(packetgen.PropMessageExpiryInterval, uint32(60))
					p.Set(packetgen.PropContentType, "text/plain")
					p.Set(packetgen.PropResponseTopic, w.Topic("reply"))
					p.Set(packetgen.PropCorrelationData, []byte("id"))
					p.UserProperties = userProps("w", "1")
				})
				for _, v := range []struct {
					name string
					opts []ConnectOption
				}{
					{"props", []ConnectOption{all}},
					{"willprops", []ConnectOption{all, WithWill(w.Topic("w"), "will", 1, false), will}},
					{"pwonly", []ConnectOption{func(cp *packetgen.Connect) {
						if cp.UsernameFlag {
							Skip("profile: the broker needs a user name")
						}
						cp.PasswordFlag, cp.Password = true, []byte("token")
					}}},
				} {
					c, ack := w.ConnectAck(v.name, v.opts...)
					w.Expectf(ack.ReasonCode == 0, fmt.Sprintf("CONNACK 0x00 for %s", packetgen.Format(w.ConnectPacket(v.name, v.opts...))),
						"%s", packetgen.Format(ack))
					c.Leave()
				}
			})

		// A refused CONNECT: what the client sent after it is not
		// processed.
		s.Spec("MQTT-3.1.4-6", "does not process packets sent after a CONNECT it refuses",
			Label("connect", "retain"), func(w *World) {
				topic := w.Topic("after")
				w.noteRetained(topic)
				sub := w.Connect("sub")
				sub.Granted(topic, 1)
				badAuth := w.ConnectPacket("auth")
				badAuth.Properties.Set(packetgen.PropAuthenticationMethod, "MQTTBENCH-NO-SUCH-METHOD")
				// rules: the statements that make the broker refuse it.
				refused := []struct {
					name, what string
					connect    []byte
					rules      []string
				}{
					{"level", "protocol version 42", lcConnectBytes(w, w.ConnectPacket("level"), func(f packetgen.Frame) packetgen.Frame {
						return f.Patch(cxLevelOffset, 42)
					}), []string{"MQTT-3.1.2-2"}},
					{"auth", "an authentication method no server knows", packetgen.AppendUnchecked(nil, badAuth, packetgen.V5), []string{"MQTT-4.12.0-1"}},
				}
				for _, r := range refused {
					b := append([]byte(nil), r.connect...)
					b = packetgen.AppendUnchecked(b, &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: topic, QoS: 1}}}, packetgen.V5)
					b = packetgen.AppendUnchecked(b, &packetgen.Publish{QoS: 1, PacketID: 2, Retain: *w.Cfg().Profile.Retain, Topic: []byte(topic), Payload: []byte("after a refused CONNECT")}, packetgen.V5)
					b = packetgen.AppendUnchecked(b, &packetgen.Pingreq{}, packetgen.V5)
					c := lcSendConnect(w, r.name, b, "CONNECT with "+r.what+", then SUBSCRIBE, PUBLISH and PINGREQ in the same write")
					got, err := c.Conn.ExpectClosed(w.Cfg().Timeout + w.Grace())
					if a, ok := firstPacket(got).(*packetgen.Connack); ok && !a.ReasonCode.IsError() {
						// Accepted: what follows is processed by right, and the
						// statement broken is the one making it a refusal.
						w.stepFailed(r.rules, "expected the broker to refuse the CONNECT with %s; got %s", r.what, packetgen.Format(a))
					}
					if err != nil && packetgen.AsViolation(err) == nil {
						w.Failf("expected the broker to refuse the CONNECT with %s and close; got %s%s", r.what, describeErr(err), lcAlsoGot(got))
					}
					for i, p := range got {
						if a, ok := p.(*packetgen.Connack); ok && i == 0 && a.ReasonCode.IsError() {
							continue
						}
						w.Failf("expected the broker to refuse the CONNECT with %s, answering nothing after it; got %s", r.what, lcAlsoGot(got)[len(" after "):])
					}
				}
				watch := []*Client{sub}
				if *w.Cfg().Profile.Retain {
					late := w.Connect("late")
					late.Granted(topic, 1)
					watch = append(watch, late)
				}
				lcExpectNothingAll(w, "the PUBLISH after a refused CONNECT is not processed, so nothing is delivered or retained", watch...)
			})
	})
	notTestable5("MQTT-3.1.2-20", "binds only the client (sending PINGREQ in time); the server's side is MQTT-3.1.2-22")
	notTestable5("MQTT-3.1.2-21", "binds only the client (using the Server Keep Alive); the server's side is MQTT-3.1.2-22")
	notTestable5("MQTT-3.1.2-30", "binds only the client (nothing but AUTH or DISCONNECT before CONNACK when it set an Authentication Method)")
}

// cxBadProperty is a CONNECT property block that makes the packet
// malformed or a protocol error (§2.2.2.2, §3.1.2.11).
type cxBadProperty struct {
	what string
	raw  []byte
}

var cxBadProperties = []cxBadProperty{
	{"Session Expiry Interval twice", cxProps([]byte{0x11, 0, 0, 0, 1}, []byte{0x11, 0, 0, 0, 2})},
	{"Receive Maximum 0", cxProps([]byte{0x21, 0, 0})},
	{"Maximum Packet Size 0", cxProps([]byte{0x27, 0, 0, 0, 0})},
	{"Request Problem Information 2", cxProps([]byte{0x17, 2})},
	{"Request Response Information 2", cxProps([]byte{0x19, 2})},
	{"a property CONNECT does not take (Topic Alias)", cxProps([]byte{0x23, 0, 1})},
	{"an unknown property identifier 0x7F", cxProps([]byte{0x7F, 0})},
	{"Authentication Data without Authentication Method", cxProps([]byte{0x16, 0, 1, 'x'})},
	{"a Session Expiry Interval cut short", cxProps([]byte{0x11, 0, 0})},
}

// cxProps joins raw properties.
func cxProps(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// cxLimits are the specs of the client's limits in CONNECT: Maximum
// Packet Size and Request Problem Information.
func cxLimits(s *S) {
	// The server sends no packet larger than the client's Maximum Packet
	// Size: a message that would not fit is dropped for that client as
	// if sent, and later ones flow; a retained one is not sent either,
	// and the dropped one is not sent when the session resumes.
	s.Spec("MQTT-3.1.2-24 MQTT-3.1.2-25", "sends no packet above the client's Maximum Packet Size: a message too large is dropped as if sent, live, retained or resumed",
		Label("packet-size", "session"), func(w *World) {
			const limit = 200
			t := w.Topic("sz")
			small := WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) })
			sub := w.Connect("sub", Persistent, small)
			sub.Granted(t, 1)
			pub := w.Connect("pub")
			big := strings.Repeat("B", 2*limit)
			pub.Publish(t, "small 1", 1, false)
			pub.Publish(t, big, 1, false)
			pub.Publish(t, "small 2", 1, false)
			got := sub.ReceiveAll()
			w.Expectf(slices.Equal(lcPayloads(got), []string{"small 1", "small 2"}),
				`"small 1" and "small 2" only: the message of 400 bytes dropped as if sent`, "%s", pqFormatPublishes(got))
			for _, p := range got {
				w.Expectf(packetgen.Size(p, packetgen.V5) <= limit, fmt.Sprintf("no packet above %d bytes", limit), "%s", packetgen.Format(p))
			}
			sub.Close()
			back, _ := lcReconnect(w, "sub", Persistent, small)
			pqNothingBeforePing(back, "the dropped message counts as sent: nothing to send again")
			if *w.Cfg().Profile.Retain {
				rt := w.Topic("sz/retained")
				pub.Publish(rt, big, 1, true)
				back.Granted(rt, 1)
				pqNothingBeforePing(back, "the retained message of 400 bytes does not fit the client's 200")
			}
		})

	// Request Problem Information 0: no Reason String or User Property
	// on anything but PUBLISH, CONNACK and DISCONNECT. Each packet here
	// is one a server may answer with a reason: PUBACK 0x10 (no
	// subscribers), UNSUBACK 0x11, SUBACK for an invalid filter, PUBCOMP
	// 0x92 for an unknown PUBREL.
	s.Spec("MQTT-3.1.2-29", "sends no Reason String or User Property but on PUBLISH, CONNACK and DISCONNECT when Request Problem Information is 0",
		Label("connect", "properties"), func(w *World) {
			c := w.Connect("c", WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropRequestProblemInformation, byte(0)) }))
			var seen []packetgen.Packet
			check := func(p packetgen.Packet) {
				seen = append(seen, p)
				if props := caProperties(p); props != nil {
					switch p.(type) {
					case *packetgen.Publish, *packetgen.Connack, *packetgen.Disconnect:
						return
					}
					w.Expectf(!props.Has(packetgen.PropReasonString) && !props.Has(packetgen.PropUserProperty),
						"no Reason String or User Property (Request Problem Information 0)", "%s", packetgen.Format(p))
				}
			}
			for _, q := range []packetgen.QoS{1, 2} {
				if q > packetgen.QoS(*w.Cfg().Profile.MaxQoS) {
					continue
				}
				p := Message(w.Topic("nobody"), "no subscribers", q, nil)
				p.PacketID = c.ID()
				c.MustSend(p)
				check(c.NextAnswer("PUBACK or PUBREC"))
				if q == 2 {
					c.MustSend(&packetgen.Pubrel{PacketID: p.PacketID})
					check(c.NextAnswer("PUBCOMP"))
				}
			}
			c.MustSend(&packetgen.Pubrel{PacketID: 999})
			check(c.NextAnswer("PUBCOMP for an unknown PUBREL"))
			check(usUnsubscribe(c, nil, w.Topic("never")))
			id := c.ID()
			sendUnchecked(c, &packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{{Filter: w.Topic("a/#/b"), QoS: 1}}})
			if p, err := c.Recv(w.Cfg().Timeout); err == nil {
				check(p)
			}
		})
}
