package broker

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// logRecorder is a slog.Handler that keeps every record, for tests that
// check what the broker logged.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (*logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h *logRecorder) WithGroup(string) slog.Handler          { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// find returns the attributes of the first record at level with message
// msg, or nil.
func (h *logRecorder) find(level slog.Level, msg string) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Level != level || r.Message != msg {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		return attrs
	}
	return nil
}

// dial opens a TCP connection to addr and completes CONNECT.
func dial(t *testing.T, addr string, cp *packetgen.Connect) *wire.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	c := wire.New(nc, cp.ClientID, cp.ProtocolLevel, nil)
	t.Cleanup(func() { c.Close() })
	ack, err := c.Connect(cp, wait)
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("%s: CONNECT: %v %v", cp.ClientID, ack, err)
	}
	return c
}

// A panic while handling one connection's packet ends that connection
// only: it is closed (its will goes out, as on any abnormal close), the
// panic is logged through the injected logger with its stack, clients
// already connected keep being served and new connections are accepted.
func TestPanicEndsOnlyItsConnection(t *testing.T) {
	logs := &logRecorder{}
	s := newServer(t, Options{Listen: []string{"127.0.0.1:0"}, Logger: slog.New(logs),
		Faults: Faults{PanicTopic: "panic/now"}})
	must(t, s.Start())
	addr := s.Addrs()[0].String()
	v311 := func(id string) *packetgen.Connect {
		return &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: id, CleanStart: true}
	}

	sub := dial(t, addr, v311("sub"))
	subscribe(t, sub, "#", 1)
	bystander, _ := connect(t, s, "bystander", true) // over a pipe
	victimConnect := v311("victim")
	victimConnect.Will = &packetgen.Will{Topic: "will/victim", Payload: []byte("gone"), QoS: 1}
	victim := dial(t, addr, victimConnect)

	must(t, victim.Send(pub("panic/now", "boom", 1, 9)))
	if got, err := victim.ExpectClosed(wait); err != nil || len(got) > 0 {
		t.Fatalf("the panicking connection: got %s before the close (%v), want a close and no PUBACK", formatAll(got), err)
	}
	will := expectPublish(t, sub)
	if string(will.Topic) != "will/victim" {
		t.Fatalf("subscriber got %s, want the victim's will", packetgen.Format(will))
	}
	must(t, sub.Send(&packetgen.Puback{PacketID: will.PacketID}))

	attrs := logs.find(slog.LevelError, "panic while serving a connection")
	if attrs == nil {
		t.Fatal("no panic logged at level ERROR through Options.Logger")
	}
	if !strings.Contains(attrs["panic"], "panic/now") || attrs["client"] != "victim" || attrs["where"] != "reader" ||
		!strings.Contains(attrs["stack"], "handlePublish") {
		t.Fatalf("panic logged with %v; want the panic value, client victim, where reader and a stack through handlePublish", attrs)
	}

	// The clients that were connected are still served.
	must(t, bystander.Send(pub("live/1", "after", 1, 1)))
	if a, err := wire.Expect[*packetgen.Puback](bystander, wait); err != nil || a.PacketID != 1 {
		t.Fatalf("bystander PUBACK: %v %v", a, err)
	}
	if got := expectPublish(t, sub); string(got.Topic) != "live/1" || string(got.Payload) != "after" {
		t.Fatalf("subscriber got %s, want live/1", packetgen.Format(got))
	}
	// New connections are accepted, over TCP and over a pipe, and the
	// victim's client identifier can connect again.
	again := dial(t, addr, v311("victim"))
	must(t, again.Send(pub("live/2", "new", 0, 0)))
	if got := expectPublish(t, sub); string(got.Topic) != "live/2" {
		t.Fatalf("subscriber got %s, want live/2", packetgen.Format(got))
	}
	fresh, _ := connect(t, s, "fresh", true)
	if before := syncPing(t, fresh); len(before) > 0 {
		t.Fatalf("fresh client got %s", formatAll(before))
	}
	if n := s.Stats().Connections.Load(); n != 4 {
		t.Fatalf("%d connections open, want 4 (sub, bystander, victim again, fresh)", n)
	}
}
