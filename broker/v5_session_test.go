package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// MQTT-3.1.2-23 (only an interval above 0 keeps the session): with no
// Session Expiry Interval the session ends when the connection closes: its
// subscription is gone at once (a QoS 1 PUBLISH to it is answered 0x10)
// and a reconnect with clean start 0 finds no session (MQTT-3.2.2-3:
// session present 0).
func TestV5SessionExpiryZeroEndsAtClose(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "zero", true)
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "z", QoS: 1})
	pubc, _ := connect5(t, s, "pub", true)
	if code := publish5(t, pubc, pub("z", "online", 1, 1)); code != packetgen.Success {
		t.Fatalf("PUBACK %s while subscribed, want 0x00", code)
	}
	ackPublish(t, c, expectPublish(t, c))
	c.Close()
	waitDetached(t, s, "zero")
	if code := publish5(t, pubc, pub("z", "gone", 1, 2)); code != packetgen.NoMatchingSubscribers {
		t.Fatalf("PUBACK %s after the session ended, want 0x10", code)
	}
	c2, ack := connect5(t, s, "zero", false)
	if ack.SessionPresent {
		t.Fatal("session present 1: a session with expiry 0 outlived its connection")
	}
	expectNothing(t, c2, 100*time.Millisecond)
}

// MQTT-3.1.2-5, MQTT-3.2.2-3 (resume with session present 1), MQTT-3.1.2-23
// (the state is kept), MQTT-3.3.1-1 and MQTT-4.4.0-1 (unacknowledged
// PUBLISH re-sent with DUP 1 and its identifier, an unanswered PUBREL
// re-sent):
// within its expiry interval a session is resumed with everything in it.
func TestV5SessionResumed(t *testing.T) {
	s := newServer(t, Options{})
	c, ack := connect5(t, s, "p", false, withExpiry(60))
	if ack.SessionPresent {
		t.Fatal("session present 1 for a new session")
	}
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "q/#", QoS: 2})
	c.Close()
	waitDetached(t, s, "p")

	pubc, _ := connect5(t, s, "pub", true)
	publish5(t, pubc, pub("q/1", "one", 1, 1))
	publish5(t, pubc, pub("q/2", "two", 2, 2))
	publish5(t, pubc, pub("q/0", "qos0 is not queued", 0, 0))
	publish5(t, pubc, pub("q/3", "three", 1, 3))

	c2, ack := connect5(t, s, "p", false, withExpiry(60))
	if !ack.SessionPresent {
		t.Fatal("session present 0 within the expiry interval")
	}
	var got []*packetgen.Publish
	for range 3 {
		got = append(got, expectPublish(t, c2))
	}
	for i, want := range []struct {
		payload string
		qos     packetgen.QoS
	}{{"one", 1}, {"two", 2}, {"three", 1}} {
		if string(got[i].Payload) != want.payload || got[i].QoS != want.qos || got[i].Dup {
			t.Fatalf("queued message %d: %s, want %q at QoS %d, DUP 0", i, packetgen.Format(got[i]), want.payload, want.qos)
		}
	}
	expectNothing(t, c2, 100*time.Millisecond)
	// Acknowledge only "one"; receive "two" (PUBREC) but never complete it.
	must(t, c2.Send(&packetgen.Puback{PacketID: got[0].PacketID}))
	must(t, c2.Send(&packetgen.Pubrec{PacketID: got[1].PacketID}))
	if rel, err := wire.Expect[*packetgen.Pubrel](c2, wait); err != nil || rel.PacketID != got[1].PacketID {
		t.Fatalf("PUBREL %v %v", rel, err)
	}
	c2.Close()
	waitDetached(t, s, "p")

	c3, ack := connect5(t, s, "p", false, withExpiry(60))
	if !ack.SessionPresent {
		t.Fatal("session present 0 on the second resume")
	}
	rel, err := wire.Expect[*packetgen.Pubrel](c3, wait)
	if err != nil || rel.PacketID != got[1].PacketID {
		t.Fatalf("first after resume: %v %v, want PUBREL %d again", rel, err, got[1].PacketID)
	}
	again := expectPublish(t, c3)
	if !again.Dup || again.PacketID != got[2].PacketID || string(again.Payload) != "three" {
		t.Fatalf("re-sent %s, want DUP 1, identifier %d, \"three\"", packetgen.Format(again), got[2].PacketID)
	}
	expectNothing(t, c3, 100*time.Millisecond)

	// MQTT-3.1.2-4, MQTT-3.2.2-2: clean start 1 discards it all, even
	// with an expiry interval.
	c3.Close()
	waitDetached(t, s, "p")
	c4, ack := connect5(t, s, "p", true, withExpiry(60))
	if ack.SessionPresent {
		t.Fatal("session present 1 with clean start 1")
	}
	expectNothing(t, c4, 100*time.Millisecond)
	if code := publish5(t, pubc, pub("q/4", "x", 1, 4)); code != packetgen.NoMatchingSubscribers {
		t.Fatalf("PUBACK %s: the discarded session's subscription still matches", code)
	}
}

// MQTT-4.1.0-2: a session whose expiry interval passes with no connection
// is discarded while the broker runs: its subscription stops matching (a
// QoS 1 PUBLISH is answered 0x10 instead of being queued), and a later
// clean start 0 finds no session and none of what was queued.
func TestV5SessionDiscardedAfterExpiry(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "exp", true, withExpiry(1))
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "e", QoS: 1})
	// §3.14.2.2.2: DISCONNECT may also lengthen the interval: this one is
	// kept past the first one's second.
	longer, _ := connect5(t, s, "longer", true, withExpiry(1))
	subscribe5(t, longer, 0, packetgen.Subscription{Filter: "l", QoS: 1})
	d := &packetgen.Disconnect{}
	d.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(60))
	must(t, longer.Send(d))
	must(t, c.Disconnect())
	waitDetached(t, s, "exp")
	waitDetached(t, s, "longer")
	detached := time.Now()
	pubc, _ := connect5(t, s, "pub", true)
	if code := publish5(t, pubc, pub("e", "queued", 1, 1)); code != packetgen.Success {
		t.Fatalf("PUBACK %s while the session waits offline, want 0x00 (queued)", code)
	}
	id := uint16(2)
	eventually(t, 3*time.Second, "the offline session still matches after its 1 s expiry", func() bool {
		id++
		return publish5(t, pubc, pub("e", "late", 1, id)) == packetgen.NoMatchingSubscribers
	})
	if el := time.Since(detached); el < 900*time.Millisecond {
		t.Fatalf("session discarded %v after the connection closed, before its 1 s interval", el)
	}
	c2, ack := connect5(t, s, "exp", false, withExpiry(1))
	if ack.SessionPresent {
		t.Fatal("session present 1 after the expiry interval")
	}
	expectNothing(t, c2, 100*time.Millisecond)
	id++
	if code := publish5(t, pubc, pub("l", "still", 1, id)); code != packetgen.Success {
		t.Fatalf("PUBACK %s: the session whose DISCONNECT asked for 60 s ended", code)
	}
	if _, ack := connect5(t, s, "longer", false, withExpiry(60)); !ack.SessionPresent {
		t.Fatal("session present 0: DISCONNECT's longer Session Expiry Interval was ignored")
	}
}

// §3.1.2.11.2: 0xFFFFFFFF means the session never expires (a broker that
// took it for -1 s or 0 would end it at once).
func TestV5SessionNeverExpires(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "forever", true, withExpiry(0xFFFFFFFF))
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "f", QoS: 1})
	c.Close()
	waitDetached(t, s, "forever")
	time.Sleep(200 * time.Millisecond)
	pubc, _ := connect5(t, s, "pub", true)
	if code := publish5(t, pubc, pub("f", "kept", 1, 1)); code != packetgen.Success {
		t.Fatalf("PUBACK %s, want 0x00: the session should still match", code)
	}
	c2, ack := connect5(t, s, "forever", false, withExpiry(0xFFFFFFFF))
	if !ack.SessionPresent {
		t.Fatal("session present 0 with expiry 0xFFFFFFFF")
	}
	if got := expectPublish(t, c2); string(got.Payload) != "kept" {
		t.Fatalf("got %s", packetgen.Format(got))
	}
}

// Options.MaxSessionExpiry caps the interval a client asks for, tells it
// the value used (§3.2.2.3.2) and applies it: asked 3600 s, capped to 1 s,
// the session is gone a second after the connection. A DISCONNECT asking
// for 3600 s cannot lift the cap either.
func TestV5MaxSessionExpiryApplied(t *testing.T) {
	s := newServer(t, Options{MaxSessionExpiry: 1})
	c, ack := connect5(t, s, "capped", true, withExpiry(3600))
	if ack.Properties.Get(packetgen.PropSessionExpiryInterval) != uint32(1) {
		t.Fatalf("CONNACK %s, want Session Expiry Interval 1", packetgen.Format(ack))
	}
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "m/1", QoS: 1})
	c2, _ := connect5(t, s, "lifted", true, withExpiry(1))
	subscribe5(t, c2, 0, packetgen.Subscription{Filter: "m/2", QoS: 1})
	c.Close()
	d := &packetgen.Disconnect{}
	d.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(3600))
	must(t, c2.Send(d))
	waitDetached(t, s, "capped")
	waitDetached(t, s, "lifted")
	pubc, _ := connect5(t, s, "pub", true)
	id := uint16(0)
	for _, topic := range []string{"m/1", "m/2"} {
		eventually(t, 3*time.Second, "the session on "+topic+" outlived the 1 s cap", func() bool {
			id++
			return publish5(t, pubc, pub(topic, "x", 1, id)) == packetgen.NoMatchingSubscribers
		})
	}
}

// §3.14.2.2.2: DISCONNECT may change the Session Expiry Interval: to 0
// the session ends with the connection.
func TestV5DisconnectSetsSessionExpiry(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "d", true, withExpiry(60))
	subscribe5(t, c, 0, packetgen.Subscription{Filter: "d", QoS: 1})
	d := &packetgen.Disconnect{}
	d.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(0))
	must(t, c.Send(d))
	waitDetached(t, s, "d")
	_, ack := connect5(t, s, "d", false, withExpiry(60))
	if ack.SessionPresent {
		t.Fatal("session present 1: DISCONNECT's Session Expiry Interval 0 was ignored")
	}
}

// §3.14.2.2.2: after CONNECT's Session Expiry Interval 0, a DISCONNECT
// setting another is a protocol error: the broker answers DISCONNECT 0x82,
// and the will is published (the client did not end normally). The
// session still ends.
func TestV5DisconnectExpiryAfterZeroIsProtocolError(t *testing.T) {
	s := newServer(t, Options{})
	watcher, _ := connect5(t, s, "watcher", true)
	subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "will/#", QoS: 1})
	c, _ := connect5(t, s, "z", true, withWill5())
	d := &packetgen.Disconnect{}
	d.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(30))
	must(t, c.Send(d))
	if got := expectServerDisconnect(t, c, wait); got.ReasonCode != packetgen.ProtocolError {
		t.Fatalf("DISCONNECT %s, want 0x82", got.ReasonCode)
	}
	if w := expectPublish(t, watcher); string(w.Topic) != "will/z" {
		t.Fatalf("got %s, want the will", packetgen.Format(w))
	}
	waitDetached(t, s, "z")
	if _, ack := connect5(t, s, "z", false); ack.SessionPresent {
		t.Fatal("session present 1: the refused DISCONNECT changed the expiry")
	}
}

// MQTT-3.1.4-3: a second connection with the same identifier takes the
// session over: the old one gets DISCONNECT 0x8E and is closed; with clean
// start 0 the new one resumes the session (session present 1) and gets the
// messages from then on.
func TestV5TakeoverResumesSession(t *testing.T) {
	s := newServer(t, Options{})
	old, _ := connect5(t, s, "same", true, withExpiry(60))
	subscribe5(t, old, 0, packetgen.Subscription{Filter: "t", QoS: 1})
	c, ack := connect5(t, s, "same", false, withExpiry(60))
	if !ack.SessionPresent {
		t.Fatal("session present 0 on a takeover with clean start 0")
	}
	if d := expectServerDisconnect(t, old, wait); d.ReasonCode != packetgen.SessionTakenOver {
		t.Fatalf("DISCONNECT %s, want 0x8E", d.ReasonCode)
	}
	pubc, _ := connect5(t, s, "pub", true)
	publish5(t, pubc, pub("t", "after", 1, 1))
	if got := expectPublish(t, c); string(got.Payload) != "after" {
		t.Fatalf("got %s", packetgen.Format(got))
	}
}

// MQTT-3.1.2-8, MQTT-3.1.3-9: a will with a Will Delay Interval is
// published once the delay has passed, or when the session ends if that
// comes first (expiry 0: at once; expiry 1 s, delay 10 s: after 1 s); not
// at all when the client reconnects to the session (clean start 0) within
// the delay. A reconnect with clean start 1 ends the old session, which
// publishes the will then. The will's Message Expiry Interval counts from
// when it is published.
func TestV5WillDelay(t *testing.T) {
	s := newServer(t, Options{})
	watcher, _ := connect5(t, s, "watcher", true)
	subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "will/#", QoS: 1})
	expiry5 := func(p *packetgen.Properties) { p.Set(packetgen.PropMessageExpiryInterval, uint32(5)) }
	delayed, _ := connect5(t, s, "delayed", true, withExpiry(10), withWill5(willDelay(1), expiry5))
	returns, _ := connect5(t, s, "returns", true, withExpiry(10), withWill5(willDelay(1)))
	sessionEnds, _ := connect5(t, s, "session-ends", true, withExpiry(1), withWill5(willDelay(10)))
	noSession, _ := connect5(t, s, "no-session", true, withWill5(willDelay(10)))
	cleanAgain, _ := connect5(t, s, "clean-again", true, withExpiry(10), withWill5(willDelay(10)))
	closed := time.Now()
	for _, c := range []*wire.Conn{delayed, returns, sessionEnds, noSession, cleanAgain} {
		c.Close()
		waitDetached(t, s, c.Name)
	}
	time.Sleep(200 * time.Millisecond)
	connect5(t, s, "returns", false, withExpiry(10))
	connect5(t, s, "clean-again", true, withExpiry(10))

	at := map[string]time.Duration{}
	for end := closed.Add(1600 * time.Millisecond); time.Now().Before(end); {
		p, err := watcher.Recv(time.Until(end))
		if errors.Is(err, wire.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w, ok := p.(*packetgen.Publish)
		if !ok {
			t.Fatalf("watcher got %s", packetgen.Format(p))
		}
		ackPublish(t, watcher, w)
		name := string(w.Topic)[len("will/"):]
		if _, twice := at[name]; twice {
			t.Fatalf("will of %s published twice", name)
		}
		at[name] = time.Since(closed)
		if name == "delayed" && w.Properties.MessageExpiryInterval != 5 {
			t.Errorf("delayed will: Message Expiry Interval %d, want 5 (it counts from the publication)", w.Properties.MessageExpiryInterval)
		}
	}
	for _, tc := range []struct {
		name     string
		min, max time.Duration // max 0: never
	}{
		{"delayed", 900 * time.Millisecond, 1600 * time.Millisecond},
		{"returns", 0, 0},
		{"session-ends", 900 * time.Millisecond, 1600 * time.Millisecond},
		{"no-session", 0, 500 * time.Millisecond},
		{"clean-again", 100 * time.Millisecond, 800 * time.Millisecond},
	} {
		got, ok := at[tc.name]
		switch {
		case tc.max == 0 && ok:
			t.Errorf("%s: will published %v after the close, though the client came back within the delay", tc.name, got)
		case tc.max != 0 && !ok:
			t.Errorf("%s: will never published", tc.name)
		case ok && (got < tc.min || got > tc.max):
			t.Errorf("%s: will published %v after the close, want between %v and %v", tc.name, got, tc.min, tc.max)
		}
	}
}

// MQTT-3.14.4-3 / MQTT-3.1.2-10: DISCONNECT 0x00 discards the will;
// DISCONNECT 0x04 (disconnect with will message) ends the connection but
// publishes it.
func TestV5WillAfterDisconnect(t *testing.T) {
	for _, tc := range []struct {
		code packetgen.ReasonCode
		will bool
	}{
		{packetgen.Success, false},
		{packetgen.DisconnectWithWill, true},
	} {
		t.Run(fmt.Sprintf("0x%02X", byte(tc.code)), func(t *testing.T) {
			s := newServer(t, Options{})
			watcher, _ := connect5(t, s, "watcher", true)
			subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "will/#", QoS: 1})
			c, _ := connect5(t, s, "w", true, withWill5())
			must(t, c.Send(&packetgen.Disconnect{ReasonCode: tc.code}))
			if got, err := c.ExpectClosed(wait); err != nil || len(got) > 0 {
				t.Fatalf("after the client's DISCONNECT: %s %v, want a close and nothing sent", formatAll(got), err)
			}
			if !tc.will {
				expectNothing(t, watcher, 200*time.Millisecond)
				return
			}
			if w := expectPublish(t, watcher); string(w.Topic) != "will/w" || string(w.Payload) != "gone" {
				t.Fatalf("got %s, want the will", packetgen.Format(w))
			}
		})
	}
}

// MQTT-3.3.2-4, -15, -16, -17, -18, -20, MQTT-3.1.3-10: the will's properties
// go out with it unaltered, user properties in order; MQTT-3.1.2-15: Will
// Retain 1 publishes it retained. A 3.1.1 subscriber gets it without
// properties.
func TestV5WillProperties(t *testing.T) {
	s := newServer(t, Options{})
	watcher, _ := connect5(t, s, "watcher", true)
	subscribe5(t, watcher, 0, packetgen.Subscription{Filter: "will/#", QoS: 2})
	old, _ := connect(t, s, "old", true)
	subscribe(t, old, "will/#", 1)
	c, _ := connect5(t, s, "props", true, withWill5(func(p *packetgen.Properties) {
		p.Set(packetgen.PropPayloadFormatIndicator, byte(1))
		p.Set(packetgen.PropMessageExpiryInterval, uint32(100))
		p.Set(packetgen.PropContentType, "text/plain")
		p.Set(packetgen.PropResponseTopic, "reply/here")
		p.Set(packetgen.PropCorrelationData, []byte{0, 1, 2})
		p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "2"})
		p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "a", Value: "x"})
		p.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "1"})
	}), func(cp *packetgen.Connect) { cp.Will.Retain = true })
	c.Close()
	check := func(w *packetgen.Publish, retain bool) {
		t.Helper()
		g := w.Properties
		if string(w.Topic) != "will/props" || w.QoS != 1 || w.Retain != retain {
			t.Errorf("will %s: want will/props at QoS 1, retain %v", packetgen.Format(w), retain)
		}
		if g.Get(packetgen.PropPayloadFormatIndicator) != byte(1) || g.ContentType != "text/plain" ||
			g.ResponseTopic != "reply/here" || string(g.CorrelationData) != "\x00\x01\x02" {
			t.Errorf("will properties %s", packetgen.Format(w))
		}
		if e := g.MessageExpiryInterval; e == 0 || e > 100 {
			t.Errorf("Message Expiry Interval %d, want 1..100", e)
		}
		want := []packetgen.UserProperty{{Key: "k", Value: "2"}, {Key: "a", Value: "x"}, {Key: "k", Value: "1"}}
		if fmt.Sprint(g.UserProperties) != fmt.Sprint(want) {
			t.Errorf("user properties %v, want %v in that order", g.UserProperties, want)
		}
	}
	check(expectPublish(t, watcher), false) // a live delivery: RETAIN 0 (MQTT-3.3.1-12)
	if w := expectPublish(t, old); !w.Properties.Empty() || string(w.Payload) != "gone" {
		t.Fatalf("3.1.1 subscriber got %s, want the will without properties", packetgen.Format(w))
	}
	late, _ := connect5(t, s, "late", true)
	subscribe5(t, late, 0, packetgen.Subscription{Filter: "will/#", QoS: 1})
	check(expectPublish(t, late), true)
}
