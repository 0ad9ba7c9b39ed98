package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// The 5.0 options each change what a client sees. Those with a test of
// their own elsewhere: ReceiveMaximum (TestV5ReceiveMaximumInbound),
// ServerKeepAlive (TestV5ServerKeepAlive), MaxSessionExpiry
// (TestV5MaxSessionExpiryApplied), AssignedIDPrefix
// (TestV5AssignedClientIdentifier), ResponseInformation
// (TestV5ResponseInformation), ServerReference, ServerMoved and
// RedirectClients (TestV5ConnectRefusals), ValidatePayloadFormat
// (TestV5ValidatePayloadFormat), OutboundTopicAliases
// (TestV5OutboundTopicAliases), and every advertisement
// (TestV5ConnackPropertyPerOption).

// Options.DisableWildcard: Wildcard Subscription Available 0 in CONNACK,
// and 0xA2 for '+' and '#' filters, shared ones included; plain filters
// still work.
func TestV5OptionDisableWildcard(t *testing.T) {
	s := newServer(t, Options{DisableWildcard: true})
	c, ack := connect5(t, s, "c", true)
	if ack.Properties.Get(packetgen.PropWildcardSubscriptionAvailable) != byte(0) {
		t.Fatalf("CONNACK %s", packetgen.Format(ack))
	}
	got := subscribe5(t, c, 0, packetgen.Subscription{Filter: "a/+"}, packetgen.Subscription{Filter: "#"},
		packetgen.Subscription{Filter: "$share/g/a/#"}, packetgen.Subscription{Filter: "a/b", QoS: 1})
	want := []packetgen.ReasonCode{0xA2, 0xA2, 0xA2, 1}
	if !slices.Equal(got, want) {
		t.Fatalf("SUBACK %v, want %v", got, want)
	}
	pubc, _ := connect5(t, s, "pub", true)
	must(t, pubc.Send(pub("a/b", "x", 0, 0)))
	if p := expectPublish(t, c); string(p.Topic) != "a/b" {
		t.Fatalf("got %s", packetgen.Format(p))
	}
	expectNothing(t, c, 100*time.Millisecond) // one copy: the wildcards did not subscribe
}

// Options.DisableShared: Shared Subscription Available 0 in CONNACK and
// 0x9E for "$share/..." filters, which deliver nothing.
func TestV5OptionDisableShared(t *testing.T) {
	s := newServer(t, Options{DisableShared: true})
	c, ack := connect5(t, s, "c", true)
	if ack.Properties.Get(packetgen.PropSharedSubscriptionAvailable) != byte(0) {
		t.Fatalf("CONNACK %s", packetgen.Format(ack))
	}
	if got := subscribe5(t, c, 0, packetgen.Subscription{Filter: "$share/g/x", QoS: 1}); got[0] != packetgen.SharedSubscriptionsNotSupported {
		t.Fatalf("SUBACK %v, want 0x9E", got)
	}
	pubc, _ := connect5(t, s, "pub", true)
	if code := publish5(t, pubc, pub("x", "x", 1, 1)); code != packetgen.NoMatchingSubscribers {
		t.Fatalf("PUBACK %s, want 0x10", code)
	}
	expectNothing(t, c, 100*time.Millisecond)
}

// Options.DisableSubscriptionIDs: Subscription Identifier Available 0 in
// CONNACK; a SUBSCRIBE carrying one gets DISCONNECT 0xA1, one without is
// granted.
func TestV5OptionDisableSubscriptionIDs(t *testing.T) {
	s := newServer(t, Options{DisableSubscriptionIDs: true})
	c, ack := connect5(t, s, "c", true)
	if ack.Properties.Get(packetgen.PropSubscriptionIdentifierAvailable) != byte(0) {
		t.Fatalf("CONNACK %s", packetgen.Format(ack))
	}
	if got := subscribe5(t, c, 0, packetgen.Subscription{Filter: "x"}); got[0] != 0 {
		t.Fatalf("SUBACK %v without an identifier", got)
	}
	sp := &packetgen.Subscribe{PacketID: 2, Subscriptions: []packetgen.Subscription{{Filter: "y"}}}
	sp.Properties.Set(packetgen.PropSubscriptionIdentifier, uint32(1))
	must(t, c.Send(sp))
	if d := expectServerDisconnect(t, c, wait); d.ReasonCode != packetgen.SubscriptionIdentifiersNotSupported {
		t.Fatalf("DISCONNECT %s, want 0xA1", d.ReasonCode)
	}
}

// Options.TopicAliasMaximum: advertised (65535 when 0, none when
// negative), and enforced: the highest alias is accepted, the next gets
// DISCONNECT 0x94.
func TestV5OptionTopicAliasMaximum(t *testing.T) {
	for _, tc := range []struct {
		name      string
		option    int
		advertise any    // nil: absent
		highest   uint16 // 0: no alias is accepted
	}{
		{"default", 0, uint16(65535), 65535},
		{"five", 5, uint16(5), 5},
		{"none", -1, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{TopicAliasMaximum: tc.option})
			sub, _ := connect5(t, s, "sub", true)
			subscribe5(t, sub, 0, packetgen.Subscription{Filter: "ta/#"})
			c, ack := connect5(t, s, "c", true)
			if got := ack.Properties.Get(packetgen.PropTopicAliasMaximum); got != tc.advertise {
				t.Fatalf("Topic Alias Maximum %v, want %v", got, tc.advertise)
			}
			if tc.highest > 0 {
				p := pub("ta/1", "x", 0, 0)
				p.Properties.Set(packetgen.PropTopicAlias, tc.highest)
				must(t, c.Send(p))
				expectPublish(t, sub)
			}
			if tc.highest == 65535 {
				return // no alias above it exists
			}
			p := pub("ta/2", "x", 0, 0)
			p.Properties.Set(packetgen.PropTopicAlias, tc.highest+1)
			must(t, c.Send(p))
			if d := expectServerDisconnect(t, c, wait); d.ReasonCode != packetgen.TopicAliasInvalid {
				t.Fatalf("DISCONNECT %s, want 0x94", d.ReasonCode)
			}
		})
	}
}

// Options.AuthMethod with AllowAnonymous: a client that does not use the
// method is admitted (without AllowAnonymous it gets 0x87, see
// TestEnhancedAuthRefusals); one naming another method still gets 0x8C.
func TestV5OptionAuthMethodAllowAnonymous(t *testing.T) {
	s := newServer(t, Options{AuthMethod: scramMethod(t), AllowAnonymous: true})
	if _, ack := connect5(t, s, "anon", true); ack.ReasonCode != packetgen.Success {
		t.Fatalf("CONNACK %s, want 0x00", packetgen.Format(ack))
	}
	c := pipe(t, s, "other-method")
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "other", CleanStart: true}
	cp.Properties.Set(packetgen.PropAuthenticationMethod, "PLAIN")
	must(t, c.Send(cp))
	expectRefused(t, c, packetgen.BadAuthenticationMethod)
}

// Each 5.0 fault breaks exactly the behaviour it names, so a suite that
// misses it is caught: the same scenario passes without the fault and
// fails with it.
func TestV5Faults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault Faults
		// setup prepares the scenario; after pause, check reports whether
		// the broker behaved.
		setup func(t *testing.T, s *Server) (check func() bool)
		pause time.Duration
	}{
		{name: "ignore-no-local", fault: Faults{IgnoreNoLocal: true}, setup: func(t *testing.T, s *Server) func() bool {
			c, _ := connect5(t, s, "me", true)
			subscribe5(t, c, 0, packetgen.Subscription{Filter: "nl", NoLocal: true})
			must(t, c.Send(pub("nl", "mine", 0, 0)))
			return func() bool { _, err := c.Recv(150 * time.Millisecond); return err != nil }
		}},
		{name: "drop-subscription-ids", fault: Faults{DropSubscriptionIDs: true}, setup: func(t *testing.T, s *Server) func() bool {
			c, _ := connect5(t, s, "sub", true)
			subscribe5(t, c, 42, packetgen.Subscription{Filter: "id"})
			pubc, _ := connect5(t, s, "pub", true)
			must(t, pubc.Send(pub("id", "x", 0, 0)))
			return func() bool {
				return slices.Equal(expectPublish(t, c).Properties.SubscriptionIdentifiers, []uint32{42})
			}
		}},
		{name: "broadcast-shared", fault: Faults{BroadcastShared: true}, setup: func(t *testing.T, s *Server) func() bool {
			members := shareMembers(t, s, "m", "$share/g/bs", 2)
			pubc, _ := connect5(t, s, "pub", true)
			for i := range 4 {
				publish5(t, pubc, pub("bs", "x", 1, uint16(i+1)))
			}
			return func() bool {
				total := 0
				for _, m := range members {
					total += len(collect(t, m, 150*time.Millisecond))
				}
				return total == 4
			}
		}},
		{name: "never-expire", fault: Faults{NeverExpire: true}, pause: 1100 * time.Millisecond, setup: func(t *testing.T, s *Server) func() bool {
			pubc, _ := connect5(t, s, "pub", true)
			p := pub("ne", "short-lived", 0, 0)
			p.Retain = true
			p.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(1))
			publish5(t, pubc, p)
			return func() bool {
				c, _ := connect5(t, s, "late", true)
				subscribe5(t, c, 0, packetgen.Subscription{Filter: "ne"})
				_, err := c.Recv(150 * time.Millisecond)
				return err != nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Faults
			if !ParseFault(tc.name, &f) || f != tc.fault {
				t.Fatalf("ParseFault(%q) = %+v, want %+v", tc.name, f, tc.fault)
			}
			good := tc.setup(t, newServer(t, Options{}))
			broken := tc.setup(t, newServer(t, Options{Faults: tc.fault}))
			time.Sleep(tc.pause)
			if !good() {
				t.Fatal("the broker misbehaves without the fault")
			}
			if broken() {
				t.Fatal("the fault changed nothing")
			}
		})
	}
}
