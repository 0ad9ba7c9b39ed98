package suites

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// erRefuseSubscribe requires a SUBSCRIBE the server may not grant to be
// refused: a SUBACK of 0x80 or more, or DISCONNECT with a fitting code
// (SHOULD) and the close. It returns the SUBACK code or 0 after a close.
func erRefuseSubscribe(c *Client, sp *packetgen.Subscribe, why string, code packetgen.ReasonCode) {
	w := c.w
	sp.PacketID = c.ID()
	sendUnchecked(c, sp)
	p, err := c.Recv(w.cfg.Timeout)
	switch {
	case errors.Is(err, wire.ErrClosed):
		w.Warnf("expected DISCONNECT with 0x%02X (%s) before the close (%s; SHOULD); got a bare close", byte(code), code, why)
		return
	case err != nil:
		w.ifNoAnswer(err, "SUBACK or DISCONNECT ("+why+")", c.Name)
		w.Failf("expected a refusing SUBACK, or the connection closed (%s); got %s", why, describeErr(err))
	}
	switch p := p.(type) {
	case *packetgen.Suback:
		if len(p.ReasonCodes) != 1 || !p.ReasonCodes[0].IsError() {
			w.Failf("expected SUBACK with a code of 0x80 or more, or the connection closed (%s); got %s", why, packetgen.Format(p))
		}
		w.Shouldf(p.ReasonCodes[0] == code || p.ReasonCodes[0] == packetgen.UnspecifiedError,
			fmt.Sprintf("SUBACK 0x%02X (%s)", byte(code), code), "%s", packetgen.Format(p))
	case *packetgen.Disconnect:
		c.held = nil
		if !p.ReasonCode.IsError() {
			w.Failf("expected SUBACK with a code of 0x80 or more, or DISCONNECT and a close (%s); got %s", why, packetgen.Format(p))
		}
		w.Shouldf(p.ReasonCode == code || p.ReasonCode == packetgen.UnspecifiedError || p.ReasonCode == packetgen.ProtocolError,
			fmt.Sprintf("DISCONNECT 0x%02X (%s)", byte(code), code), "%s", packetgen.Format(p))
		lcWaitClosed(c, "after "+packetgen.Format(p))
	default:
		w.Failf("expected a refusing SUBACK, or the connection closed (%s); got %s", why, packetgen.Format(p))
	}
}

// erMalformed judges one malformed case of packetgen in 5.0: where the
// case says close, the server closes (DISCONNECT with the case's code,
// 0x81 or 0x82 first, SHOULD, after CONNACK only); where it says refuse,
// a CONNACK or SUBACK of 0x80 or more does too; then the broker serves a
// fresh connection.
func erMalformed(w *World, k packetgen.Case) {
	var c *Client
	if k.Expect == packetgen.ExpectAccept {
		w.capsGuard(nil, len(k.Bytes), k.Bytes...) // valid only within the broker's limits
	}
	if k.Phase == packetgen.PhaseFirst {
		c = w.Dial("malformed")
	} else {
		c = w.Connect("malformed")
	}
	if err := c.SendRaw(k.Bytes, k.String()); err != nil && k.Expect == packetgen.ExpectAccept {
		w.Failf("expected the broker to take %s; the write failed: %v", k, err)
	}
	codes := withDisconnect(k.Reason, packetgen.MalformedPacket, packetgen.ProtocolError)
	switch {
	case k.Expect == packetgen.ExpectAccept:
		c.MustSend(&packetgen.Pingreq{})
		for {
			p := c.NextAnswer("PINGRESP after " + k.Detail)
			if _, ok := p.(*packetgen.Pingresp); ok {
				break
			}
			if _, ok := p.(*packetgen.Puback); !ok {
				w.Failf("expected PUBACK or PINGRESP after %s; got %s", k.Detail, packetgen.Format(p))
			}
		}
	case k.Phase == packetgen.PhaseFirst && k.Class == "bad-protocol":
		// An unknown protocol level: the server cannot know which
		// version's CONNACK the client reads (3.1.1's 0x01 is fine).
		got, err := c.Conn.ExpectClosed(w.cfg.Timeout + w.cfg.Grace)
		if v := packetgen.AsViolation(err); v != nil && strings.Contains(err.Error(), "CONNACK") {
			break
		}
		if err != nil {
			w.Failf("expected the broker to close the connection (%s); got %s%s", k.Detail, describeErr(err), lcAlsoGot(got))
		}
		for i, p := range got {
			if a, ok := p.(*packetgen.Connack); !ok || i > 0 || !a.ReasonCode.IsError() {
				w.Failf("expected the connection closed, after a CONNACK of 0x80 or more or none (%s); got %s", k.Detail, lcAlsoGot(got)[len(" after "):])
			}
		}
	case k.Phase == packetgen.PhaseFirst:
		cxRefused(c, k.Detail)
	case k.Expect == packetgen.ExpectClose && erAmbiguous(k) != "":
		erClosedOrWarn(c, k, codes)
	case k.Expect == packetgen.ExpectClose:
		c.ExpectClosedBy(k.Detail, codes)
	case k.Expect == packetgen.ExpectRefuse:
		p, err := c.Recv(w.cfg.Timeout)
		if err == nil {
			if s, ok := p.(*packetgen.Suback); ok && len(s.ReasonCodes) > 0 && s.ReasonCodes[0].IsError() {
				break
			}
			if d, ok := p.(*packetgen.Disconnect); ok && d.ReasonCode.IsError() {
				lcWaitClosed(c, "after "+packetgen.Format(d))
				break
			}
			w.Failf("expected a refusal (SUBACK of 0x80 or more) or the connection closed (%s); got %s", k.Detail, packetgen.Format(p))
		}
		if !errors.Is(err, wire.ErrClosed) {
			w.ifNoAnswer(err, "a refusal or the connection closed ("+k.Detail+")", c.Name)
			w.Failf("expected a refusal or the connection closed (%s); got %s", k.Detail, describeErr(err))
		}
	case k.Expect == packetgen.ExpectWaitOrClose:
		p, err := c.Recv(w.cfg.Quiet)
		if d, ok := p.(*packetgen.Disconnect); err == nil && ok && d.ReasonCode.IsError() {
			break // closing, with a reason
		}
		if err == nil {
			w.Failf("expected the broker to wait for the rest of the packet or close the connection (%s); got %s", k.Detail, packetgen.Format(p))
		}
		if !errors.Is(err, wire.ErrTimeout) && !errors.Is(err, wire.ErrClosed) {
			w.Failf("expected the broker to wait or close the connection (%s); got %s", k.Detail, describeErr(err))
		}
	}
	w.Connect("fresh").Ping()
}

// erAmbiguous says why a malformed case is one the specification does not
// clearly make an error the server must close on, or "". Closing is
// right under either reading; keeping the connection earns a warning,
// never a failure.
func erAmbiguous(k packetgen.Case) string {
	switch {
	case k.Class == "varint-not-minimal":
		// Reading 1: a length breaking MQTT-1.5.5-1 is a Malformed Packet,
		// closed on (MQTT-4.13.1-1). Reading 2: MQTT-1.5.5-1 binds the
		// sender, and the packet parses, while §4.13 calls malformed only
		// a packet that "cannot be parsed".
		return "MQTT-1.5.5-1 binds the sender; the packet still parses, and §4.13 calls malformed a packet that cannot be parsed"
	case k.Class == "wrong-type-property" && strings.Contains(k.Detail, "Payload Format Indicator"):
		// Reading 1: the property has two values (§3.3.2.3.2), so another
		// is a Protocol Error. Reading 2: unlike Request Problem
		// Information, Retain Available and the other byte properties,
		// the specification never calls another value a Protocol Error.
		return "§3.3.2.3.2 lists the values 0 and 1 but, unlike the other byte properties, does not call another value a Protocol Error"
	}
	return ""
}

// erClosedOrWarn judges a case erAmbiguous names: a close (with any
// DISCONNECT ExpectClosedBy accepts) passes, an open connection is a
// warning.
func erClosedOrWarn(c *Client, k packetgen.Case, codes closeHow) {
	w := c.w
	got, err := c.Conn.ExpectClosed(w.cfg.Timeout)
	if err == nil {
		for _, p := range got {
			if d, ok := p.(*packetgen.Disconnect); !ok || !d.ReasonCode.IsError() {
				w.Failf("expected the connection closed, perhaps after a DISCONNECT of 0x80 or more (%s); got %s", k.Detail, packetgen.Format(p))
			}
			d := p.(*packetgen.Disconnect)
			if len(codes.codes) > 0 && !slices.Contains(codes.codes, d.ReasonCode) && d.ReasonCode != packetgen.UnspecifiedError {
				w.Warnf("expected DISCONNECT with %s (%s); got %s", codeList(codes.codes), k.Detail, packetgen.Format(d))
			}
		}
		return
	}
	if !errors.Is(err, wire.ErrTimeout) {
		w.Failf("expected the broker to close the connection or keep it (%s); got %s", k.Detail, describeErr(err))
	}
	for _, p := range got {
		if d, ok := p.(*packetgen.Disconnect); ok {
			w.stepFailed(ruleDisconnectClose, "expected the broker to close the connection of %s after %s; it stayed open %s",
				c.Name, packetgen.Format(d), w.cfg.Timeout)
		}
	}
	w.Warnf("expected the connection closed on %s; it stayed open %s (the specification is ambiguous here: %s)",
		k.Detail, w.cfg.Timeout, erAmbiguous(k))
}

func init() {
	addSection5("4.13", "Handling errors", func(s *S) {
		// One spec per 5.0 malformed class of packetgen, the case drawn
		// from the run's seed; its name cites the rule the case breaks.
		for _, mc := range packetgen.MalformedClasses(packetgen.V5) {
			h := fnv.New64a()
			h.Write([]byte(mc.Name)) //nolint:errcheck // hashing cannot fail
			k, err := packetgen.NewGen(s.cfg.Seed^h.Sum64(), packetgen.V5).Malformed(mc.Name)
			if err != nil {
				panic("suites: " + err.Error())
			}
			ids := "MQTT-4.13.1-1"
			if k.Rule != "" && k.Rule != ids {
				ids += " " + k.Rule
			}
			var text string
			switch k.Expect {
			case packetgen.ExpectClose:
				text = "closes the connection on " + mc.Name + " (" + mc.Desc + ")"
			case packetgen.ExpectRefuse:
				text = "refuses or closes the connection on " + mc.Name + " (" + mc.Desc + ")"
			case packetgen.ExpectWaitOrClose:
				text = "waits or closes the connection on " + mc.Name + " (" + mc.Desc + "), and keeps serving others"
			case packetgen.ExpectAccept:
				ids, text = k.Rule, "keeps serving after "+mc.Name+" ("+mc.Desc+")"
			}
			s.Spec(ids, text, Label("malformed"), func(w *World) { erMalformed(w, k) })
		}

		// What the broker says it lacks, it refuses: a PUBLISH above its
		// Maximum QoS (0x9B) or with RETAIN 1 without Retain Available
		// (0x9A) is a protocol error; a shared (0x9E), wildcard (0xA2)
		// subscription or one with a Subscription Identifier (0xA1) gets a
		// refusing SUBACK or the connection closed.
		s.Spec("MQTT-4.13.1-1", "closes the connection on a PUBLISH above the Maximum QoS of its CONNACK, with DISCONNECT 0x9B",
			Label("capabilities", "qos1", "qos2"), func(w *World) {
				caps := w.Caps()
				w.Lacks(caps.MaximumQoS == 2, "Maximum QoS 2")
				w.SendsRefused()
				c := w.Connect("c")
				sendUnchecked(c, &packetgen.Publish{Topic: []byte(w.Topic("q")), Payload: []byte("x"), QoS: caps.MaximumQoS + 1, PacketID: c.ID()})
				c.ExpectClosedBy(fmt.Sprintf("PUBLISH at QoS %d above Maximum QoS %d", caps.MaximumQoS+1, caps.MaximumQoS), withDisconnect(packetgen.QoSNotSupported))
			})
		s.Spec("MQTT-4.13.1-1", "closes the connection on a PUBLISH with RETAIN 1 when its CONNACK says Retain Available 0, with DISCONNECT 0x9A",
			Label("capabilities", "retain"), func(w *World) {
				w.Lacks(w.Caps().RetainAvailable, "Retain Available (absent or 1)")
				w.SendsRefused()
				c := w.Connect("c")
				c.MustSend(&packetgen.Publish{Topic: []byte(w.Topic("r")), Payload: []byte("x"), Retain: true})
				c.ExpectClosedBy("PUBLISH with RETAIN 1 and Retain Available 0", withDisconnect(packetgen.RetainNotSupported))
			})
		s.Spec("MQTT-4.13.1-1", "refuses a shared subscription when its CONNACK says Shared Subscription Available 0 (0x9E)",
			Label("capabilities", "shared"), func(w *World) {
				w.Lacks(w.Caps().SharedAvailable, "Shared Subscription Available (absent or 1)")
				w.SendsRefused()
				erRefuseSubscribe(w.Connect("c"), &packetgen.Subscribe{Subscriptions: []packetgen.Subscription{{Filter: "$share/g/" + w.Topic("s"), QoS: 1}}},
					"a shared subscription with Shared Subscription Available 0", packetgen.SharedSubscriptionsNotSupported)
			})
		s.Spec("MQTT-4.13.1-1", "refuses a wildcard subscription when its CONNACK says Wildcard Subscription Available 0 (0xA2)",
			Label("capabilities", "wildcard"), func(w *World) {
				w.Lacks(w.Caps().WildcardAvailable, "Wildcard Subscription Available (absent or 1)")
				w.SendsRefused()
				erRefuseSubscribe(w.Connect("c"), &packetgen.Subscribe{Subscriptions: []packetgen.Subscription{{Filter: w.Topic("+"), QoS: 1}}},
					"a wildcard subscription with Wildcard Subscription Available 0", packetgen.WildcardSubscriptionsNotSupported)
			})
		s.Spec("MQTT-4.13.1-1", "refuses a Subscription Identifier when its CONNACK says Subscription Identifiers Available 0 (0xA1)",
			Label("capabilities", "subscription-ids"), func(w *World) {
				w.Lacks(w.Caps().SubIDsAvailable, "Subscription Identifiers Available (absent or 1)")
				w.SendsRefused()
				sp := &packetgen.Subscribe{Subscriptions: []packetgen.Subscription{{Filter: w.Topic("i"), QoS: 1}}}
				sp.Properties.Set(packetgen.PropSubscriptionIdentifier, uint32(5))
				erRefuseSubscribe(w.Connect("c"), sp, "a Subscription Identifier with Subscription Identifiers Available 0", packetgen.SubscriptionIdentifiersNotSupported)
			})

		// A packet larger than the Maximum Packet Size the broker
		// advertised: a protocol error, DISCONNECT 0x95 (SHOULD).
		s.Spec("MQTT-4.13.1-1", "closes the connection on a packet larger than the Maximum Packet Size of its CONNACK, with DISCONNECT 0x95",
			Label("capabilities", "packet-size"), func(w *World) {
				caps := w.Caps()
				w.Lacks(caps.MaximumPacketSize == 0 || caps.MaximumPacketSize > 1<<20, "no Maximum Packet Size of 1 MiB or less")
				w.SendsRefused()
				c := w.Connect("c")
				payload := strings.Repeat("x", int(caps.MaximumPacketSize))
				c.SendRaw(packetgen.AppendUnchecked(nil, &packetgen.Publish{Topic: []byte(w.Topic("big")), Payload: []byte(payload)}, packetgen.V5), //nolint:errcheck // a broker may close mid-write
					fmt.Sprintf("PUBLISH of %d bytes", caps.MaximumPacketSize+32))
				c.ExpectClosedBy(fmt.Sprintf("a packet above the Maximum Packet Size of %d", caps.MaximumPacketSize), withDisconnect(packetgen.PacketTooLarge))
			})

		// A Topic Alias above the Topic Alias Maximum the broker
		// advertised (or any, when it advertised none): DISCONNECT 0x94.
		s.Spec("MQTT-4.13.1-1", "closes the connection on a Topic Alias above the Topic Alias Maximum of its CONNACK, with DISCONNECT 0x94",
			Label("capabilities", "topic-alias"), func(w *World) {
				caps := w.Caps()
				w.Lacks(caps.TopicAliasMaximum == 65535, "Topic Alias Maximum 65535: no alias is above it")
				c := w.Connect("c")
				p := Message(w.Topic("alias"), "x", 0, func(p *packetgen.Properties) {
					p.Set(packetgen.PropTopicAlias, caps.TopicAliasMaximum+1)
				})
				sendUnchecked(c, p)
				c.ExpectClosedBy(fmt.Sprintf("Topic Alias %d above Topic Alias Maximum %d", caps.TopicAliasMaximum+1, caps.TopicAliasMaximum),
					withDisconnect(packetgen.TopicAliasInvalid))
			})
	})
}
