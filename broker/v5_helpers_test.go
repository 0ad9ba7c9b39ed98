package broker

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Helpers shared by the MQTT 5.0 tests (v5_*_test.go).

// rawPipe5 is pipe for a client that speaks 5.0 from its first byte, for
// tests that write their CONNECT raw.
func rawPipe5(t *testing.T, s *Server, name string) *wire.Conn {
	t.Helper()
	a, b := net.Pipe()
	go s.ServeConn(b) //nolint:errcheck
	c := wire.New(a, name, packetgen.V5, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

// withProp sets a CONNECT property.
func withProp(id packetgen.PropID, v any) func(*packetgen.Connect) {
	return func(cp *packetgen.Connect) { cp.Properties.Set(id, v) }
}

// withExpiry sets the CONNECT's Session Expiry Interval, in seconds.
func withExpiry(sec uint32) func(*packetgen.Connect) {
	return withProp(packetgen.PropSessionExpiryInterval, sec)
}

// withWill5 gives the CONNECT a QoS 1 will on "will/{client id}" with
// payload "gone"; props change the will's properties.
func withWill5(props ...func(*packetgen.Properties)) func(*packetgen.Connect) {
	return func(cp *packetgen.Connect) {
		cp.Will = &packetgen.Will{Topic: "will/" + cp.ClientID, Payload: []byte("gone"), QoS: 1}
		for _, p := range props {
			p(&cp.Will.Properties)
		}
	}
}

// willDelay sets the Will Delay Interval, in seconds.
func willDelay(sec uint32) func(*packetgen.Properties) {
	return func(p *packetgen.Properties) { p.Set(packetgen.PropWillDelayInterval, sec) }
}

// subscribe5 sends one SUBSCRIBE with subs, and Subscription Identifier id
// when it is not 0, and returns the SUBACK's reason codes.
func subscribe5(t *testing.T, c *wire.Conn, id uint32, subs ...packetgen.Subscription) []packetgen.ReasonCode {
	t.Helper()
	sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: subs}
	if id != 0 {
		sp.Properties.Set(packetgen.PropSubscriptionIdentifier, id)
	}
	must(t, c.Send(sp))
	ack, err := wire.Expect[*packetgen.Suback](c, wait)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	if len(ack.ReasonCodes) != len(subs) {
		t.Fatalf("%s: SUBACK has %d codes for %d filters", c.Name, len(ack.ReasonCodes), len(subs))
	}
	return ack.ReasonCodes
}

// publish5 sends p and completes the publisher's side of its QoS: nothing
// for QoS 0, PUBACK for 1, PUBREC-PUBREL-PUBCOMP for 2. It returns the
// reason code of the PUBACK or PUBREC.
func publish5(t *testing.T, c *wire.Conn, p *packetgen.Publish) packetgen.ReasonCode {
	t.Helper()
	must(t, c.Send(p))
	switch p.QoS {
	case 1:
		ack, err := wire.Expect[*packetgen.Puback](c, wait)
		if err != nil || ack.PacketID != p.PacketID {
			t.Fatalf("%s: PUBACK for %d: %v %v", c.Name, p.PacketID, ack, err)
		}
		return ack.ReasonCode
	case 2:
		rec, err := wire.Expect[*packetgen.Pubrec](c, wait)
		if err != nil || rec.PacketID != p.PacketID {
			t.Fatalf("%s: PUBREC for %d: %v %v", c.Name, p.PacketID, rec, err)
		}
		if rec.ReasonCode.IsError() {
			return rec.ReasonCode
		}
		must(t, c.Send(&packetgen.Pubrel{PacketID: p.PacketID}))
		if _, err := wire.Expect[*packetgen.Pubcomp](c, wait); err != nil {
			t.Fatalf("%s: PUBCOMP for %d: %v", c.Name, p.PacketID, err)
		}
		return rec.ReasonCode
	}
	return packetgen.Success
}

// ackPublish completes the receiver's side of a delivered PUBLISH.
func ackPublish(t *testing.T, c *wire.Conn, p *packetgen.Publish) {
	t.Helper()
	switch p.QoS {
	case 1:
		must(t, c.Send(&packetgen.Puback{PacketID: p.PacketID}))
	case 2:
		must(t, c.Send(&packetgen.Pubrec{PacketID: p.PacketID}))
		rel, err := wire.Expect[*packetgen.Pubrel](c, wait)
		if err != nil || rel.PacketID != p.PacketID {
			t.Fatalf("%s: PUBREL for %d: %v %v", c.Name, p.PacketID, rel, err)
		}
		must(t, c.Send(&packetgen.Pubcomp{PacketID: p.PacketID}))
	}
}

// expectServerDisconnect reads until the connection closes and checks that
// the last packet before the close is the broker's DISCONNECT
// (MQTT-3.14.4-1: nothing follows it; MQTT-3.14.4-2: then it closes) and
// that it carries no Session Expiry Interval (MQTT-3.14.2-2).
func expectServerDisconnect(t *testing.T, c *wire.Conn, within time.Duration) *packetgen.Disconnect {
	t.Helper()
	got, err := c.ExpectClosed(within)
	if err != nil {
		t.Fatalf("%s: not closed: %v (got %v)", c.Name, err, formatAll(got))
	}
	if len(got) == 0 {
		t.Fatalf("%s: closed without DISCONNECT", c.Name)
	}
	d, ok := got[len(got)-1].(*packetgen.Disconnect)
	if !ok {
		t.Fatalf("%s: closed after %s, want DISCONNECT last; got %v", c.Name, packetgen.Format(got[len(got)-1]), formatAll(got))
	}
	for _, p := range got[:len(got)-1] {
		if _, ok := p.(*packetgen.Disconnect); ok {
			t.Fatalf("%s: two DISCONNECTs: %v", c.Name, formatAll(got))
		}
	}
	if d.Properties.Has(packetgen.PropSessionExpiryInterval) {
		t.Fatalf("%s: the server's DISCONNECT carries a Session Expiry Interval: %s", c.Name, packetgen.Format(d))
	}
	return d
}

// expectRefused checks that c gets exactly one CONNACK with code, session
// present 0 (MQTT-3.2.2-6), and is then closed (MQTT-3.2.2-7).
func expectRefused(t *testing.T, c *wire.Conn, code packetgen.ReasonCode) *packetgen.Connack {
	t.Helper()
	got, err := c.ExpectClosed(wait)
	if err != nil {
		t.Fatalf("%s: not closed after the refusal: %v (got %v)", c.Name, err, formatAll(got))
	}
	if len(got) != 1 {
		t.Fatalf("%s: got %v, want one CONNACK 0x%02X then a close", c.Name, formatAll(got), byte(code))
	}
	ack, ok := got[0].(*packetgen.Connack)
	if !ok || ack.ReasonCode != code || ack.SessionPresent {
		t.Fatalf("%s: got %s, want CONNACK 0x%02X with session present 0", c.Name, packetgen.Format(got[0]), byte(code))
	}
	return ack
}

// collect reads PUBLISH packets from c until d has passed, acknowledging
// each; anything but PUBLISH fails the test.
func collect(t *testing.T, c *wire.Conn, d time.Duration) []*packetgen.Publish {
	t.Helper()
	var out []*packetgen.Publish
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return out
		}
		p, err := c.Recv(left)
		if errors.Is(err, wire.ErrTimeout) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		pp, ok := p.(*packetgen.Publish)
		if !ok {
			t.Fatalf("%s: got %s, want PUBLISH", c.Name, packetgen.Format(p))
		}
		ackPublish(t, c, pp)
		out = append(out, pp)
	}
}

// waitDetached waits until the broker has detached the last connection of
// the session id, or ended the session: a test that closes a client and
// then publishes to its session must not race the broker's clean-up.
func waitDetached(t *testing.T, s *Server, id string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		s.mu.RLock()
		sess := s.sessions[id]
		s.mu.RUnlock()
		if sess == nil || !sess.online() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session %q still has a connection after %v", id, wait)
}

// eventually retries f every 50 ms until it reports true or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scramMethod is SCRAM-SHA-256 for user "u" with password "pw".
func scramMethod(t *testing.T) auth.Method {
	t.Helper()
	creds, err := auth.NewCredentials(map[string]string{"u": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.Lookup(auth.SCRAMSHA256, creds)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
