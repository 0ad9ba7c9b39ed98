package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// MQTT-3.8.3-3: with No Local a client's own messages are not sent back to
// it; other clients' are, and so is its own through another of its
// subscriptions without the option.
func TestV5NoLocal(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "me", true)
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "n/#", QoS: 1, NoLocal: true})
	must(t, c.Send(pub("n/1", "mine", 0, 0)))
	expectNothing(t, c, 150*time.Millisecond)
	other, _ := connect5(t, s, "other", true)
	must(t, other.Send(pub("n/1", "theirs", 0, 0)))
	if got := expectPublish(t, c); string(got.Payload) != "theirs" {
		t.Fatalf("got %s", packetgen.Format(got))
	}
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "n/+", QoS: 1})
	must(t, c.Send(pub("n/2", "mine again", 0, 0)))
	if got := expectPublish(t, c); string(got.Payload) != "mine again" {
		t.Fatalf("got %s", packetgen.Format(got))
	}
}

// MQTT-3.3.1-12, -13: a live delivery carries RETAIN as published only to
// a subscription with Retain As Published; otherwise RETAIN 0. Retained
// messages sent on subscribing carry RETAIN 1 either way.
func TestV5RetainAsPublished(t *testing.T) {
	s := newServer(t, Options{})
	rap, _ := connect5(t, s, "rap", true)
	subscribe5(t, rap, 0, packetgen.Subscription{Filter: "k", RetainAsPublished: true})
	plain, _ := connect5(t, s, "plain", true)
	subscribe5(t, plain, 0, packetgen.Subscription{Filter: "k"})
	pubc, _ := connect5(t, s, "pub", true)
	for _, retain := range []bool{true, false} {
		p := pub("k", fmt.Sprint(retain), 0, 0)
		p.Retain = retain
		must(t, pubc.Send(p))
		if got := expectPublish(t, rap); got.Retain != retain {
			t.Fatalf("Retain As Published: RETAIN %v for a message published with %v", got.Retain, retain)
		}
		if got := expectPublish(t, plain); got.Retain {
			t.Fatalf("without Retain As Published: RETAIN 1 on a live delivery")
		}
	}
	for _, o := range []bool{true, false} {
		c, _ := connect5(t, s, fmt.Sprint("late-", o), true)
		subscribe5(t, c, 0, packetgen.Subscription{Filter: "k", RetainAsPublished: o})
		if got := expectPublish(t, c); !got.Retain || string(got.Payload) != "true" {
			t.Fatalf("retained delivery %s with Retain As Published %v, want RETAIN 1", packetgen.Format(got), o)
		}
	}
}

// MQTT-3.3.1-9, -10, -11, MQTT-3.8.4-4: Retain Handling 0 sends the
// retained messages on every SUBSCRIBE, 1 only when the subscription is
// new (again after UNSUBSCRIBE), 2 never.
func TestV5RetainHandling(t *testing.T) {
	s := newServer(t, Options{})
	pubc, _ := connect5(t, s, "pub", true)
	r := pub("rh/x", "kept", 1, 1)
	r.Retain = true
	publish5(t, pubc, r)
	for _, tc := range []struct {
		rh   byte
		want []bool // retained message sent on: new, repeated, after unsubscribe
	}{
		{0, []bool{true, true, true}},
		{1, []bool{true, false, true}},
		{2, []bool{false, false, false}},
	} {
		t.Run(fmt.Sprint("retain handling ", tc.rh), func(t *testing.T) {
			c, _ := connect5(t, s, "c", true)
			sub := packetgen.Subscription{Filter: "rh/#", QoS: 1, RetainHandling: tc.rh}
			check := func(step string, want bool) {
				t.Helper()
				if !want {
					expectNothing(t, c, 100*time.Millisecond)
					return
				}
				got := expectPublish(t, c)
				ackPublish(t, c, got)
				if !got.Retain || string(got.Payload) != "kept" {
					t.Fatalf("%s: got %s, want the retained message", step, packetgen.Format(got))
				}
			}
			subscribe5(t, c, 0, sub)
			check("new subscription", tc.want[0])
			subscribe5(t, c, 0, sub)
			check("repeated subscription", tc.want[1])
			must(t, c.Send(&packetgen.Unsubscribe{PacketID: 2, Filters: []string{"rh/#"}}))
			if _, err := wire.Expect[*packetgen.Unsuback](c, wait); err != nil {
				t.Fatal(err)
			}
			subscribe5(t, c, 0, sub)
			check("after unsubscribing", tc.want[2])
		})
	}
}

// §3.8.2.1.2 / §2.2.2.2: a Subscription Identifier of 0 is a protocol
// error: the broker closes with DISCONNECT 0x82 (or 0x81) and grants
// nothing.
func TestV5SubscriptionIdentifierZero(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "c", true)
	sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "z"}}}
	sp.Properties.SubscriptionIdentifiers = []uint32{0}
	must(t, c.SendRaw(packetgen.AppendUnchecked(nil, sp, packetgen.V5), "SUBSCRIBE with Subscription Identifier 0"))
	switch d := expectServerDisconnect(t, c, wait); d.ReasonCode {
	case packetgen.ProtocolError, packetgen.MalformedPacket:
	default:
		t.Fatalf("DISCONNECT %s, want 0x82 or 0x81", d.ReasonCode)
	}
	pubc, _ := connect5(t, s, "pub", true)
	if code := publish5(t, pubc, pub("z", "x", 1, 1)); code != packetgen.NoMatchingSubscribers {
		t.Fatalf("PUBACK %s: the refused SUBSCRIBE subscribed", code)
	}
}

// MQTT-3.8.4-6, -7, MQTT-3.9.3-1, -2: SUBACK has one code per filter, in
// order: the QoS granted (capped by the broker's Maximum QoS, MQTT-3.2.2-10
// still takes any request) or why not: 0x8F an invalid filter, 0x9E a
// shared subscription where none is offered, 0xA2 a wildcard where none is
// offered. Refused filters deliver nothing.
func TestV5SubackReasonCodes(t *testing.T) {
	filters := []packetgen.Subscription{
		{Filter: "plain/x", QoS: 2},
		{Filter: "a/#/b", QoS: 0},
		{Filter: "$share/g/sh/x", QoS: 1},
		{Filter: "wild/+", QoS: 1},
		{Filter: "$share/g/ws/#", QoS: 0},
		{Filter: "$share/g+/x", QoS: 0}, // a share name with a wildcard
		{Filter: "$share//x", QoS: 0},   // an empty share name
		{Filter: "$share/g", QoS: 0},    // no filter
	}
	const inv = packetgen.TopicFilterInvalid
	for _, tc := range []struct {
		name string
		opts Options
		want []packetgen.ReasonCode
	}{
		{"everything offered", Options{}, []packetgen.ReasonCode{2, inv, 1, 1, 0, inv, inv, inv}},
		{"MaxQoS 1", Options{MaxQoS: 1}, []packetgen.ReasonCode{1, inv, 1, 1, 0, inv, inv, inv}},
		{"MaxQoSZero", Options{MaxQoSZero: true}, []packetgen.ReasonCode{0, inv, 0, 0, 0, inv, inv, inv}},
		{"DisableShared", Options{DisableShared: true}, []packetgen.ReasonCode{2, inv, 0x9E, 1, 0x9E, inv, inv, inv}},
		{"DisableWildcard", Options{DisableWildcard: true}, []packetgen.ReasonCode{2, inv, 1, 0xA2, 0xA2, inv, inv, inv}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			c, _ := connect5(t, s, "c", true)
			sp := &packetgen.Subscribe{PacketID: 9, Subscriptions: filters}
			must(t, c.SendRaw(packetgen.AppendUnchecked(nil, sp, packetgen.V5), packetgen.Format(sp)))
			ack, err := wire.Expect[*packetgen.Suback](c, wait)
			if err != nil {
				t.Fatal(err)
			}
			if ack.PacketID != 9 || !slices.Equal(ack.ReasonCodes, tc.want) {
				t.Fatalf("SUBACK id %d %v, want id 9 %v", ack.PacketID, ack.ReasonCodes, tc.want)
			}
			pubc, _ := connect5(t, s, "pub", true)
			for i, f := range filters {
				topic := map[string]string{"plain/x": "plain/x", "$share/g/sh/x": "sh/x", "wild/+": "wild/w", "$share/g/ws/#": "ws/x"}[f.Filter]
				if topic == "" {
					continue
				}
				must(t, pubc.Send(pub(topic, topic, 0, 0)))
				if tc.want[i].IsError() {
					expectNothing(t, c, 50*time.Millisecond)
					continue
				}
				if got := expectPublish(t, c); string(got.Topic) != topic {
					t.Fatalf("got %s, want %s", packetgen.Format(got), topic)
				}
			}
		})
	}
}

// §3.11.3, MQTT-3.10.4-6: UNSUBACK says per filter 0x00 when a
// subscription was removed, 0x11 when there was none (also for a filter
// repeated in the same packet, handled as a sequence), 0x8F for an
// invalid filter; shared subscriptions too. The removed ones deliver
// nothing more (MQTT-3.10.4-1, -2).
func TestV5UnsubackReasonCodes(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "c", true)
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "u/1"}, packetgen.Subscription{Filter: "$share/g/u/2"})
	up := &packetgen.Unsubscribe{PacketID: 4, Filters: []string{"u/1", "u/none", "u/1", "a/#/b", "$share/g/u/2", "$share/g/u/2"}}
	must(t, c.SendRaw(packetgen.AppendUnchecked(nil, up, packetgen.V5), packetgen.Format(up)))
	ack, err := wire.Expect[*packetgen.Unsuback](c, wait)
	if err != nil {
		t.Fatal(err)
	}
	want := []packetgen.ReasonCode{packetgen.Success, packetgen.NoSubscriptionExisted, packetgen.NoSubscriptionExisted,
		packetgen.TopicFilterInvalid, packetgen.Success, packetgen.NoSubscriptionExisted}
	if ack.PacketID != 4 || !slices.Equal(ack.ReasonCodes, want) {
		t.Fatalf("UNSUBACK id %d %v, want id 4 %v", ack.PacketID, ack.ReasonCodes, want)
	}
	pubc, _ := connect5(t, s, "pub", true)
	for _, topic := range []string{"u/1", "u/2"} {
		if code := publish5(t, pubc, pub(topic, "x", 1, 1)); code != packetgen.NoMatchingSubscribers {
			t.Fatalf("PUBACK %s on %s after unsubscribing, want 0x10", code, topic)
		}
	}
	expectNothing(t, c, 100*time.Millisecond)
}

// shareMembers connects n 5.0 clients named prefix0.. with opts, each
// subscribed to filter at QoS 1.
func shareMembers(t *testing.T, s *Server, prefix, filter string, n int, mods ...func(*packetgen.Connect)) []*wire.Conn {
	t.Helper()
	var out []*wire.Conn
	for i := range n {
		c, _ := connect5(t, s, fmt.Sprint(prefix, i), true, mods...)
		subscribe5(t, c, 0, packetgen.Subscription{Filter: filter, QoS: 1})
		out = append(out, c)
	}
	return out
}

// §4.8.2: each message to a shared subscription goes to exactly one of
// its members (no duplicates, none lost), spread over them; every group,
// and every ordinary subscription, gets its own copy.
func TestV5SharedSubscriptionSpreads(t *testing.T) {
	s := newServer(t, Options{})
	g := shareMembers(t, s, "g", "$share/g/sh/#", 2)
	h := shareMembers(t, s, "h", "$share/h/sh/+", 1)
	plain, _ := connect5(t, s, "plain", true)
	subscribe5(t, plain, 0, packetgen.Subscription{Filter: "sh/#", QoS: 1})
	pubc, _ := connect5(t, s, "pub", true)
	const n = 10
	for i := range n {
		publish5(t, pubc, pub("sh/x", fmt.Sprint(i), 1, uint16(i+1)))
	}
	seen := map[string]string{}
	for _, c := range g {
		got := collect(t, c, 150*time.Millisecond)
		if len(got) == 0 {
			t.Errorf("%s got none of the %d messages: not spread", c.Name, n)
		}
		for _, p := range got {
			if who, dup := seen[string(p.Payload)]; dup {
				t.Fatalf("message %s went to %s and %s", p.Payload, who, c.Name)
			}
			seen[string(p.Payload)] = c.Name
		}
	}
	if len(seen) != n {
		t.Fatalf("group g got %d distinct messages, want %d", len(seen), n)
	}
	if got := collect(t, h[0], 150*time.Millisecond); len(got) != n {
		t.Fatalf("group h (one member) got %d, want %d", len(got), n)
	}
	if got := collect(t, plain, 150*time.Millisecond); len(got) != n {
		t.Fatalf("the ordinary subscription got %d, want %d", len(got), n)
	}
}

// §4.8.2: retained messages are not sent on subscribing to a shared
// subscription (whatever Retain Handling says); MQTT-3.8.3-4: No Local on a
// shared subscription is a protocol error.
func TestV5SharedSubscriptionNoRetainedNoLocal(t *testing.T) {
	s := newServer(t, Options{})
	pubc, _ := connect5(t, s, "pub", true)
	r := pub("sr/x", "retained", 0, 0)
	r.Retain = true
	publish5(t, pubc, r)
	c, _ := connect5(t, s, "c", true)
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "$share/g/sr/#", RetainHandling: 0})
	expectNothing(t, c, 150*time.Millisecond)

	nl, _ := connect5(t, s, "nl", true)
	sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "$share/g/sr/#", NoLocal: true}}}
	must(t, nl.SendRaw(packetgen.AppendUnchecked(nil, sp, packetgen.V5), "SUBSCRIBE shared with No Local"))
	if d := expectServerDisconnect(t, nl, wait); d.ReasonCode != packetgen.ProtocolError {
		t.Fatalf("DISCONNECT %s, want 0x82", d.ReasonCode)
	}
}

// §4.8.2: a QoS 1 message in flight to a member whose session ends
// (expiry 0, connection closed) without acknowledging it goes to another
// member, as a new delivery (DUP 0); MQTT-4.8.2-6: one the member refused
// with a PUBACK of 0x80 or more is not passed on. MQTT-4.8.2-5: a QoS 2
// message whose delivery had started is not sent to another member
// either.
func TestV5SharedSubscriptionSessionEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		qos      packetgen.QoS
		refuse   bool // the member answers PUBACK 0x80 before it goes
		passedOn bool
	}{
		{"QoS 1 unacknowledged", 1, false, true},
		{"QoS 1 refused", 1, true, false},
		{"QoS 2 started", 2, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			var members []*wire.Conn
			for i := range 2 {
				c, _ := connect5(t, s, fmt.Sprint("m", i), true)
				subscribe5(t, c, 0, packetgen.Subscription{Filter: "$share/g/job", QoS: 2})
				members = append(members, c)
			}
			pubc, _ := connect5(t, s, "pub", true)
			publish5(t, pubc, pub("job", "work", tc.qos, 1))
			var got *packetgen.Publish
			var holder, other *wire.Conn
			for i, c := range members {
				if p, err := c.Recv(200 * time.Millisecond); err == nil {
					got, holder, other = p.(*packetgen.Publish), c, members[1-i]
					break
				}
			}
			if got == nil {
				t.Fatal("no member got the message")
			}
			if tc.refuse {
				must(t, holder.Send(&packetgen.Puback{PacketID: got.PacketID, ReasonCode: packetgen.UnspecifiedError}))
				time.Sleep(50 * time.Millisecond)
			}
			holder.Close()
			if !tc.passedOn {
				expectNothing(t, other, 300*time.Millisecond)
				return
			}
			again := expectPublish(t, other)
			if string(again.Payload) != "work" || again.Dup {
				t.Fatalf("passed on as %s, want \"work\" with DUP 0", packetgen.Format(again))
			}
		})
	}
}
