package broker

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/packettest"
	"github.com/mqttbench/mqttbench/wire"
)

// TestGoldenTable5 is TestGoldenTable for the 5.0 cases a client may send,
// with what 5.0 owes instead:
//
//   - A valid CONNECT gets CONNACK 0x00; a second one DISCONNECT 0x82 and a
//     close (MQTT-3.1.0-2). A refused CONNECT is closed, answered at most by
//     one CONNACK whose code is 0x80 or more (MQTT-3.2.2-7, §4.13).
//   - A first packet other than CONNECT is closed unanswered: no DISCONNECT
//     before CONNACK (MQTT-3.1.0-1, MQTT-3.2.0-2).
//   - A violation after CONNECT gets DISCONNECT with the reason code the
//     codec names, then a close (MQTT-4.13.1-1); a SUBSCRIBE or
//     UNSUBSCRIBE whose only fault is a filter gets 0x8F for that filter
//     and goes on.
//   - Valid packets get their answers with 5.0 reason codes: PUBACK/PUBREC
//     0x10 where nobody subscribed, SUBACK the granted QoS, UNSUBACK 0x11
//     (no subscription existed), PUBCOMP 0x92 for an unknown identifier;
//     AUTH on a connection without enhanced authentication is a protocol
//     error (0x82).
func TestGoldenTable5(t *testing.T) {
	cases, err := packettest.Load()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, gc := range cases {
		if gc.Version() != packetgen.V5 || gc.Side == "server" {
			continue
		}
		n++
		t.Run(gc.Name, func(t *testing.T) {
			s := newServer(t, Options{ConnectTimeout: 300 * time.Millisecond})
			b := gc.Bytes()
			if len(b) > 0 && packetgen.Type(b[0]>>4) == packetgen.TypeConnect {
				goldenConnect5(t, s, gc)
			} else {
				goldenFirstPacket(t, s, gc)
				goldenAfterConnect5(t, s, gc)
			}
			fresh, _ := connect5(t, s, "fresh", true)
			if before := syncPing(t, fresh); len(before) > 0 {
				t.Fatalf("a fresh client got %s", formatAll(before))
			}
		})
	}
	if n < 50 {
		t.Fatalf("only %d 5.0 client cases in %s", n, packettest.Path)
	}
}

func goldenConnect5(t *testing.T, s *Server, gc packettest.Case) {
	c := pipe5(t, s, gc.Name)
	sendMaybeCut(t, c, gc.Bytes())
	switch {
	case gc.Valid():
		ack, err := wire.Expect[*packetgen.Connack](c, wait)
		if err != nil {
			t.Fatalf("%s: %v", gc.Packet, err)
		}
		d := gc.Decoder()
		p, _, _ := d.Decode(gc.Bytes())
		if p.(*packetgen.Connect).Properties.Has(packetgen.PropAuthenticationMethod) {
			// This broker offers no enhanced authentication (§4.12: 0x8C).
			if ack.ReasonCode != packetgen.BadAuthenticationMethod {
				t.Fatalf("%s: got %s, want CONNACK 0x8C", gc.Packet, packetgen.Format(ack))
			}
			return
		}
		if ack.ReasonCode != packetgen.Success || ack.SessionPresent {
			t.Fatalf("%s: got %s, want CONNACK 0x00 without session present", gc.Packet, packetgen.Format(ack))
		}
		if before := syncPing(t, c); len(before) > 0 {
			t.Fatalf("after CONNACK: %s", formatAll(before))
		}
		sendMaybeCut(t, c, gc.Bytes())
		expectDisconnectCode(t, c, "a second CONNECT", packetgen.ProtocolError)
	case gc.Violation():
		got, err := c.ExpectClosed(wait)
		if err != nil {
			t.Fatalf("%s: not closed: %v (got %s)", gc.Rule, err, formatAll(got))
		}
		if len(got) > 1 || len(got) == 1 && (got[0].Type() != packetgen.TypeConnack || !got[0].(*packetgen.Connack).ReasonCode.IsError()) {
			t.Fatalf("%s: got %s, want a close, at most after a refusing CONNACK", gc.Rule, formatAll(got))
		}
		second := pipe5(t, s, gc.Name+" second")
		if _, err := second.Connect(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "golden", CleanStart: true}, wait); err != nil {
			t.Fatal(err)
		}
		sendMaybeCut(t, second, gc.Bytes())
		expectDisconnectCode(t, second, gc.Rule+" after CONNECT", 0)
	default:
		expectNothing(t, c, 100*time.Millisecond)
		expectClosedSilently(t, c, "an incomplete CONNECT past the connect timeout")
	}
}

func goldenAfterConnect5(t *testing.T, s *Server, gc packettest.Case) {
	watch, _ := connect5(t, s, "watch", true)
	subscribe(t, watch, "#", 0)
	c := pipe5(t, s, gc.Name)
	if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "golden", CleanStart: true}, wait); err != nil {
		t.Fatal(err)
	}
	b := gc.Bytes()
	if len(b) > 0 {
		sendMaybeCut(t, c, b)
	}
	if gc.Waiting() {
		expectNothing(t, c, 100*time.Millisecond)
		return
	}
	d := gc.Decoder()
	p, _, decErr := d.Decode(b)
	if gc.Violation() {
		sub, isSub := p.(*packetgen.Subscribe)
		unsub, isUnsub := p.(*packetgen.Unsubscribe)
		if gc.ReasonCode() != packetgen.TopicFilterInvalid || !(isSub || isUnsub) {
			expectDisconnectCode(t, c, gc.Rule, reasonCode(&packetgen.Violation{Reason: gc.ReasonCode()}))
			if got := syncPing(t, watch); len(got) > 0 {
				t.Fatalf("%s: a subscriber got %s from a connection that broke %s", gc.Name, formatAll(got), gc.Rule)
			}
			return
		}
		var want packetgen.Packet
		if isSub {
			want = &packetgen.Suback{PacketID: sub.PacketID, ReasonCodes: grantedCodes5(sub)}
		} else {
			want = &packetgen.Unsuback{PacketID: unsub.PacketID, ReasonCodes: unsubCodes5(unsub)}
		}
		expectAnswer(t, c, gc, want)
		return
	}
	if decErr != nil {
		t.Fatalf("the table says %q is valid, the codec says %v", gc.Hex, decErr)
	}
	var want packetgen.Packet
	switch p := p.(type) {
	case *packetgen.Publish:
		if len(p.Topic) == 0 {
			// An alias this connection never set: a protocol error.
			expectDisconnectCode(t, c, "an unknown topic alias", packetgen.ProtocolError)
			return
		}
		dollar := bytes.HasPrefix(p.Topic, []byte("$")) // '#' does not match it (MQTT-4.7.2-1)
		code := packetgen.Success
		if dollar {
			code = packetgen.NoMatchingSubscribers
		}
		switch p.QoS {
		case 1:
			want = &packetgen.Puback{PacketID: p.PacketID, ReasonCode: code}
		case 2:
			want = &packetgen.Pubrec{PacketID: p.PacketID, ReasonCode: code}
		}
		expectAnswer(t, c, gc, want)
		got := syncPing(t, watch)
		if dollar {
			if len(got) > 0 {
				t.Fatalf("'#' matched %q: %s", p.Topic, formatAll(got))
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("a subscriber to '#' got %s, want the one PUBLISH", formatAll(got))
		}
		dp, ok := got[0].(*packetgen.Publish)
		if !ok || !bytes.Equal(dp.Topic, p.Topic) || !bytes.Equal(dp.Payload, p.Payload) || dp.QoS != 0 || dp.Retain {
			t.Fatalf("a subscriber to '#' at QoS 0 got %s for %s", packetgen.Format(got[0]), packetgen.Format(p))
		}
		return
	case *packetgen.Subscribe:
		want = &packetgen.Suback{PacketID: p.PacketID, ReasonCodes: grantedCodes5(p)}
	case *packetgen.Unsubscribe:
		want = &packetgen.Unsuback{PacketID: p.PacketID, ReasonCodes: unsubCodes5(p)}
	case *packetgen.Pingreq:
		want = &packetgen.Pingresp{}
	case *packetgen.Pubrel:
		want = &packetgen.Pubcomp{PacketID: p.PacketID, ReasonCode: packetgen.PacketIdentifierNotFound}
	case *packetgen.Pubrec:
		got := syncPing(t, c)
		rel := &packetgen.Pubrel{PacketID: p.PacketID, ReasonCode: packetgen.PacketIdentifierNotFound}
		if len(got) > 1 || len(got) == 1 && packetgen.Format(got[0]) != packetgen.Format(rel) {
			t.Fatalf("%s: got %s, want nothing or %s", gc.Packet, formatAll(got), packetgen.Format(rel))
		}
		return
	case *packetgen.Auth:
		expectDisconnectCode(t, c, "AUTH without enhanced authentication", packetgen.ProtocolError)
		return
	case *packetgen.Disconnect:
		if p.Properties.SessionExpiryInterval != 0 {
			// CONNECT set 0: a non-zero value is a protocol error (MQTT-3.14.2-2).
			expectDisconnectCode(t, c, "DISCONNECT raising the session expiry from 0", packetgen.ProtocolError)
			return
		}
		expectClosedSilently(t, c, "DISCONNECT")
		return
	case *packetgen.Connect:
		t.Fatal("CONNECT cases are judged by goldenConnect5")
	}
	expectAnswer(t, c, gc, want)
}

// expectDisconnectCode waits for the broker's DISCONNECT, with code (any
// error code when 0), and the close after it.
func expectDisconnectCode(t *testing.T, c *wire.Conn, why string, code packetgen.ReasonCode) {
	t.Helper()
	got, err := c.ExpectClosed(wait)
	if err != nil {
		t.Fatalf("%s: not closed: %v (got %s)", why, err, formatAll(got))
	}
	if len(got) != 1 || got[0].Type() != packetgen.TypeDisconnect {
		t.Fatalf("%s: got %s, want DISCONNECT then a close", why, formatAll(got))
	}
	rc := got[0].(*packetgen.Disconnect).ReasonCode
	if (code == 0 && !rc.IsError()) || (code != 0 && rc != code) {
		t.Fatalf("%s: got %s, want reason %s", why, formatAll(got), code)
	}
}

// grantedCodes5 is the SUBACK the default broker owes p.
func grantedCodes5(p *packetgen.Subscribe) []packetgen.ReasonCode {
	codes := make([]packetgen.ReasonCode, len(p.Subscriptions))
	for i, s := range p.Subscriptions {
		codes[i] = packetgen.ReasonCode(s.QoS)
		if !validFilter(s.Filter) {
			codes[i] = packetgen.TopicFilterInvalid
		}
	}
	return codes
}

// unsubCodes5 is the UNSUBACK a session without subscriptions owes p.
func unsubCodes5(p *packetgen.Unsubscribe) []packetgen.ReasonCode {
	codes := make([]packetgen.ReasonCode, len(p.Filters))
	for i, f := range p.Filters {
		codes[i] = packetgen.NoSubscriptionExisted
		if !validFilter(f) {
			codes[i] = packetgen.TopicFilterInvalid
		}
	}
	return codes
}

// pipe5 is pipe for a client that speaks 5.0 from its first byte, for
// tests that write their CONNECT raw.
func pipe5(t *testing.T, s *Server, name string) *wire.Conn {
	t.Helper()
	a, b := net.Pipe()
	go s.ServeConn(b) //nolint:errcheck
	c := wire.New(a, name, packetgen.V5, nil)
	t.Cleanup(func() { c.Close() })
	return c
}
