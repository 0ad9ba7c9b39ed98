package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

const wait = 2 * time.Second

// newServer starts a broker that is closed, and checked for leaked
// goroutines, when the test ends.
func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	before := runtime.NumGoroutine()
	withTestStore(t, &opts)
	s := New(opts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left after Close (had %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
	})
	return s
}

// pipe opens an in-memory connection to s.
func pipe(t *testing.T, s *Server, name string) *wire.Conn {
	t.Helper()
	a, b := net.Pipe()
	go s.ServeConn(b) //nolint:errcheck
	c := wire.New(a, name, packetgen.V311, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

// connect opens a connection and completes CONNECT with the given id.
func connect(t *testing.T, s *Server, id string, clean bool, mods ...func(*packetgen.Connect)) (*wire.Conn, *packetgen.Connack) {
	t.Helper()
	c := pipe(t, s, id)
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: id, CleanStart: clean}
	for _, m := range mods {
		m(cp)
	}
	ack, err := c.Connect(cp, wait)
	if err != nil {
		t.Fatalf("%s: CONNECT: %v", id, err)
	}
	return c, ack
}

func subscribe(t *testing.T, c *wire.Conn, filter string, qos packetgen.QoS) packetgen.ReasonCode {
	t.Helper()
	must(t, c.Send(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: filter, QoS: qos}}}))
	ack, err := wire.Expect[*packetgen.Suback](c, wait)
	if err != nil {
		t.Fatal(err)
	}
	return ack.ReasonCodes[0]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func expectPublish(t *testing.T, c *wire.Conn) *packetgen.Publish {
	t.Helper()
	p, err := wire.Expect[*packetgen.Publish](c, wait)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return p
}

func expectNothing(t *testing.T, c *wire.Conn, d time.Duration) {
	t.Helper()
	if p, err := c.Recv(d); err == nil {
		t.Fatalf("%s: expected nothing, got %s", c.Name, packetgen.Format(p))
	} else if !errors.Is(err, wire.ErrTimeout) {
		t.Fatalf("%s: expected nothing, got %v", c.Name, err)
	}
}

func pub(topic, payload string, qos packetgen.QoS, id uint16) *packetgen.Publish {
	return &packetgen.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: qos, PacketID: id}
}

func TestConnectAndPing(t *testing.T) {
	s := newServer(t, Options{})
	c, ack := connect(t, s, "c1", true)
	if ack.ReasonCode != 0 || ack.SessionPresent {
		t.Fatalf("CONNACK %s", packetgen.Format(ack))
	}
	must(t, c.Send(&packetgen.Pingreq{}))
	if _, err := wire.Expect[*packetgen.Pingresp](c, wait); err != nil {
		t.Fatal(err)
	}
}

func TestPublishSubscribeEachQoS(t *testing.T) {
	s := newServer(t, Options{})
	sub, _ := connect(t, s, "sub", true)
	pubc, _ := connect(t, s, "pub", true)
	if rc := subscribe(t, sub, "a/+", 2); rc != 2 {
		t.Fatalf("granted %d", rc)
	}
	for qos := packetgen.QoS(0); qos <= 2; qos++ {
		must(t, pubc.Send(pub("a/b", fmt.Sprint("m", qos), qos, uint16(qos)*10)))
		switch qos {
		case 1:
			if a, err := wire.Expect[*packetgen.Puback](pubc, wait); err != nil || a.PacketID != 10 {
				t.Fatalf("PUBACK: %v %v", a, err)
			}
		case 2:
			if _, err := wire.Expect[*packetgen.Pubrec](pubc, wait); err != nil {
				t.Fatal(err)
			}
			must(t, pubc.Send(&packetgen.Pubrel{PacketID: 20}))
			if _, err := wire.Expect[*packetgen.Pubcomp](pubc, wait); err != nil {
				t.Fatal(err)
			}
		}
		got := expectPublish(t, sub)
		if got.QoS != qos || string(got.Payload) != fmt.Sprint("m", qos) || got.Retain {
			t.Fatalf("delivered %s", packetgen.Format(got))
		}
		switch qos {
		case 1:
			must(t, sub.Send(&packetgen.Puback{PacketID: got.PacketID}))
		case 2:
			must(t, sub.Send(&packetgen.Pubrec{PacketID: got.PacketID}))
			rel, err := wire.Expect[*packetgen.Pubrel](sub, wait)
			if err != nil || rel.PacketID != got.PacketID {
				t.Fatalf("PUBREL %v %v", rel, err)
			}
			must(t, sub.Send(&packetgen.Pubcomp{PacketID: got.PacketID}))
		}
	}
}

// A QoS 2 PUBLISH repeated (DUP=1, same identifier) before PUBREL is
// delivered once; after PUBREL the identifier is a new message.
func TestQoS2ExactlyOnce(t *testing.T) {
	s := newServer(t, Options{})
	sub, _ := connect(t, s, "sub", true)
	pubc, _ := connect(t, s, "pub", true)
	subscribe(t, sub, "x", 0)
	p := pub("x", "once", 2, 7)
	must(t, pubc.Send(p))
	wire.Expect[*packetgen.Pubrec](pubc, wait) //nolint:errcheck
	p.Dup = true
	must(t, pubc.Send(p))
	if _, err := wire.Expect[*packetgen.Pubrec](pubc, wait); err != nil {
		t.Fatal(err)
	}
	expectPublish(t, sub)
	expectNothing(t, sub, 100*time.Millisecond)
	must(t, pubc.Send(&packetgen.Pubrel{PacketID: 7}))
	wire.Expect[*packetgen.Pubcomp](pubc, wait) //nolint:errcheck
	p.Dup = false
	must(t, pubc.Send(p))
	expectPublish(t, sub)
}

func TestRetained(t *testing.T) {
	s := newServer(t, Options{})
	pubc, _ := connect(t, s, "pub", true)
	r := pub("r/1", "first", 1, 1)
	r.Retain = true
	must(t, pubc.Send(r))
	wire.Expect[*packetgen.Puback](pubc, wait) //nolint:errcheck
	r.Payload = []byte("second")               // replaces
	must(t, pubc.Send(r))
	wire.Expect[*packetgen.Puback](pubc, wait) //nolint:errcheck

	sub, _ := connect(t, s, "sub", true)
	subscribe(t, sub, "r/#", 0)
	got := expectPublish(t, sub)
	if !got.Retain || string(got.Payload) != "second" || got.QoS != 0 {
		t.Fatalf("retained delivery %s", packetgen.Format(got))
	}
	// A live message carries RETAIN 0 even when published with RETAIN 1.
	must(t, pubc.Send(r))
	if got := expectPublish(t, sub); got.Retain {
		t.Fatalf("live delivery %s", packetgen.Format(got))
	}
	// An empty retained payload deletes the retained message.
	r.Payload = nil
	must(t, pubc.Send(r))
	expectPublish(t, sub)
	sub2, _ := connect(t, s, "sub2", true)
	subscribe(t, sub2, "r/#", 0)
	expectNothing(t, sub2, 100*time.Millisecond)
}

func TestWill(t *testing.T) {
	s := newServer(t, Options{})
	watcher, _ := connect(t, s, "watcher", true)
	subscribe(t, watcher, "will/#", 1)
	withWill := func(cp *packetgen.Connect) {
		cp.Will = &packetgen.Will{Topic: "will/" + cp.ClientID, Payload: []byte("gone"), QoS: 1}
	}
	// DISCONNECT: no will.
	a, _ := connect(t, s, "a", true, withWill)
	must(t, a.Disconnect())
	expectNothing(t, watcher, 150*time.Millisecond)
	// Abrupt close: will.
	b, _ := connect(t, s, "b", true, withWill)
	b.Close()
	if got := expectPublish(t, watcher); string(got.Topic) != "will/b" || got.QoS != 1 {
		t.Fatalf("will %s", packetgen.Format(got))
	}
	// Keep alive expiry (1 s x 1.5): will.
	start := time.Now()
	connect(t, s, "c", true, withWill, func(cp *packetgen.Connect) { cp.KeepAlive = 1 })
	got := expectPublish(t, watcher)
	if string(got.Topic) != "will/c" {
		t.Fatalf("will %s", packetgen.Format(got))
	}
	if el := time.Since(start); el < 1400*time.Millisecond {
		t.Fatalf("keep alive 1 s expired after %v, before 1.5 s", el)
	}
	// A protocol violation: will.
	d, _ := connect(t, s, "d", true, withWill)
	must(t, d.SendRaw([]byte{0x3E, 0x02, 0x00, 0x00}, "PUBLISH QoS 3"))
	if _, err := d.ExpectClosed(wait); err != nil {
		t.Fatal(err)
	}
	if got := expectPublish(t, watcher); string(got.Topic) != "will/d" {
		t.Fatalf("will %s", packetgen.Format(got))
	}
}

func TestPersistentSession(t *testing.T) {
	s := newServer(t, Options{})
	c, ack := connect(t, s, "p", false)
	if ack.SessionPresent {
		t.Fatal("session present on a new session")
	}
	subscribe(t, c, "q/#", 2)
	c.Close()
	time.Sleep(50 * time.Millisecond)
	pubc, _ := connect(t, s, "pub", true)
	for i := 1; i <= 3; i++ {
		must(t, pubc.Send(pub("q/x", fmt.Sprint(i), 1, uint16(i))))
		wire.Expect[*packetgen.Puback](pubc, wait) //nolint:errcheck
	}
	must(t, pubc.Send(pub("q/x", "qos0 is not queued", 0, 0)))
	c2, ack := connect(t, s, "p", false)
	if !ack.SessionPresent {
		t.Fatal("session present 0 on a resumed session")
	}
	for i := 1; i <= 3; i++ {
		got := expectPublish(t, c2)
		if string(got.Payload) != fmt.Sprint(i) || got.QoS != 1 {
			t.Fatalf("queued message %d: %s", i, packetgen.Format(got))
		}
		if i < 3 {
			must(t, c2.Send(&packetgen.Puback{PacketID: got.PacketID}))
		}
	}
	expectNothing(t, c2, 100*time.Millisecond)
	// The third is unacknowledged: a reconnect re-sends it with DUP 1 and
	// the same identifier.
	c2.Close()
	time.Sleep(50 * time.Millisecond)
	c3, _ := connect(t, s, "p", false)
	got := expectPublish(t, c3)
	if !got.Dup || string(got.Payload) != "3" {
		t.Fatalf("re-sent %s", packetgen.Format(got))
	}
	// Clean session 1 discards it all.
	c3.Close()
	time.Sleep(50 * time.Millisecond)
	c4, ack := connect(t, s, "p", true)
	if ack.SessionPresent {
		t.Fatal("session present with clean session 1")
	}
	expectNothing(t, c4, 100*time.Millisecond)
}

func TestTakeover(t *testing.T) {
	s := newServer(t, Options{})
	old, _ := connect(t, s, "same", true)
	connect(t, s, "same", true)
	if _, err := old.ExpectClosed(wait); err != nil {
		t.Fatalf("old connection not closed: %v", err)
	}
}

func TestConnectRefusals(t *testing.T) {
	s := newServer(t, Options{Users: map[string]string{"u": "secret"}, AllowAnonymous: false})
	cases := []struct {
		name string
		cp   packetgen.Connect
		raw  []byte
		rc   byte
	}{
		{"anonymous", packetgen.Connect{ProtocolLevel: 4, ClientID: "x", CleanStart: true}, nil, 5},
		{"bad password", packetgen.Connect{ProtocolLevel: 4, ClientID: "x", CleanStart: true, UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("no")}, nil, 4},
		{"level 6", packetgen.Connect{}, []byte{0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 60, 0, 1, 'x'}, 1},
		{"empty id clean 0", packetgen.Connect{}, []byte{0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 60, 0, 0}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := pipe(t, s, tc.name)
			if tc.raw != nil {
				must(t, c.SendRaw(tc.raw, tc.name))
			} else {
				must(t, c.Send(&tc.cp))
			}
			got, err := c.ExpectClosed(wait)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].(*packetgen.Connack).ReasonCode != packetgen.ReasonCode(tc.rc) {
				t.Fatalf("got %v, want CONNACK %d then close", got, tc.rc)
			}
		})
	}
	ok, ack := connect(t, s, "ok", true, func(cp *packetgen.Connect) {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, "u", true, []byte("secret")
	})
	if ack.ReasonCode != 0 {
		t.Fatal(ack)
	}
	ok.Disconnect()
}

// Every malformed class closes its connection (or refuses, or waits), and
// the broker goes on serving a fresh client afterwards.
func TestMalformedClassesClose(t *testing.T) {
	s := newServer(t, Options{ConnectTimeout: 300 * time.Millisecond})
	g := packetgen.NewGen(1, packetgen.V311)
	for _, class := range packetgen.MalformedClasses(packetgen.V311) {
		t.Run(class.Name, func(t *testing.T) {
			for i := 0; i < 5; i++ {
				k, _ := g.Malformed(class.Name)
				c := pipe(t, s, class.Name)
				if k.Phase == packetgen.PhaseAfterConnect {
					if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: 4, ClientID: fmt.Sprint("m", i), CleanStart: true}, wait); err != nil {
						t.Fatal(err)
					}
				}
				must(t, c.SendRaw(k.Bytes, k.Detail))
				switch k.Expect {
				case packetgen.ExpectAccept:
					must(t, c.Send(&packetgen.Pingreq{}))
					for {
						p, err := c.Recv(wait)
						if err != nil {
							t.Fatalf("%s: %v", k, err)
						}
						if _, ok := p.(*packetgen.Pingresp); ok {
							break
						}
						if _, ok := p.(*packetgen.Puback); !ok {
							t.Fatalf("%s: got %s", k, packetgen.Format(p))
						}
					}
				case packetgen.ExpectWaitOrClose:
					expectNothing(t, c, 50*time.Millisecond)
				case packetgen.ExpectRefuse:
					got, err := c.Recv(wait)
					if err != nil && !errors.Is(err, wire.ErrClosed) {
						t.Fatalf("%s: %v", k, err)
					}
					switch p := got.(type) {
					case nil:
					case *packetgen.Connack:
						if p.ReasonCode == 0 {
							t.Fatalf("%s: accepted", k)
						}
					case *packetgen.Suback:
						if p.ReasonCodes[0] != packetgen.SubackFailure {
							t.Fatalf("%s: %s", k, packetgen.Format(p))
						}
					default:
						t.Fatalf("%s: %s", k, packetgen.Format(p))
					}
				default:
					got, err := c.ExpectClosed(wait)
					if err != nil || len(got) > 0 {
						t.Fatalf("%s: not closed: %v %v", k, got, err)
					}
				}
				c.Close()
			}
			fresh, _ := connect(t, s, "fresh", true)
			must(t, fresh.Send(&packetgen.Pingreq{}))
			if _, err := wire.Expect[*packetgen.Pingresp](fresh, wait); err != nil {
				t.Fatal(err)
			}
			fresh.Disconnect()
		})
	}
}

func TestStartOnPortZero(t *testing.T) {
	s := newServer(t, Options{Listen: []string{"127.0.0.1:0"}})
	must(t, s.Start())
	addr := s.Addrs()[0].String()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("address %s", addr)
	}
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	c := wire.New(nc, "tcp", packetgen.V311, nil)
	defer c.Close()
	if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: 4, ClientID: "tcp", CleanStart: true}, wait); err != nil {
		t.Fatal(err)
	}
}

// A takeover closes the old connection at once even while its reader is
// busy: the keep alive deadline it re-arms after each packet must not undo
// the close (a race the conformance suite found over TCP).
func TestTakeoverWhileBusy(t *testing.T) {
	s := newServer(t, Options{Listen: []string{"127.0.0.1:0"}})
	must(t, s.Start())
	addr := s.Addrs()[0].String()
	dial := func(id string, clean bool) *wire.Conn {
		nc, err := net.Dial("tcp", addr)
		must(t, err)
		c := wire.New(nc, id, packetgen.V311, nil)
		t.Cleanup(func() { c.Close() })
		if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: 4, ClientID: id, CleanStart: clean, KeepAlive: 60}, wait); err != nil {
			t.Fatal(err)
		}
		return c
	}
	pubc := dial("pub", true)
	for i := 0; i < 30; i++ {
		old := dial("busy", false)
		subscribe(t, old, "busy/t", 1)
		must(t, pubc.Send(pub("busy/t", "x", 1, uint16(i+1))))
		got := expectPublish(t, old)
		must(t, old.Send(&packetgen.Puback{PacketID: got.PacketID}))
		dial("busy", true)
		if _, err := old.ExpectClosed(500 * time.Millisecond); err != nil {
			t.Fatalf("round %d: the taken-over connection stayed open: %v", i, err)
		}
		wire.Expect[*packetgen.Puback](pubc, wait) //nolint:errcheck
	}
}

// A client that sends without reading fills its socket: the answers the
// broker cannot write at once must wait in its queue, and the broker must
// go on reading that client. Here each of 100 SUBSCRIBEs brings back a
// 1 MiB retained message, 100 MiB in all, more than the sockets' buffers
// hold (up to 32 MiB + 4 MiB on Linux by default); the PUBLISH behind them
// must still reach another client.
func TestClientThatDoesNotReadKeepsBeingRead(t *testing.T) {
	s := newServer(t, Options{Listen: []string{"127.0.0.1:0"}})
	must(t, s.Start())
	addr := s.Addrs()[0].String()
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	sub := wire.New(nc, "reader", packetgen.V311, nil)
	defer sub.Close()
	if _, err := sub.Connect(&packetgen.Connect{ProtocolLevel: 4, ClientID: "reader", CleanStart: true}, wait); err != nil {
		t.Fatal(err)
	}
	big := pub("big/retained", strings.Repeat("x", 1<<20), 0, 0)
	big.Retain = true
	must(t, sub.Send(big))
	subscribe(t, sub, "deaf/out", 0)

	deaf, err := net.Dial("tcp", addr)
	must(t, err)
	defer deaf.Close()
	// The deaf client reads its CONNACK and one PINGRESP (so that the
	// broker's writer for them is done), and nothing after.
	deaf.SetDeadline(time.Now().Add(wait)) //nolint:errcheck
	hello := packetgen.AppendUnchecked(nil, &packetgen.Connect{ProtocolLevel: 4, ClientID: "deaf", CleanStart: true}, packetgen.V311)
	for _, step := range []struct {
		send   []byte
		answer int // CONNACK 4 bytes, PINGRESP 2
	}{{hello, 4}, {[]byte{0xC0, 0x00}, 2}} {
		_, err := deaf.Write(step.send)
		must(t, err)
		_, err = io.ReadFull(deaf, make([]byte, step.answer))
		must(t, err)
	}
	var burst []byte
	for id := range uint16(100) {
		burst = packetgen.AppendUnchecked(burst, &packetgen.Subscribe{PacketID: id + 1,
			Subscriptions: []packetgen.Subscription{{Filter: "big/retained"}}}, packetgen.V311)
	}
	burst = packetgen.AppendUnchecked(burst, pub("deaf/out", "made it", 0, 0), packetgen.V311)
	deaf.SetWriteDeadline(time.Now().Add(wait)) //nolint:errcheck
	if _, err := deaf.Write(burst); err != nil {
		t.Fatal(err)
	}
	p, err := wire.Expect[*packetgen.Publish](sub, 5*time.Second)
	if err != nil || string(p.Payload) != "made it" {
		t.Fatalf("the broker stopped reading a client that does not read: the PUBLISH behind its SUBSCRIBEs: %v %v", p, err)
	}
}
