package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// MQTT-3.3.4-9: the broker never has more QoS 1 and 2 PUBLISH packets
// unacknowledged at a client than the client's Receive Maximum: with 2,
// five messages bring exactly two; each PUBACK lets exactly one more
// through. MQTT-3.3.4-10: packets other than PUBLISH are not held back
// meanwhile.
func TestV5ReceiveMaximumOutbound(t *testing.T) {
	s := newServer(t, Options{})
	sub, _ := connect5(t, s, "sub", true, withProp(packetgen.PropReceiveMaximum, uint16(2)))
	subscribe5(t, sub, 0, packetgen.Subscription{Filter: "f/#", QoS: 1})
	pubc, _ := connect5(t, s, "pub", true)
	for i := 1; i <= 5; i++ {
		publish5(t, pubc, pub("f/q1", fmt.Sprint(i), 1, uint16(i)))
	}
	var inflight []*packetgen.Publish
	for range 2 {
		inflight = append(inflight, expectPublish(t, sub))
	}
	expectNothing(t, sub, 150*time.Millisecond)

	// Full window: other packets still come (a QoS 0 PUBLISH may wait,
	// §4.9).
	must(t, sub.Send(&packetgen.Pingreq{}))
	if _, err := wire.Expect[*packetgen.Pingresp](sub, wait); err != nil {
		t.Fatal(err)
	}

	next := 3
	for len(inflight) > 0 {
		must(t, sub.Send(&packetgen.Puback{PacketID: inflight[0].PacketID}))
		inflight = inflight[1:]
		if next <= 5 {
			got := expectPublish(t, sub)
			if string(got.Payload) != fmt.Sprint(next) {
				t.Fatalf("after one PUBACK got %s, want message %d", packetgen.Format(got), next)
			}
			inflight = append(inflight, got)
			next++
		}
		expectNothing(t, sub, 100*time.Millisecond)
	}
}

// MQTT-3.3.4-9 for QoS 2: a QoS 2 message counts against the Receive
// Maximum until PUBCOMP, not PUBREC.
func TestV5ReceiveMaximumOutboundQoS2(t *testing.T) {
	s := newServer(t, Options{})
	sub, _ := connect5(t, s, "sub", true, withProp(packetgen.PropReceiveMaximum, uint16(1)))
	subscribe5(t, sub, 0, packetgen.Subscription{Filter: "f", QoS: 2})
	pubc, _ := connect5(t, s, "pub", true)
	publish5(t, pubc, pub("f", "1", 2, 1))
	publish5(t, pubc, pub("f", "2", 2, 2))
	first := expectPublish(t, sub)
	must(t, sub.Send(&packetgen.Pubrec{PacketID: first.PacketID}))
	if _, err := wire.Expect[*packetgen.Pubrel](sub, wait); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, sub, 150*time.Millisecond)
	must(t, sub.Send(&packetgen.Pubcomp{PacketID: first.PacketID}))
	if got := expectPublish(t, sub); string(got.Payload) != "2" {
		t.Fatalf("after PUBCOMP got %s, want message 2", packetgen.Format(got))
	}
}

// Options.ReceiveMaximum, advertised in CONNACK: a client with that many
// QoS 2 messages unreleased (no PUBREL yet) that sends one more gets
// DISCONNECT 0x93 (§3.3.4, MQTT-3.3.4-7 is the client's side); a repeat of
// a message it already has (same identifier) is not one more, and a PUBREL
// makes room.
func TestV5ReceiveMaximumInbound(t *testing.T) {
	s := newServer(t, Options{ReceiveMaximum: 2})
	c, ack := connect5(t, s, "c", true)
	if ack.Properties.Get(packetgen.PropReceiveMaximum) != uint16(2) {
		t.Fatalf("CONNACK %s, want Receive Maximum 2", packetgen.Format(ack))
	}
	pubrec := func(id uint16) {
		t.Helper()
		if rec, err := wire.Expect[*packetgen.Pubrec](c, wait); err != nil || rec.PacketID != id {
			t.Fatalf("PUBREC %d: %v %v", id, rec, err)
		}
	}
	for id := uint16(1); id <= 2; id++ {
		must(t, c.Send(pub("r", "x", 2, id)))
		pubrec(id)
	}
	dup := pub("r", "x", 2, 2)
	dup.Dup = true
	must(t, c.Send(dup))
	pubrec(2)
	must(t, c.Send(&packetgen.Pubrel{PacketID: 1}))
	if _, err := wire.Expect[*packetgen.Pubcomp](c, wait); err != nil {
		t.Fatal(err)
	}
	must(t, c.Send(pub("r", "x", 2, 3)))
	pubrec(3)
	// Two unreleased again (2 and 3): a third is one too many.
	must(t, c.Send(pub("r", "x", 2, 4)))
	if d := expectServerDisconnect(t, c, wait); d.ReasonCode != packetgen.ReceiveMaximumExceeded {
		t.Fatalf("DISCONNECT %s, want 0x93", d.ReasonCode)
	}
}

// Options.MaxPacketSize, advertised in CONNACK, bounds what a client may
// send, fixed header included (MQTT-3.2.2-15 is the client's side): a
// PUBLISH of exactly that size is taken, one byte more gets DISCONNECT
// 0x95 and is not delivered.
func TestV5MaximumPacketSizeInbound(t *testing.T) {
	const limit = 128
	s := newServer(t, Options{MaxPacketSize: limit})
	sub, _ := connect5(t, s, "sub", true)
	subscribe5(t, sub, 0, packetgen.Subscription{Filter: "big"})
	c, ack := connect5(t, s, "c", true)
	if ack.Properties.Get(packetgen.PropMaximumPacketSize) != uint32(limit) {
		t.Fatalf("CONNACK %s, want Maximum Packet Size %d", packetgen.Format(ack), limit)
	}
	p := pub("big", "", 0, 0)
	p.Payload = []byte(strings.Repeat("b", limit-packetgen.Size(p, packetgen.V5)))
	if n := packetgen.Size(p, packetgen.V5); n != limit {
		t.Fatalf("test packet is %d bytes", n)
	}
	must(t, c.Send(p))
	if got := expectPublish(t, sub); len(got.Payload) != len(p.Payload) {
		t.Fatalf("got %s", packetgen.Format(got))
	}
	p.Payload = append(p.Payload, 'b')
	go c.Send(p) //nolint:errcheck // the broker stops reading after the fixed header
	if d := expectServerDisconnect(t, c, wait); d.ReasonCode != packetgen.PacketTooLarge {
		t.Fatalf("DISCONNECT %s, want 0x95", d.ReasonCode)
	}
	expectNothing(t, sub, 100*time.Millisecond)
}
