package broker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/fuzz"
	"github.com/mqttbench/mqttbench/packetgen"
)

// fuzzWait bounds every wait of one fuzz input; the broker answers an
// in-memory pipe in microseconds, so reaching it means a hang.
const fuzzWait = 2 * time.Second

// FuzzBrokerConn feeds a byte stream to one connection of a fresh broker
// over net.Pipe: alone, or after a valid CONNECT (mode bit 0; bit 1 makes
// that CONNECT 3.1 instead of 3.1.1, bit 2 makes it 5.0). A second connection subscribes to
// "#" at QoS 2 and counts the deliveries. Each input must leave:
//
//   - no panic: the broker recovers a panic per connection and logs it, so
//     its logger records errors that mention one;
//   - a closed connection whenever the stream breaks a rule that obliges
//     the broker to close (fuzz.Judge decodes the stream as the
//     specification reads it, CONNECT first and once included);
//   - no QoS 2 message delivered twice: per topic and payload, no more
//     deliveries than new QoS 2 messages in the stream (a repeat of a
//     packet identifier before its PUBREL is the same message, §4.3.3);
//   - on a 5.0 connection, only bytes our codec accepts back, and nothing
//     after the broker's DISCONNECT, whose code is an error: malformed
//     input gets DISCONNECT 0x81/0x82 (or another error code) or a close;
//   - no goroutine once the client has closed and the broker is closed.
//
// Seeds come from the wire fuzzer's generators (testdata/fuzz/FuzzBrokerConn,
// rewritten by MQTTBENCH_WRITE_CORPUS=1 go test -run WriteFuzzBrokerConnCorpus).
func FuzzBrokerConn(f *testing.F) {
	// A QoS 2 message, repeated before PUBREL, released, then sent again:
	// two messages, never three deliveries.
	pub := packetgen.AppendUnchecked(nil, &packetgen.Publish{QoS: 2, PacketID: 7, Topic: []byte("a/b"), Payload: []byte("x")}, packetgen.V311)
	rel := packetgen.AppendUnchecked(nil, &packetgen.Pubrel{PacketID: 7}, packetgen.V311)
	f.Add(append(append(append(append([]byte{}, pub...), pub...), rel...), pub...), byte(1))
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		if err := checkConn(data, mode, Faults{}); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzConnect is the CONNECT sent before the input in mode bit 0: 3.1.1,
// 3.1 with bit 1, 5.0 with bit 2.
func fuzzConnect(mode byte) []byte {
	v := fuzzVersion(mode)
	b, _ := packetgen.Append(nil, &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60, ClientID: "fuzzed"}, v)
	return b
}

func fuzzVersion(mode byte) packetgen.Version {
	switch {
	case mode&4 != 0:
		return packetgen.V5
	case mode&2 != 0:
		return packetgen.V31
	}
	return packetgen.V311
}

// checkAnswers decodes what the broker sent on a 5.0 connection: bytes our
// codec accepts, and no packet after a DISCONNECT, whose reason code is
// an error (a server sends DISCONNECT only to say why it closes).
func checkAnswers(out []byte, stream []byte) error {
	d := packetgen.Decoder{Version: packetgen.V5, Side: packetgen.FromServer}
	disconnected := false
	for len(out) > 0 {
		p, n, err := d.Decode(out)
		if err != nil {
			return fmt.Errorf("the broker sent bytes that break %v: % X\ninput: % X", err, clip(out), clip(stream))
		}
		out = out[n:]
		if disconnected {
			return fmt.Errorf("the broker sent %s after its DISCONNECT\ninput: % X", packetgen.Format(p), clip(stream))
		}
		if dp, ok := p.(*packetgen.Disconnect); ok {
			if !dp.ReasonCode.IsError() {
				return fmt.Errorf("the broker closed with %s, not an error code\ninput: % X", packetgen.Format(p), clip(stream))
			}
			disconnected = true
		}
	}
	return nil
}

// speaks5 reports whether the connection of this input is 5.0: a 5.0
// CONNECT sent first, by the mode or by the input itself.
func speaks5(stream []byte) bool {
	var d packetgen.Decoder
	p, _, err := d.Decode(stream)
	cp, ok := p.(*packetgen.Connect)
	return err == nil && ok && cp.ProtocolLevel == packetgen.V5
}

// checkConn runs one input (see FuzzBrokerConn) and returns what went
// wrong, or nil.
func checkConn(data []byte, mode byte, faults Faults) (err error) {
	base := max(runtime.NumGoroutine(), runtime.NumGoroutine())
	watch := &fuzz.PanicWatch{}
	srv := New(Options{Logger: slog.New(watch), Faults: faults})
	closed := false
	defer func() {
		if !closed {
			srv.Close()
		}
	}()
	sub, err := newCounter(srv)
	if err != nil {
		return err
	}
	defer sub.close()

	stream := data
	if mode&1 != 0 {
		stream = append(fuzzConnect(mode), data...)
	}
	client, server := net.Pipe()
	served := make(chan struct{})
	go func() { srv.ServeConn(server); close(served) }() //nolint:errcheck
	eof := make(chan struct{})
	var out bytes.Buffer                              // read only after eof
	go func() { io.Copy(&out, client); close(eof) }() //nolint:errcheck
	client.SetWriteDeadline(time.Now().Add(fuzzWait)) //nolint:errcheck
	if _, err := client.Write(stream); err != nil && isTimeout(err) {
		client.Close()
		return fmt.Errorf("the broker stopped reading the stream (%d bytes): % X", len(stream), clip(stream))
	}
	j := fuzz.Judge(stream, packetgen.PhaseFirst, 0)
	if j.MustClose {
		select {
		case <-eof:
		case <-time.After(fuzzWait):
			client.Close()
			return fmt.Errorf("connection still open %s after bytes that break %s at offset %d (%s): % X",
				fuzzWait, j.Rule, j.CloseAt, j.Detail, clip(stream))
		}
	}
	client.Close()
	select {
	case <-served:
	case <-time.After(fuzzWait):
		return fmt.Errorf("ServeConn still running %s after the client closed: % X", fuzzWait, clip(stream))
	}
	<-eof
	if speaks5(stream) {
		if err := checkAnswers(out.Bytes(), stream); err != nil {
			return err
		}
	}
	// Everything the fuzzed connection published is queued by now; a
	// PINGRESP to the subscriber comes after it.
	if err := sub.sync(); err != nil {
		return fmt.Errorf("%v after the stream: % X", err, clip(stream))
	}
	for m, n := range sub.counts() {
		if n > j.QoS2[m] {
			return fmt.Errorf("QoS 2 message topic %q payload %q delivered %d times; the stream holds %d such messages: % X",
				m.Topic, m.Payload, n, j.QoS2[m], clip(stream))
		}
	}
	srv.Close()
	closed = true
	sub.close()
	if n := watch.Count(); n > 0 {
		return fmt.Errorf("the broker logged %d panic(s): %s\ninput: % X", n, watch.Last(), clip(stream))
	}
	deadline := time.Now().Add(fuzzWait)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			// NumGoroutine may count low for a moment (it is computed
			// from free lists without a lock), so a count above base is
			// only a hint: the goroutines running broker code decide.
			if left := brokerGoroutines(); left != "" {
				return fmt.Errorf("goroutines left after the client closed and Close returned:\n%s", left)
			}
			return nil
		}
		time.Sleep(50 * time.Microsecond)
	}
	return nil
}

// brokerGoroutines returns the stacks of goroutines running this
// package's code (the broker's or this test's helpers), except the caller.
func brokerGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, "mqttbench/broker.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func clip(b []byte) []byte { return b[:min(len(b), 256)] }

// counter is a client subscribed to "#" at QoS 2 that counts the QoS 2
// deliveries it gets, completing each flow (PUBREC, PUBCOMP) so the
// in-flight window never fills.
type counter struct {
	nc   net.Conn
	mu   sync.Mutex
	got  map[fuzz.Message]int
	pong chan struct{}
	done chan struct{}
	once sync.Once
}

var (
	counterConnect, _ = packetgen.Append(nil, &packetgen.Connect{ProtocolLevel: packetgen.V311, CleanStart: true, ClientID: "fuzz-counter-7f3a"}, packetgen.V311)
	counterSub, _     = packetgen.Append(nil, &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "#", QoS: 2}}}, packetgen.V311)
)

func newCounter(srv *Server) (*counter, error) {
	a, b := net.Pipe()
	go srv.ServeConn(b) //nolint:errcheck
	c := &counter{nc: a, got: map[fuzz.Message]int{}, pong: make(chan struct{}, 1), done: make(chan struct{})}
	a.SetDeadline(time.Now().Add(fuzzWait)) //nolint:errcheck
	rd := packetgen.NewReader(a, packetgen.Decoder{Version: packetgen.V311, Side: packetgen.FromServer})
	for _, step := range []struct {
		send []byte
		want packetgen.Type
	}{{counterConnect, packetgen.TypeConnack}, {counterSub, packetgen.TypeSuback}} {
		if _, err := a.Write(step.send); err != nil {
			a.Close()
			return nil, fmt.Errorf("subscriber: %v", err)
		}
		if p, err := rd.ReadPacket(); err != nil || p.Type() != step.want {
			a.Close()
			return nil, fmt.Errorf("subscriber: want %s, got %v %v", step.want, p, err)
		}
	}
	a.SetDeadline(time.Time{}) //nolint:errcheck
	go c.read(rd)
	return c, nil
}

func (c *counter) read(rd *packetgen.Reader) {
	defer close(c.done)
	ack := func(p packetgen.Packet) bool {
		b, _ := packetgen.Append(nil, p, packetgen.V311)
		_, err := c.nc.Write(b)
		return err == nil
	}
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			return
		}
		ok := true
		switch p := p.(type) {
		case *packetgen.Publish:
			switch p.QoS {
			case 1:
				ok = ack(&packetgen.Puback{PacketID: p.PacketID})
			case 2:
				c.mu.Lock()
				c.got[fuzz.Message{Topic: string(p.Topic), Payload: string(p.Payload)}]++
				c.mu.Unlock()
				ok = ack(&packetgen.Pubrec{PacketID: p.PacketID})
			}
		case *packetgen.Pubrel:
			ok = ack(&packetgen.Pubcomp{PacketID: p.PacketID})
		case *packetgen.Pingresp:
			select {
			case c.pong <- struct{}{}:
			default:
			}
		}
		if !ok {
			return
		}
	}
}

// syncWait bounds sync. It is longer than fuzzWait: sync is not a
// timing check, and on a loaded machine a short wait would let the QoS 2
// count be read before the deliveries arrived.
const syncWait = 10 * time.Second

// sync waits until the broker has sent everything queued before a
// PINGREQ (or the subscriber is gone: taken over by the fuzzed client).
// No PINGRESP in time is an error: the counts would not be complete.
func (c *counter) sync() error {
	c.nc.SetWriteDeadline(time.Now().Add(syncWait)) //nolint:errcheck
	if _, err := c.nc.Write([]byte{0xC0, 0}); err != nil {
		return nil // taken over or closed: nothing more will arrive
	}
	select {
	case <-c.pong:
	case <-c.done:
	case <-time.After(syncWait):
		return fmt.Errorf("the subscriber got no PINGRESP within %s", syncWait)
	}
	return nil
}

func (c *counter) counts() map[fuzz.Message]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[fuzz.Message]int, len(c.got))
	for k, v := range c.got {
		out[k] = v
	}
	return out
}

func (c *counter) close() {
	c.once.Do(func() {
		c.nc.Close()
		<-c.done
	})
}

// TestFuzzBrokerConnChecks proves each check of FuzzBrokerConn catches the
// fault it is for.
func TestFuzzBrokerConnChecks(t *testing.T) {
	v := packetgen.V311
	enc := func(ps ...packetgen.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = packetgen.AppendUnchecked(b, p, v)
		}
		return b
	}
	pub := &packetgen.Publish{QoS: 2, PacketID: 7, Topic: []byte("a/b"), Payload: []byte("x")}
	connect := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "again"}
	for _, tc := range []struct {
		name    string
		data    []byte
		faults  Faults
		wantErr string
	}{
		{"qos2 repeat is one message", enc(pub, pub, &packetgen.Pubrel{PacketID: 7}, pub), Faults{}, ""},
		{"qos2 delivered twice", enc(pub, pub), Faults{QoS2Twice: true}, "delivered 2 times"},
		{"second connect closes", enc(connect), Faults{}, ""},
		{"second connect kept open", enc(connect), Faults{AcceptSecondConnect: true}, "still open"},
		{"malformed closes", []byte{0x60, 0x02, 0x00, 0x01}, Faults{}, ""},
		{"incomplete waits", []byte{0x30, 0x7F, 0x00}, Faults{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkConn(tc.data, 1, tc.faults)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

// TestWriteFuzzBrokerConnCorpus rewrites the seed corpus from the wire
// fuzzer's generators when MQTTBENCH_WRITE_CORPUS=1.
func TestWriteFuzzBrokerConnCorpus(t *testing.T) {
	if os.Getenv("MQTTBENCH_WRITE_CORPUS") != "1" {
		t.Skip("set MQTTBENCH_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzBrokerConn")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzBrokerConn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V31, packetgen.V5} {
		for i := uint64(0); i < 120; i++ {
			c := fuzz.Generate(1, i, v)
			if len(c.Bytes) > 4096 {
				continue
			}
			mode := byte(0)
			if c.Phase == packetgen.PhaseAfterConnect {
				mode = map[packetgen.Version]byte{packetgen.V311: 1, packetgen.V31: 3, packetgen.V5: 5}[v]
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nbyte(%s)\n", strconv.Quote(string(c.Bytes)), strconv.QuoteRune(rune(mode)))
			name := fmt.Sprintf("%x", sha256.Sum256([]byte(body)))[:16]
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	t.Logf("wrote %d seeds to %s", n, dir)
}
