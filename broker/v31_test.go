package broker

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// connect31 opens a connection and completes an MQTT 3.1 CONNECT: the
// bytes sent carry protocol name "MQIsdp" and level 3 (3.1 §3.1), and the
// CONNACK read back must be 20 02 00 00: accepted, and its first variable
// header byte reserved (3.1 has no session present flag), even when a
// persistent session is resumed.
func connect31(t *testing.T, s *Server, id string, clean bool) *wire.Conn {
	t.Helper()
	b, err := packetgen.Append(nil, &packetgen.Connect{ProtocolLevel: packetgen.V31, ClientID: id, CleanStart: clean, KeepAlive: 60}, packetgen.V31)
	must(t, err)
	if !bytes.Contains(b, []byte("\x00\x06MQIsdp\x03")) {
		t.Fatalf("CONNECT % X lacks protocol name MQIsdp and level 3", b)
	}
	a, srv := net.Pipe()
	go s.ServeConn(srv)                 //nolint:errcheck
	a.SetDeadline(time.Now().Add(wait)) //nolint:errcheck
	_, err = a.Write(b)
	must(t, err)
	ack := make([]byte, 4)
	if _, err := io.ReadFull(a, ack); err != nil {
		a.Close()
		t.Fatalf("%s: reading CONNACK: %v", id, err)
	}
	a.SetDeadline(time.Time{}) //nolint:errcheck
	c := wire.New(a, id, packetgen.V31, nil)
	t.Cleanup(func() { c.Close() })
	if !bytes.Equal(ack, []byte{0x20, 0x02, 0x00, 0x00}) {
		t.Fatalf("%s: CONNACK % X, want 20 02 00 00", id, ack)
	}
	return c
}

// MQTT 3.1 clients connect, subscribe, publish at QoS 1 and receive, and
// a second connection with a live client identifier takes the session
// over (the old connection is closed). A persistent session is resumed
// (connect31 checks its CONNACK bytes).
func TestMQTT31(t *testing.T) {
	s := newServer(t, Options{})
	sub := connect31(t, s, "sub31", false)
	must(t, sub.Send(&packetgen.Subscribe{PacketID: 3, Subscriptions: []packetgen.Subscription{{Filter: "v31/+", QoS: 1}}}))
	if ack, err := wire.Expect[*packetgen.Suback](sub, wait); err != nil || packetgen.Format(ack) != "SUBACK id=3 codes=0x01" {
		t.Fatalf("SUBACK: %v %v", ack, err)
	}
	pubc := connect31(t, s, "pub31", true)
	send := func(payload string, id uint16) {
		t.Helper()
		must(t, pubc.Send(pub("v31/a", payload, 1, id)))
		if a, err := wire.Expect[*packetgen.Puback](pubc, wait); err != nil || a.PacketID != id {
			t.Fatalf("PUBACK %d: %v %v", id, a, err)
		}
	}
	receive := func(c *wire.Conn, payload string) {
		t.Helper()
		got := expectPublish(t, c)
		if string(got.Topic) != "v31/a" || string(got.Payload) != payload || got.QoS != 1 || got.PacketID == 0 {
			t.Fatalf("%s got %s, want %q at QoS 1", c.Name, packetgen.Format(got), payload)
		}
		must(t, c.Send(&packetgen.Puback{PacketID: got.PacketID}))
	}
	send("one", 1)
	receive(sub, "one")

	// Takeover: the old connection is closed, the new one has the
	// session (its subscription) and gets what follows.
	taker := connect31(t, s, "sub31", false)
	if _, err := sub.ExpectClosed(wait); err != nil {
		t.Fatalf("the taken-over 3.1 connection stayed open: %v", err)
	}
	send("two", 2)
	receive(taker, "two")

	// Offline, the persistent session queues QoS 1; it comes back on
	// reconnect.
	must(t, taker.Disconnect())
	waitOffline(t, s, "sub31")
	send("three", 3)
	back := connect31(t, s, "sub31", false)
	receive(back, "three")
	if got := syncPing(t, back); len(got) > 0 {
		t.Fatalf("got %s", formatAll(got))
	}
}

// 3.1 has no SUBACK failure code, so a SUBSCRIBE with an invalid filter
// closes a 3.1 connection, where 3.1.1 would answer 0x80.
func TestMQTT31InvalidFilterCloses(t *testing.T) {
	s := newServer(t, Options{})
	for i, filter := range []string{"a/#/b", "a+", ""} {
		c := connect31(t, s, fmt.Sprint("bad", i), true)
		raw := packetgen.AppendUnchecked(nil, &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: filter}}}, packetgen.V31)
		sendMaybeCut(t, c, raw)
		expectClosedSilently(t, c, fmt.Sprintf("3.1 SUBSCRIBE to %q", filter))
	}
}
