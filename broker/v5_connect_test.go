package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// CONNACK says what the broker offers where it differs from the
// specification's default (§3.2.2.3), each option alone, and nothing where
// it does not: an absent property means the default, so a broker that
// advertised too little or too much would mislead every client.
// MQTT-3.2.2-9: a Maximum QoS below 2 must be sent.
func TestV5ConnackPropertyPerOption(t *testing.T) {
	advertised := []packetgen.PropID{
		packetgen.PropReceiveMaximum, packetgen.PropMaximumQoS, packetgen.PropRetainAvailable,
		packetgen.PropMaximumPacketSize, packetgen.PropTopicAliasMaximum, packetgen.PropWildcardSubscriptionAvailable,
		packetgen.PropSubscriptionIdentifierAvailable, packetgen.PropSharedSubscriptionAvailable,
		packetgen.PropServerKeepAlive, packetgen.PropSessionExpiryInterval, packetgen.PropAssignedClientIdentifier,
		packetgen.PropResponseInformation, packetgen.PropServerReference, packetgen.PropAuthenticationMethod,
	}
	for _, tc := range []struct {
		name string
		opts Options
		want map[packetgen.PropID]any // everything else in advertised is absent
	}{
		// Topic Alias Maximum absent would mean 0 (no aliases), so the
		// default 65535 is sent.
		{"defaults", Options{}, map[packetgen.PropID]any{packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"ReceiveMaximum", Options{ReceiveMaximum: 3}, map[packetgen.PropID]any{packetgen.PropReceiveMaximum: uint16(3), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"MaxQoS 1", Options{MaxQoS: 1}, map[packetgen.PropID]any{packetgen.PropMaximumQoS: byte(1), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"MaxQoSZero", Options{MaxQoSZero: true}, map[packetgen.PropID]any{packetgen.PropMaximumQoS: byte(0), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"DisableRetain", Options{DisableRetain: true}, map[packetgen.PropID]any{packetgen.PropRetainAvailable: byte(0), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"MaxPacketSize", Options{MaxPacketSize: 1000}, map[packetgen.PropID]any{packetgen.PropMaximumPacketSize: uint32(1000), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"TopicAliasMaximum", Options{TopicAliasMaximum: 9}, map[packetgen.PropID]any{packetgen.PropTopicAliasMaximum: uint16(9)}},
		// A negative maximum accepts no alias: absent says 0.
		{"TopicAliasMaximum none", Options{TopicAliasMaximum: -1}, map[packetgen.PropID]any{}},
		{"DisableWildcard", Options{DisableWildcard: true}, map[packetgen.PropID]any{packetgen.PropWildcardSubscriptionAvailable: byte(0), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"DisableSubscriptionIDs", Options{DisableSubscriptionIDs: true}, map[packetgen.PropID]any{packetgen.PropSubscriptionIdentifierAvailable: byte(0), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"DisableShared", Options{DisableShared: true}, map[packetgen.PropID]any{packetgen.PropSharedSubscriptionAvailable: byte(0), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"ServerKeepAlive", Options{ServerKeepAlive: 77}, map[packetgen.PropID]any{packetgen.PropServerKeepAlive: uint16(77), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		// The client asks for 3600 s; a cap below it is told back.
		{"MaxSessionExpiry", Options{MaxSessionExpiry: 60}, map[packetgen.PropID]any{packetgen.PropSessionExpiryInterval: uint32(60), packetgen.PropTopicAliasMaximum: uint16(65535)}},
		{"MaxSessionExpiry above the request", Options{MaxSessionExpiry: 7200}, map[packetgen.PropID]any{packetgen.PropTopicAliasMaximum: uint16(65535)}},
		// Response Information only when asked: here the client does not.
		{"ResponseInformation unasked", Options{ResponseInformation: "r/"}, map[packetgen.PropID]any{packetgen.PropTopicAliasMaximum: uint16(65535)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			_, ack := connect5(t, s, "c", true, withExpiry(3600))
			if ack.ReasonCode != packetgen.Success || ack.SessionPresent {
				t.Fatalf("CONNACK %s", packetgen.Format(ack))
			}
			for _, id := range advertised {
				want, ok := tc.want[id]
				if got := ack.Properties.Get(id); ok && got != want {
					t.Errorf("%s = %v, want %v", id, got, want)
				} else if !ok && ack.Properties.Has(id) {
					t.Errorf("%s = %v, want it absent", id, got)
				}
			}
		})
	}
}

// MQTT-3.1.3-6, MQTT-3.1.3-7, MQTT-3.2.2-16: a client with an empty
// identifier gets a unique one, told in Assigned Client Identifier, and
// the connection goes on as if it had sent it; the identifier is not one a
// session already uses. AssignedIDPrefix starts it ("mqttbench-" by
// default). A client that sends its own identifier gets none.
func TestV5AssignedClientIdentifier(t *testing.T) {
	t.Run("default prefix, unique, not taken", func(t *testing.T) {
		s := newServer(t, Options{})
		// A session already holds the first identifier the broker would
		// make up.
		holder, ack := connect5(t, s, "mqttbench-1", true, withExpiry(60))
		if ack.Properties.Has(packetgen.PropAssignedClientIdentifier) {
			t.Fatalf("a client with an identifier was assigned one: %s", packetgen.Format(ack))
		}
		seen := map[string]bool{"mqttbench-1": true}
		for range 3 {
			_, ack := connect5(t, s, "", true)
			id := ack.Properties.AssignedClientIdentifier
			if !strings.HasPrefix(id, "mqttbench-") || seen[id] {
				t.Fatalf("assigned %q: want a new identifier starting with mqttbench- (have %v)", id, seen)
			}
			seen[id] = true
		}
		// The holder was not taken over by an assigned identifier.
		must(t, holder.Send(&packetgen.Pingreq{}))
		if _, err := wire.Expect[*packetgen.Pingresp](holder, wait); err != nil {
			t.Fatalf("the session holding mqttbench-1 lost its connection: %v", err)
		}
	})
	t.Run("AssignedIDPrefix, used as the client identifier", func(t *testing.T) {
		s := newServer(t, Options{AssignedIDPrefix: "dev-"})
		c, ack := connect5(t, s, "", true)
		id := ack.Properties.AssignedClientIdentifier
		if !strings.HasPrefix(id, "dev-") {
			t.Fatalf("assigned %q, want the prefix dev-", id)
		}
		// The identifier names the session: connecting with it takes the
		// connection over.
		connect5(t, s, id, true)
		if code := expectServerDisconnect(t, c, wait).ReasonCode; code != packetgen.SessionTakenOver {
			t.Fatalf("DISCONNECT %s, want 0x8E: the assigned identifier was not the client's", code)
		}
	})
}

// MQTT-3.1.2-28: Response Information goes only to a client that asked
// with Request Response Information 1, and only when the broker has some
// (Options.ResponseInformation, followed by the client identifier).
func TestV5ResponseInformation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		option string
		rri    int // -1: absent
		want   string
	}{
		{"asked", "resp/", 1, "resp/c/"},
		{"asked 0", "resp/", 0, ""},
		{"not asked", "resp/", -1, ""},
		{"nothing to give", "", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{ResponseInformation: tc.option})
			_, ack := connect5(t, s, "c", true, func(cp *packetgen.Connect) {
				if tc.rri >= 0 {
					cp.Properties.Set(packetgen.PropRequestResponseInformation, byte(tc.rri))
				}
			})
			got := ack.Properties.ResponseInformation
			if ack.Properties.Has(packetgen.PropResponseInformation) != (tc.want != "") || got != tc.want {
				t.Fatalf("Response Information %q (present %v), want %q", got, ack.Properties.Has(packetgen.PropResponseInformation), tc.want)
			}
		})
	}
}

// MQTT-3.2.2-21, MQTT-3.1.2-22: with Options.ServerKeepAlive the broker
// tells every 5.0 client its keep alive in CONNACK and enforces that one,
// whatever the client asked for (60 s, or 0 for none): a silent client
// gets DISCONNECT 0x8D (after KeepaliveGrace x 1 s; the grace is 0.5 here
// to keep the test short, the specification's 1.5 is TestWill's). A 3.1.1
// client, which cannot be told, keeps its own keep alive.
func TestV5ServerKeepAlive(t *testing.T) {
	s := newServer(t, Options{ServerKeepAlive: 1, KeepaliveGrace: 0.5})
	start := time.Now()
	asked60, ack := connect5(t, s, "asked60", true, func(cp *packetgen.Connect) { cp.KeepAlive = 60 })
	if ack.Properties.Get(packetgen.PropServerKeepAlive) != uint16(1) {
		t.Fatalf("CONNACK %s, want Server Keep Alive 1", packetgen.Format(ack))
	}
	asked0, _ := connect5(t, s, "asked0", true, func(cp *packetgen.Connect) { cp.KeepAlive = 0 })
	old, ack := connect(t, s, "old", true)
	if !ack.Properties.Empty() {
		t.Fatalf("3.1.1 CONNACK with properties: %s", packetgen.Format(ack))
	}
	for _, c := range []*wire.Conn{asked60, asked0} {
		d := expectServerDisconnect(t, c, 3*time.Second)
		if d.ReasonCode != packetgen.KeepAliveTimeout {
			t.Fatalf("%s: DISCONNECT %s, want 0x8D", c.Name, d.ReasonCode)
		}
		if el := time.Since(start); el < 450*time.Millisecond {
			t.Fatalf("%s: dropped after %v, before 0.5 x the server's keep alive", c.Name, el)
		}
	}
	must(t, old.Send(&packetgen.Pingreq{}))
	if _, err := wire.Expect[*packetgen.Pingresp](old, wait); err != nil {
		t.Fatalf("the 3.1.1 client (keep alive 0) was dropped: %v", err)
	}
}

// A CONNECT the broker will not accept gets one CONNACK with a reason code
// of 0x80 or more and session present 0, then the connection closes
// (MQTT-3.2.2-6, MQTT-3.2.2-7); redirects carry the Server Reference.
func TestV5ConnectRefusals(t *testing.T) {
	users := map[string]string{"u": "secret"}
	creds := func(user, pass string) func(*packetgen.Connect) {
		return func(cp *packetgen.Connect) {
			cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user, true, []byte(pass)
		}
	}
	for _, tc := range []struct {
		name string
		opts Options
		id   string
		mods []func(*packetgen.Connect)
		want packetgen.ReasonCode
		ref  string // Server Reference expected
	}{
		{"0x86 wrong password", Options{Users: users}, "c", []func(*packetgen.Connect){creds("u", "nope")}, packetgen.BadUserNameOrPassword, ""},
		{"0x86 unknown user", Options{Users: users}, "c", []func(*packetgen.Connect){creds("who", "secret")}, packetgen.BadUserNameOrPassword, ""},
		{"0x87 anonymous", Options{Users: users}, "c", nil, packetgen.NotAuthorized, ""},
		// Request Problem Information 0 does not stop a refusal.
		{"0x87 anonymous, no problem information", Options{Users: users}, "c",
			[]func(*packetgen.Connect){withProp(packetgen.PropRequestProblemInformation, byte(0))}, packetgen.NotAuthorized, ""},
		// An authentication method the broker does not offer (none here).
		{"0x8C authentication method", Options{}, "c",
			[]func(*packetgen.Connect){withProp(packetgen.PropAuthenticationMethod, "SCRAM-SHA-256")}, packetgen.BadAuthenticationMethod, ""},
		// MQTT-3.2.2-13: a will asking for retain where it is not offered.
		{"0x9A will retain", Options{DisableRetain: true}, "c",
			[]func(*packetgen.Connect){withWill5(), func(cp *packetgen.Connect) { cp.Will.Retain = true }}, packetgen.RetainNotSupported, ""},
		// MQTT-3.2.2-12: a will above the Maximum QoS.
		{"0x9B will QoS 2 over 1", Options{MaxQoS: 1}, "c",
			[]func(*packetgen.Connect){withWill5(), func(cp *packetgen.Connect) { cp.Will.QoS = 2 }}, packetgen.QoSNotSupported, ""},
		{"0x9B will QoS 1 over 0", Options{MaxQoSZero: true}, "c", []func(*packetgen.Connect){withWill5()}, packetgen.QoSNotSupported, ""},
		// §4.11: redirection.
		{"0x9C use another server", Options{ServerReference: "other:1883"}, "c", nil, packetgen.UseAnotherServer, "other:1883"},
		{"0x9D server moved", Options{ServerReference: "new:1883", ServerMoved: true}, "c", nil, packetgen.ServerMoved, "new:1883"},
		{"0x9C only the listed clients", Options{ServerReference: "other:1883", RedirectClients: []string{"a", "c"}}, "c", nil, packetgen.UseAnotherServer, "other:1883"},
		{"accepted: not listed", Options{ServerReference: "other:1883", RedirectClients: []string{"a", "b"}}, "c", nil, packetgen.Success, ""},
		{"accepted: good password", Options{Users: users}, "c", []func(*packetgen.Connect){creds("u", "secret")}, packetgen.Success, ""},
		{"accepted: anonymous allowed", Options{Users: users, AllowAnonymous: true}, "c", nil, packetgen.Success, ""},
		{"accepted: will retain", Options{}, "c", []func(*packetgen.Connect){withWill5(), func(cp *packetgen.Connect) { cp.Will.Retain = true }}, packetgen.Success, ""},
		{"accepted: will QoS 1 under 1", Options{MaxQoS: 1}, "c", []func(*packetgen.Connect){withWill5()}, packetgen.Success, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			c := pipe(t, s, tc.name)
			cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: tc.id, CleanStart: true}
			for _, m := range tc.mods {
				m(cp)
			}
			must(t, c.Send(cp))
			if tc.want == packetgen.Success {
				ack, err := wire.Expect[*packetgen.Connack](c, wait)
				if err != nil || ack.ReasonCode != packetgen.Success {
					t.Fatalf("CONNACK %v %v, want 0x00", ack, err)
				}
				return
			}
			ack := expectRefused(t, c, tc.want)
			if got := ack.Properties.ServerReference; got != tc.ref {
				t.Fatalf("Server Reference %q, want %q", got, tc.ref)
			}
		})
	}
}

// MQTT-3.1.4-6: after refusing a CONNECT the broker processes nothing the
// client sent behind it: a PUBLISH in the same write reaches nobody.
func TestV5RefusedConnectProcessesNothingAfter(t *testing.T) {
	s := newServer(t, Options{Users: map[string]string{"u": "secret"}, AllowAnonymous: false})
	watcher, _ := connect5(t, s, "watcher", true, func(cp *packetgen.Connect) {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "u", true, []byte("secret")
	})
	subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "#"})
	c := rawPipe5(t, s, "refused")
	b := packetgen.AppendUnchecked(nil, &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "refused", CleanStart: true}, packetgen.V5)
	b = packetgen.AppendUnchecked(b, pub("sneaked/in", "x", 0, 0), packetgen.V5)
	c.SendRaw(b, "CONNECT without credentials, then PUBLISH") //nolint:errcheck // the broker may close first
	expectRefused(t, c, packetgen.NotAuthorized)
	expectNothing(t, watcher, 200*time.Millisecond)
}

// A CONNECT larger than Options.MaxPacketSize is refused: the connection
// closes, after at most a CONNACK 0x95 (§4.13 lets a server say why
// before it closes); it is never accepted.
func TestV5ConnectTooLarge(t *testing.T) {
	s := newServer(t, Options{MaxPacketSize: 64})
	c := pipe(t, s, "big")
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: strings.Repeat("x", 100), CleanStart: true}
	go c.Send(cp) //nolint:errcheck // the broker stops reading after the fixed header
	got, err := c.ExpectClosed(wait)
	if err != nil {
		t.Fatalf("not closed: %v %v", formatAll(got), err)
	}
	if len(got) == 0 {
		return
	}
	if ack, ok := got[0].(*packetgen.Connack); !ok || len(got) > 1 || ack.ReasonCode != packetgen.PacketTooLarge {
		t.Fatalf("got %v, want a close, or CONNACK 0x95 and a close", formatAll(got))
	}
}
