package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/store"
	"github.com/mqttbench/mqttbench/wire"
)

// durableServer starts a broker on the store in dir (fsync always).
func durableServer(t *testing.T, dir string, opts Options) *Server {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = st
	return newServer(t, opts)
}

// restart closes s and starts another broker on the same store.
func restart(t *testing.T, s *Server, dir string, opts Options) *Server {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return durableServer(t, dir, opts)
}

// A restart keeps, in both directions, what was queued and in flight: an
// unacknowledged QoS 1 message is sent again with DUP and its identifier,
// a released QoS 2 one gets its PUBREL again (MQTT-4.4.0-1), queued ones
// follow in order, and a QoS 2 message received and not yet released is
// not delivered again when its publisher re-sends it (MQTT-4.3.3-10).
func TestDurableInflightBothWays(t *testing.T) {
	dir := t.TempDir()
	s := durableServer(t, dir, Options{})
	sub, _ := connect(t, s, "sub", false)
	subscribe(t, sub, "q/#", 2)
	pubc, _ := connect5(t, s, "pub", false, withExpiry(600))

	publish5(t, pubc, pub("q/1", "a", 1, 1))
	publish5(t, pubc, pub("q/1", "b", 2, 2))
	a := expectPublish(t, sub) // not acknowledged
	b := expectPublish(t, sub)
	if string(a.Payload) != "a" || string(b.Payload) != "b" || b.QoS != 2 {
		t.Fatalf("got %s, %s", packetgen.Format(a), packetgen.Format(b))
	}
	must(t, sub.Send(&packetgen.Pubrec{PacketID: b.PacketID}))
	if rel, err := wire.Expect[*packetgen.Pubrel](sub, wait); err != nil || rel.PacketID != b.PacketID {
		t.Fatalf("PUBREL: %v %v", rel, err)
	}
	sub.Close()
	waitDetached(t, s, "sub")
	publish5(t, pubc, pub("q/1", "c", 1, 3))
	d := pub("q/1", "d", 2, 4)
	must(t, pubc.Send(d))
	if rec, err := wire.Expect[*packetgen.Pubrec](pubc, wait); err != nil || rec.ReasonCode != packetgen.Success {
		t.Fatalf("PUBREC: %v %v", rec, err)
	}

	s = restart(t, s, dir, Options{})
	sub, ack := connect(t, s, "sub", false)
	if !ack.SessionPresent {
		t.Fatal("session present 0 after a restart")
	}
	got := expectPublish(t, sub)
	if !got.Dup || got.PacketID != a.PacketID || string(got.Payload) != "a" || got.QoS != 1 {
		t.Fatalf("re-sent %s, want a with DUP and identifier %d", packetgen.Format(got), a.PacketID)
	}
	if rel, err := wire.Expect[*packetgen.Pubrel](sub, wait); err != nil || rel.PacketID != b.PacketID {
		t.Fatalf("PUBREL again: %v %v", rel, err)
	}
	must(t, sub.Send(&packetgen.Puback{PacketID: got.PacketID}))
	must(t, sub.Send(&packetgen.Pubcomp{PacketID: b.PacketID}))
	for _, want := range []string{"c", "d"} {
		got := expectPublish(t, sub)
		if string(got.Payload) != want {
			t.Fatalf("queued: got %s, want %s", packetgen.Format(got), want)
		}
		ackPublish(t, sub, got)
	}

	pubc, ack5 := connect5(t, s, "pub", false, withExpiry(600))
	if !ack5.SessionPresent {
		t.Fatal("publisher's session present 0 after a restart")
	}
	d.Dup = true
	if code := publish5(t, pubc, d); code != packetgen.Success {
		t.Fatalf("PUBREC for the re-sent QoS 2 message: 0x%02X", byte(code))
	}
	expectNothing(t, sub, 200*time.Millisecond)

	// All done: nothing is left to come after another restart.
	s = restart(t, s, dir, Options{})
	sub, _ = connect(t, s, "sub", false)
	expectNothing(t, sub, 200*time.Millisecond)
}

// Subscriptions keep their options across a restart (No Local,
// Retain As Published, the Subscription Identifier, a shared group), and
// retained messages their last state.
func TestDurableSubscriptionsAndRetained(t *testing.T) {
	dir := t.TempDir()
	s := durableServer(t, dir, Options{})
	c, _ := connect5(t, s, "c", false, withExpiry(600))
	subscribe5(t, c, 9, packetgen.Subscription{Filter: "t/#", QoS: 1, NoLocal: true, RetainAsPublished: true})
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "$share/g/s", QoS: 1})
	pubc, _ := connect5(t, s, "pub", true)
	for _, r := range []struct{ topic, payload string }{{"r/1", "one"}, {"r/2", "two"}, {"r/2", ""}, {"r/3", "x"}, {"r/3", "three"}} {
		p := pub(r.topic, r.payload, 1, 1)
		p.Retain = true
		publish5(t, pubc, p)
	}

	s = restart(t, s, dir, Options{})
	c, ack := connect5(t, s, "c", false, withExpiry(600))
	if !ack.SessionPresent {
		t.Fatal("session present 0 after a restart")
	}
	publish5(t, c, pub("t/own", "mine", 1, 1)) // No Local: not back to c
	pubc, _ = connect5(t, s, "pub", true)
	p := pub("t/x", "theirs", 1, 1)
	p.Retain = true
	publish5(t, pubc, p)
	publish5(t, pubc, pub("s", "shared", 1, 2))
	got := collect(t, c, 300*time.Millisecond)
	if len(got) != 2 {
		t.Fatalf("got %d messages, want t/x and s: %v", len(got), got)
	}
	if string(got[0].Topic) != "t/x" || !got[0].Retain || len(got[0].Properties.SubscriptionIdentifiers) != 1 || got[0].Properties.SubscriptionIdentifiers[0] != 9 {
		t.Fatalf("t/x arrived as %s; want RETAIN 1 (Retain As Published) and subscription identifier 9", packetgen.Format(got[0]))
	}
	if string(got[1].Topic) != "s" {
		t.Fatalf("shared subscription: got %s", packetgen.Format(got[1]))
	}

	fresh, _ := connect5(t, s, "fresh", true)
	subscribe5(t, fresh, 0, packetgen.Subscription{Filter: "r/#", QoS: 1})
	retained := map[string]string{}
	for _, m := range collect(t, fresh, 300*time.Millisecond) {
		retained[string(m.Topic)] = string(m.Payload)
	}
	if want := map[string]string{"r/1": "one", "r/3": "three", "t/x": ""}; len(retained) != 2 || retained["r/1"] != "one" || retained["r/3"] != "three" {
		t.Fatalf("retained after restart: %v, want %v", retained, want)
	}
}

// Expiry deadlines are absolute: a session whose interval ran out while
// the broker was down is gone at start; the others are resumed.
func TestDurableSessionExpiry(t *testing.T) {
	dir := t.TempDir()
	s := durableServer(t, dir, Options{})
	for _, c := range []struct {
		id     string
		expiry uint32
	}{{"short", 1}, {"long", 600}} {
		cl, _ := connect5(t, s, c.id, false, withExpiry(c.expiry))
		subscribe5(t, cl, 0, packetgen.Subscription{Filter: "x", QoS: 1})
		must(t, cl.Disconnect())
		waitDetached(t, s, c.id)
	}
	old, _ := connect(t, s, "v311", false)
	must(t, old.Disconnect())
	waitDetached(t, s, "v311")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	s = durableServer(t, dir, Options{})
	for _, c := range []struct {
		id      string
		present bool
	}{{"short", false}, {"long", true}} {
		_, ack := connect5(t, s, c.id, false, withExpiry(600))
		if ack.SessionPresent != c.present {
			t.Errorf("%s: session present %v, want %v", c.id, ack.SessionPresent, c.present)
		}
	}
	if _, ack := connect(t, s, "v311", false); !ack.SessionPresent {
		t.Error("a 3.1.1 persistent session did not survive the restart")
	}
}

// A will waiting for its delay survives a restart: one whose delay ran
// out while the broker was down is published at start, the others when
// their delay ends; a resumed session discards its will (MQTT-3.1.3-9).
func TestDurableWills(t *testing.T) {
	dir := t.TempDir()
	s := durableServer(t, dir, Options{})
	for _, w := range []struct {
		id    string
		delay uint32
	}{{"passed", 1}, {"later", 2}, {"resumed", 30}} {
		c, _ := connect5(t, s, w.id, false, withExpiry(600), withWill5(willDelay(w.delay)), func(cp *packetgen.Connect) { cp.Will.Retain = true })
		c.Close() // no DISCONNECT: the will is due
		waitDetached(t, s, w.id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	s = durableServer(t, dir, Options{})
	connect5(t, s, "resumed", false, withExpiry(600))
	retained := func() map[string]bool {
		c, _ := connect5(t, s, fmt.Sprint("watch", time.Now().UnixNano()), true)
		subscribe5(t, c, 0, packetgen.Subscription{Filter: "will/#", QoS: 1})
		got := map[string]bool{}
		for _, m := range collect(t, c, 200*time.Millisecond) {
			got[string(m.Topic)] = true
		}
		c.Close()
		return got
	}
	if got := retained(); !got["will/passed"] || got["will/later"] || got["will/resumed"] {
		t.Fatalf("retained wills just after the restart: %v, want will/passed only", got)
	}
	eventually(t, 3*time.Second, "will/later published after its delay", func() bool { return retained()["will/later"] })
	if got := retained(); got["will/resumed"] {
		t.Fatal("the will of a resumed session was published")
	}
}

// A session and will whose client was connected when the broker stopped
// without closing it (a crash: the records say connected) count from the
// next start.
func TestDurableConnectedAtCrash(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.PutSession(store.Session{ClientID: "gone", Expiry: 1})
	st.PutWill(&store.Will{ClientID: "gone", Msg: store.Message{Topic: []byte("will/gone"), Payload: []byte("x"), QoS: 1, Retain: true}, Expiry: -1, Delay: 30})
	st.PutSession(store.Session{ClientID: "stays", Expiry: 600})
	st.PutSubscription(store.Subscription{ClientID: "stays", Filter: "will/#", QoS: 1})
	st.PutSubscription(store.Subscription{ClientID: "nobody", Filter: "x", QoS: 1}) // of no session: dropped
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	s := durableServer(t, dir, Options{})
	if _, ack := connect5(t, s, "stays", false, withExpiry(600)); !ack.SessionPresent {
		t.Fatal("session present 0")
	}
	s.Close()
	// "gone" expires 1 s after the first start (not at once: it was
	// connected), a deadline the second start keeps; the session's end
	// publishes the will before its delay (MQTT-3.1.2-8).
	time.Sleep(100 * time.Millisecond)
	s = durableServer(t, dir, Options{})
	c, ack := connect5(t, s, "stays", false, withExpiry(600))
	if !ack.SessionPresent {
		t.Fatal("session present 0 after the second restart")
	}
	got := collect(t, c, 2*time.Second)
	if len(got) != 1 || string(got[0].Topic) != "will/gone" {
		t.Fatalf("got %v, want the will of the expired session", got)
	}
}
