package fuzz

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/wire"
)

// Config is one fuzzing run.
type Config struct {
	Target  *Target
	Version packetgen.Version
	Seed    uint64
	// First is the number of the first case to run (0: from the start).
	First uint64
	// Cases bounds the run by count, Duration by time; 0 is no bound (the
	// context still ends the run).
	Cases    uint64
	Duration time.Duration
	// Workers run cases concurrently; 0 means 4.
	Workers int
	Timing  Timing
	// RSSBound is the growth of the broker's RSS over its value at the
	// start that is a finding (only with a known PID); 0 means 256 MiB.
	RSSBound int64
	// Out receives reproducers under Out/reproducers; "" saves none.
	Out    string
	Budget Budget
	// MaxFindings bounds the distinct findings of each class minimized
	// and saved; later ones are only counted. 0 means 20.
	MaxFindings int
	// Progress is called about every second, and once at the end.
	Progress func(Progress)
	// Log receives one-line notes: findings, restarts, triage.
	Log func(format string, args ...any)
}

// Progress is the state of a run.
type Progress struct {
	Elapsed  time.Duration
	Cases    int64
	Rate     float64
	Findings int
}

// Run fuzzes cfg.Target until the case count or the time is reached, the
// context ends, or the broker crashes beyond restarting. The result is
// complete in every case; an error means the run could not start (the
// broker unreachable, or refusing our CONNECT).
func Run(ctx context.Context, cfg Config) (*reports.Fuzz, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.RSSBound <= 0 {
		cfg.RSSBound = 256 << 20
	}
	if cfg.MaxFindings <= 0 {
		cfg.MaxFindings = 20
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	cfg.Timing = cfg.Timing.withDefaults()
	if err := Preflight(ctx, cfg.Target, cfg.Version, cfg.Timing.Liveness); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, t: cfg.Target, seen: map[string]int{}, pending: map[string]bool{}, stop: make(chan struct{})}
	r.res = &reports.Fuzz{Kind: "fuzz", Broker: cfg.Target.Name, Protocol: cfg.Version.String(), Seed: cfg.Seed,
		Workers: cfg.Workers, Started: time.Now().UTC(), Generators: map[string]int64{}, Outcomes: map[string]int64{},
		Findings: []reports.FuzzFinding{}}
	if pid := cfg.Target.PID(); pid > 0 {
		rss := cfg.Target.RSS()
		r.res.RSS = &reports.FuzzRSS{PID: pid, Start: rss, Peak: rss, Bound: cfg.RSSBound}
	}
	start := time.Now()
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); r.worker(runCtx) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	report := func() {
		if cfg.Progress != nil {
			el := time.Since(start)
			n := r.cases.Load()
			cfg.Progress(Progress{Elapsed: el, Cases: n, Rate: float64(n) / el.Seconds(), Findings: r.findings()})
		}
	}
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			report()
		}
	}
	report()
	res := r.res
	res.Duration = time.Since(start)
	res.Cases = r.cases.Load()
	res.Skipped = r.skipped.Load()
	if s := res.Duration.Seconds(); s > 0 {
		res.CasesPerSecond = float64(res.Cases) / s
	}
	res.Interrupted = ctx.Err() != nil
	if res.RSS != nil {
		res.RSS.PID = cfg.Target.PID()
		res.RSS.End = cfg.Target.RSS()
	}
	res.SortFindings()
	return res, nil
}

// Preflight checks the broker accepts a connection and a CONNECT of
// version v: without that no case after CONNECT can run.
func Preflight(ctx context.Context, t *Target, v packetgen.Version, d time.Duration) error {
	nc, err := t.dial(ctx, d)
	if err != nil {
		return fmt.Errorf("cannot reach the broker at %s: %v", t.Addr(), err)
	}
	c := wire.New(nc, "preflight", v, nil)
	defer c.Close()
	ack, err := c.Connect(&packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60, ClientID: t.clientID("fzc")}, d)
	if err != nil {
		return fmt.Errorf("the broker at %s did not answer an MQTT %s CONNECT: %v", t.Addr(), v, err)
	}
	if ack.ReasonCode != 0 {
		return fmt.Errorf("the broker at %s refuses an MQTT %s CONNECT (code 0x%02X)", t.Addr(), v, byte(ack.ReasonCode))
	}
	c.SendRaw(disconnect, "DISCONNECT") //nolint:errcheck
	return nil
}

type runner struct {
	cfg Config
	t   *Target

	next    atomic.Uint64
	cases   atomic.Int64
	skipped atomic.Int64

	// gate: workers hold it shared while running a case; triage takes it
	// alone, so a case that crashed the broker is run with nothing else.
	gate     sync.RWMutex
	triageMu sync.Mutex
	// lastTriage: failures of cases that began before it are part of an
	// event already triaged.
	lastTriage atomic.Int64

	mu   sync.Mutex
	res  *reports.Fuzz
	seen map[string]int // finding signature -> index in res.Findings
	// pending: signatures being minimized by a worker right now.
	pending map[string]bool
	recent  []Case // the last cases completed, newest last
	// recentRSS: how much the broker's RSS grew while each ran.
	recentRSS []int64

	stopOnce sync.Once
	stop     chan struct{}
	rssSeen  bool
}

func (r *runner) findings() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.res.Findings)
}

func (r *runner) halt(why string) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.res.Stopped = why
		r.mu.Unlock()
		r.cfg.Log("stopping: %s", why)
		close(r.stop)
	})
}

func (r *runner) stopped(ctx context.Context) bool {
	select {
	case <-r.stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func (r *runner) worker(ctx context.Context) {
	for !r.stopped(ctx) {
		n := r.next.Add(1) - 1
		if r.cfg.Cases > 0 && n >= r.cfg.Cases {
			return
		}
		i := r.cfg.First + n
		c := Generate(r.cfg.Seed, i, r.cfg.Version)
		var o Observation
		var began time.Time
		var rssBefore int64
		for try := 0; ; try++ {
			r.gate.RLock()
			began = time.Now()
			rssBefore = r.t.RSS()
			o = r.t.Exec(ctx, c, r.cfg.Timing)
			r.gate.RUnlock()
			if !o.Local || try == 3 || r.stopped(ctx) {
				break
			}
			time.Sleep(time.Second) // out of ports: let TIME_WAIT drain
		}
		if ctx.Err() != nil {
			return // an interrupted case proves nothing
		}
		r.count(c, o, rssBefore)
		switch class, why := Classify(c, o); class {
		case SpecDeviation:
			r.deviation(ctx, c, why)
		case Crash, Hang:
			if began.UnixNano() < r.lastTriage.Load() {
				r.note("transient")
				continue
			}
			r.triage(ctx, c, class, why)
		}
		r.checkRSS(c, o)
	}
}

func (r *runner) count(c Case, o Observation, rssBefore int64) {
	r.cases.Add(1)
	outcome := "open"
	switch {
	case o.Local:
		outcome = "local-error"
	case o.Skipped != "":
		outcome = "skipped"
		r.skipped.Add(1)
	case o.Answered:
		outcome = "answered"
	case o.Closed:
		outcome = "closed"
	case o.Silent:
		outcome = "silent"
	}
	r.mu.Lock()
	r.res.Generators[c.Generator]++
	r.res.Outcomes[outcome]++
	r.recent = append(r.recent, c)
	r.recentRSS = append(r.recentRSS, o.RSS-rssBefore)
	if n := 2 * r.cfg.Workers; len(r.recent) > n {
		r.recent = r.recent[len(r.recent)-n:]
		r.recentRSS = r.recentRSS[len(r.recentRSS)-n:]
	}
	r.mu.Unlock()
}

func (r *runner) note(outcome string) {
	r.mu.Lock()
	r.res.Outcomes[outcome]++
	r.mu.Unlock()
}

// signature groups findings that are likely the same bug.
func signature(class string, c Case) string {
	cc := c.Class
	if c.Generator == GenMutated {
		cc = GenMutated
	}
	return class + "|" + cc + "|" + c.Rule
}

// known counts a recurrence and reports true when the finding's kind was
// seen before or the finding budget is spent.
func (r *runner) known(class string, c Case) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	sig := signature(class, c)
	if i, ok := r.seen[sig]; ok {
		r.res.Findings[i].Occurrences++
		return true
	}
	if r.pending[sig] {
		return true
	}
	n := len(r.pending)
	for _, f := range r.res.Findings {
		if f.Class == class {
			n++
		}
	}
	if n >= r.cfg.MaxFindings {
		r.res.Outcomes["findings-over-budget"]++
		return true
	}
	r.pending[sig] = true
	return false
}

// deviation minimizes and saves a spec deviation. It needs no triage: the
// case's own connection shows it.
func (r *runner) deviation(ctx context.Context, c Case, why string) {
	if r.known(SpecDeviation, c) {
		return
	}
	// A candidate may crash or hang the broker: minimizing stops there,
	// and that candidate is triaged like any crashing case. A candidate
	// must break the rule the original breaks, the same way
	// (candidateJudge), or it is another deviation (already counted under
	// its own class, if real).
	var broke Case
	var brokeClass, brokeWhy string
	judge := candidateJudge(c, SpecDeviation)
	still := func(n Case) (Case, bool) {
		n, ok := judge(n)
		if !ok || brokeClass != "" {
			return n, false
		}
		r.gate.RLock()
		cl, w := Classify(n, r.t.Exec(ctx, n, r.cfg.Timing))
		r.gate.RUnlock()
		if cl == Crash || cl == Hang {
			broke, brokeClass, brokeWhy = n, cl, w
		}
		return n, cl == SpecDeviation
	}
	m, tries := Minimize(ctx, c, still, r.cfg.Budget)
	// A broker's answer can depend on timing: keep the shrunk case only
	// if it shows the deviation twice more, else the original.
	for k := 0; k < 2 && !m.sameBytes(c) && brokeClass == ""; k++ {
		if _, ok := still(m); !ok {
			m = c
		}
	}
	r.record(ctx, SpecDeviation, why, c, m, tries, true)
	if brokeClass != "" && ctx.Err() == nil {
		r.triage(ctx, broke, brokeClass, "while minimizing case "+fmt.Sprint(c.Index)+": "+brokeWhy)
	}
}

// triage runs alone (no other case in flight) to find the case that
// crashes or hangs the broker by itself: the failing case first, then the
// cases completed just before it. The culprit is minimized, restarting the
// broker after each run that reproduces.
func (r *runner) triage(ctx context.Context, c Case, class, why string) {
	r.triageMu.Lock()
	defer r.triageMu.Unlock()
	r.gate.Lock()
	defer func() {
		r.lastTriage.Store(time.Now().UnixNano())
		r.gate.Unlock()
	}()
	if r.stopped(ctx) {
		return
	}
	r.cfg.Log("case %d: %s (%s); triage", c.Index, class, why)
	if err := r.ensureAlive(ctx, c.Version); err != nil {
		if ctx.Err() != nil {
			return // the run ended while restarting: nothing to conclude
		}
		// Dead for good: keep what we know, suspects included.
		r.mu.Lock()
		var suspects []string
		for _, x := range r.recent {
			suspects = append(suspects, fmt.Sprint(x.Index))
		}
		r.mu.Unlock()
		r.record(ctx, class, fmt.Sprintf("%s (not verified alone: %v; cases run with or just before it: %s)",
			why, err, strings.Join(suspects, ", ")), c, c, 0, false)
		r.halt(fmt.Sprintf("the broker is down after case %d (%s) and cannot be restarted: %v", c.Index, class, err))
		return
	}
	r.mu.Lock()
	candidates := []Case{c}
	for i := len(r.recent) - 1; i >= 0; i-- {
		if r.recent[i].Index != c.Index {
			candidates = append(candidates, r.recent[i])
		}
	}
	r.mu.Unlock()
	for _, x := range candidates {
		if ctx.Err() != nil {
			return
		}
		o := r.t.Exec(ctx, x, r.cfg.Timing)
		cl, w := Classify(x, o)
		if cl != Crash && cl != Hang {
			continue
		}
		r.cfg.Log("case %d reproduces alone: %s (%s)", x.Index, cl, w)
		if r.known(cl, x) {
			r.ensureAlive(ctx, x.Version) //nolint:errcheck
			return
		}
		judge := candidateJudge(x, cl)
		still := func(n Case) (Case, bool) {
			// Another kind of fault that also breaks the broker is
			// another bug.
			n, ok := judge(n)
			if !ok || r.ensureAlive(ctx, n.Version) != nil {
				return n, false
			}
			got, _ := Classify(n, r.t.Exec(ctx, n, r.cfg.Timing))
			return n, got == cl
		}
		// Candidates are sent without the trailing PINGREQ when the case
		// breaks the broker without it: no wait for an answer per try.
		start := x
		if x.Expect != packetgen.ExpectWaitOrClose {
			quiet := x
			quiet.Expect = packetgen.ExpectWaitOrClose
			if q, ok := still(quiet); ok {
				start = q
			}
		}
		m, tries := Minimize(ctx, start, func(n Case) (Case, bool) {
			n, ok := still(n)
			n.Expect = start.Expect
			return n, ok
		}, r.cfg.Budget)
		if err := r.ensureAlive(ctx, x.Version); err != nil && ctx.Err() == nil {
			r.record(ctx, cl, w, x, m, tries, true)
			r.halt(fmt.Sprintf("the broker is down after minimizing case %d: %v", x.Index, err))
			return
		}
		r.record(ctx, cl, w, x, m, tries, true)
		return
	}
	// Nothing reproduces alone and the broker is fine: a passing failure
	// (an overloaded machine, a restart racing a probe) unless the broker
	// had to be restarted, which is a crash we cannot pin on one case.
	r.cfg.Log("case %d: %s did not reproduce alone; not counted", c.Index, class)
	r.note("not-reproduced")
}

// ensureAlive probes the broker and restarts it when it is down.
func (r *runner) ensureAlive(ctx context.Context, v packetgen.Version) error {
	if p := r.t.Probe(ctx, v, r.cfg.Timing.Liveness); p.Alive() {
		return nil
	} else if r.t.Restart == nil {
		return fmt.Errorf("%s: %s", p.Failure, p.Detail)
	}
	r.cfg.Log("restarting the broker")
	if err := r.t.restart(ctx); err != nil {
		return fmt.Errorf("restart: %v", err)
	}
	r.note("restarts")
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := r.t.Probe(ctx, v, r.cfg.Timing.Liveness)
		if p.Alive() {
			r.mu.Lock()
			if r.res.RSS != nil {
				r.res.RSS.Start = r.t.RSS() // a new process: a new baseline
			}
			r.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not alive after restart: %s: %s", p.Failure, p.Detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkRSS reports, once, RSS growth past the bound.
func (r *runner) checkRSS(c Case, o Observation) {
	if r.res.RSS == nil {
		return
	}
	rss := max(o.RSS, r.t.RSS())
	r.mu.Lock()
	st := r.res.RSS
	st.Peak = max(st.Peak, rss)
	grown := rss - st.Start
	report := grown > st.Bound && !r.rssSeen
	culprit, jump := c, int64(0)
	if report {
		r.rssSeen = true
		// Cases overlap, so blame the recent case during which the RSS
		// rose most, not merely the one that noticed.
		for i, d := range r.recentRSS {
			if d > jump {
				culprit, jump = r.recent[i], d
			}
		}
	}
	r.mu.Unlock()
	if report {
		why := fmt.Sprintf("RSS of process %d grew from %d MiB to %d MiB (+%d MiB, bound +%d MiB); it rose %d MiB while case %d ran",
			r.t.PID(), st.Start>>20, rss>>20, grown>>20, st.Bound>>20, jump>>20, culprit.Index)
		r.record(context.Background(), ResourceGrowth, why, culprit, culprit, 0, false)
	}
}

// record saves a finding: the reproducer file (with a trace of one more
// run of the saved bytes when verified) and its line in the result.
func (r *runner) record(ctx context.Context, class, why string, original, m Case, tries int, verified bool) {
	if m.Rule == "" {
		// A shrunk valid case (deep topics, limits) is judged to break
		// nothing; the statement that makes the broker accept it is the
		// original's.
		m.Rule = original.Rule
	}
	rep := NewReproducer(class, why, r.t.Name, m, original)
	rep.Tries = tries
	if verified && class == SpecDeviation && ctx.Err() == nil {
		trace := wire.NewTrace()
		r.t.ExecTraced(ctx, m, r.cfg.Timing, trace)
		rep.Trace = trace.Entries()
	}
	if class == ResourceGrowth {
		rep.Note = "resource growth is cumulative: replay reports it only if this case alone grows the RSS past the bound"
	} else if !verified {
		rep.Note = "not verified alone"
	}
	path := ""
	if r.cfg.Out != "" {
		path = filepath.Join(r.cfg.Out, "reproducers", rep.FileName())
		if err := rep.Write(path); err != nil {
			r.cfg.Log("saving reproducer: %v", err)
			path = ""
		}
	}
	f := reports.FuzzFinding{Class: class, Case: original.Index, Generator: original.Generator, CaseClass: original.Class,
		Rule: m.Rule, Observed: why, Reproducer: path, Bytes: len(m.Bytes), OriginalBytes: len(original.Bytes),
		Minimized: rep.Minimized, Verified: verified, Occurrences: 1}
	r.mu.Lock()
	sig := signature(class, original)
	delete(r.pending, sig)
	r.seen[sig] = len(r.res.Findings)
	r.res.Findings = append(r.res.Findings, f)
	r.mu.Unlock()
	r.cfg.Log("finding: %s in case %d (%s), %d bytes (from %d) -> %s", class, original.Index, original.Class,
		len(m.Bytes), len(original.Bytes), path)
}
