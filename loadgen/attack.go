package loadgen

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// ErrorClass groups connection failures.
type ErrorClass int

const (
	// ClassRefused: TCP connection refused, or CONNACK/SUBACK refusing.
	ClassRefused ErrorClass = iota
	// ClassTimeout: a dial, handshake, write or keep alive ran out of time.
	ClassTimeout
	// ClassClosed: the broker closed or reset the connection.
	ClassClosed
	// ClassProtocol: the broker sent something MQTT 3.1.1 does not allow.
	ClassProtocol
	// ClassOther: anything else (no route, too many open files, ...).
	ClassOther
	numClasses
)

var classNames = [numClasses]string{"refused", "timeout", "closed", "protocol", "other"}

func (c ErrorClass) String() string { return classNames[c] }

// RefusedError is a CONNACK or SUBACK that refused.
type RefusedError struct {
	Packet string
	Code   byte
	Reason string // the 5.0 reason code's name; "" in 3.1.1
}

var connackCodes = map[byte]string{
	1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
	4: "bad user name or password", 5: "not authorized",
}

func (e *RefusedError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s reason code 0x%02X (%s)", e.Packet, e.Code, e.Reason)
	}
	if e.Packet == "CONNACK" {
		if s, ok := connackCodes[e.Code]; ok {
			return fmt.Sprintf("CONNACK return code %d (%s)", e.Code, s)
		}
	}
	return fmt.Sprintf("%s return code 0x%02X", e.Packet, e.Code)
}

// ProtocolError is a packet from the broker that breaks the protocol.
type ProtocolError struct {
	Detail string
	Err    error // a *packetgen.Violation, when the codec found it
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "protocol error: " + e.Err.Error()
	}
	return "protocol error: " + e.Detail
}

func (e *ProtocolError) Unwrap() error { return e.Err }

var errKeepalive = errors.New("no PINGRESP within the keep alive")

// Classify puts an error in its class.
func Classify(err error) ErrorClass {
	var re *RefusedError
	var ue *UnsupportedError
	var de *DisconnectError
	var pe *ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &re), errors.As(err, &ue), errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.As(err, &de):
		return ClassClosed
	case errors.As(err, &pe), packetgen.AsViolation(err) != nil:
		return ClassProtocol
	case errors.Is(err, errKeepalive), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrClosedPipe), errors.Is(err, net.ErrClosed):
		return ClassClosed
	}
	return ClassOther
}

// Options are how a scenario runs, apart from the scenario itself.
type Options struct {
	// Dial replaces the dialer Scenario.Brokers implies (tests use it to
	// reach a broker with faults, or through a proxy).
	Dial DialFunc
	// Target describes the broker for the summary when Dial is set.
	Target string
	// Transport configures TLS and WebSocket for Scenario.Brokers.
	Transport transport.Options
	// TLS gives TLS connections their own certificates and resumes
	// sessions (see ClientTLS).
	TLS ClientTLS
	// Broker configures the in-process broker started when there is
	// neither a broker URL nor Dial.
	Broker broker.Options
	// Out is the results directory; empty writes nothing.
	Out string
	// Progress is called once a second from the run's own goroutine.
	Progress func(reports.LoadSecond)
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time

	// Shard runs only connections i with i mod Count == Index (see
	// Shard); a shard of several needs a Coordinator and a RunID shared
	// by all of them.
	Shard       Shard
	RunID       uint32 // 0: a random one
	Coordinator Coordinator
	// StartAt, when set, delays the connect phase until then.
	StartAt time.Time
	// SLO are latency objectives the summary checks (see ParseSLO).
	SLO SLO
	// Saturation are the generator's limits on itself (zero: defaults).
	Saturation SaturationLimits
	// Interval, when set, is called once a second like Progress, with the
	// second's end-to-end histogram (valid only during the call).
	Interval func(s reports.LoadSecond, e2e *Histogram)
	// Live, when set, is called once a second like Progress with the
	// run's running totals (see Live), for exporters such as Prometheus.
	Live func(*Live)
}

// attack is one run of a scenario.
type attack struct {
	sc    Scenario
	opts  Options
	dial  DialFunc
	enc   packetgen.Encoder
	dec   packetgen.Decoder
	runID uint32
	// runHex names the run in client identifiers.
	runHex string
	start  time.Time // monotonic reading; now() counts from it
	unix0  int64     // start in Unix ns

	clients     []*client // this shard's, in connection order
	pubs        []*client // its publishers, first in clients
	clientsDone sync.WaitGroup
	stop        chan struct{}
	stopFlag    atomic.Bool
	stopOnce    sync.Once
	phase       atomic.Value // string

	fan      []int // subscribers, in every shard, per publisher
	idle     *idleWatcher
	rec      *Recorder
	counters Counters
	errMu    sync.Mutex
	errFirst [numClasses]string

	filler  []byte // the payload after the header
	reasons reasonCounts
	// tolerate counts the breaches of Scenario.Tolerate (tolerate.go).
	tolerate *tolerated
	// sessions is what became of sessions on reconnection, for the
	// history (history_sessions.go).
	sessions sessionLog
	// MQTT 5.0: the properties of every PUBLISH, what the CONNACKs said,
	// and the smallest Server Keep Alive in ns (-1: none).
	v5       bool
	props    packetgen.Properties
	limits   brokerLimits
	serverKA atomic.Int64

	// dialer and tls are the broker URLs' dialer, which times each
	// phase of a dial, and the TLS state (nil with Options.Dial or the
	// in-process broker).
	dialer *shardDialer
	tls    *tlsRun
	// watch is the generator's watch on itself while it publishes.
	watch *selfWatch
	// shared are the shard's shared subscriptions by filter (shared.go);
	// rr is request/response's state (reqresp.go).
	shared map[string]*sharedSub
	rr     rrRun
	// churn is flapping, offline subscribers, wills and retained
	// (churn.go), nil without; tmpl renders payloads (template.go).
	churn *churnRun
	tmpl  *payloadTemplate
}

func (a *attack) now() int64             { return int64(time.Since(a.start)) }
func (a *attack) unixNs(now int64) int64 { return a.unix0 + now }
func (a *attack) stopped() bool          { return a.stopFlag.Load() }
func (a *attack) setPhase(p string)      { a.phase.Store(p) }
func (a *attack) currentPhase() string   { s, _ := a.phase.Load().(string); return s }
func (a *attack) dialContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), a.sc.ConnectTimeout)
	go func() {
		select {
		case <-a.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (a *attack) countError(err error) {
	if err == nil || errors.Is(err, errChurned) {
		return
	}
	cl := Classify(err)
	a.counters.ByClass[cl].Add(1)
	a.counters.Errors.Add(1)
	a.errMu.Lock()
	if a.errFirst[cl] == "" {
		a.errFirst[cl] = err.Error()
	}
	a.errMu.Unlock()
}

// serverKeepAlive notes a CONNACK's Server Keep Alive (-1: none), which
// replaces the keep alive the client sent (MQTT-3.2.2-21). The keep alive
// loop serves every connection with the smallest one seen.
func (a *attack) serverKeepAlive(sec int32) {
	if sec < 0 {
		return
	}
	ns := int64(sec) * int64(time.Second)
	for {
		cur := a.serverKA.Load()
		if cur >= 0 && cur <= ns || a.serverKA.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// keepaliveFor is the keep alive the loop serves: the scenario's, or a
// shorter one a broker asked for.
func (a *attack) keepaliveFor() time.Duration {
	ka := a.sc.Keepalive
	if s := time.Duration(a.serverKA.Load()); s > 0 && (ka == 0 || s < ka) {
		ka = s
	}
	return ka
}

// Run runs a scenario to its end, or until ctx is done (then the summary
// says Interrupted), and returns what it measured. Errors are for a
// scenario that cannot start; everything that goes wrong afterwards,
// a broker dying included, is counted in the results.
func Run(ctx context.Context, sc Scenario, opts Options) (*Results, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Shard.Validate(&sc); err != nil {
		return nil, err
	}
	if err := opts.TLS.Validate(sc.Brokers, opts.Transport.TLS); err != nil {
		return nil, err
	}
	if !opts.Shard.Whole() {
		switch {
		case opts.Coordinator == nil:
			return nil, errNoCoordinator
		case opts.RunID == 0:
			return nil, errors.New("a shard of several needs the run id its shards share")
		case len(sc.Brokers) == 0 && opts.Dial == nil:
			return nil, errors.New("shards need a TCP broker they all reach (--broker): each in-process broker is private to its process")
		}
	}
	clock := opts.Now
	if clock == nil {
		clock = time.Now
	}
	a := &attack{
		sc: sc, opts: opts, stop: make(chan struct{}), v5: sc.V5(), props: sc.publishProperties(),
		enc:      packetgen.Encoder{Version: sc.version(), Side: packetgen.FromClient},
		dec:      packetgen.Decoder{Version: sc.version(), Side: packetgen.FromServer},
		tolerate: newTolerated(sc.Tolerate),
	}
	a.serverKA.Store(-1)
	a.filler = make([]byte, sc.Payload)
	rng := rand.New(rand.NewPCG(sc.Seed, 0x6d717474))
	for i := range a.filler {
		a.filler[i] = byte('a' + rng.IntN(26))
	}
	// The largest PUBLISH the run sends, with room to spare for what a
	// broker adds (properties, a longer topic of someone else's).
	a.dec.MaxPacketSize = max(1<<20, a.publishSize(sc.Publishers-1)+64<<10)
	var idb [4]byte
	crand.Read(idb[:]) //nolint:errcheck // never fails on Linux
	a.runID = binary.BigEndian.Uint32(idb[:])
	if opts.RunID != 0 {
		a.runID = opts.RunID
	}
	a.runHex = fmt.Sprintf("%08x", a.runID)
	a.setPhase("connect")

	if err := sc.CheckSharedTarget(opts.Dial == nil && len(sc.Brokers) == 0); err != nil {
		return nil, err
	}
	target := opts.Target
	var inproc *broker.Server
	switch {
	case opts.Dial != nil:
		a.dial = opts.Dial
		if target == "" {
			target = "custom dialer"
		}
	case len(sc.Brokers) == 0:
		inproc = broker.New(opts.Broker)
		a.dial = PipeDialer(inproc)
		target = "in-process reference broker (net.Pipe)"
	default:
		if err := a.newDialer(); err != nil {
			return nil, err
		}
		target = strings.Join(sc.Brokers, ",")
	}
	if inproc != nil {
		defer inproc.Close()
	}

	res := &Results{Dir: opts.Out}
	var logs [numMetrics]io.Writer
	if opts.Out != "" {
		files, err := createLogs(opts.Out)
		if err != nil {
			return nil, err
		}
		defer func() {
			for _, f := range files {
				f.Close()
			}
		}()
		for i, f := range files {
			logs[i] = f
		}
	}
	tlsMem, err := a.prepareTLS()
	if err != nil {
		return nil, err
	}
	if !opts.StartAt.IsZero() {
		if !sleepCtx(ctx, time.Until(opts.StartAt)) {
			return nil, ctx.Err()
		}
	}
	wallStart := clock()
	a.start = time.Now()
	a.unix0 = wallStart.UnixNano()
	rec, err := NewRecorder(wallStart, logs)
	if err != nil {
		return nil, err
	}
	a.rec = rec

	memBefore := heapAndStacks()
	a.buildClients()
	a.buildShared()
	a.buildRequestResponse()
	if err := a.prepareChurn(); err != nil {
		return nil, err
	}
	n := len(a.clients)
	if len(a.clients) > len(a.pubs) && n > 0 {
		if w := newIdleWatcher(a); w != nil {
			a.idle = w
			defer w.wait()
		}
	}

	tick := a.startTicker(clock, opts.Progress, opts.Interval)
	kaStop, kaDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(kaDone); a.keepalive(kaStop) }()
	// An interrupt stops everything at once: even writes blocked on a
	// broker that reads nothing give up within a second.
	runDone := make(chan struct{})
	defer close(runDone)
	go func() {
		select {
		case <-ctx.Done():
			a.beginStop()
		case <-runDone:
		}
	}()

	ph := &phases{}
	ph.interrupted = !a.connectPhase(ctx, ph)
	if !ph.interrupted {
		res.memPerConn = float64(heapAndStacks()-memBefore+tlsMem) / float64(n)
		ph.interrupted = !a.awaitPublish(ctx, ph)
	}
	if !ph.interrupted {
		a.churn.beforePublish(ctx)
		a.watch = startSelfWatch(a.clients)
		a.churn.start(ctx, time.Now())
		ph.interrupted = !a.publishPhase(ctx, ph)
		a.churn.stop()
		a.watch.end(a.clients)
	}
	if !ph.interrupted {
		ph.interrupted = !a.drainPhase(ctx)
	}
	a.churn.finish(ctx)
	res.connectSec, res.ready = ph.connectSec, ph.ready

	// Shut down: DISCONNECT everyone, wait for the goroutines.
	a.setPhase("stop")
	a.shutdown()
	close(kaStop)
	<-kaDone
	series, logErr := tick()
	if logErr != nil {
		return nil, fmt.Errorf("writing interval logs: %w", logErr)
	}

	res.Summary = a.summarize(target, wallStart, series, ph, res)
	if a.watch != nil {
		senders := min(len(a.pubs), max(1, runtime.GOMAXPROCS(0))) // as runSenders starts them
		res.Summary.Generator = a.watch.sample(res.Summary, senders, inproc != nil).judge(opts.Saturation)
	}
	res.Summary.SLO = opts.SLO.Check(res.Summary)
	if inproc != nil {
		if d := inproc.Stats().Dropped(); d > 0 {
			res.Summary.Notes = append(res.Summary.Notes, fmt.Sprintf("the in-process broker dropped %d messages: session queues were full", d))
		}
	}
	res.Histograms = map[string]*Histogram{}
	for _, m := range Metrics() {
		res.Histograms[m.String()] = a.rec.Total(m)
	}
	res.Shard = opts.Shard
	if opts.Out != "" {
		if err := res.writeSummary(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// phases is what the phases of a run measured.
type phases struct {
	interrupted      bool
	connectSec       float64
	ready            int64
	pubStart, pubEnd time.Time
	offered          uint64
	receivedAtEnd    uint64 // deliveries when publishing stopped
}

// startTicker rotates the histograms once a second, keeps the time series
// and reports progress. The function it returns stops it and hands back
// the series.
func (a *attack) startTicker(clock func() time.Time, progress func(reports.LoadSecond), interval func(reports.LoadSecond, *Histogram)) func() ([]reports.LoadSecond, error) {
	var series []reports.LoadSecond
	var logErr error
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prev := a.counters.snapshot()
		last := time.Now()
		emit := func(now time.Time) {
			var e2e *Histogram
			if interval != nil {
				a.rec.keep = func(h *Histogram) { e2e = h }
			}
			p99, err := a.rec.Rotate(clock())
			if err != nil && logErr == nil {
				logErr = err
			}
			cur := a.counters.snapshot()
			s := second(now.Sub(a.start).Seconds(), a.currentPhase(), prev, cur, a.counters.Open.Load(), p99)
			if d := now.Sub(last).Seconds(); d > 0 && d < 0.9 {
				s.Phase += " (partial)"
			}
			series = append(series, s)
			prev, last = cur, now
			if progress != nil {
				progress(s)
			}
			if interval != nil {
				interval(s, e2e)
			}
			if a.opts.Live != nil {
				a.opts.Live(a.live(s.T))
			}
		}
		for {
			select {
			case now := <-t.C:
				emit(now)
			case <-stop:
				emit(time.Now())
				return
			}
		}
	}()
	return func() ([]reports.LoadSecond, error) {
		close(stop)
		<-done
		return series, logErr
	}
}

// connectPhase starts the clients at the ramp rate and waits, at most the
// connect timeout after the last start, for all to be ready (subscribers
// subscribed). It reports false when interrupted.
func (a *attack) connectPhase(ctx context.Context, ph *phases) bool {
	n := len(a.clients)
	start := time.Now()
	defer func() {
		ph.connectSec = time.Since(start).Seconds()
		ph.ready = a.counters.Ready.Load()
	}()
	// A shard ramps at its share of the rate, so every shard's ramp takes
	// as long as the whole one.
	rate := a.sc.Ramp * float64(n) / float64(a.sc.TotalConnections())
	ramp := schedule{Pacer: ConstantPacer{Rate: rate, Max: uint64(n)}, Clock: realClock{start}, MinSleep: time.Millisecond}
	started := ramp.run(ctx, func(i uint64, _ time.Duration) { a.clients[i].start() },
		func(uint64, time.Duration) {}, func() {})
	if int(started) < n {
		return false
	}
	deadline := time.Now().Add(a.sc.ConnectTimeout)
	for a.counters.Ready.Load() < int64(n) && time.Now().Before(deadline) {
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return false
		}
	}
	return true
}

// awaitPublish waits, for a shard, until every shard has connected and
// the publishing phase begins. It reports false when interrupted.
func (a *attack) awaitPublish(ctx context.Context, ph *phases) bool {
	co := a.opts.Coordinator
	if co == nil {
		return true
	}
	a.setPhase("wait")
	at, err := co.Connected(ctx, ph.ready)
	if err != nil {
		return false
	}
	return sleepCtx(ctx, time.Until(at))
}

// publishPhase publishes on schedule for the duration (or, with no
// publishers, holds the connections that long). It reports false when
// interrupted.
func (a *attack) publishPhase(ctx context.Context, ph *phases) bool {
	ph.pubStart = time.Now()
	defer func() { ph.pubEnd = time.Now() }()
	if a.sc.Publishers == 0 {
		a.setPhase("hold")
		return sleepCtx(ctx, a.sc.Duration)
	}
	a.setPhase("publish")
	if len(a.pubs) == 0 { // a shard of subscribers: listen as long
		return sleepCtx(ctx, a.sc.Duration)
	}
	ph.offered = a.runSenders(ctx, ph.pubStart)
	// The senders are done at their last send, which at a few messages
	// a second can be long before the phase's end: the phase lasts its
	// Duration all the same, so rates over it mean what they say.
	if !sleepCtx(ctx, time.Until(ph.pubStart.Add(a.sc.Duration))) {
		return false
	}
	ph.receivedAtEnd = a.counters.Received.Load()
	return ctx.Err() == nil
}

// drainPhase waits, at most Drain, for acknowledgements and deliveries
// still on their way. It reports false when interrupted.
func (a *attack) drainPhase(ctx context.Context) bool {
	if a.sc.Publishers == 0 {
		return true
	}
	a.setPhase("drain")
	deadline := time.Now().Add(a.sc.Drain)
	for time.Now().Before(deadline) {
		st := a.drainState()
		if co := a.opts.Coordinator; co != nil {
			if co.Drained(st) {
				break
			}
		} else if st.Inflight == 0 && st.Received >= st.Caused {
			break
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return false
		}
	}
	return true
}

// buildClients makes the shard's client structs, in connection order:
// publishers first, then subscribers, then idle connections. It also
// counts, for every publisher, the subscribers in every shard that match
// its topic, which the drain and the expected deliveries need.
func (a *attack) buildClients() {
	sc := &a.sc
	sh := a.opts.Shard
	n := sc.TotalConnections()
	a.clients = make([]*client, 0, sh.Size(n))
	for i := 0; i < n; i++ {
		if !sh.Owns(i) {
			continue
		}
		c := &client{a: a, idx: int32(i)}
		switch {
		case i < sc.Publishers:
			c.pub = &publisher{index: uint32(i), topic: []byte(sc.PublisherTopic(i)), window: sc.Inflight}
			if sc.TopicAlias {
				c.pub.fullSize = a.publishSize(i)
			}
			a.pubs = append(a.pubs, c)
		case i < sc.Publishers+sc.Subscribers:
			j := i - sc.Publishers
			c.sub = &subscriber{filter: sc.SubscriberFilter(j), subID: uint32(j + 1)}
		}
		a.clients = append(a.clients, c)
	}
	a.fan = make([]int, sc.Publishers)
	if sc.Publishers == 0 || sc.Subscribers == 0 {
		return
	}
	// Which publishers each filter matches, computed once per distinct
	// filter: an exact filter by a map lookup, a wildcard one by matching
	// every topic.
	byTopic := map[string][]uint32{}
	topics := make([]string, sc.Publishers)
	for p := range topics {
		topics[p] = sc.PublisherTopic(p)
		byTopic[topics[p]] = append(byTopic[topics[p]], uint32(p))
	}
	byFilter := map[string][]Expectation{}
	expect := func(f string) []Expectation {
		if exp, ok := byFilter[f]; ok {
			return exp
		}
		var exp []Expectation
		if !strings.ContainsAny(f, "+#") {
			for _, p := range byTopic[f] {
				exp = append(exp, Expectation{Publisher: p, QoS: sc.QoS})
			}
		} else {
			for p, t := range topics {
				if topic.Match(f, []byte(t)) {
					exp = append(exp, Expectation{Publisher: uint32(p), QoS: sc.QoS})
				}
			}
		}
		byFilter[f] = exp
		return exp
	}
	for j := 0; j < sc.Subscribers; j++ {
		for _, e := range expect(sc.SubscriberFilter(j)) {
			a.fan[e.Publisher]++
		}
	}
	for _, c := range a.clients {
		if c.sub != nil {
			c.sub.log.Expected = expect(c.sub.filter)
		}
	}
}

// position is connection idx's place in a.clients.
func (a *attack) position(idx int32) int {
	if sh := a.opts.Shard; !sh.Whole() {
		return (int(idx) - sh.Index) / sh.Count
	}
	return int(idx)
}

// runSenders runs the senders; it returns the hits offered.
func (a *attack) runSenders(ctx context.Context, start time.Time) uint64 {
	sc := &a.sc
	workers := min(len(a.pubs), max(1, runtime.GOMAXPROCS(0)))
	total := sc.TotalRate()
	var offered atomic.Uint64
	var wg sync.WaitGroup
	base := int64(start.Sub(a.start))
	for w := 0; w < workers; w++ {
		s := &sender{a: a, base: base, payload: slices.Clone(a.filler)}
		for p := w; p < len(a.pubs); p += workers {
			s.pubs = append(s.pubs, a.pubs[p])
		}
		pacer := ConstantPacer{Rate: total * float64(len(s.pubs)) / float64(sc.Publishers), Duration: sc.Duration}
		wg.Add(1)
		go func() {
			defer wg.Done()
			offered.Add(s.run(ctx, pacer, start))
		}()
	}
	wg.Wait()
	return offered.Load()
}

// sender publishes for a share of the publishers on one schedule; hit n
// goes to publisher n mod len(pubs), so each publisher sends evenly spaced
// messages.
type sender struct {
	a       *attack
	base    int64 // the publish phase's start, attack ns
	pubs    []*client
	payload []byte
	pkt     packetgen.Publish
	dirty   []*client
	sent    uint64
}

func (s *sender) run(ctx context.Context, pacer Pacer, start time.Time) uint64 {
	a := s.a
	sched := schedule{Pacer: pacer, Clock: realClock{start}, MaxLag: a.sc.MaxLag, MinSleep: 200 * time.Microsecond}
	send := func(n uint64, due time.Duration) {
		c := s.pubs[n%uint64(len(s.pubs))]
		at := s.base + int64(due)
		switch c.publish(&s.pkt, s.payload, at) {
		case sentOK:
			s.sent++
			a.rec.Record(MetricSendLag, time.Duration(a.now()-at))
			if !c.dirty {
				c.dirty = true
				s.dirty = append(s.dirty, c)
			}
		case missDisconnected:
			a.counters.MissedDisc.Add(1)
		case missWindow:
			a.counters.MissedWindow.Add(1)
		case missTooLarge:
			a.counters.MissedTooLarge.Add(1)
		}
	}
	miss := func(uint64, time.Duration) { a.counters.MissedLate.Add(1) }
	flush := func() {
		t0 := time.Now()
		defer func() { a.watch.wrote(time.Since(t0)) }()
		for _, c := range s.dirty {
			c.mu.Lock()
			c.flushLocked()
			c.mu.Unlock()
			c.dirty = false
		}
		s.dirty = s.dirty[:0]
		a.counters.Sent.Add(s.sent)
		s.sent = 0
	}
	return sched.run(ctx, send, miss, flush)
}

// drainState is where the shard's drain stands: the QoS 1/2 messages it
// has in flight, the deliveries its publishers caused and those its
// subscribers received. A whole run is drained when nothing is in flight
// and received reaches caused.
func (a *attack) drainState() DrainState {
	st := DrainState{Received: a.counters.Received.Load()}
	for _, c := range a.pubs {
		c.mu.Lock()
		inflight, sent := c.pub.n, c.pub.seq-c.pub.rejected
		c.mu.Unlock()
		st.Inflight += inflight
		st.Caused += sent * uint64(a.fan[c.pub.index])
		if c.pub.rr != nil {
			st.Caused += sent // and the response to each
		}
	}
	st.Received += a.rr.answered.Load()
	return st
}

// keepalive sends PINGREQ on connections quiet for three quarters of the
// keep alive, and closes those whose PINGRESP is a keep alive late.
func (a *attack) keepalive(stop <-chan struct{}) {
	if a.sc.Keepalive == 0 && !a.v5 { // a 5.0 broker may set one (Server Keep Alive)
		return
	}
	every := time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	ping := []byte{byte(packetgen.TypePingreq) << 4, 0}
	for {
		ka := a.keepaliveFor()
		if e := min(time.Second, ka/4); ka > 0 && e != every {
			every = e
			t.Reset(every)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if ka == 0 {
			continue
		}
		now := a.now()
		for _, c := range a.clients {
			if sent := c.pingSent.Load(); sent != 0 {
				if now-sent > int64(ka) {
					c.fail(errKeepalive)
				}
				continue
			}
			if now-c.lastWrite.Load() < int64(ka)*3/4 {
				continue
			}
			if !c.mu.TryLock() {
				continue // someone is writing: that resets the keep alive anyway
			}
			if c.ready {
				c.wbuf = append(c.wbuf, ping...)
				c.pingSent.Store(now)
				c.flushLocked()
			}
			c.mu.Unlock()
		}
	}
}

// shutdown stops every client: DISCONNECT, close, wait for the goroutines.
func (a *attack) shutdown() {
	a.beginStop()
	disc := []byte{byte(packetgen.TypeDisconnect) << 4, 0}
	var wg sync.WaitGroup
	const closers = 8
	for k := 0; k < closers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(a.clients); i += closers {
				c := a.clients[i]
				c.mu.Lock()
				if c.timer != nil && c.timer.Stop() {
					c.timer = nil
					a.clientsDone.Done() // the attempt it held will not run
				}
				if c.conn != nil {
					if c.ready {
						c.wbuf = append(c.wbuf, disc...)
						c.flushLocked() // bounded by beginStop's deadline
					}
					c.ready = false
					if c.conn != nil {
						c.conn.Close()
					}
				}
				c.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	a.clientsDone.Wait()
}

// beginStop tells every goroutine the run is over and bounds every write,
// blocked ones included, to one more second, so a broker that stopped
// reading cannot hold the end of the run (or a Ctrl-C) for long.
func (a *attack) beginStop() {
	a.stopOnce.Do(func() {
		a.stopFlag.Store(true)
		close(a.stop)
		deadline := time.Now().Add(time.Second)
		for _, c := range a.clients {
			if r := c.live.Load(); r != nil {
				r.SetWriteDeadline(deadline) //nolint:errcheck
			}
		}
	})
}

// sleepCtx sleeps for d unless ctx ends first (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// heapAndStacks is the heap and goroutine stack memory in use after a GC.
// It also returns the memory the GC freed to the operating system: the
// connect phase leaves much garbage (dialing goroutines' stacks, timers)
// that would otherwise stay resident through a long hold.
func heapAndStacks() uint64 {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// mix is splitmix64's finaliser: a cheap hash for jitter.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// summarize builds the summary once every goroutine has stopped.
func (a *attack) summarize(target string, started time.Time, series []reports.LoadSecond, ph *phases, res *Results) *reports.Load {
	interrupted, offered, receivedAtEnd := ph.interrupted, ph.offered, ph.receivedAtEnd
	sc := &a.sc
	c := &a.counters
	l := &reports.Load{
		Kind: "load", RunID: a.runHex, Target: target, Started: started,
		Elapsed: time.Since(a.start), Interrupted: interrupted, Series: series,
		Scenario: reports.LoadScenario{
			Brokers: sc.Brokers, SourceIPs: len(sc.SourceIPs), Connections: sc.TotalConnections(),
			Publishers: sc.Publishers, Subscribers: sc.Subscribers, QoS: int(sc.QoS), Rate: sc.TotalRate(),
			Payload: sc.Payload, Topic: sc.Topic, Filter: sc.Filter, Ramp: sc.Ramp, Duration: sc.Duration,
			Drain: sc.Drain, MaxLag: sc.MaxLag, Keepalive: sc.Keepalive, CleanSession: sc.CleanSession,
			Authenticated: sc.Username != "" || sc.Password != "", Inflight: sc.Inflight, Seed: sc.Seed, ConnectTimeout: sc.ConnectTimeout,
			Protocol: sc.version().String(), SessionExpiry: sc.SessionExpiry, MessageExpiry: sc.MessageExpiry,
			UserProperties: sc.UserProperties, UserPropertySize: sc.UserPropertySize, ContentType: sc.ContentType,
			PayloadFormat: sc.PayloadFormat, TopicAlias: sc.TopicAlias, SubscriptionID: sc.SubscriptionID,
			SharedGroups: sc.SharedGroups, Responders: sc.Responders, Tolerate: sc.Tolerate,
		},
		Errors: map[string]uint64{}, ErrorSample: map[string]string{},
		ReasonCodes: a.reasons.summary(sc.version()),
		Tolerated:   a.tolerate.summary(),
	}
	if a.v5 {
		l.Connack = a.limits.summary(sc.Inflight)
	}
	if a.tls != nil {
		l.TLS = a.tls.summary()
	}
	l.Connections = reports.LoadConnections{
		Target: len(a.clients), Peak: c.Peak.Load(), Ready: res.ready,
		Attempts: c.Attempts.Load(), Reconnects: c.Reconnects.Load(), ConnectSec: res.connectSec,
		MemPerConn: res.memPerConn,
	}
	if res.memPerConn > 0 {
		l.Connections.MemNote = "generator heap+stacks"
		if len(sc.Brokers) == 0 && a.opts.Dial == nil {
			l.Connections.MemNote = "generator and in-process broker together"
		}
	}
	pubSec := ph.pubEnd.Sub(ph.pubStart).Seconds()
	m := reports.LoadMessages{
		Offered: offered, Sent: c.Sent.Load(), MissedLate: c.MissedLate.Load(),
		MissedDisconnected: c.MissedDisc.Load(), MissedWindow: c.MissedWindow.Load(), MissedTooLarge: c.MissedTooLarge.Load(),
		Acked: c.Acked.Load(), Received: c.Received.Load(), PublishSec: pubSec, Rejected: c.Rejected.Load(),
	}
	m.Missed = m.MissedLate + m.MissedDisconnected + m.MissedWindow + m.MissedTooLarge
	if pubSec > 0 {
		m.SentRate = float64(m.Sent) / pubSec
		m.ReceivedRate = float64(receivedAtEnd) / pubSec
	}
	for cl := range numClasses {
		if n := c.ByClass[cl].Load(); n > 0 {
			l.Errors[cl.String()] = n
			l.ErrorSample[cl.String()] = a.errFirst[cl]
		}
	}
	for _, mt := range Metrics() {
		l.Latency = append(l.Latency, Summarize(mt.String(), a.rec.Total(mt)))
	}

	// Verification: ledgers of the publishers, logs of the subscribers.
	pubs := map[uint32]Ledger{}
	var subs []SubscriberLog
	for _, cl := range a.clients {
		switch {
		case cl.pub != nil:
			p := cl.pub
			m.TopicAliased += p.aliasedSends
			m.TopicAliasBytesSaved += p.aliasSaved
			p.abandon() // what is still in flight was never confirmed
			slices.Sort(p.unconfirmed)
			slices.Sort(p.failed)
			pubs[p.index] = Ledger{QoS: sc.QoS, Sent: p.seq, Unconfirmed: p.unconfirmed, Failed: p.failed, Sends: p.sends.Points()}
			m.Expected += (p.seq - p.rejected) * uint64(a.fan[p.index])
		case cl.sub != nil && cl.sub.resp == nil:
			lg := cl.sub.log
			if g := cl.sub.granted; cl.sub.subscribed && g < sc.QoS {
				// Due at the QoS the broker granted (MQTT-3.8.4-6 lets it
				// grant less), which decides what counts as a violation.
				exp := make([]Expectation, len(lg.Expected))
				for i, e := range lg.Expected {
					exp[i] = Expectation{Publisher: e.Publisher, QoS: min(e.QoS, g)}
				}
				lg.Expected = exp
			}
			if cl.sub.down {
				lg.SessionLost = true // dropped and never resumed its session
			}
			a.churn.excuse(cl, &lg, pubs)
			subs = append(subs, lg)
		}
	}
	l.Messages = m
	vs := NewVerifyState(pubs, subs)
	vs.RunID, vs.ShardCount, vs.Shards = a.runHex, max(1, a.opts.Shard.Count), []int{a.opts.Shard.Index}
	vs.Sessions = a.sessions.tallies()
	vs.Shared = a.sharedState()
	res.Verify = vs
	var unjudged int
	l.Verify, l.Violations, unjudged = vs.Judge()
	judgeShared(l, vs)
	l.RequestResponse = a.requestResponse()
	judgeRequestResponse(l)
	if sh := a.opts.Shard; !sh.Whole() {
		l.Notes = append(l.Notes, fmt.Sprintf("shard %s of run %s: %d of %d connections; expected counts deliveries due from this shard's publishers, received those to its subscribers (they match once shards are merged)",
			sh, a.runHex, len(a.clients), sc.TotalConnections()))
	}
	if unjudged > 0 {
		l.Notes = append(l.Notes, fmt.Sprintf("%d streams come from publishers of other shards: their losses are judged by mqttbench merge", unjudged))
	}
	if interrupted && len(l.Violations) > 0 {
		// Messages still on their way when the run was cut short look
		// lost: report them, but they prove nothing.
		l.Notes = append(l.Notes, "interrupted: losses include messages still in transit; not judged")
		l.Violations = nil
		for i := range l.Verify {
			l.Verify[i].Violations = nil
		}
	}
	AnalyzeHistory(l, vs)
	a.summarizeChurn(l, pubSec)
	l.Notes = append(l.Notes, StandardNotes(l)...)
	return l
}

// StandardNotes are the notes any summary's numbers imply: several
// brokers, missed sends, connections not ready. Merge recomputes them.
func StandardNotes(l *reports.Load) []string {
	var notes []string
	sc, m := &l.Scenario, &l.Messages
	if len(sc.Brokers) > 1 && sc.Publishers > 0 && sc.Subscribers > 0 {
		notes = append(notes, fmt.Sprintf("connections were spread over %d brokers: delivery checks assume they form one cluster", len(sc.Brokers)))
	}
	if m.Missed > 0 {
		tooLarge := ""
		if m.MissedTooLarge > 0 {
			tooLarge = fmt.Sprintf(", larger than the broker's Maximum Packet Size %d", m.MissedTooLarge)
		}
		notes = append(notes, fmt.Sprintf("%d sends were missed (late %d, disconnected %d, window full %d%s): the offered rate was not fully sent",
			m.Missed, m.MissedLate, m.MissedDisconnected, m.MissedWindow, tooLarge))
	}
	if ca := l.Connack; ca != nil {
		if sc.TopicAlias && ca.TopicAliasMaximum == 0 {
			notes = append(notes, "the broker's Topic Alias Maximum is 0: every topic was sent in full")
		}
		if sc.QoS > 0 && ca.InflightWindow < sc.Inflight {
			notes = append(notes, fmt.Sprintf("the broker's Receive Maximum %d made each publisher's window %d, not %d", ca.ReceiveMaximum, ca.InflightWindow, sc.Inflight))
		}
	}
	if sc.MessageExpiry > 0 {
		for _, v := range l.Verify {
			if v.Lost > 0 {
				notes = append(notes, fmt.Sprintf("messages expire after %s: a broker drops a message it could not deliver in time (MQTT-3.3.2-5), so losses may be expiries", sc.MessageExpiry))
				break
			}
		}
	}
	if c := l.Connections; c.Ready < int64(c.Target) && !l.Interrupted {
		notes = append(notes, fmt.Sprintf("only %d of %d connections were ready when publishing began", c.Ready, c.Target))
	}
	return notes
}
