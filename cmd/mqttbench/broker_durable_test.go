package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/store"
	"github.com/mqttbench/mqttbench/wire"
)

// childBroker runs `mqttbench broker` as a child process (this test
// binary standing in for mqttbench), so a test can kill -9 it.
type childBroker struct {
	cmd    *exec.Cmd
	addr   string
	stderr *brokerOutput
	done   chan struct{}
}

func startChildBroker(t *testing.T, args ...string) *childBroker {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"broker", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	b := &childBroker{cmd: cmd, stderr: &brokerOutput{}, done: make(chan struct{})}
	cmd.Stderr = b.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(b.done) }() //nolint:errcheck
	t.Cleanup(b.kill)
	addr := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		io.Copy(io.Discard, out) //nolint:errcheck
	}()
	select {
	case b.addr = <-addr:
		return b
	case <-b.done:
		t.Fatalf("the broker exited before listening: %s", b.stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("the broker did not listen within 10 s: %s", b.stderr)
	}
	return nil
}

// kill is kill -9.
func (b *childBroker) kill() {
	b.cmd.Process.Kill() //nolint:errcheck
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
	}
}

// durableHistory is what the clients of TestBrokerSurvivesKill9 saw: the
// messages the broker acknowledged, and how often each was delivered.
type durableHistory struct {
	mu        sync.Mutex
	acked     map[int]packetgen.QoS // PUBACK (QoS 1) or PUBREC (QoS 2) received
	delivered map[int]int           // to the application: a QoS 2 repeat with an unreleased identifier is not
	unacked   int                   // the most messages in flight when the broker was killed
}

// durablePublisher is a persistent-session client publishing message n at
// QoS 1 when n is even, QoS 2 when odd, with up to window in flight. Its
// session state (what is in flight, released or not) outlives its
// connections, as the specification asks of a client.
type durablePublisher struct {
	h        *durableHistory
	inflight []*outMsg // guarded by h.mu
	next     int
	nextID   uint16
	stop     bool // publish nothing new; finish what is in flight
}

type outMsg struct {
	n        int
	qos      packetgen.QoS
	id       uint16
	released bool
}

// session connects to addr and publishes until the connection breaks or,
// once stop is set, nothing is left in flight.
func (p *durablePublisher) session(addr string, window int) error {
	c, err := durableConnect(addr, "pub")
	if err != nil {
		return err
	}
	defer c.Close()
	for _, m := range p.inflight { // MQTT-4.4.0-1: re-send in order
		var out packetgen.Packet = &packetgen.Pubrel{PacketID: m.id}
		if !m.released {
			out = &packetgen.Publish{Topic: []byte("k/1"), Payload: []byte("m" + strconv.Itoa(m.n)), QoS: m.qos, PacketID: m.id, Dup: true}
		}
		if err := c.Send(out); err != nil {
			return err
		}
	}
	for {
		for !p.stop && len(p.inflight) < window {
			p.nextID++
			if p.nextID == 0 {
				p.nextID = 1
			}
			m := &outMsg{n: p.next, qos: packetgen.QoS(1 + p.next%2), id: p.nextID}
			p.next++
			p.h.mu.Lock()
			p.inflight = append(p.inflight, m)
			p.h.mu.Unlock()
			if err := c.Send(&packetgen.Publish{Topic: []byte("k/1"), Payload: []byte("m" + strconv.Itoa(m.n)), QoS: m.qos, PacketID: m.id}); err != nil {
				return err
			}
		}
		if p.stop && len(p.inflight) == 0 {
			return nil
		}
		pkt, err := c.Recv(100 * time.Millisecond)
		if errors.Is(err, wire.ErrTimeout) {
			continue
		}
		if err != nil {
			return err
		}
		if err := p.handle(c, pkt); err != nil {
			return err
		}
	}
}

// handle takes an acknowledgement of the broker.
func (p *durablePublisher) handle(c *wire.Conn, pkt packetgen.Packet) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	i := slices.IndexFunc(p.inflight, func(m *outMsg) bool { return m.id == packetIDOf(pkt) })
	if i < 0 {
		return fmt.Errorf("publisher got %s, for nothing in flight", packetgen.Format(pkt))
	}
	m := p.inflight[i]
	switch pkt.(type) {
	case *packetgen.Puback:
		if m.qos == 1 {
			p.h.acked[m.n] = 1
			p.inflight = slices.Delete(p.inflight, i, i+1)
		}
	case *packetgen.Pubrec:
		if m.qos == 2 && !m.released {
			p.h.acked[m.n] = 2
			m.released = true
		}
		return c.Send(&packetgen.Pubrel{PacketID: m.id})
	case *packetgen.Pubcomp:
		if m.released {
			p.inflight = slices.Delete(p.inflight, i, i+1)
		}
	}
	return nil
}

func packetIDOf(p packetgen.Packet) uint16 {
	switch p := p.(type) {
	case *packetgen.Puback:
		return p.PacketID
	case *packetgen.Pubrec:
		return p.PacketID
	case *packetgen.Pubcomp:
		return p.PacketID
	}
	return 0
}

// durableSubscriber is a persistent-session client subscribed to k/# at
// QoS 2. A QoS 2 PUBLISH reaches its application once: a repeat whose
// identifier it has not yet seen released (PUBREL) is only acknowledged
// (the receiver's side of MQTT-4.3.3-10); that state, too, outlives its
// connections.
type durableSubscriber struct {
	h          *durableHistory
	unreleased map[uint16]bool
	subscribed atomic.Bool
}

// session connects and receives until the connection breaks or done
// reports true.
func (s *durableSubscriber) session(addr string, done func() bool) error {
	c, err := durableConnect(addr, "sub")
	if err != nil {
		return err
	}
	defer c.Close()
	if !s.subscribed.Load() {
		if err := c.Send(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "k/#", QoS: 2}}}); err != nil {
			return err
		}
		if _, err := wire.Expect[*packetgen.Suback](c, 5*time.Second); err != nil {
			return err
		}
		s.subscribed.Store(true)
	}
	for !done() {
		pkt, err := c.Recv(100 * time.Millisecond)
		if errors.Is(err, wire.ErrTimeout) {
			continue
		}
		if err != nil {
			return err
		}
		var out packetgen.Packet
		switch pkt := pkt.(type) {
		case *packetgen.Publish:
			n, err := strconv.Atoi(strings.TrimPrefix(string(pkt.Payload), "m"))
			if err != nil {
				return fmt.Errorf("payload %q", pkt.Payload)
			}
			s.h.mu.Lock()
			if pkt.QoS != 2 || !s.unreleased[pkt.PacketID] {
				s.h.delivered[n]++
			}
			s.h.mu.Unlock()
			out = &packetgen.Puback{PacketID: pkt.PacketID}
			if pkt.QoS == 2 {
				s.unreleased[pkt.PacketID] = true
				out = &packetgen.Pubrec{PacketID: pkt.PacketID}
			}
		case *packetgen.Pubrel:
			delete(s.unreleased, pkt.PacketID)
			out = &packetgen.Pubcomp{PacketID: pkt.PacketID}
		default:
			return fmt.Errorf("subscriber got %s", packetgen.Format(pkt))
		}
		if err := c.Send(out); err != nil {
			return err
		}
	}
	return nil
}

func durableConnect(addr, id string) (*wire.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := wire.New(nc, id, packetgen.V311, nil)
	ack, err := c.Connect(&packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: id}, 5*time.Second)
	if err != nil {
		c.Close()
		return nil, err
	}
	if ack.ReasonCode != 0 {
		c.Close()
		return nil, fmt.Errorf("%s: CONNACK %s", id, packetgen.Format(ack))
	}
	return c, nil
}

// The durable broker is killed with SIGKILL in the middle of QoS 1 and 2
// traffic between persistent sessions, again and again: no message it
// acknowledged (PUBACK, PUBREC) is lost, and no QoS 2 message reaches the
// subscriber twice.
func TestBrokerSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a broker process several times")
	}
	for _, fsync := range []string{"always", "interval=50ms"} {
		t.Run(fsync, func(t *testing.T) {
			dir := t.TempDir()
			h := &durableHistory{acked: map[int]packetgen.QoS{}, delivered: map[int]int{}}
			pub := &durablePublisher{h: h}
			sub := &durableSubscriber{h: h, unreleased: map[uint16]bool{}}
			for round := range 4 {
				b := startChildBroker(t, "--data-dir", dir, "--fsync", fsync)
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); sub.session(b.addr, func() bool { return false }) }() //nolint:errcheck // ends with the kill
				for deadline := time.Now().Add(5 * time.Second); !sub.subscribed.Load() && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond) // nothing is published before the subscription
				}
				go func() { defer wg.Done(); pub.session(b.addr, 50) }() //nolint:errcheck
				time.Sleep(time.Duration(200+100*round) * time.Millisecond)
				b.kill()
				wg.Wait()
				h.mu.Lock()
				h.unacked = max(h.unacked, len(pub.inflight))
				h.mu.Unlock()
			}
			// Last round: finish what is in flight, then wait until every
			// acknowledged message has arrived (or 20 s have passed).
			b := startChildBroker(t, "--data-dir", dir, "--fsync", fsync)
			pub.stop = true
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			missing := func() []int {
				h.mu.Lock()
				defer h.mu.Unlock()
				var out []int
				for n := range h.acked {
					if h.delivered[n] == 0 {
						out = append(out, n)
					}
				}
				return out
			}
			errs := make(chan error, 2)
			var pubDone atomic.Bool
			go func() {
				err := pub.session(b.addr, 50)
				pubDone.Store(true)
				errs <- err
			}()
			go func() {
				errs <- sub.session(b.addr, func() bool { return pubDone.Load() && len(missing()) == 0 || ctx.Err() != nil })
			}()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("after the last restart: %v\nbroker: %s", err, b.stderr)
				}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.acked) < 100 || h.unacked == 0 {
				t.Fatalf("%d messages acknowledged, at most %d in flight at a kill: the test did not exercise the broker", len(h.acked), h.unacked)
			}
			var lost, twice []int
			for n, q := range h.acked {
				if h.delivered[n] == 0 {
					lost = append(lost, n)
				}
				if q == 2 && h.delivered[n] > 1 {
					twice = append(twice, n)
				}
			}
			if len(lost) > 0 || len(twice) > 0 {
				t.Fatalf("%d acknowledged messages lost (%v), %d QoS 2 messages delivered twice (%v)", len(lost), first(lost), len(twice), first(twice))
			}
			t.Logf("fsync %s: %d messages acknowledged over 4 kills (up to %d in flight at a kill), none lost, no QoS 2 repeated", fsync, len(h.acked), h.unacked)
		})
	}
}

func first(ns []int) []int { return ns[:min(len(ns), 10)] }

// A damaged store stops the broker at start with one line naming the
// file, and exit code 2; so do bad durability flags.
func TestBrokerDamagedStore(t *testing.T) {
	dir := t.TempDir()
	b := brokerCommand(t, "--data-dir", dir)
	c, err := durableConnect(b.addr, "p")
	if err != nil {
		t.Fatal(err)
	}
	c.Send(&packetgen.Publish{Topic: []byte("t"), Payload: []byte("MARKER-0123456789"), QoS: 1, PacketID: 1, Retain: true}) //nolint:errcheck
	if _, err := wire.Expect[*packetgen.Puback](c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b.interrupt()
	<-b.exited
	path := filepath.Join(dir, store.FileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		damage func() []byte
		want   string
	}{
		{"flipped byte", nil, func() []byte {
			b := append([]byte(nil), good...)
			b[strings.Index(string(b), "MARKER")+2] ^= 1
			return b
		}, "retained record \"t\": checksum mismatch"},
		{"truncated", nil, func() []byte { return good[:len(good)/3] }, "is damaged"},
		{"empty file", nil, func() []byte { return nil }, "is damaged: the file is empty"},
		{"not a store", nil, func() []byte { return []byte(strings.Repeat("not a database ", 1000)) }, "is damaged or not a store"},
		{"fsync without data dir", []string{"--fsync", "never"}, nil, "--fsync needs --data-dir"},
		{"bad fsync", []string{"--data-dir", dir, "--fsync", "sometimes"}, nil, `--fsync "sometimes": want always`},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.damage != nil {
				if err := os.WriteFile(path, c.damage(), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--data-dir", dir}
			}
			var stdout, stderr strings.Builder
			code := run(context.Background(), append([]string{"broker", "--listen", "127.0.0.1:0"}, args...), &stdout, &stderr)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if code != exitUsage || !strings.Contains(lines[0], c.want) || len(lines) > 2 || (c.damage != nil && !strings.Contains(lines[0], path)) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and one line saying %q (then a hint)", code, stderr.String(), exitUsage, c.want)
			}
			t.Logf("%s", lines[0])
		})
	}
}
