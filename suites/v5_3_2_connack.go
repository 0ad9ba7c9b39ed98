package suites

import (
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// caRefusedConnects are 5.0 CONNECT packets a server refuses, each for a
// client identifier with a stored session (where an accepted CONNECT
// would get session present 1): an unsupported protocol version, an
// authentication method no server offers, and a protocol error in the
// properties.
func caRefusedConnects(w *World) []lcConnectCase {
	stored := w.Connect("stored", Persistent)
	stored.Leave()
	level := lcConnectBytes(w, w.ConnectPacket("stored", Persistent), func(f packetgen.Frame) packetgen.Frame {
		return f.Patch(cxLevelOffset, 42)
	})
	method := w.ConnectPacket("stored", Persistent)
	method.Properties.Set(packetgen.PropAuthenticationMethod, "MQTTBENCH-NO-SUCH-METHOD")
	zero := w.ConnectPacket("stored", Persistent)
	zero.Properties.Raw = append(cxProps([]byte{0x11, 0, 0, 1, 0x2C}), 0x21, 0, 0) // Receive Maximum 0
	return []lcConnectCase{
		{"protocol version 42", level},
		{"an authentication method no server offers", packetgen.AppendUnchecked(nil, method, packetgen.V5)},
		{"Receive Maximum 0 (a protocol error)", packetgen.AppendUnchecked(nil, zero, packetgen.V5)},
	}
}

// caRefusalRules are the statements that make each of caRefusedConnects
// a refusal: a broker accepting one breaks those, not the statement of
// the spec judging the refusals.
var caRefusalRules = map[string][]string{
	"protocol version 42":                       {"MQTT-3.1.2-2"},
	"an authentication method no server offers": {"MQTT-4.12.0-1"},
	"Receive Maximum 0 (a protocol error)":      {"MQTT-3.1.4-1"},
}

// caRefusals sends each refused CONNECT on its own connection and calls
// judge with each refusing CONNACK that comes (a close without one is
// allowed everywhere and judged by other specs). A run where none came
// leaves the spec without a verdict.
func caRefusals(w *World, judge func(c *Client, ack *packetgen.Connack, what string)) {
	judged := 0
	var accepted []lcConnectCase
	for i, k := range caRefusedConnects(w) {
		c := lcSendConnect(w, fmt.Sprintf("k%d", i), k.bytes, "CONNECT with "+k.what)
		p, err := c.Recv(w.Cfg().Timeout)
		if err != nil {
			if !errors.Is(err, wire.ErrClosed) && packetgen.AsViolation(err) == nil {
				w.ifNoAnswer(err, "a CONNACK of 0x80 or more, or a close, for a CONNECT with "+k.what, c.Name)
			}
			continue
		}
		ack, ok := p.(*packetgen.Connack)
		if ok && !ack.ReasonCode.IsError() {
			// Accepted: another statement's failure (caRefusalRules),
			// judged by its own spec; this one judges the others.
			accepted = append(accepted, k)
			c.Close() //nolint:errcheck
			continue
		}
		if !ok {
			w.Failf("expected a CONNACK of 0x80 or more, or a close, for a CONNECT with %s; got %s", k.what, packetgen.Format(p))
		}
		judged++
		judge(c, ack, k.what)
	}
	if judged == 0 && len(accepted) > 0 {
		w.stepFailed(caRefusalRules[accepted[0].what], "expected a CONNACK of 0x80 or more, or a close, for a CONNECT with %s; got CONNACK 0x00", accepted[0].what)
	}
	if judged == 0 {
		Skip("the broker refused every CONNECT by closing, without a CONNACK to judge")
	}
}

func init() {
	addSection5("3.2", "CONNACK", func(s *S) {
		s.Reuse("3.2", "MQTT-3.2.0-1 MQTT-3.2.2-1", "MQTT-3.2.0-1 MQTT-3.2.2-2", "CONNACK 0", "CONNACK 0x00", "a clean session", "Clean Start 1")
		s.Reuse("3.2", "MQTT-3.2.0-1", "MQTT-3.2.0-1")
		s.Reuse("3.2", "MQTT-3.2.2-1", "MQTT-3.2.2-2", "clean session 1", "Clean Start 1")
		s.Reuse("3.2", "MQTT-3.2.2-2", "MQTT-3.2.2-3")
		s.Reuse("3.2", "MQTT-3.2.2-3", "MQTT-3.2.2-3", "clean session 0", "Clean Start 0")

		// One CONNACK per network connection: a second CONNECT is a
		// protocol error (MQTT-3.1.0-2), never answered by another CONNACK.
		s.Spec("MQTT-3.2.0-2", "never sends a second CONNACK on a connection, not even to a second CONNECT",
			Label("connect"), func(w *World) {
				c := w.Connect("once")
				c.MustSend(w.ConnectPacket("once"))
				got, _ := c.Conn.ExpectClosed(w.Cfg().Timeout)
				for _, p := range got {
					if _, ok := p.(*packetgen.Connack); ok {
						w.Failf("expected no second CONNACK on the connection of %s; got %s", c.Name, lcAlsoGot(got)[len(" after "):])
					}
				}
			})

		// The reserved bits 7-1 of the acknowledge flags are 0: the
		// decoder rejects a CONNACK that sets them, so each CONNACK read
		// here, accepted, resumed or refusing, has them clear.
		s.Spec("MQTT-3.2.2-1", "sends CONNACK with the reserved acknowledge flag bits 0, accepting, resuming or refusing",
			Label("connect"), func(w *World) {
				c := w.Connect("c", Persistent)
				c.Leave()
				c, _ = lcReconnect(w, "c", Persistent)
				c.Leave()
				caRefusals(w, func(*Client, *packetgen.Connack, string) {})
			})

		// A CONNACK with a non-zero reason code has session present 0.
		s.Spec("MQTT-3.2.2-6", "sets session present 0 in every CONNACK with a non-zero reason code, even for a stored session",
			Label("connect", "session"), func(w *World) {
				caRefusals(w, func(c *Client, ack *packetgen.Connack, what string) {
					w.Expectf(!ack.SessionPresent, fmt.Sprintf("session present 0 with %s (CONNECT with %s)", ack.ReasonCode, what),
						"%s", packetgen.Format(ack))
				})
			})

		// After a CONNACK of 0x80 or more the server closes.
		s.Spec("MQTT-3.2.2-7 MQTT-4.13.2-1", "closes the connection after a CONNACK with a reason code of 0x80 or more",
			Label("connect"), func(w *World) {
				caRefusals(w, func(c *Client, ack *packetgen.Connack, what string) {
					if got := lcWaitClosed(c, "after "+packetgen.Format(ack)); len(got) > 0 {
						w.Failf("expected the connection closed right after %s; got %s", packetgen.Format(ack), lcAlsoGot(got)[len(" after "):])
					}
				})
			})

		// A server that lacks QoS 1 or 2 says so with Maximum QoS; so a
		// server that says nothing (or 1) serves what it did not exclude:
		// PUBLISH at those QoS is acknowledged, not a protocol error.
		s.Spec("MQTT-3.2.2-9", "serves PUBLISH at every QoS up to the Maximum QoS of its CONNACK (2 when absent)",
			Label("connect", "qos1", "qos2"), func(w *World) {
				caps := w.Caps()
				t := w.Topic("q")
				c := w.Connect("c")
				for q := packetgen.QoS(1); q <= caps.MaximumQoS; q++ {
					rc := c.PublishPacket(Message(t, fmt.Sprintf("at QoS %d", q), q, nil))
					w.Expectf(!rc.IsError() || rc == packetgen.NotAuthorized || rc == packetgen.QuotaExceeded,
						fmt.Sprintf("QoS %d PUBLISH accepted (the CONNACK's Maximum QoS is %d)", q, caps.MaximumQoS), "reason code 0x%02X", byte(rc))
				}
				lcStillOpen(c, fmt.Sprintf("QoS up to %d is served", caps.MaximumQoS))
			})

		// Even without QoS 1 or 2 the server accepts SUBSCRIBE with any
		// requested QoS, granting what it serves.
		s.Spec("MQTT-3.2.2-10", "accepts SUBSCRIBE with a requested QoS of 0, 1 and 2, granting no more than its Maximum QoS",
			Label("subscribe", "qos1", "qos2"), func(w *World) {
				caps := w.Caps()
				c := w.Connect("c")
				for q := packetgen.QoS(0); q <= 2; q++ {
					g := c.Granted(w.Topic(fmt.Sprintf("q%d", q)), q)
					w.Expectf(g <= caps.MaximumQoS && g <= q, fmt.Sprintf("QoS %d requested, granted at most %d", q, min(q, caps.MaximumQoS)),
						"QoS %d granted", g)
				}
				lcStillOpen(c, "SUBSCRIBE at every QoS is accepted")
			})

		// A will at a QoS the server does not serve: the connection is
		// refused (CONNACK 0x9B SHOULD be sent) and closed.
		s.Spec("MQTT-3.2.2-12", "refuses a will QoS above its Maximum QoS and closes, with CONNACK 0x9B",
			Label("connect", "will", "capabilities"), func(w *World) {
				caps := w.Caps()
				w.Lacks(caps.MaximumQoS == 2, "Maximum QoS 2: every will QoS is served")
				w.SendsRefused()
				c := lcSendConnect(w, "willq", packetgen.AppendUnchecked(nil, w.ConnectPacket("willq", WithWill(w.Topic("w"), "w", 2, false)), packetgen.V5),
					"CONNECT with will QoS 2")
				ack := cxRefused(c, fmt.Sprintf("will QoS 2 above Maximum QoS %d", caps.MaximumQoS))
				w.Shouldf(ack != nil && ack.ReasonCode == packetgen.QoSNotSupported, "CONNACK 0x9B (QoS not supported) before the close",
					"%s", cxFormatAck(ack))
			})

		// A retained will where retained messages are not served: the
		// connection is refused (CONNACK 0x9A SHOULD be sent) and closed.
		s.Spec("MQTT-3.2.2-13", "refuses a will with will retain 1 when it has no retained messages, with CONNACK 0x9A",
			Label("connect", "will", "capabilities"), func(w *World) {
				caps := w.Caps()
				w.Lacks(caps.RetainAvailable, "Retain Available (absent or 1)")
				w.SendsRefused()
				c := lcSendConnect(w, "willr", packetgen.AppendUnchecked(nil, w.ConnectPacket("willr", WithWill(w.Topic("w"), "w", 0, true)), packetgen.V5),
					"CONNECT with will retain 1")
				ack := cxRefused(c, "will retain 1 with Retain Available 0")
				w.Shouldf(ack != nil && ack.ReasonCode == packetgen.RetainNotSupported, "CONNACK 0x9A (Retain not supported) before the close",
					"%s", cxFormatAck(ack))
			})

		// Reason String and User Properties stay out of a CONNACK they
		// would make larger than the client's Maximum Packet Size.
		s.Spec("MQTT-3.2.2-19 MQTT-3.2.2-20", "keeps every CONNACK within the client's Maximum Packet Size, leaving out Reason String and User Properties",
			Label("connect", "packet-size"), func(w *World) {
				const limit = 24
				small := WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) })
				c, ack := w.ConnectAck("ok", small)
				caCheckSize(w, ack, limit)
				c.Leave()
				bad := w.ConnectPacket("bad", small)
				bad.Properties.Set(packetgen.PropAuthenticationMethod, "MQTTBENCH-NO-SUCH-METHOD")
				r := lcSendConnect(w, "bad", packetgen.AppendUnchecked(nil, bad, packetgen.V5), "CONNECT with an unknown authentication method")
				if ack := cxRefusedFor(r, "an authentication method no server offers", []string{"MQTT-4.12.0-1"}); ack != nil {
					caCheckSize(w, ack, limit)
				}
			})

		// Without a Server Keep Alive in the CONNACK, the client's keep
		// alive is the one the server uses: a client silent for less is
		// not closed, one silent for 1.5 times it is.
		s.Spec("MQTT-3.2.2-22", "uses the client's keep alive when its CONNACK has no Server Keep Alive",
			Label("keepalive", "slow"), func(w *World) {
				c, ack := w.Connect5("c", KeepAlive(2))
				if ack.Properties.Has(packetgen.PropServerKeepAlive) {
					Skip(fmt.Sprintf("the broker sent Server Keep Alive %d", ack.Properties.ServerKeepAlive))
				}
				start := time.Now()
				c.ExpectNothingFor(2200*time.Millisecond, "keep alive 2 s: silent for 2.2 s is within 1.5 x keep alive")
				limit := 3*time.Second + w.Grace()
				got, err := c.Conn.ExpectClosed(time.Until(start.Add(limit)))
				if err != nil {
					w.Failf("expected the broker to close a client silent for 1.5 x its keep alive of 2 s (within %v with grace); got %s%s",
						limit, describeErr(err), lcAlsoGot(got))
				}
			})
	})
	notTestable5("MQTT-3.2.2-4", "binds only the client (closing on session present 1 without session state)")
	notTestable5("MQTT-3.2.2-5", "binds only the client (discarding its session state on session present 0)")
	notTestable5("MQTT-3.2.2-11", "binds only the client (no PUBLISH above the Maximum QoS); the server's side, DISCONNECT 0x9B, is checked under MQTT-4.13.1-1")
	notTestable5("MQTT-3.2.2-14", "binds only the client (no RETAIN 1 when Retain Available is 0); the server's side is checked under MQTT-4.13.1-1")
	notTestable5("MQTT-3.2.2-17", "binds only the client (Topic Alias within the server's Topic Alias Maximum); the server's side is checked under MQTT-4.13.1-1")
	notTestable5("MQTT-3.2.2-18", "binds only the client (no Topic Alias when the server's Topic Alias Maximum is 0)")
	notTestable5("MQTT-3.2.2-21", "binds only the client (using the Server Keep Alive); the server's side is MQTT-3.1.2-22")
}

// caCheckSize requires that p carries no Reason String or User Property
// that takes it over the client's Maximum Packet Size of limit bytes:
// those the server leaves out where they do not fit (MQTT-3.2.2-19 and
// its kin of every packet). A packet over the limit without them is the
// business of MQTT-3.1.2-24.
func caCheckSize(w *World, p packetgen.Packet, limit int) {
	n := packetgen.Size(p, packetgen.V5)
	if n <= limit {
		return
	}
	props := caProperties(p)
	w.Expectf(props == nil || (!props.Has(packetgen.PropReasonString) && !props.Has(packetgen.PropUserProperty)),
		fmt.Sprintf("%s without Reason String and User Properties, which would take it over the client's Maximum Packet Size of %d bytes", answerName(p), limit),
		"%d bytes: %s", n, packetgen.Format(p))
}

// caLimit is a Maximum Packet Size for a client that a bare answer fits
// in but a Reason String or User Property may not: floor bytes, or the
// size of the CONNACK the broker sent the discovery connection when that
// is larger. A CONNACK over the client's limit must not be sent at all
// (MQTT-3.1.2-24), so a smaller limit leaves a broker whose CONNACK
// carries its capabilities no way to let the client in (mosquitto 2.0
// closes: its 11-byte CONNACK does not fit 8 bytes), and the spec nothing
// to check.
func caLimit(w *World, floor int) int {
	if c := w.cfg.caps; c != nil && c.Ack != nil {
		return max(floor, packetgen.Size(c.Ack, packetgen.V5))
	}
	return floor
}

// caProperties returns the properties of a packet the server sends.
func caProperties(p packetgen.Packet) *packetgen.Properties {
	switch p := p.(type) {
	case *packetgen.Connack:
		return &p.Properties
	case *packetgen.Puback:
		return &p.Properties
	case *packetgen.Pubrec:
		return &p.Properties
	case *packetgen.Pubrel:
		return &p.Properties
	case *packetgen.Pubcomp:
		return &p.Properties
	case *packetgen.Suback:
		return &p.Properties
	case *packetgen.Unsuback:
		return &p.Properties
	case *packetgen.Disconnect:
		return &p.Properties
	case *packetgen.Auth:
		return &p.Properties
	case *packetgen.Publish:
		return &p.Properties
	}
	return nil
}

// cxFormatAck formats a CONNACK that may be missing.
func cxFormatAck(ack *packetgen.Connack) string {
	if ack == nil {
		return "a close without CONNACK"
	}
	return packetgen.Format(ack)
}
