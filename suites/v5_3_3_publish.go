package suites

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// pfProperty is a PUBLISH property the server must forward unaltered to
// every subscriber, with the statement that says so.
type pfProperty struct {
	ids, what string
	set       func(w *World, p *packetgen.Properties)
}

var pfForwarded = []pfProperty{
	{"MQTT-3.3.2-4", "Payload Format Indicator", func(_ *World, p *packetgen.Properties) {
		p.Set(packetgen.PropPayloadFormatIndicator, byte(1))
	}},
	{"MQTT-3.3.2-15", "Response Topic", func(w *World, p *packetgen.Properties) {
		p.Set(packetgen.PropResponseTopic, w.Topic("réponse/to"))
	}},
	{"MQTT-3.3.2-16", "Correlation Data", func(_ *World, p *packetgen.Properties) {
		p.Set(packetgen.PropCorrelationData, []byte{0, 0xFF, 'i', 'd', 0})
	}},
	{"MQTT-3.3.2-17 MQTT-3.3.2-18", "User Properties (order and repeated names included)", func(_ *World, p *packetgen.Properties) {
		p.UserProperties = userProps("z", "last first", "a", "1", "z", "again", "", "empty name", "ключ", "значение")
	}},
	{"MQTT-3.3.2-20", "Content Type", func(_ *World, p *packetgen.Properties) {
		p.Set(packetgen.PropContentType, "application/json; charset=utf-8")
	}},
}

// pfSameUserProps compares user properties in order.
func pfSameUserProps(got, want []packetgen.UserProperty) bool { return slices.Equal(got, want) }

// pfExpectSameProps requires the forwarded properties of want on p,
// unaltered: Payload Format Indicator, Response Topic, Correlation Data,
// Content Type and the user properties in order.
func pfExpectSameProps(w *World, p *packetgen.Publish, want *packetgen.Properties) {
	got := &p.Properties
	for _, id := range []packetgen.PropID{packetgen.PropPayloadFormatIndicator, packetgen.PropResponseTopic,
		packetgen.PropCorrelationData, packetgen.PropContentType} {
		if !want.Has(id) {
			continue
		}
		same := got.Has(id)
		if same {
			switch v := want.Get(id).(type) {
			case []byte:
				same = bytes.Equal(v, got.Get(id).([]byte))
			default:
				same = v == got.Get(id)
			}
		}
		w.Expectf(same, fmt.Sprintf("%s %v unaltered on %q", id, want.Get(id), p.Topic), "%s", packetgen.Format(p))
	}
	w.Expectf(pfSameUserProps(got.UserProperties, want.UserProperties),
		fmt.Sprintf("the user properties %v unaltered and in order on %q", want.UserProperties, p.Topic), "%v", got.UserProperties)
}

func init() {
	addSection5("3.3", "PUBLISH", func(s *S) {
		s.Reuse("3.3", "MQTT-3.3.1-1", "MQTT-3.3.1-1")
		s.Reuse("3.3", "MQTT-3.3.1-2", "MQTT-3.3.1-2")
		s.Reuse("3.3", "MQTT-3.3.1-3", "MQTT-3.3.1-3")
		s.Reuse("3.3", "MQTT-3.3.1-4", "MQTT-3.3.1-4")
		s.Reuse("3.3", "MQTT-3.3.1-5", "MQTT-3.3.1-5")
		s.Reuse("3.3", "MQTT-3.3.1-7", "MQTT-3.3.1-5")
		s.Reuse("3.3", "MQTT-3.3.1-10", "MQTT-3.3.1-6")
		s.Reuse("3.3", "MQTT-3.3.1-11", "MQTT-3.3.1-7")
		s.Reuse("3.3", "MQTT-3.3.1-12", "MQTT-3.3.1-8")
		// Retain Handling 0 (the default): retained messages are sent
		// when the subscription is made.
		s.Reuse("3.3", "MQTT-3.3.1-6", "MQTT-3.3.1-9", "when a subscription is made", "when a subscription with Retain Handling 0 is made")

		// Retain Handling 1: retained messages only for a subscription
		// that did not exist.
		s.Spec("MQTT-3.3.1-10", "sends retained messages for Retain Handling 1 only when the subscription did not exist before",
			Label("retain", "subscription-options"), func(w *World) {
				pqNeedRetain(w)
				t := w.Topic("r")
				pub := w.Connect("pub")
				pub.Publish(t, "retained", 1, true)
				c := w.Connect("c")
				rh1 := Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1, RetainHandling: 1}}
				c.Granted5(rh1)
				p := c.Receive5()
				w.Expectf(string(p.Payload) == "retained" && p.Retain, `the retained message "retained" for the new subscription`, "%s", packetgen.Format(p))
				c.Granted5(rh1)
				pqNothingBeforePing(c, "Retain Handling 1 and the subscription existed: no retained message")
			})

		// Retain Handling 2: no retained messages at all.
		s.Spec("MQTT-3.3.1-11", "sends no retained messages for a subscription with Retain Handling 2",
			Label("retain", "subscription-options"), func(w *World) {
				pqNeedRetain(w)
				t := w.Topic("r")
				pub := w.Connect("pub")
				pub.Publish(t, "retained", 1, true)
				c := w.Connect("c")
				rh2 := Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1, RetainHandling: 2}}
				c.Granted5(rh2)
				c.Granted5(rh2)
				pqNothingBeforePing(c, "Retain Handling 2: no retained message, new subscription or not")
				pub.Publish(t, "live", 1, false)
				p := c.Receive5()
				w.Expectf(string(p.Payload) == "live", `the live message "live" through the subscription`, "%s", packetgen.Format(p))
			})

		// Retain As Published 0: forwarded messages have RETAIN 0.
		s.Reuse("3.3", "MQTT-3.3.1-9", "MQTT-3.3.1-12", "to established subscriptions", "to established subscriptions with Retain As Published 0")

		// Retain As Published 1: forwarded messages keep the RETAIN flag
		// they were published with.
		s.Spec("MQTT-3.3.1-13", "keeps the RETAIN flag of the published message when forwarding to a subscription with Retain As Published 1",
			Label("retain", "subscription-options"), func(w *World) {
				pqNeedRetain(w)
				t := w.Topic("rap")
				c := w.Connect("c")
				c.Granted5(Sub{Subscription: packetgen.Subscription{Filter: t, QoS: 1, RetainAsPublished: true}})
				pub := w.Connect("pub")
				pub.Publish(t, "retained", 1, true)
				pub.Publish(t, "not retained", 1, false)
				for _, want := range []bool{true, false} {
					p := c.Receive5()
					w.Expectf(p.Retain == want, fmt.Sprintf("RETAIN %d on %q (Retain As Published 1)", lcBit(want), p.Payload), "%s", packetgen.Format(p))
				}
			})

		paAliases(s)

		// Response Topic and Content Type are UTF-8 strings: ill-formed
		// UTF-8 or U+0000 in them makes the PUBLISH malformed.
		for _, k := range []struct {
			id, what string
			prop     byte
		}{{"MQTT-3.3.2-13", "Response Topic", byte(packetgen.PropResponseTopic)}, {"MQTT-3.3.2-19", "Content Type", byte(packetgen.PropContentType)}} {
			s.Spec(k.id, "closes the connection on ill-formed UTF-8 or U+0000 in the "+k.what,
				Label("utf8", "properties", "malformed"), func(w *World) {
					var cs []*Client
					bad := []string{"a\xFFb", "a\xED\xA0\x80b", "a\x00b"}
					raw := [][]byte{{'a', 0xFF, 'b'}, {'a', 0xED, 0xA0, 0x80, 'b'}, {'a', 0, 'b'}}
					for i, v := range raw {
						c := w.Connect(fmt.Sprintf("c%d", i))
						p := Message(w.Topic("t"), "x", 0, nil)
						p.Properties.Raw = append([]byte{k.prop, 0, byte(len(v))}, v...)
						sendUnchecked(c, p)
						cs = append(cs, c)
					}
					for i, c := range cs {
						c.ExpectClosedBy(fmt.Sprintf("a %s of % X (%s)", k.what, raw[i], bad[i]), withDisconnect(packetgen.MalformedPacket, packetgen.ProtocolError))
					}
				})
		}
		s.Reuse("3.3", "MQTT-3.3.2-1", "MQTT-3.3.2-1")
		s.Reuse("3.3", "MQTT-3.3.2-2", "MQTT-3.3.2-2")
		s.Reuse("3.3", "MQTT-3.3.2-3", "MQTT-3.3.2-3")
		s.Reuse("3.3", "MQTT-3.3.4-1", "MQTT-3.3.4-1")
		s.Reuse("3.3", "MQTT-3.3.5-1: delivers a message at", "MQTT-3.8.4-8")
		s.Reuse("3.3", "MQTT-3.3.5-1: delivers a message matching", "MQTT-3.3.4-2")

		// Each forwarded property reaches every subscriber unaltered:
		// live, queued for an offline session, and from the retained store.
		for _, k := range pfForwarded {
			s.Spec(k.ids, "forwards the "+k.what+" unaltered to live, offline and later (retained) subscribers",
				Label("properties"), func(w *World) {
					t := w.Topic("props")
					want := &packetgen.Properties{}
					k.set(w, want)
					live := w.Connect("live")
					live.Granted(t, 1)
					away := w.Connect("away", Persistent)
					away.Granted(t, 1)
					away.Leave()
					pub := w.Connect("pub")
					m := Message(t, "with properties", 1, func(p *packetgen.Properties) { *p = *want })
					m.Retain = *w.Cfg().Profile.Retain
					pub.Deliver(m)
					pfExpectSameProps(w, live.Receive5(), want)
					back, _ := lcReconnect(w, "away", Persistent)
					pfExpectSameProps(w, back.Receive5(), want)
					if m.Retain {
						late := w.Connect("late")
						late.Granted(t, 1)
						pfExpectSameProps(w, late.Receive5(), want)
					}
				})
		}

		// An expired message is not sent to a subscriber it has not
		// started to reach: not from an offline session's queue, not from
		// the retained store.
		s.Spec("MQTT-3.3.2-5", "does not deliver a message whose Message Expiry Interval has passed, from an offline session's queue or the retained store",
			Label("expiry", "session", "retain"), func(w *World) {
				t := w.Topic("exp")
				away := w.Connect("away", Persistent)
				away.Granted(t, 1)
				away.Leave()
				pub := w.Connect("pub")
				retain := *w.Cfg().Profile.Retain
				pub.Deliver(Message(t, "expires in 1 s", 1, func(p *packetgen.Properties) {
					p.Set(packetgen.PropMessageExpiryInterval, uint32(1))
				}))
				if retain {
					rt := Message(w.Topic("exp/retained"), "retained, expires in 1 s", 1, func(p *packetgen.Properties) {
						p.Set(packetgen.PropMessageExpiryInterval, uint32(1))
					})
					rt.Retain = true
					pub.Deliver(rt)
				}
				pub.Publish(t, "no expiry", 1, false)
				time.Sleep(time.Second + w.Grace()) // past the interval, with the grace coarse timers need
				back, _ := lcReconnect(w, "away", Persistent)
				got := back.ReceiveAll5()
				var fresh []*packetgen.Publish
				for _, p := range got {
					// DUP 1: the server had started to send it (to the
					// connection that was closing), which expiry allows.
					if !p.Dup || string(p.Payload) == "no expiry" {
						fresh = append(fresh, p)
					}
				}
				w.Expectf(len(fresh) == 1 && string(fresh[0].Payload) == "no expiry", `only "no expiry" from the queue; the message that expired after 1 s deleted`,
					"%s", pqFormatPublishes(got))
				if retain {
					late := w.Connect("late")
					late.Granted(w.Topic("exp/retained"), 1)
					pqNothingBeforePing(late, "the retained message expired after 1 s")
				}
			})

		// A forwarded message carries its expiry interval less the time
		// it waited in the server.
		s.Spec("MQTT-3.3.2-6", "sends the Message Expiry Interval less the time the message waited in the server",
			Label("expiry", "session"), func(w *World) {
				t := w.Topic("exp")
				live := w.Connect("live")
				live.Granted(t, 1)
				away := w.Connect("away", Persistent)
				away.Granted(t, 1)
				away.Leave()
				pub := w.Connect("pub")
				pub.Deliver(Message(t, "expires in 30 s", 1, func(p *packetgen.Properties) {
					p.Set(packetgen.PropMessageExpiryInterval, uint32(30))
				}))
				p := live.Receive5()
				e, ok := p.Properties.Get(packetgen.PropMessageExpiryInterval).(uint32)
				w.Expectf(ok && e <= 30 && e >= 28, "a Message Expiry Interval of 28 to 30 s on the live delivery (published with 30 s)", "%s", packetgen.Format(p))
				const wait = 2 * time.Second
				time.Sleep(wait)
				back, _ := lcReconnect(w, "away", Persistent)
				p = back.Receive5()
				e, ok = p.Properties.Get(packetgen.PropMessageExpiryInterval).(uint32)
				w.Expectf(ok && e <= 28 && e >= 26, "a Message Expiry Interval of 26 to 28 s on the delivery from the queue after 2 s (published with 30 s)",
					"%s", packetgen.Format(p))
			})
	})
	notTestable5("MQTT-3.3.2-9", "binds only the client (Topic Alias above the server's Topic Alias Maximum); the server's side is a Protocol Error, checked under MQTT-4.13.1-1")
	notTestable5("MQTT-3.3.2-10", "binds only the client (accepting the topic aliases it allowed)")
	notTestable5("MQTT-3.3.2-14", "binds the publisher; the server forwards the Response Topic unaltered (MQTT-3.3.2-15) and the specification gives it no reaction to wildcards in it")
	notTestable5("MQTT-3.3.4-6", "binds only the client (no Subscription Identifier in its PUBLISH)")
	notTestable5("MQTT-3.3.4-7", "binds only the client (its own send quota); the server's reaction, DISCONNECT 0x93, is checked under MQTT-4.13.1-1")
	notTestable5("MQTT-3.3.4-8", "binds only the client (not delaying other packets when its quota is used up)")
}

// paAliases are the topic alias specs, client to server and server to
// client (§3.3.2.3.4).
func paAliases(s *S) {
	// Every alias from 1 to the Topic Alias Maximum of the CONNACK is
	// taken: set with a topic, used alone, set again to another topic.
	s.Spec("MQTT-3.3.2-12", "accepts every Topic Alias from 1 to the Topic Alias Maximum of its CONNACK, set, used and set again",
		Label("topic-alias"), func(w *World) {
			max := w.Caps().TopicAliasMaximum
			w.Lacks(max == 0, "Topic Alias Maximum 0 (or none)")
			a, b := w.Topic("a"), w.Topic("b")
			sub := w.Connect("sub")
			sub.Granted(w.Topic("+"), 1)
			c := w.Connect("c")
			send := func(topic string, alias uint16, payload string) {
				p := Message(topic, payload, 1, func(p *packetgen.Properties) { p.Set(packetgen.PropTopicAlias, alias) })
				c.Deliver(p)
				got := sub.Receive5()
				want := topic
				if want == "" {
					want = map[string]string{"1": a, "max": b, "1 again": b}[payload]
				}
				w.Expectf(string(got.Topic) == want && string(got.Payload) == payload,
					fmt.Sprintf("%q delivered on %q (Topic Alias %d)", payload, want, alias), "%s", packetgen.Format(got))
			}
			send(a, 1, "set 1")
			send("", 1, "1")
			send(b, max, "set max")
			send("", max, "max")
			send(b, 1, "set 1 again")
			send("", 1, "1 again")
		})

	// An alias lives with its connection: the next connection of the
	// same client cannot use it, and the server treats an alias it has
	// no topic for as a protocol error.
	s.Spec("MQTT-3.3.2-7", "does not carry a Topic Alias over to the client's next connection",
		Label("topic-alias", "malformed"), func(w *World) {
			w.Lacks(w.Caps().TopicAliasMaximum == 0, "Topic Alias Maximum 0 (or none)")
			t := w.Topic("a")
			sub := w.Connect("sub")
			sub.Granted(t, 1)
			c := w.Connect("c", Persistent)
			c.Deliver(Message(t, "set", 1, func(p *packetgen.Properties) { p.Set(packetgen.PropTopicAlias, uint16(1)) }))
			sub.Receive5()
			c.Leave()
			again, _ := lcReconnect(w, "c", Persistent)
			m := Message("", "alias of the last connection", 1, func(p *packetgen.Properties) { p.Set(packetgen.PropTopicAlias, uint16(1)) })
			m.PacketID = again.ID()
			sendUnchecked(again, m)
			again.ExpectClosedBy("a Topic Alias set on the previous connection only", withDisconnect(packetgen.ProtocolError, packetgen.TopicAliasInvalid))
			sub.ExpectNothing("the PUBLISH with an unknown alias is not delivered")
		})

	// The server's own aliases: none to a client that allowed none, none
	// above the client's Topic Alias Maximum, never 0; each one set with
	// its topic before it is used alone. A broker that uses no aliases
	// passes.
	s.Spec("MQTT-3.1.2-26 MQTT-3.3.2-11 MQTT-3.3.2-8", "sends Topic Aliases only from 1 to the client's Topic Alias Maximum, each set before it is used",
		Label("topic-alias"), func(w *World) {
			const max = 2
			sub := w.Connect("sub", WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropTopicAliasMaximum, uint16(max)) }))
			sub.Granted(w.Topic("#"), 0)
			pub := w.Connect("pub")
			for round := range 3 {
				for i := range 4 {
					pub.Publish(w.Topic(fmt.Sprintf("t%d", i)), fmt.Sprintf("r%d", round), 0, false)
				}
			}
			got := sub.ReceiveAll5() // fails on an alias never set
			used := 0
			for _, p := range got {
				if a, ok := p.Properties.Get(packetgen.PropTopicAlias).(uint16); ok {
					used++
					w.Expectf(a >= 1 && a <= max, fmt.Sprintf("Topic Alias 1 to %d (the client's Topic Alias Maximum)", max), "%s", packetgen.Format(p))
				}
			}
			w.Expectf(len(got) == 12, "the 12 messages", "%d: %s", len(got), pqFormatPublishes(got))
			if used == 0 {
				AddReportEntry("note", "the broker used no topic aliases")
			}
		})

	s.Spec("MQTT-3.1.2-27", "sends no Topic Alias to a client whose CONNECT has no Topic Alias Maximum or 0",
		Label("topic-alias"), func(w *World) {
			subs := []*Client{w.Connect("none"),
				w.Connect("zero", WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropTopicAliasMaximum, uint16(0)) }))}
			for _, s := range subs {
				s.Granted(w.Topic("#"), 0)
			}
			pub := w.Connect("pub")
			for round := range 2 {
				for i := range 3 {
					pub.Publish(w.Topic(fmt.Sprintf("t%d", i)), fmt.Sprintf("r%d", round), 0, false)
				}
			}
			for _, s := range subs {
				for _, p := range s.ReceiveAll() {
					w.Expectf(!p.Properties.Has(packetgen.PropTopicAlias) && len(p.Topic) > 0, fmt.Sprintf("no Topic Alias at %s", s.Name), "%s", packetgen.Format(p))
				}
			}
		})
}
