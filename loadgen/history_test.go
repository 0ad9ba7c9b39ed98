package loadgen

import (
	"context"
	"encoding/json"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/store"
)

// killable is a broker on a fixed 127.0.0.1 address that a test kills
// (listener and every connection closed) and starts again, as a new
// broker on the same address: with the same store directory when dir is
// set, empty otherwise.
type killable struct {
	t    *testing.T
	addr string
	dir  string
	mu   sync.Mutex
	srv  *broker.Server
	done chan struct{}
}

func startKillable(t *testing.T, durable bool) *killable {
	t.Helper()
	k := &killable{t: t}
	if durable {
		k.dir = t.TempDir()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = l.Addr().String()
	k.serve(l)
	t.Cleanup(func() { k.kill() })
	return k
}

func (k *killable) serve(l net.Listener) {
	opts := broker.Options{}
	if k.dir != "" {
		st, err := store.Open(k.dir, store.Options{})
		if err != nil {
			k.t.Error(err)
			l.Close()
			return
		}
		opts.Store = st
	}
	srv := broker.New(opts)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }() //nolint:errcheck // ErrServerClosed
	k.mu.Lock()
	k.srv, k.done = srv, done
	k.mu.Unlock()
}

// kill closes the listener and every connection, and waits for the
// broker to let go of its store.
func (k *killable) kill() {
	k.mu.Lock()
	srv, done := k.srv, k.done
	k.srv = nil
	k.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		k.t.Errorf("shutdown: %v", err)
	}
	<-done
}

// restart listens on the same address again, retrying briefly while the
// old socket lets go of the port.
func (k *killable) restart() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", k.addr)
		if err == nil {
			k.serve(l)
			return
		}
		if time.Now().After(deadline) {
			k.t.Errorf("listen on %s again: %v", k.addr, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runWithKill runs sc against k and, a second into publishing, kills the
// broker and starts it again after down. It returns the results with the
// fault recorded as the fault injector records it, and the history
// analysed with it.
func runWithKill(t *testing.T, k *killable, sc Scenario, down time.Duration) *reports.Load {
	t.Helper()
	sc.Brokers = []string{"tcp://" + k.addr}
	publishing := make(chan struct{})
	var once sync.Once
	opts := Options{Progress: func(s reports.LoadSecond) {
		if s.Phase == "publish" {
			once.Do(func() { close(publishing) })
		}
	}}
	type times struct{ kill, back time.Time }
	faulted := make(chan times, 1)
	go func() {
		select {
		case <-publishing:
		case <-time.After(10 * time.Second):
			faulted <- times{}
			return
		}
		time.Sleep(300 * time.Millisecond)
		var ft times
		ft.kill = time.Now()
		k.kill()
		time.Sleep(down)
		k.restart()
		ft.back = time.Now()
		faulted <- ft
	}()
	res, err := Run(context.Background(), sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ft times
	select {
	case ft = <-faulted:
	case <-time.After(10 * time.Second):
		t.Fatal("the fault never ran")
	}
	if ft.kill.IsZero() {
		t.Fatal("publishing never began")
	}
	l := res.Summary
	at := func(x time.Time) float64 { return x.Sub(l.Started).Seconds() }
	l.Faults = []reports.LoadFault{{Name: "kill", Kind: "kill", Start: at(ft.kill), End: at(ft.kill), Recovered: at(ft.back)}}
	AnalyzeHistory(l, res.Verify)
	return l
}

// persistent is 4 publishers each heard by one subscriber with a session
// the broker keeps, for long enough that a kill a second in leaves
// seconds to recover in.
func persistent(qos packetgen.QoS) Scenario {
	sc := quick(4, 4, qos, "hist/{p}")
	sc.Rate, sc.Duration, sc.Drain, sc.MaxLag = 200, 5*time.Second, 5*time.Second, time.Second
	sc.CleanSession = false
	return sc
}

func historyRow(rows []reports.LoadHistoryClass, qos int) (reports.LoadHistoryClass, bool) {
	for _, r := range rows {
		if r.QoS == qos {
			return r, true
		}
	}
	return reports.LoadHistoryClass{}, false
}

// A broker with a store, killed and started again mid-run, keeps every
// acknowledged message and every session: nothing acknowledged is lost,
// nothing is delivered twice at QoS 2, every session comes back with
// Session Present 1, subscriptions included, and the run takes a while
// to carry the offered rate again.
func TestHistoryDurableBrokerKilled(t *testing.T) {
	for _, qos := range []packetgen.QoS{1, 2} {
		t.Run("qos"+itoa(int(qos)), func(t *testing.T) {
			k := startKillable(t, true)
			l := runWithKill(t, k, persistent(qos), 500*time.Millisecond)
			h := l.History
			if h == nil || len(h.Faults) != 1 {
				t.Fatalf("history %+v", h)
			}
			r, ok := historyRow(h.Classes, int(qos))
			if !ok {
				t.Fatalf("no QoS %d row: %+v", qos, h.Classes)
			}
			t.Logf("classes %+v", r)
			if r.Due == 0 || r.Delivered == 0 || r.Due != r.Delivered+r.AckedLost+r.SessionLost+r.UnackedLost+r.Failed+r.Unknown {
				t.Errorf("classes do not add up to the messages due: %+v", r)
			}
			if r.AckedLost != 0 || r.SessionLost != 0 {
				t.Errorf("acknowledged messages lost across a durable restart: %+v", r)
			}
			if qos == 2 && r.Duplicated != 0 {
				t.Errorf("QoS 2 duplicated %d", r.Duplicated)
			}
			f := h.Faults[0]
			t.Logf("fault %+v", f)
			s := f.Sessions
			if !s.Persistent || s.Dropped != 8 || s.Resumed != 8 || s.Fresh != 0 {
				t.Errorf("sessions: %+v; want all 8 dropped and resumed", s)
			}
			if s.SubscribersResumed != 4 || s.SubscriptionsKept != 4 {
				t.Errorf("subscriptions: %+v; want 4 resumed and kept", s)
			}
			if f.RecoverySec == nil || *f.RecoverySec <= 0 {
				t.Errorf("recovery %v; want a time after the kill; series %+v", f.RecoverySec, l.Series)
			}
			if f.LossWindow != nil || len(f.Violations) != 0 || len(h.Violations) != 0 {
				t.Errorf("loss window %+v, violations %q %q", f.LossWindow, f.Violations, h.Violations)
			}
			if l.Messages.Received == 0 || l.Connections.Reconnects == 0 {
				t.Errorf("received %d, reconnects %d", l.Messages.Received, l.Connections.Reconnects)
			}
		})
	}
}

// The same kill against a broker that keeps nothing: every session comes
// back empty, which the history names as the fault's violation, and the
// messages acknowledged while subscribers were away are lost, with the
// span of their due times.
func TestHistoryVolatileBrokerKilled(t *testing.T) {
	k := startKillable(t, false)
	l := runWithKill(t, k, persistent(1), 500*time.Millisecond)
	h := l.History
	if h == nil || len(h.Faults) != 1 {
		t.Fatalf("history %+v", h)
	}
	f := h.Faults[0]
	t.Logf("fault %+v classes %+v", f, h.Classes)
	if s := f.Sessions; s.Fresh == 0 || s.Resumed != 0 {
		t.Errorf("sessions %+v: the broker kept nothing, yet they resumed", s)
	}
	if len(f.Violations) == 0 || !strings.Contains(f.Violations[len(f.Violations)-1], "found no session") {
		t.Fatalf("violations %q: want the sessions lost named", f.Violations)
	}
	if !strings.Contains(strings.Join(l.Violations, "\n"), "fault kill: ") {
		t.Errorf("the run's violations %q leave the fault out", l.Violations)
	}
	r, _ := historyRow(f.Classes, 1)
	if lost := r.AckedLost + r.SessionLost; lost > 0 {
		w := f.LossWindow
		if w == nil || w.Messages != lost || w.From > w.To || w.To < f.WindowFrom || w.From > f.WindowTo {
			t.Errorf("%d acknowledged messages lost, loss window %+v in fault window [%.2f, %.2f]", lost, w, f.WindowFrom, f.WindowTo)
		}
		if !strings.Contains(strings.Join(f.Violations, "\n"), "due ") {
			t.Errorf("violations %q name no loss window", f.Violations)
		}
	} else {
		t.Logf("no acknowledged message happened to be lost this time")
	}
}

// A steady publisher keeps two points; a pause adds corners; every
// interpolated due time stays within the tolerance of the real one.
func TestSendIndex(t *testing.T) {
	cases := []struct {
		name      string
		due       func(seq uint64) int64 // ms
		maxPoints int
	}{
		{"steady", func(s uint64) int64 { return 1000 + int64(s)*5 }, 2},
		{"steady, 3 per 10 ms", func(s uint64) int64 { return int64(s) * 10 / 3 }, 2},
		{"a pause", func(s uint64) int64 {
			if s < 500 {
				return int64(s) * 2
			}
			return 3000 + int64(s)*2
		}, 4},
		{"slower after a while", func(s uint64) int64 {
			if s < 500 {
				return int64(s) * 2
			}
			return 1000 + int64(s-500)*7
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var x SendIndex
			for s := uint64(0); s < 1000; s++ {
				x.Add(s, tc.due(s))
			}
			pts := sendTimes(x.Points())
			if len(pts) > tc.maxPoints {
				t.Errorf("%d points, want at most %d: %v", len(pts), tc.maxPoints, pts)
			}
			for s := uint64(0); s < 1000; s++ {
				got, _ := pts.at(s)
				if d := got - float64(tc.due(s)); d > sendTolerance || d < -sendTolerance {
					t.Fatalf("seq %d: interpolated %.1f, due %d", s, got, tc.due(s))
				}
			}
			// seqAt inverts at: the first number due at or after a time.
			for _, s := range []uint64{0, 1, 499, 500, 999} {
				at, _ := pts.at(s)
				if got := pts.seqAt(at, 1000); got > s {
					t.Errorf("seqAt(at(%d)) = %d", s, got)
				}
			}
		})
	}
	// A publisher that changes pace all the time is thinned, never
	// unbounded, and stays monotonic.
	var x SendIndex
	ms := int64(0)
	for s := uint64(0); s < 200_000; s++ {
		ms += int64(1 + 500*(s/7%2))
		x.Add(s, ms)
	}
	pts := sendTimes(x.Points())
	if len(pts) > maxSendPoints+1 {
		t.Errorf("%d points kept, cap %d", len(pts), maxSendPoints)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Seq <= pts[i-1].Seq || pts[i].Ms < pts[i-1].Ms {
			t.Fatalf("points out of order at %d: %v %v", i, pts[i-1], pts[i])
		}
	}
}

// syntheticRun is one QoS 1 publisher of 100 messages due every 100 ms
// from the run's start, heard by two subscribers that kept their sessions
// and lost messages 40 to 59 (50 and 51 never acknowledged, 52 refused),
// and by one that lost its session and the last 10. The offered rate is
// 10/s; publishing stops in seconds 5, 6, 9 and 10. Fault "kill" at 4.5 s
// recovers at 7 s; fault "pause" at 8 s never does.
func syntheticRun() (*VerifyState, *reports.Load) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := start.UnixMilli()
	var x SendIndex
	for s := uint64(0); s < 100; s++ {
		x.Add(s, ms+int64(s)*100)
	}
	v := &VerifyState{
		RunID: "abc", ShardCount: 1, Shards: []int{0},
		Ledgers: []PublisherLedger{{Publisher: 0, QoS: 1, Sent: 100, Unconfirmed: []uint64{50, 51, 52}, Failed: []uint64{52}, Sends: x.Points()}},
		Receipts: []Receipt{
			{Publisher: 0, QoS: 1, Streams: 2, Next: 100, Gaps: [][2]uint64{{40, 60}}, Received: 160, Duplicates: 1, Reordered: 2},
			{Publisher: 0, QoS: 1, Streams: 1, Next: 90, Received: 90, SessionLost: true},
		},
		Sessions: []SessionTally{{At: ms + 4600, Dropped: 3, Resumed: 2, Fresh: 1, SubscribersResumed: 1, SubscriptionsKept: 1}},
	}
	l := &reports.Load{Kind: "load", Started: start, Elapsed: 12 * time.Second,
		Scenario: reports.LoadScenario{QoS: 1, Rate: 10},
		Messages: reports.LoadMessages{Sent: 100, Expected: 300},
		Faults: []reports.LoadFault{
			{Name: "pause@8s", Kind: "pause", Start: 8, End: 8},
			{Name: "kill@4.5s", Kind: "kill", Start: 4.5, End: 4.5, Recovered: 5.5},
		},
	}
	for s := 1; s <= 10; s++ {
		sec := reports.LoadSecond{T: float64(s), Phase: "publish", Sent: 10, Received: 30, P99E2E: int64(1000 * s)}
		if s == 5 || s == 6 || s >= 9 {
			sec.Sent, sec.Received = 0, 0
		}
		l.Series = append(l.Series, sec)
	}
	return v, l
}

func TestHistoryClassesAndFaults(t *testing.T) {
	v, l := syntheticRun()
	AnalyzeHistory(l, v)
	h := l.History
	want := reports.LoadHistoryClass{QoS: 1, Streams: 3, Due: 300, Delivered: 250, AckedLost: 34, SessionLost: 10,
		Failed: 2, Unknown: 4, Duplicated: 1, Reordered: 2}
	if len(h.Classes) != 1 {
		t.Fatalf("classes %+v", h.Classes)
	}
	got := h.Classes[0]
	got.Violations = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("classes\n got %+v\nwant %+v", got, want)
	}
	if len(h.Faults) != 2 || h.Faults[0].Name != "kill@4.5s" {
		t.Fatalf("faults %+v", h.Faults)
	}
	kill, pause := h.Faults[0], h.Faults[1]
	if kill.RecoverySec == nil || *kill.RecoverySec != 2.5 || pause.RecoverySec != nil {
		t.Errorf("recovery: kill %v, pause %v; want 2.5 and none", kill.RecoverySec, pause.RecoverySec)
	}
	if kill.WindowFrom != 0 || kill.WindowTo != 7 || pause.WindowFrom != 7 || pause.WindowTo != 12 {
		t.Errorf("windows [%v %v) [%v %v)", kill.WindowFrom, kill.WindowTo, pause.WindowFrom, pause.WindowTo)
	}
	kc := kill.Classes[0]
	if kc.Due != 210 || kc.Delivered != 170 || kc.AckedLost != 34 || kc.Failed != 2 || kc.Unknown != 4 || kc.SessionLost != 0 {
		t.Errorf("kill's classes %+v", kc)
	}
	if w := kill.LossWindow; w == nil || w.From != 4 || w.To != 5.9 || w.Messages != 34 {
		t.Errorf("kill's loss window %+v, want 4s to 5.9s, 34", w)
	}
	pc := pause.Classes[0]
	if pc.Due != 90 || pc.Delivered != 80 || pc.SessionLost != 10 || pc.AckedLost != 0 {
		t.Errorf("pause's classes %+v", pc)
	}
	if w := pause.LossWindow; w == nil || w.From != 9 || w.To != 9.9 {
		t.Errorf("pause's loss window %+v, want 9s to 9.9s", w)
	}
	if s := kill.Sessions; s.Dropped != 3 || s.Fresh != 1 || !s.Persistent || pause.Sessions.Dropped != 0 {
		t.Errorf("sessions: kill %+v, pause %+v", s, pause.Sessions)
	}
	if kill.P99Before != 4000 || kill.P99After != 9000 {
		t.Errorf("p99 before %d after %d, want 4000 and 9000", kill.P99Before, kill.P99After)
	}
	joined := strings.Join(l.Violations, "\n")
	for _, s := range []string{
		"fault kill@4.5s: 34 messages acknowledged to the publisher never delivered, due 4.0s to 5.9s",
		"fault kill@4.5s: 1 of 3 reconnections found no session",
	} {
		if !strings.Contains(joined, s) {
			t.Errorf("violations %q lack %q", l.Violations, s)
		}
	}
	// Analysing again (after faults are filled in) adds nothing twice.
	n := len(l.Violations)
	AnalyzeHistory(l, v)
	if len(l.Violations) != n {
		t.Errorf("violations grew from %d to %d", n, len(l.Violations))
	}
	// Clean sessions expect no session back.
	l.Scenario.CleanSession = true
	if h := v.History(l); strings.Contains(strings.Join(h.Violations, "\n"), "no session") {
		t.Errorf("clean sessions, yet %q", h.Violations)
	}
}

// The survival probes' findings (Load.Faults[i].Survival) become the
// fault's Retained and Wills, and their violations the fault's and the
// run's; a fault not probed says so.
func TestHistorySurvival(t *testing.T) {
	v, l := syntheticRun()
	lost := "fault kill@4.5s: 3 of 20 retained messages acknowledged (QoS 1) before it were lost"
	l.Faults[1].Survival = &reports.LoadSurvival{RetainedSent: 20, RetainedKept: 17, WillsPending: 1, WillsDelivered: 1,
		Retained: "3 of 20 lost", Wills: "1 of 1 pending will delivered", Violations: []string{lost}}
	AnalyzeHistory(l, v)
	kill, pause := l.History.Faults[0], l.History.Faults[1]
	if kill.Retained != "3 of 20 lost" || kill.Wills != "1 of 1 pending will delivered" {
		t.Errorf("kill: retained %q, wills %q", kill.Retained, kill.Wills)
	}
	if !slices.Contains(kill.Violations, lost) || !slices.Contains(l.History.Violations, lost) || !slices.Contains(l.Violations, lost) {
		t.Errorf("violations: fault %q, history %q, run %q; want %q in each", kill.Violations, l.History.Violations, l.Violations, lost)
	}
	if !strings.HasPrefix(pause.Retained, "n/a: not probed") || !strings.HasPrefix(pause.Wills, "n/a: not probed") {
		t.Errorf("pause without probes: retained %q, wills %q", pause.Retained, pause.Wills)
	}
}

// Shards of one run, merged, give the history of the whole: the state
// split by publisher and subscriber, written to verify.json and read
// back, then merged.
func TestHistoryShardsMergeLikeWhole(t *testing.T) {
	v, l := syntheticRun()
	// A second publisher in the other shard, heard in the first.
	var x SendIndex
	ms := l.Started.UnixMilli()
	for s := uint64(0); s < 50; s++ {
		x.Add(s, ms+int64(s)*200)
	}
	v.Ledgers = append(v.Ledgers, PublisherLedger{Publisher: 1, QoS: 1, Sent: 50, Unconfirmed: []uint64{20}, Sends: x.Points()})
	v.Receipts = append(v.Receipts, Receipt{Publisher: 1, QoS: 1, Streams: 1, Next: 50, Gaps: [][2]uint64{{19, 30}}, Received: 39})
	v.Sessions = append(v.Sessions, SessionTally{At: ms + 9000, Dropped: 1, Resumed: 1})
	whole := *l
	AnalyzeHistory(&whole, v)

	a := &VerifyState{RunID: "abc", ShardCount: 2, Shards: []int{0}, Ledgers: v.Ledgers[:1], Receipts: v.Receipts[2:], Sessions: v.Sessions[1:]}
	b := &VerifyState{RunID: "abc", ShardCount: 2, Shards: []int{1}, Ledgers: v.Ledgers[1:], Receipts: v.Receipts[:2], Sessions: v.Sessions[:1]}
	var back []*VerifyState
	for _, s := range []*VerifyState{a, b} {
		path := t.TempDir() + "/" + VerifyFile
		if err := s.Write(path); err != nil {
			t.Fatal(err)
		}
		r, err := ReadVerify(path)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, r)
	}
	mv, err := MergeVerify(back)
	if err != nil {
		t.Fatal(err)
	}
	merged := *l
	AnalyzeHistory(&merged, mv)
	wj, mj := mustJSON(t, whole.History), mustJSON(t, merged.History)
	if wj != mj {
		t.Errorf("merged history differs from the whole's\nwhole  %s\nmerged %s", wj, mj)
	}
	if whole.History.Classes[0].AckedLost != 34+10 {
		t.Errorf("whole: acked lost %d, want 44", whole.History.Classes[0].AckedLost)
	}
}

func mustJSON(t *testing.T, x any) string {
	t.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A run in three shards, merged, classes its messages as the whole run
// does, and a fault every shard recorded is one fault in the merge.
func TestHistoryShardsMergeLikeOneRun(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	sc := crossShard(1)
	res, err := Run(context.Background(), sc, Options{Dial: PipeDialer(srv)})
	if err != nil {
		t.Fatal(err)
	}
	whole := res.Summary.History
	parts := runShards(t, srv, sc, 3)
	for _, p := range parts {
		// Each shard's clock starts at its own start: within a second.
		p.Summary.Faults = []reports.LoadFault{{Name: "kill@x", Kind: "kill", Start: 0.2, End: 0.2}}
	}
	merged, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	m := merged.Summary
	if whole == nil || m.History == nil {
		t.Fatalf("history: whole %v, merged %v", whole, m.History)
	}
	w, g := whole.Classes, m.History.Classes
	if len(w) != 1 || len(g) != 1 || w[0].Due != 300 || w[0].Delivered != 300 || !reflect.DeepEqual(w, g) {
		t.Errorf("classes: whole %+v, merged %+v; want 300 due and delivered in both", w, g)
	}
	if len(m.Faults) != 1 || len(m.History.Faults) != 1 {
		t.Errorf("faults %+v: three shards recorded one fault", m.Faults)
	}
	if fc := m.History.Faults[0].Classes; len(fc) != 1 || fc[0].Due != 300 {
		t.Errorf("the only fault answers for every message: %+v", fc)
	}
}
