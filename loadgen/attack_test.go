package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// quick is a short scenario that never misses a send however slow the
// machine (MaxLag 0: late sends go out late) and drains until every
// message is in.
func quick(pubs, subs int, qos packetgen.QoS, topic string) Scenario {
	sc := DefaultScenario()
	sc.Publishers, sc.Subscribers, sc.QoS, sc.Topic = pubs, subs, qos, topic
	sc.Rate, sc.Duration, sc.Drain, sc.MaxLag, sc.Ramp = 1000, 300*time.Millisecond, 10*time.Second, 0, 0
	return sc
}

func run(t *testing.T, sc Scenario, opts Options) *reports.Load {
	t.Helper()
	res, err := Run(context.Background(), sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res.Summary
}

// checkClean asserts a run where every offered message was sent and every
// due delivery arrived exactly once.
func checkClean(t *testing.T, l *reports.Load, fanout uint64) {
	t.Helper()
	m := l.Messages
	if m.Offered == 0 || m.Sent != m.Offered || m.Missed != 0 {
		t.Errorf("offered %d sent %d missed %d", m.Offered, m.Sent, m.Missed)
	}
	if m.Expected != m.Sent*fanout || m.Received != m.Expected {
		t.Errorf("sent %d × fan-out %d: expected %d, received %d", m.Sent, fanout, m.Expected, m.Received)
	}
	if l.Scenario.QoS > 0 && m.Acked != m.Sent {
		t.Errorf("acked %d of %d", m.Acked, m.Sent)
	}
	if len(l.Errors) > 0 || len(l.Violations) > 0 {
		t.Errorf("errors %v violations %v", l.Errors, l.Violations)
	}
	for _, v := range l.Verify {
		if v.Lost+v.LostExcused+v.Duplicates+v.Reordered+v.Downgraded != 0 || v.Received != m.Received {
			t.Errorf("verification %+v", v)
		}
	}
	lat := map[string]reports.LoadLatency{}
	for _, x := range l.Latency {
		lat[x.Metric] = x
	}
	if lat["e2e"].Count != int64(m.Received) || lat["send_lag"].Count != int64(m.Sent) {
		t.Errorf("e2e count %d (received %d), send_lag count %d (sent %d)", lat["e2e"].Count, m.Received, lat["send_lag"].Count, m.Sent)
	}
	if l.Scenario.QoS > 0 && lat["publish_ack"].Count != int64(m.Acked) {
		t.Errorf("publish_ack count %d, acked %d", lat["publish_ack"].Count, m.Acked)
	}
}

// Every pattern at every QoS against the in-process broker over net.Pipe.
func TestRunPatterns(t *testing.T) {
	patterns := []struct {
		name        string
		pubs, subs  int
		topic       string
		fanout      uint64
		wantStreams int
	}{
		{"fan-in", 4, 1, "bench/all", 1, 4},
		{"fan-out", 1, 4, "bench/all", 4, 4},
		{"point-to-point", 4, 4, "bench/{p}", 1, 4},
		{"shared topic", 3, 3, "bench/shared", 3, 9},
	}
	for _, p := range patterns {
		for qos := packetgen.QoS(0); qos <= 2; qos++ {
			t.Run(fmt.Sprintf("%s/qos%d", p.name, qos), func(t *testing.T) {
				l := run(t, quick(p.pubs, p.subs, qos, p.topic), Options{})
				checkClean(t, l, p.fanout)
				if len(l.Verify) != 1 || l.Verify[0].QoS != int(qos) || l.Verify[0].Streams != p.wantStreams {
					t.Errorf("verification rows %+v", l.Verify)
				}
			})
		}
	}
}

// Over loopback TCP, with idle connections beside the clients.
func TestRunTCP(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sc := quick(3, 3, 1, "bench/{p}")
	sc.Connections = 8
	sc.Brokers = []string{"tcp://" + srv.Addrs()[0].String()}
	l := run(t, sc, Options{})
	checkClean(t, l, 1)
	if l.Connections.Peak != 8 || l.Connections.Ready != 8 {
		t.Errorf("connections %+v", l.Connections)
	}
	if l.Connections.MemPerConn <= 0 || l.Connections.MemNote != "generator heap+stacks" {
		t.Errorf("memory per connection %v (%s)", l.Connections.MemPerConn, l.Connections.MemNote)
	}
}

// stallConn is the broker's end of a pipe that stops reading once, for
// stall, at its after-th read: the publisher's writes block, as they would
// on a broker that pauses (a GC, a disk flush).
type stallConn struct {
	net.Conn
	reads, after int
	stall        time.Duration
}

func (c *stallConn) Read(b []byte) (int, error) {
	c.reads++
	if c.reads == c.after {
		time.Sleep(c.stall)
	}
	return c.Conn.Read(b)
}

// A broker that stalls 500 ms must show in the p99 of publish-ack and
// end-to-end latency: the messages due during the stall are measured from
// when they were due, not from when the blocked generator got them out
// (coordinated omission). A third of the messages are due during the stall,
// so the p99 lands inside it.
func TestCoordinatedOmissionStall(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	dial := func(ctx context.Context, i int) (net.Conn, error) {
		client, server := net.Pipe()
		var bc net.Conn = server
		if i == 0 { // the publisher's connection
			bc = &stallConn{Conn: server, after: 60, stall: 500 * time.Millisecond}
		}
		go srv.ServeConn(bc) //nolint:errcheck
		return client, nil
	}
	sc := quick(1, 1, 1, "bench/stall")
	sc.Rate, sc.Duration, sc.MaxLag = 400, 1500*time.Millisecond, 2*time.Second
	l := run(t, sc, Options{Dial: dial})
	checkClean(t, l, 1)
	lat := map[string]reports.LoadLatency{}
	for _, x := range l.Latency {
		lat[x.Metric] = x
	}
	for _, m := range []string{"publish_ack", "e2e"} {
		if p99 := lat[m].P99; p99 < 400_000 {
			t.Errorf("%s p99 = %dµs: the 500 ms stall is hidden", m, p99)
		}
	}
	// The generator knows its own share: it was blocked, so it sent late.
	if lat["send_lag"].Max < 400_000 {
		t.Errorf("send_lag max = %dµs, want the stall", lat["send_lag"].Max)
	}
}

// cutOnPubrec drops the connection when the first PUBREC of the run comes
// back, before the client sees it: the publisher must re-send that QoS 2
// PUBLISH with DUP on its resumed session.
type cutOnPubrec struct {
	net.Conn
	armed   *atomic.Bool
	pending []byte
}

func (c *cutOnPubrec) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	for i := 0; i < n; i++ {
		c.pending = append(c.pending, b[i])
		// Everything the broker sends a publisher has a one-byte length.
		if len(c.pending) >= 2 && len(c.pending) == 2+int(c.pending[1]) {
			if packetgen.Type(c.pending[0]>>4) == packetgen.TypePubrec && c.armed.CompareAndSwap(true, false) {
				c.Conn.Close()
				return 0, io.EOF
			}
			c.pending = c.pending[:0]
		}
	}
	return n, err
}

// A broker that delivers a re-sent QoS 2 PUBLISH again (the QoS2Twice
// fault) is caught as a QoS 2 duplicate; the same run against the correct
// broker is clean. Both runs lose the publisher's connection once.
func TestQoS2DuplicateIsViolation(t *testing.T) {
	for _, faulty := range []bool{false, true} {
		t.Run(fmt.Sprintf("qos2-twice=%v", faulty), func(t *testing.T) {
			srv := broker.New(broker.Options{Faults: broker.Faults{QoS2Twice: faulty}})
			defer srv.Close()
			armed := &atomic.Bool{}
			armed.Store(true)
			dial := func(ctx context.Context, i int) (net.Conn, error) {
				client, server := net.Pipe()
				go srv.ServeConn(server) //nolint:errcheck
				if i == 0 {
					return &cutOnPubrec{Conn: client, armed: armed}, nil
				}
				return client, nil
			}
			sc := quick(1, 1, 2, "bench/twice")
			sc.CleanSession = false // resume, and re-send what was in flight
			sc.Rate, sc.Duration = 200, 500*time.Millisecond
			l := run(t, sc, Options{Dial: dial})
			if l.Errors["closed"] == 0 || l.Connections.Reconnects == 0 {
				t.Fatalf("the cut did not happen: errors %v, reconnects %d", l.Errors, l.Connections.Reconnects)
			}
			v := l.Verify[0]
			if v.Lost != 0 || v.LostExcused != 0 {
				t.Errorf("lost %d (+%d excused) across a resumed session", v.Lost, v.LostExcused)
			}
			dupViolation := strings.Contains(strings.Join(l.Violations, ";"), "delivered twice (QoS 2")
			if faulty && (v.Duplicates == 0 || !dupViolation) {
				t.Errorf("QoS2Twice: duplicates %d, violations %v", v.Duplicates, l.Violations)
			}
			if !faulty && (v.Duplicates != 0 || len(l.Violations) != 0) {
				t.Errorf("correct broker: duplicates %d, violations %v", v.Duplicates, l.Violations)
			}
		})
	}
}

// A broker that delivers QoS 1 messages at QoS 0 (DowngradeToQoS0) loses
// nothing here, but breaks the QoS it granted: a violation.
func TestDowngradeIsViolation(t *testing.T) {
	l := run(t, quick(2, 2, 1, "bench/{p}"), Options{Broker: broker.Options{Faults: broker.Faults{DowngradeToQoS0: true}}})
	v := l.Verify[0]
	if v.Downgraded != v.Received || v.Received == 0 {
		t.Errorf("downgraded %d of %d", v.Downgraded, v.Received)
	}
	if !strings.Contains(strings.Join(l.Violations, ";"), "delivered below QoS 1") {
		t.Errorf("violations %v", l.Violations)
	}
}

// A broker that dies mid-run is counted (closed connections, refused
// reconnects), reported, and excused from the loss check: nothing crashes.
func TestBrokerDiesMidRun(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	sc := quick(2, 2, 1, "bench/{p}")
	sc.Brokers = []string{"tcp://" + srv.Addrs()[0].String()}
	sc.Rate, sc.Duration, sc.Drain, sc.MaxLag = 200, time.Second, 200*time.Millisecond, time.Second
	go closeAfter(srv, 20, func() { srv.Close() })
	l := run(t, sc, Options{})
	if l.Errors["closed"] == 0 || l.Errors["refused"] == 0 {
		t.Errorf("errors %v: want closed connections and refused reconnects", l.Errors)
	}
	if l.Messages.MissedDisconnected == 0 {
		t.Errorf("no send missed while disconnected: %+v", l.Messages)
	}
	if len(l.Violations) != 0 {
		t.Errorf("a dead broker is not a verification violation: %v", l.Violations)
	}
	if l.Verify[0].Lost != 0 {
		t.Errorf("lost %d not excused", l.Verify[0].Lost)
	}
}

// Idle connections stay up past the broker's keep alive check (1.5 × 1 s)
// because the generator pings them.
func TestIdleConnectionsKeepAlive(t *testing.T) {
	sc := DefaultScenario()
	sc.Publishers, sc.Subscribers, sc.Connections = 0, 0, 5
	sc.Keepalive, sc.Duration = time.Second, 2*time.Second
	l := run(t, sc, Options{})
	if len(l.Errors) != 0 || l.Connections.Ready != 5 || l.Connections.Attempts != 5 {
		t.Errorf("errors %v connections %+v", l.Errors, l.Connections)
	}
}

// closeAfter calls stop once srv has received n PUBLISH packets, so tests
// act mid-run however slow the machine.
func closeAfter(srv *broker.Server, n uint64, stop func()) {
	deadline := time.Now().Add(30 * time.Second)
	for srv.Stats().Received.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := broker.New(broker.Options{})
	defer srv.Close()
	go closeAfter(srv, 20, cancel)
	sc := quick(2, 2, 1, "bench/{p}")
	sc.Duration = time.Minute
	dir := t.TempDir()
	res, err := Run(ctx, sc, Options{Out: dir, Dial: PipeDialer(srv)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Summary.Interrupted || res.Summary.Messages.Sent == 0 {
		t.Errorf("interrupted %v sent %d", res.Summary.Interrupted, res.Summary.Messages.Sent)
	}
	back, err := ReadResults(dir)
	if err != nil || !back.Summary.Interrupted || back.Histograms["e2e"].TotalCount() == 0 {
		t.Errorf("results after interrupt: %v", err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want ErrorClass
	}{
		{&RefusedError{Packet: "CONNACK", Code: 5}, ClassRefused},
		{fmt.Errorf("dial: %w", &net.OpError{Err: errConnRefused}), ClassRefused},
		{&ProtocolError{Detail: "x"}, ClassProtocol},
		{errKeepalive, ClassTimeout},
		{context.DeadlineExceeded, ClassTimeout},
		{io.EOF, ClassClosed},
		{io.ErrClosedPipe, ClassClosed},
		{fmt.Errorf("odd"), ClassOther},
	}
	for _, tc := range cases {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

var errConnRefused = syscall.ECONNREFUSED

// blockConn is a broker end that stops reading for good at its after-th
// read, until release is closed.
type blockConn struct {
	net.Conn
	reads, after int
	release      chan struct{}
}

func (c *blockConn) Read(b []byte) (int, error) {
	c.reads++
	if c.reads == c.after {
		<-c.release
	}
	return c.Conn.Read(b)
}

// An interrupt ends the run promptly even while the generator is blocked
// writing to a broker that reads nothing.
func TestInterruptWithBlockedWrites(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	release := make(chan struct{})
	defer close(release)
	dial := func(ctx context.Context, i int) (net.Conn, error) {
		client, server := net.Pipe()
		var bc net.Conn = server
		if i == 0 {
			bc = &blockConn{Conn: server, after: 10, release: release}
		}
		go srv.ServeConn(bc) //nolint:errcheck
		return client, nil
	}
	sc := quick(1, 1, 1, "bench/blocked")
	sc.Duration, sc.Rate = time.Minute, 200
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, sc, Options{Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the interrupted run took %v to end", took)
	}
	if !res.Summary.Interrupted {
		t.Error("not marked interrupted")
	}
}

// A broker may grant less than asked: messages are then due at the
// granted QoS, and judged by it.
func TestGrantedQoSDecides(t *testing.T) {
	l := run(t, quick(2, 2, 2, "bench/{p}"), Options{Broker: broker.Options{MaxQoS: 1}})
	checkClean(t, l, 1)
	if len(l.Verify) != 1 || l.Verify[0].QoS != 1 {
		t.Errorf("verification rows %+v: want QoS 1, as granted", l.Verify)
	}
}

// At a few messages a second the last send comes long before the end of
// the publish phase; the phase lasts its duration all the same, so the
// rates over it are the offered ones, not one message over microseconds.
func TestPublishPhaseLastsItsDuration(t *testing.T) {
	sc := quick(1, 1, 1, "slow")
	sc.Rate, sc.Duration = 2, time.Second
	l := run(t, sc, Options{})
	m := l.Messages
	if m.Sent != 2 || m.PublishSec < 0.95 || m.SentRate > 2.5 || m.ReceivedRate > 2.5 {
		t.Fatalf("sent %d in %.3fs: %.1f/s sent, %.1f/s received; want 2 over about a second", m.Sent, m.PublishSec, m.SentRate, m.ReceivedRate)
	}
}
