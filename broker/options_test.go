package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// SUBACK grants min(requested, MaxQoS) (MQTT-3.8.4-6 lets a server grant
// less), and a message is delivered at min(its QoS, the granted QoS)
// (MQTT-3.8.4-7).
func TestOptionMaxQoS(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []packetgen.ReasonCode // for requests 0, 1, 2
	}{
		{"default", Options{}, []packetgen.ReasonCode{0, 1, 2}},
		{"max 2", Options{MaxQoS: 2}, []packetgen.ReasonCode{0, 1, 2}},
		{"max 1", Options{MaxQoS: 1}, []packetgen.ReasonCode{0, 1, 1}},
		{"max 0", Options{MaxQoSZero: true}, []packetgen.ReasonCode{0, 0, 0}},
		{"out of range means 2", Options{MaxQoS: 7}, []packetgen.ReasonCode{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			sub, _ := connect(t, s, "sub", true)
			must(t, sub.Send(&packetgen.Subscribe{PacketID: 5, Subscriptions: []packetgen.Subscription{
				{Filter: "q/0", QoS: 0}, {Filter: "q/1", QoS: 1}, {Filter: "q/2", QoS: 2}}}))
			ack, err := wire.Expect[*packetgen.Suback](sub, wait)
			if err != nil {
				t.Fatal(err)
			}
			if want := (&packetgen.Suback{PacketID: 5, ReasonCodes: tc.want}); packetgen.Format(ack) != packetgen.Format(want) {
				t.Fatalf("got %s, want %s", packetgen.Format(ack), packetgen.Format(want))
			}
			pubc, _ := connect(t, s, "pub", true)
			for i := range 3 {
				must(t, pubc.Send(pub(fmt.Sprint("q/", i), "x", 2, uint16(i+1))))
				got := expectPublish(t, sub)
				if got.QoS != packetgen.QoS(tc.want[i]) {
					t.Fatalf("QoS 2 message on q/%d delivered at QoS %d, want the granted %d", i, got.QoS, tc.want[i])
				}
				switch got.QoS {
				case 1:
					must(t, sub.Send(&packetgen.Puback{PacketID: got.PacketID}))
				case 2:
					must(t, sub.Send(&packetgen.Pubrec{PacketID: got.PacketID}))
					wire.Expect[*packetgen.Pubrel](sub, wait) //nolint:errcheck
					must(t, sub.Send(&packetgen.Pubcomp{PacketID: got.PacketID}))
				}
			}
		})
	}
}

// DisableRetain stores nothing: a later subscriber gets no retained
// message, while live subscribers still get the message (RETAIN 0).
func TestOptionDisableRetain(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableRetain=", disable), func(t *testing.T) {
			s := newServer(t, Options{DisableRetain: disable})
			live, _ := connect(t, s, "live", true)
			subscribe(t, live, "r/#", 0)
			pubc, _ := connect(t, s, "pub", true)
			r := pub("r/1", "kept?", 1, 1)
			r.Retain = true
			must(t, pubc.Send(r))
			if _, err := wire.Expect[*packetgen.Puback](pubc, wait); err != nil {
				t.Fatal(err)
			}
			if got := expectPublish(t, live); got.Retain || string(got.Payload) != "kept?" {
				t.Fatalf("live delivery %s", packetgen.Format(got))
			}
			later, _ := connect(t, s, "later", true)
			subscribe(t, later, "r/#", 0)
			got := syncPing(t, later)
			if disable && len(got) > 0 {
				t.Fatalf("retain disabled, yet a new subscriber got %s", formatAll(got))
			}
			if !disable && (len(got) != 1 || !got[0].(*packetgen.Publish).Retain) {
				t.Fatalf("a new subscriber got %s, want the retained message", formatAll(got))
			}
		})
	}
}

// MaxPacketSize counts the whole packet, fixed header included: a packet
// of exactly that size is served, one byte more closes the connection.
func TestOptionMaxPacketSize(t *testing.T) {
	// PUBLISH QoS 1 to "t": 2 bytes fixed header, 3 topic, 2 identifier.
	sized := func(n int) []byte {
		b := packetgen.AppendUnchecked(nil, pub("t", strings.Repeat("p", n-7), 1, 1), packetgen.V311)
		if len(b) != n {
			t.Fatalf("built %d bytes, want %d", len(b), n)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		limit  int
		size   int
		closes bool
	}{
		{"at the limit", 64, 64, false},
		{"one byte over", 64, 65, true},
		{"far over", 64, 127, true},
		{"no limit", 0, 127, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{MaxPacketSize: tc.limit})
			c, _ := connect(t, s, "c", true)
			sendMaybeCut(t, c, sized(tc.size))
			if tc.closes {
				expectClosedSilently(t, c, fmt.Sprintf("a %d-byte packet over a %d-byte limit", tc.size, tc.limit))
				return
			}
			if a, err := wire.Expect[*packetgen.Puback](c, wait); err != nil || a.PacketID != 1 {
				t.Fatalf("a %d-byte packet, limit %d: %v %v", tc.size, tc.limit, a, err)
			}
		})
	}
}

// At most InflightWindow QoS 1 or 2 deliveries await acknowledgement per
// client; the rest wait in order and go out one per PUBACK (QoS 1) or
// PUBCOMP (QoS 2; a PUBREC does not free the slot).
func TestOptionInflightWindow(t *testing.T) {
	const total = 6
	for _, tc := range []struct {
		window int
		qos    packetgen.QoS
	}{{1, 1}, {3, 1}, {2, 2}} {
		t.Run(fmt.Sprintf("window %d QoS %d", tc.window, tc.qos), func(t *testing.T) {
			s := newServer(t, Options{InflightWindow: tc.window})
			sub, _ := connect(t, s, "sub", true)
			subscribe(t, sub, "w", tc.qos)
			pubc, _ := connect(t, s, "pub", true)
			for i := 1; i <= total; i++ {
				publishAcked(t, pubc, pub("w", fmt.Sprint(i), tc.qos, uint16(i)))
			}
			var unacked []uint16
			next := 1
			take := func(n int) {
				for range n {
					got := expectPublish(t, sub)
					if string(got.Payload) != fmt.Sprint(next) || got.QoS != tc.qos {
						t.Fatalf("got %s, want message %d at QoS %d", packetgen.Format(got), next, tc.qos)
					}
					next++
					unacked = append(unacked, got.PacketID)
				}
			}
			take(tc.window)
			for next <= total {
				if got := syncPing(t, sub); len(got) > 0 {
					t.Fatalf("%d unacknowledged, window %d, yet got %s", len(unacked), tc.window, formatAll(got))
				}
				id := unacked[0]
				unacked = unacked[1:]
				if tc.qos == 2 {
					must(t, sub.Send(&packetgen.Pubrec{PacketID: id}))
					if rel, err := wire.Expect[*packetgen.Pubrel](sub, wait); err != nil || rel.PacketID != id {
						t.Fatalf("PUBREL: %v %v", rel, err)
					}
					if got := syncPing(t, sub); len(got) > 0 {
						t.Fatalf("a PUBREC freed the window: got %s", formatAll(got))
					}
					must(t, sub.Send(&packetgen.Pubcomp{PacketID: id}))
				} else {
					must(t, sub.Send(&packetgen.Puback{PacketID: id}))
				}
				take(1)
			}
		})
	}
}

// MaxQueued bounds what waits for an offline session: the oldest
// messages are kept, in order, and newer ones are dropped and counted.
func TestOptionMaxQueued(t *testing.T) {
	const published = 5
	for _, tc := range []struct {
		name      string
		maxQueued int
		kept      int
	}{{"bound 3", 3, 3}, {"bound 1", 1, 1}, {"default", 0, published}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{MaxQueued: tc.maxQueued})
			pubc := offlineSubscriber(t, s)
			for i := 1; i <= published; i++ {
				must(t, pubc.Send(pub("q", fmt.Sprint(i), 1, uint16(i))))
				if _, err := wire.Expect[*packetgen.Puback](pubc, wait); err != nil {
					t.Fatal(err)
				}
			}
			if d := s.Stats().Dropped(); d != uint64(published-tc.kept) {
				t.Fatalf("Dropped() = %d, want %d", d, published-tc.kept)
			}
			c, ack := connect(t, s, "p", false)
			if !ack.SessionPresent {
				t.Fatal("session not resumed")
			}
			for i := 1; i <= tc.kept; i++ {
				got := expectPublish(t, c)
				if string(got.Payload) != fmt.Sprint(i) {
					t.Fatalf("queued message %d: got %s", i, packetgen.Format(got))
				}
				must(t, c.Send(&packetgen.Puback{PacketID: got.PacketID}))
			}
			if got := syncPing(t, c); len(got) > 0 {
				t.Fatalf("beyond the bound of %d: %s", tc.maxQueued, formatAll(got))
			}
		})
	}
}

// QoS 0 messages wait for an offline persistent session only with
// QueueQoS0 (MQTT-3.1.2-5 leaves it to the server); QoS 1 always waits.
// What is queued comes back in publishing order.
func TestOptionQueueQoS0(t *testing.T) {
	for _, tc := range []struct {
		queue bool
		want  []string
	}{{false, []string{"b:1"}}, {true, []string{"a:0", "b:1", "c:0"}}} {
		t.Run(fmt.Sprint("QueueQoS0=", tc.queue), func(t *testing.T) {
			s := newServer(t, Options{QueueQoS0: tc.queue})
			pubc := offlineSubscriber(t, s)
			must(t, pubc.Send(pub("q", "a", 0, 0)))
			must(t, pubc.Send(pub("q", "b", 1, 1)))
			must(t, pubc.Send(pub("q", "c", 0, 0)))
			if got := syncPing(t, pubc); len(got) != 1 || got[0].Type() != packetgen.TypePuback {
				t.Fatalf("publisher got %s, want one PUBACK", formatAll(got))
			}
			c, _ := connect(t, s, "p", false)
			var got []string
			for _, p := range syncPing(t, c) {
				pp := p.(*packetgen.Publish)
				got = append(got, fmt.Sprintf("%s:%d", pp.Payload, pp.QoS))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("after reconnecting got %v, want %v", got, tc.want)
			}
		})
	}
}

// waitOffline waits until the session of id has no connection, so that
// what is published next is queued rather than sent to a closing one.
func waitOffline(t *testing.T, s *Server, id string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		s.mu.RLock()
		sess := s.sessions[id]
		s.mu.RUnlock()
		if sess == nil {
			t.Fatalf("no session %q", id)
		}
		sess.mu.Lock()
		online := sess.conn != nil
		sess.mu.Unlock()
		if !online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %q still online after %s", id, wait)
		}
		time.Sleep(time.Millisecond)
	}
}

// KeepaliveGrace replaces the specification's 1.5 as the factor of the
// keep alive a client may stay silent (MQTT-3.1.2-24): with keep alive 1 s
// and grace 0.5 the connection is closed half a second after the last
// packet (and packets sooner than that keep it open); with grace 2 not
// before two seconds, though 1.5 has passed.
func TestOptionKeepaliveGrace(t *testing.T) {
	for _, tc := range []struct {
		grace    float64
		pings    int // PINGREQs 300 ms apart before going silent
		min, max time.Duration
	}{
		{0.5, 3, 500 * time.Millisecond, 1200 * time.Millisecond},
		{2, 0, 2 * time.Second, 2900 * time.Millisecond},
	} {
		t.Run(fmt.Sprint("grace ", tc.grace), func(t *testing.T) {
			s := newServer(t, Options{KeepaliveGrace: tc.grace})
			last := time.Now() // before the broker arms the first deadline
			c, _ := connect(t, s, "k", true, func(cp *packetgen.Connect) { cp.KeepAlive = 1 })
			for range tc.pings {
				time.Sleep(300 * time.Millisecond)
				last = time.Now()
				if got := syncPing(t, c); len(got) > 0 {
					t.Fatalf("got %s", formatAll(got))
				}
			}
			if _, err := c.ExpectClosed(tc.max + time.Second); err != nil {
				t.Fatalf("not closed: %v", err)
			}
			if el := time.Since(last); el < tc.min || el > tc.max {
				t.Fatalf("closed %v after the last packet, want between %v and %v", el, tc.min, tc.max)
			}
		})
	}
}

func TestReadUsers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	good := write("good", "# users\nalice:wonder:land\n\n  bob:builder  \ncarol:\n")
	users, err := ReadUsers(good)
	must(t, err)
	want := map[string]string{"alice": "wonder:land", "bob": "builder", "carol": ""}
	if !maps.Equal(users, want) {
		t.Fatalf("got %q, want %q", users, want)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"no colon", "alice:a\nbobsecret\n", ":2: want user:password"},
		{"no user", "# x\n:hunter2\n", ":2: want user:password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name, tc.body)
			_, err := ReadUsers(p)
			if err == nil || !strings.Contains(err.Error(), p+tc.want) {
				t.Fatalf("got %v, want an error naming %s%s", err, p, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
	if _, err := ReadUsers(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// Users read from a password file: a known user with its password is
// accepted; a wrong password, an unknown user or a user name without a
// password gets return code 4; a client without a user name gets 5 unless
// AllowAnonymous (§3.2.2.3). A refusal closes the connection
// (MQTT-3.2.2-5).
func TestAuthentication(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	must(t, os.WriteFile(file, []byte("alice:wonderland\ncarol:\n"), 0o600))
	users, err := ReadUsers(file)
	must(t, err)
	login := func(user string, pass []byte) func(*packetgen.Connect) {
		return func(cp *packetgen.Connect) {
			cp.UsernameFlag, cp.Username = true, user
			cp.PasswordFlag, cp.Password = pass != nil, pass
		}
	}
	anonymous := func(*packetgen.Connect) {}
	for _, tc := range []struct {
		name  string
		opts  Options
		login func(*packetgen.Connect)
		rc    packetgen.ConnectReturnCode
	}{
		{"right password", Options{Users: users}, login("alice", []byte("wonderland")), 0},
		{"wrong password", Options{Users: users}, login("alice", []byte("wonderlan")), 4},
		{"no password", Options{Users: users}, login("alice", nil), 4},
		{"unknown user", Options{Users: users}, login("mallory", []byte("wonderland")), 4},
		{"empty password", Options{Users: users}, login("carol", []byte{}), 0},
		{"empty password left out", Options{Users: users}, login("carol", nil), 4},
		{"anonymous refused", Options{Users: users}, anonymous, 5},
		{"anonymous allowed", Options{Users: users, AllowAnonymous: true}, anonymous, 0},
		{"allowed anonymous still checks users", Options{Users: users, AllowAnonymous: true}, login("alice", []byte("x")), 4},
		{"no users: anyone", Options{}, login("mallory", []byte("x")), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			c := pipe(t, s, tc.name)
			cp := &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: "auth", CleanStart: true}
			tc.login(cp)
			ack, err := c.Connect(cp, wait)
			if err != nil {
				t.Fatal(err)
			}
			if ack.ReasonCode != packetgen.ReasonCode(tc.rc) {
				t.Fatalf("CONNACK code %d, want %d", ack.ReasonCode, tc.rc)
			}
			if tc.rc != 0 {
				expectClosedSilently(t, c, "a refused CONNECT")
				return
			}
			if got := syncPing(t, c); len(got) > 0 {
				t.Fatalf("got %s", formatAll(got))
			}
		})
	}
}

// Shutdown stops listening, closes every connection, waits for them and
// leaves nothing running (newServer checks the goroutines); later
// connections are refused.
func TestShutdown(t *testing.T) {
	s := newServer(t, Options{Listen: []string{"127.0.0.1:0", "127.0.0.1:0"}})
	must(t, s.Start())
	addrs := s.Addrs()
	var clients []*wire.Conn
	for i, a := range addrs {
		clients = append(clients, dial(t, a.String(), &packetgen.Connect{ProtocolLevel: 4, ClientID: fmt.Sprint("tcp", i), CleanStart: true}))
	}
	p, _ := connect(t, s, "pipe", false)
	subscribe(t, p, "x", 1)
	clients = append(clients, p)
	// One connection has not sent CONNECT yet.
	raw := pipe(t, s, "silent")
	clients = append(clients, raw)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (want it done within its 3 s deadline)", err)
	}
	if n := s.Stats().Connections.Load(); n != 0 {
		t.Fatalf("%d connections open after Shutdown", n)
	}
	for _, c := range clients {
		if _, err := c.ExpectClosed(wait); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
	}
	if addrs := s.Addrs(); len(addrs) > 0 {
		t.Fatalf("still listening on %v", addrs)
	}
	for _, a := range addrs {
		if nc, err := net.DialTimeout("tcp", a.String(), wait); err == nil {
			nc.Close()
			t.Fatalf("%s still accepts connections", a)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	if err := s.ServeConn(b); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeConn after Shutdown: %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

// stuckConn ignores read deadlines, so a reader blocked on it stays
// blocked until the client closes: a connection Shutdown cannot end.
type stuckConn struct{ net.Conn }

func (stuckConn) SetReadDeadline(time.Time) error { return nil }
func (stuckConn) SetDeadline(time.Time) error     { return nil }

// Shutdown gives up at its context's deadline and says so; the connection
// it could not end still ends, and is waited for, once its client goes.
func TestShutdownDeadline(t *testing.T) {
	s := newServer(t, Options{})
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- s.ServeConn(stuckConn{b}) }()
	c := wire.New(a, "stuck", packetgen.V311, nil)
	if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: 4, ClientID: "stuck", CleanStart: true}, wait); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v, want the context's deadline", err)
		}
	case <-time.After(wait):
		c.Close() // lets Shutdown return before the test ends
		<-shut
		t.Fatalf("Shutdown still waiting %s after its 200ms deadline", wait)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 2*time.Second {
		t.Fatalf("Shutdown returned after %v, want at its 200ms deadline", el)
	}
	select {
	case err := <-served:
		t.Fatalf("ServeConn returned %v while its reader was stuck", err)
	default:
	}
	c.Close()
	select {
	case <-served:
	case <-time.After(wait):
		t.Fatal("ServeConn still running after its client closed")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// publishAcked publishes p and completes its flow: PUBACK for QoS 1;
// PUBREC, PUBREL, PUBCOMP for QoS 2.
func publishAcked(t *testing.T, c *wire.Conn, p *packetgen.Publish) {
	t.Helper()
	must(t, c.Send(p))
	switch p.QoS {
	case 1:
		if a, err := wire.Expect[*packetgen.Puback](c, wait); err != nil || a.PacketID != p.PacketID {
			t.Fatalf("PUBACK: %v %v", a, err)
		}
	case 2:
		if r, err := wire.Expect[*packetgen.Pubrec](c, wait); err != nil || r.PacketID != p.PacketID {
			t.Fatalf("PUBREC: %v %v", r, err)
		}
		must(t, c.Send(&packetgen.Pubrel{PacketID: p.PacketID}))
		if r, err := wire.Expect[*packetgen.Pubcomp](c, wait); err != nil || r.PacketID != p.PacketID {
			t.Fatalf("PUBCOMP: %v %v", r, err)
		}
	}
}

// offlineSubscriber leaves client "p" offline with a persistent session
// subscribed to "q" at QoS 1, and returns a connected publisher.
func offlineSubscriber(t *testing.T, s *Server) *wire.Conn {
	t.Helper()
	p, _ := connect(t, s, "p", false)
	subscribe(t, p, "q", 1)
	must(t, p.Disconnect())
	pubc, _ := connect(t, s, "pub", true)
	waitOffline(t, s, "p")
	return pubc
}
