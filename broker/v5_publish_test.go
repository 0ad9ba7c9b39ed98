package broker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// MQTT-3.3.2-6: a message that waited in the broker goes out with its
// Message Expiry Interval less the time it waited: queued offline for a
// second with 10 s, it arrives with 9 s or less (and more than 7); one
// without the property gets none. MQTT-3.3.2-5: an expired message is not
// delivered, from an offline session's queue or from the retained store.
func TestV5MessageExpiry(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "away", true, withExpiry(60))
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "q/#", QoS: 1})
	c.Close()
	waitDetached(t, s, "away")
	pubc, _ := connect5(t, s, "pub", true)
	for i, m := range []struct {
		topic  string
		expiry uint32 // 0: none
		retain bool
	}{{"q/short", 1, false}, {"q/ten", 10, false}, {"q/none", 0, false}, {"r/short", 1, true}, {"r/none", 0, true}} {
		p := pub(m.topic, m.topic, 1, uint16(i+1))
		p.Retain = m.retain
		if m.expiry > 0 {
			p.Properties.Set(packetgen.PropMessageExpiryInterval, m.expiry)
		}
		publish5(t, pubc, p)
	}
	time.Sleep(1100 * time.Millisecond)
	c2, _ := connect5(t, s, "away", false, withExpiry(60))
	got := expectPublish(t, c2)
	if e := got.Properties.Get(packetgen.PropMessageExpiryInterval); string(got.Payload) != "q/ten" || e == nil || e.(uint32) > 9 || e.(uint32) < 8 {
		t.Fatalf("first from the queue: %s, want q/ten (q/short has expired) with Message Expiry Interval 8 or 9", packetgen.Format(got))
	}
	if got := expectPublish(t, c2); string(got.Payload) != "q/none" || got.Properties.Has(packetgen.PropMessageExpiryInterval) {
		t.Fatalf("second from the queue: %s, want q/none without an expiry", packetgen.Format(got))
	}
	expectNothing(t, c2, 100*time.Millisecond)
	sub, _ := connect5(t, s, "sub", true)
	subscribe5(t, sub, 0, packetgen.Subscription{Filter: "r/#", QoS: 1})
	if got := expectPublish(t, sub); string(got.Payload) != "r/none" {
		t.Fatalf("from the retained store: %s, want only r/none (r/short has expired)", packetgen.Format(got))
	}
	expectNothing(t, sub, 100*time.Millisecond)
}

// MQTT-3.3.2-4, -15, -16, -17, -18, -20: Payload Format Indicator, Content
// Type, Response Topic, Correlation Data and User Properties reach every
// subscriber unaltered, user properties in order, on live and retained
// deliveries alike. The publisher's Topic Alias belongs to its connection
// (MQTT-3.3.2-7): subscribers get the topic name and no alias.
func TestV5PropertiesForwardedUnaltered(t *testing.T) {
	s := newServer(t, Options{})
	a, _ := connect5(t, s, "a", true)
	subscribe5(t, a, 0, packetgen.Subscription{Filter: "p/#", QoS: 2})
	b, _ := connect5(t, s, "b", true)
	subscribe5(t, b, 0, packetgen.Subscription{Filter: "p/+", QoS: 0})
	pubc, _ := connect5(t, s, "pub", true)
	users := []packetgen.UserProperty{{Key: "z", Value: "1"}, {Key: "a", Value: "ü"}, {Key: "z", Value: "0"}, {Key: "", Value: ""}}
	p := pub("p/1", "héllo", 1, 1)
	p.Retain = true
	p.Properties.Set(packetgen.PropPayloadFormatIndicator, byte(1))
	p.Properties.Set(packetgen.PropContentType, "text/plain; charset=utf-8")
	p.Properties.Set(packetgen.PropResponseTopic, "reply/p1")
	p.Properties.Set(packetgen.PropCorrelationData, []byte{0xFF, 0x00, 0x7F})
	p.Properties.Set(packetgen.PropTopicAlias, uint16(4))
	for _, u := range users {
		p.Properties.Set(packetgen.PropUserProperty, u)
	}
	publish5(t, pubc, p)
	check := func(who string, got *packetgen.Publish) {
		t.Helper()
		g := &got.Properties
		switch {
		case string(got.Topic) != "p/1" || string(got.Payload) != "héllo":
			t.Errorf("%s: got %s", who, packetgen.Format(got))
		case g.Get(packetgen.PropPayloadFormatIndicator) != byte(1):
			t.Errorf("%s: Payload Format Indicator %v, want 1", who, g.Get(packetgen.PropPayloadFormatIndicator))
		case g.ContentType != "text/plain; charset=utf-8" || g.ResponseTopic != "reply/p1" || string(g.CorrelationData) != "\xFF\x00\x7F":
			t.Errorf("%s: properties altered: %s", who, packetgen.Format(got))
		case !slices.Equal(g.UserProperties, users):
			t.Errorf("%s: user properties %q, want %q in that order", who, g.UserProperties, users)
		case g.Has(packetgen.PropTopicAlias):
			t.Errorf("%s: the publisher's topic alias was forwarded: %s", who, packetgen.Format(got))
		}
	}
	check("a (QoS 2)", expectPublish(t, a))
	check("b (QoS 0)", expectPublish(t, b))
	late, _ := connect5(t, s, "late", true)
	subscribe5(t, late, 0, packetgen.Subscription{Filter: "p/1", QoS: 1})
	check("retained", expectPublish(t, late))
}

// §3.3.2.3.4 and §3.3.4: a Topic Alias of 0 or above the broker's Topic
// Alias Maximum gets DISCONNECT 0x94 (MQTT-3.3.2-8, MQTT-3.2.2-17); an
// alias never set, sent with an empty topic, is a protocol error (0x82);
// aliases do not outlive their connection (MQTT-3.3.2-7). The message that
// caused it is not delivered.
func TestV5InboundTopicAliasErrors(t *testing.T) {
	aliased := func(name string, alias uint16) *packetgen.Publish {
		p := pub(name, "x", 0, 0)
		p.Properties.Set(packetgen.PropTopicAlias, alias)
		return p
	}
	for _, tc := range []struct {
		name string
		opts Options
		// before runs on a first connection of the same session, if set.
		before []*packetgen.Publish
		send   *packetgen.Publish
		want   packetgen.ReasonCode
	}{
		{"alias 0", Options{}, nil, aliased("a/b", 0), packetgen.TopicAliasInvalid},
		{"above the maximum", Options{TopicAliasMaximum: 2}, nil, aliased("a/b", 3), packetgen.TopicAliasInvalid},
		{"none accepted", Options{TopicAliasMaximum: -1}, nil, aliased("a/b", 1), packetgen.TopicAliasInvalid},
		{"never set", Options{}, nil, aliased("", 1), packetgen.ProtocolError},
		{"set on another connection", Options{}, []*packetgen.Publish{aliased("a/b", 1)}, aliased("", 1), packetgen.ProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			watcher, _ := connect5(t, s, "watcher", true)
			subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "#"})
			if tc.before != nil {
				first, _ := connect5(t, s, "c", true, withExpiry(60))
				for _, p := range tc.before {
					must(t, first.Send(p))
					expectPublish(t, watcher)
				}
				must(t, first.Disconnect())
				waitDetached(t, s, "c")
			}
			c, _ := connect5(t, s, "c", false, withExpiry(60))
			c.SendRaw(packetgen.AppendUnchecked(nil, tc.send, packetgen.V5), packetgen.Format(tc.send)) //nolint:errcheck
			if d := expectServerDisconnect(t, c, wait); d.ReasonCode != tc.want {
				t.Fatalf("DISCONNECT %s, want %s", d.ReasonCode, tc.want)
			}
			expectNothing(t, watcher, 100*time.Millisecond)
		})
	}
	// Every alias from 1 to the maximum is accepted (MQTT-3.3.2-12).
	s := newServer(t, Options{TopicAliasMaximum: 3})
	watcher, _ := connect5(t, s, "watcher", true)
	subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "#"})
	c, _ := connect5(t, s, "c", true)
	for a := uint16(1); a <= 3; a++ {
		must(t, c.Send(aliased(fmt.Sprint("t/", a), a)))
	}
	for a := uint16(3); a >= 1; a-- {
		must(t, c.Send(aliased("", a)))
	}
	for _, want := range []string{"t/1", "t/2", "t/3", "t/3", "t/2", "t/1"} {
		if got := expectPublish(t, watcher); string(got.Topic) != want {
			t.Fatalf("got %s, want topic %s", packetgen.Format(got), want)
		}
	}
}

// aliasReader resolves the topic aliases a client receives, as a client
// must (§3.3.2.3.4), and checks each against the client's maximum.
type aliasReader struct {
	max     uint16
	aliases map[uint16]string
	used    int // PUBLISH packets that came by alias alone
}

func (r *aliasReader) topic(t *testing.T, p *packetgen.Publish) string {
	t.Helper()
	if !p.Properties.Has(packetgen.PropTopicAlias) {
		return string(p.Topic)
	}
	a := p.Properties.TopicAlias
	if a == 0 || a > r.max {
		// MQTT-3.3.2-11, MQTT-3.1.2-26/27.
		t.Fatalf("the broker sent topic alias %d; the client's maximum is %d: %s", a, r.max, packetgen.Format(p))
	}
	if len(p.Topic) > 0 {
		if r.aliases == nil {
			r.aliases = map[uint16]string{}
		}
		r.aliases[a] = string(p.Topic)
		return string(p.Topic)
	}
	name, ok := r.aliases[a]
	if !ok {
		t.Fatalf("the broker used topic alias %d before setting it: %s", a, packetgen.Format(p))
	}
	r.used++
	return name
}

// Options.OutboundTopicAliases: the broker gives topics aliases on what it
// sends, so a repeated topic goes as an empty name and its alias; never an
// alias above the client's Topic Alias Maximum (MQTT-3.3.2-11,
// MQTT-3.1.2-26), none to a client that accepts none (MQTT-3.1.2-27), and
// none without the option. Aliases start afresh on a new connection
// (MQTT-3.3.2-7).
func TestV5OutboundTopicAliases(t *testing.T) {
	topics := []string{"a/1", "a/1", "a/2", "a/3", "a/1", "a/3", "a/2", "a/2"}
	for _, tc := range []struct {
		name     string
		option   bool
		max      uint16 // the client's Topic Alias Maximum; 0: absent
		wantUsed bool   // some PUBLISH came by alias alone
	}{
		{"two aliases", true, 2, true},
		{"one alias", true, 1, true},
		{"client takes none", true, 0, false},
		{"option off", false, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{OutboundTopicAliases: tc.option})
			mods := []func(*packetgen.Connect){withExpiry(60)}
			if tc.max > 0 {
				mods = append(mods, withProp(packetgen.PropTopicAliasMaximum, tc.max))
			}
			sub, _ := connect5(t, s, "sub", true, mods...)
			subscribe5(t, sub, 0, packetgen.Subscription{Filter: "a/#", QoS: 1})
			pubc, _ := connect5(t, s, "pub", true)
			r := &aliasReader{max: tc.max}
			for i, name := range topics {
				publish5(t, pubc, pub(name, fmt.Sprint(i), 1, uint16(i+1)))
				got := expectPublish(t, sub)
				ackPublish(t, sub, got)
				if n := r.topic(t, got); n != name || string(got.Payload) != fmt.Sprint(i) {
					t.Fatalf("message %d: resolved to %q (%s), want %q", i, n, packetgen.Format(got), name)
				}
			}
			if (r.used > 0) != tc.wantUsed {
				t.Fatalf("%d of %d PUBLISH packets came by alias alone; want some: %v", r.used, len(topics), tc.wantUsed)
			}
			if !tc.wantUsed {
				return
			}
			// A new connection knows no alias: the broker must name the
			// topic again before using one.
			sub.Close()
			waitDetached(t, s, "sub")
			sub2, _ := connect5(t, s, "sub", false, mods...)
			r2 := &aliasReader{max: tc.max}
			for i, name := range []string{"a/1", "a/1"} {
				publish5(t, pubc, pub(name, "again", 1, uint16(100+i)))
				got := expectPublish(t, sub2)
				ackPublish(t, sub2, got)
				if n := r2.topic(t, got); n != name {
					t.Fatalf("after reconnecting: resolved to %q, want %q", n, name)
				}
			}
		})
	}
}

// MQTT-3.1.2-24 with Options.OutboundTopicAliases: a PUBLISH that just
// fits the client's Maximum Packet Size by name must not be pushed over it
// by the three bytes of a new Topic Alias; it goes by name, and the next
// one still arrives whole.
func TestV5OutboundTopicAliasWithinMaximumPacketSize(t *testing.T) {
	s := newServer(t, Options{OutboundTopicAliases: true})
	probe := pub("fit/t", "", 1, 1)
	probe.Payload = []byte(strings.Repeat("p", 20))
	limit := uint32(packetgen.Size(probe, packetgen.V5))
	sub, _ := connect5(t, s, "sub", true, withProp(packetgen.PropTopicAliasMaximum, uint16(5)),
		withProp(packetgen.PropMaximumPacketSize, limit))
	subscribe5(t, sub, 0, packetgen.Subscription{Filter: "fit/#", QoS: 1})
	pubc, _ := connect5(t, s, "pub", true)
	r := &aliasReader{max: 5}
	for i := range 3 {
		publish5(t, pubc, pub("fit/t", strings.Repeat("p", 20), 1, uint16(i+1)))
		got := expectPublish(t, sub)
		ackPublish(t, sub, got)
		if n := packetgen.Size(got, packetgen.V5); n > int(limit) {
			t.Fatalf("message %d: %d bytes to a client whose maximum is %d: %s", i, n, limit, packetgen.Format(got))
		}
		if n := r.topic(t, got); n != "fit/t" {
			t.Fatalf("message %d resolved to %q", i, n)
		}
	}
}

// MQTT-3.3.4-3, -4: a delivery carries the Subscription Identifiers of all
// the client's matching subscriptions that have one; MQTT-3.8.4-3: a
// repeated SUBSCRIBE replaces the subscription, identifier included (a new
// one, or none). Retained messages sent on subscribing carry it too; each
// session gets only its own identifiers.
func TestV5SubscriptionIdentifiersOnDelivery(t *testing.T) {
	s := newServer(t, Options{})
	pubc, _ := connect5(t, s, "pub", true)
	// QoS 1, so the message is retained before the subscription below:
	// a QoS 0 PUBLISH has no answer to wait for.
	r := pub("s/r", "retained", 1, 1)
	r.Retain = true
	publish5(t, pubc, r)

	c, _ := connect5(t, s, "c", true)
	subscribe5(t, c, 1, packetgen.Subscription{Filter: "s/+"})
	if got := expectPublish(t, c); !slices.Equal(got.Properties.SubscriptionIdentifiers, []uint32{1}) || !got.Retain {
		t.Fatalf("retained delivery %s, want RETAIN 1 and Subscription Identifier 1", packetgen.Format(got))
	}
	subscribe5(t, c, 2, packetgen.Subscription{Filter: "s/#", RetainHandling: 2})
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "s/x", RetainHandling: 2}) // no identifier
	other, _ := connect5(t, s, "other", true)
	subscribe5(t, other, 99, packetgen.Subscription{Filter: "s/x", RetainHandling: 2})

	ids := func(want ...uint32) {
		t.Helper()
		must(t, pubc.Send(pub("s/x", "live", 0, 0)))
		got := expectPublish(t, c)
		have := slices.Clone(got.Properties.SubscriptionIdentifiers)
		slices.Sort(have) // their order is not significant
		if !slices.Equal(have, want) {
			t.Fatalf("identifiers %v (%s), want %v", got.Properties.SubscriptionIdentifiers, packetgen.Format(got), want)
		}
		expectNothing(t, c, 50*time.Millisecond) // one copy for the overlapping subscriptions
		if got := expectPublish(t, other); !slices.Equal(got.Properties.SubscriptionIdentifiers, []uint32{99}) {
			t.Fatalf("the other session got identifiers %v, want [99]", got.Properties.SubscriptionIdentifiers)
		}
	}
	ids(1, 2)
	subscribe5(t, c, 7, packetgen.Subscription{Filter: "s/+", RetainHandling: 2})
	ids(2, 7)
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "s/#", RetainHandling: 2})
	ids(7)
}

// MQTT-3.1.2-24, MQTT-3.1.2-25: the broker sends no packet larger than the
// client's Maximum Packet Size. A message too large for one client is
// dropped for that client only, as if it had been delivered: it takes no
// place in the Receive Maximum window, so the next message still comes;
// other clients get it. Retained messages are filtered the same way.
func TestV5MaximumPacketSizeOutbound(t *testing.T) {
	s := newServer(t, Options{})
	small, _ := connect5(t, s, "small", true,
		withProp(packetgen.PropMaximumPacketSize, uint32(64)), withProp(packetgen.PropReceiveMaximum, uint16(1)))
	subscribe5(t, small, 0, packetgen.Subscription{Filter: "m/#", QoS: 1})
	big, _ := connect5(t, s, "big", true)
	subscribe5(t, big, 0, packetgen.Subscription{Filter: "m/#", QoS: 1})
	pubc, _ := connect5(t, s, "pub", true)
	large := strings.Repeat("L", 100)
	for i, m := range []struct {
		payload string
		qos     packetgen.QoS
		retain  bool
	}{{large, 1, false}, {"s1", 1, false}, {large, 0, false}, {"s2", 0, false}, {large, 1, true}} {
		p := pub(fmt.Sprint("m/", i), m.payload, m.qos, uint16(i+1)*uint16(m.qos))
		p.Retain = m.retain
		publish5(t, pubc, p)
	}
	var gotSmall []string
	for _, p := range collect(t, small, 300*time.Millisecond) {
		if n := packetgen.Size(p, packetgen.V5); n > 64 {
			t.Fatalf("the broker sent a %d-byte packet to a client whose maximum is 64: %s", n, packetgen.Format(p))
		}
		gotSmall = append(gotSmall, string(p.Payload))
	}
	if !slices.Equal(gotSmall, []string{"s1", "s2"}) {
		t.Fatalf("small client got %q, want the two small messages only", gotSmall)
	}
	if got := collect(t, big, 300*time.Millisecond); len(got) != 5 {
		t.Fatalf("the other client got %d messages, want all 5", len(got))
	}
	late, _ := connect5(t, s, "late", true, withProp(packetgen.PropMaximumPacketSize, uint32(64)))
	subscribe5(t, late, 0, packetgen.Subscription{Filter: "m/#", QoS: 1})
	expectNothing(t, late, 100*time.Millisecond)
}

// MQTT-3.14.2-3, MQTT-3.2.2-19/20 (§3.2.2.3.7): the Reason String the
// broker likes to add to DISCONNECT and a refusing CONNACK is left out
// where it would make the packet larger than the client's Maximum Packet
// Size; the packet itself still goes.
func TestV5ReasonStringFitsMaximumPacketSize(t *testing.T) {
	s := newServer(t, Options{Users: map[string]string{"u": "secret"}})
	tiny := withProp(packetgen.PropMaximumPacketSize, uint32(12))
	c := pipe(t, s, "refused")
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "refused", CleanStart: true,
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("wrong")}
	tiny(cp)
	must(t, c.Send(cp))
	ack := expectRefused(t, c, packetgen.BadUserNameOrPassword)
	if n := packetgen.Size(ack, packetgen.V5); n > 12 {
		t.Fatalf("CONNACK of %d bytes to a client whose maximum is 12: %s", n, packetgen.Format(ack))
	}
	ok, _ := connect5(t, s, "ok", true, tiny, func(cp *packetgen.Connect) {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "u", true, []byte("secret")
	})
	must(t, ok.Send(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "ok"}))
	d := expectServerDisconnect(t, ok, wait)
	if n := packetgen.Size(d, packetgen.V5); d.ReasonCode != packetgen.ProtocolError || n > 12 {
		t.Fatalf("DISCONNECT of %d bytes: %s, want 0x82 within 12 bytes", n, packetgen.Format(d))
	}
	// With room for it, the reason is given.
	roomy, _ := connect5(t, s, "roomy", true, func(cp *packetgen.Connect) {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "u", true, []byte("secret")
	})
	must(t, roomy.Send(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "roomy"}))
	if d := expectServerDisconnect(t, roomy, wait); d.Properties.ReasonString == "" {
		t.Fatalf("DISCONNECT %s: no Reason String though it fits", packetgen.Format(d))
	}
}

// §3.4.2.1, §3.5.2.1: PUBACK and PUBREC say 0x10 when no subscription
// matched, 0x00 when one did.
func TestV5AckNoMatchingSubscribers(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "c", true)
	for _, qos := range []packetgen.QoS{1, 2} {
		if code := publish5(t, c, pub("nobody", "x", qos, 1)); code != packetgen.NoMatchingSubscribers {
			t.Fatalf("QoS %d to nobody: %s, want 0x10", qos, code)
		}
	}
	sub, _ := connect5(t, s, "sub", true)
	subscribe5(t, sub, 0, packetgen.Subscription{Filter: "somebody"})
	for _, qos := range []packetgen.QoS{1, 2} {
		if code := publish5(t, c, pub("somebody", "x", qos, 1)); code != packetgen.Success {
			t.Fatalf("QoS %d to a subscriber: %s, want 0x00", qos, code)
		}
	}
}

// Options.ValidatePayloadFormat (§3.3.2.3.2): a payload marked UTF-8
// (Payload Format Indicator 1) that is not is refused with 0x99 in PUBACK
// or PUBREC, and with DISCONNECT 0x99 at QoS 0, and is not delivered.
// Valid UTF-8, or any payload marked binary, goes through; without the
// option nothing is checked.
func TestV5ValidatePayloadFormat(t *testing.T) {
	bad := "\xff\xfe not UTF-8"
	marked := func(payload string, pfi byte, qos packetgen.QoS, id uint16) *packetgen.Publish {
		p := pub("v", payload, qos, id)
		p.Properties.Set(packetgen.PropPayloadFormatIndicator, pfi)
		return p
	}
	t.Run("on", func(t *testing.T) {
		s := newServer(t, Options{ValidatePayloadFormat: true})
		sub, _ := connect5(t, s, "sub", true)
		subscribe5(t, sub, 0, packetgen.Subscription{Filter: "v", QoS: 2})
		c, _ := connect5(t, s, "c", true)
		for _, qos := range []packetgen.QoS{1, 2} {
			if code := publish5(t, c, marked(bad, 1, qos, 1)); code != packetgen.PayloadFormatInvalid {
				t.Fatalf("QoS %d: %s, want 0x99", qos, code)
			}
		}
		expectNothing(t, sub, 100*time.Millisecond)
		publish5(t, c, marked(bad, 0, 1, 2))     // binary: anything goes
		publish5(t, c, marked("grüße", 1, 1, 3)) // valid UTF-8
		for _, want := range []string{bad, "grüße"} {
			got := expectPublish(t, sub)
			ackPublish(t, sub, got)
			if string(got.Payload) != want {
				t.Fatalf("got %q, want %q", got.Payload, want)
			}
		}
		must(t, c.Send(marked(bad, 1, 0, 0)))
		if d := expectServerDisconnect(t, c, wait); d.ReasonCode != packetgen.PayloadFormatInvalid {
			t.Fatalf("QoS 0: DISCONNECT %s, want 0x99", d.ReasonCode)
		}
		expectNothing(t, sub, 100*time.Millisecond)
	})
	t.Run("off", func(t *testing.T) {
		s := newServer(t, Options{})
		sub, _ := connect5(t, s, "sub", true)
		subscribe5(t, sub, 0, packetgen.Subscription{Filter: "v"})
		c, _ := connect5(t, s, "c", true)
		if code := publish5(t, c, marked(bad, 1, 1, 1)); code != packetgen.Success {
			t.Fatalf("PUBACK %s without ValidatePayloadFormat, want 0x00", code)
		}
		if got := expectPublish(t, sub); string(got.Payload) != bad {
			t.Fatalf("got %s", packetgen.Format(got))
		}
	})
}

// MQTT-3.2.2-14 and §3.3.1.3: a PUBLISH with RETAIN where the broker said
// Retain Available 0 gets DISCONNECT 0x9A and nothing is stored;
// MQTT-3.2.2-11 and §3.3.1.2: a QoS above the Maximum QoS gets DISCONNECT
// 0x9B. Neither message is delivered.
func TestV5PublishBeyondWhatWasOffered(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		p    *packetgen.Publish
		want packetgen.ReasonCode
	}{
		{"retain", Options{DisableRetain: true}, &packetgen.Publish{Topic: []byte("o"), Payload: []byte("x"), Retain: true}, packetgen.RetainNotSupported},
		{"QoS 2 over 1", Options{MaxQoS: 1}, pub("o", "x", 2, 1), packetgen.QoSNotSupported},
		{"QoS 1 over 0", Options{MaxQoSZero: true}, pub("o", "x", 1, 1), packetgen.QoSNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			sub, _ := connect5(t, s, "sub", true)
			subscribe5(t, sub, 0, packetgen.Subscription{Filter: "o"})
			c, _ := connect5(t, s, "c", true)
			// What is offered still works.
			publish5(t, c, pub("o", "fine", 0, 0))
			expectPublish(t, sub)
			must(t, c.Send(tc.p))
			if d := expectServerDisconnect(t, c, wait); d.ReasonCode != tc.want {
				t.Fatalf("DISCONNECT %s, want %s", d.ReasonCode, tc.want)
			}
			expectNothing(t, sub, 100*time.Millisecond)
			late, _ := connect5(t, s, "late", true)
			subscribe5(t, late, 0, packetgen.Subscription{Filter: "o"})
			expectNothing(t, late, 100*time.Millisecond)
		})
	}
}

// §4.13 together with the above: a 3.1.1 subscriber gets a 5.0
// publisher's message without any property, and a 5.0 subscriber gets a
// 3.1.1 publisher's message with only what its own subscription adds (its
// identifier); the 3.1.1 publisher's PUBACK has no reason code.
func TestV5And311BothWays(t *testing.T) {
	s := newServer(t, Options{})
	old, _ := connect(t, s, "old", true)
	subscribe(t, old, "mix/#", 1)
	neu, _ := connect5(t, s, "new", true)
	subscribe5(t, neu, 5, packetgen.Subscription{Filter: "mix/#", QoS: 1})

	p := pub("mix/5", "from 5.0", 1, 1)
	p.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(30))
	p.Properties.Set(packetgen.PropContentType, "text/plain")
	p.Properties.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "v"})
	pub5, _ := connect5(t, s, "pub5", true)
	publish5(t, pub5, p)
	if got := expectPublish(t, old); string(got.Payload) != "from 5.0" || got.QoS != 1 || !got.Properties.Empty() {
		t.Fatalf("3.1.1 subscriber got %s", packetgen.Format(got))
	}
	ackPublish(t, neu, expectPublish(t, neu))

	oldPub, _ := connect(t, s, "oldpub", true)
	must(t, oldPub.Send(pub("mix/3", "from 3.1.1", 1, 1)))
	if ack, err := wire.Expect[*packetgen.Puback](oldPub, wait); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("3.1.1 PUBACK %v %v", ack, err)
	}
	got := expectPublish(t, neu)
	if string(got.Payload) != "from 3.1.1" || got.QoS != 1 {
		t.Fatalf("5.0 subscriber got %s", packetgen.Format(got))
	}
	if g := got.Properties; g.Present != 0 || len(g.UserProperties) > 0 || !slices.Equal(g.SubscriptionIdentifiers, []uint32{5}) {
		t.Fatalf("5.0 subscriber got properties %s, want only Subscription Identifier 5", packetgen.Format(got))
	}
	if got := expectPublish(t, old); string(got.Payload) != "from 3.1.1" {
		t.Fatalf("3.1.1 subscriber got %s", packetgen.Format(got))
	}
}
