package faults

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// healTimeout bounds healing a fault at the end of a run: removing
// toxics, continuing a paused broker, restarting a killed one.
const healTimeout = ReadyTimeout + StopTimeout

// Scheduler runs a fault list against a run's clock: Start begins the
// clock, Stop ends it, heals what is still active and says what happened.
type Scheduler struct {
	specs   []Spec
	proxies *Proxies // nil without network faults
	broker  *Broker  // nil without process faults

	// now is the clock (tests make it faster); nil is time.Now.
	now func() time.Time

	// Probe, when set before Start, checks what each process fault kept.
	Probe Probe

	mu      sync.Mutex
	t0      time.Time
	records []*record
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// record is one occurrence of a fault, in wall-clock times.
type record struct {
	spec                  *Spec
	start, end, recovered time.Time
	err                   error
	survival              *reports.LoadSurvival
}

// Probe checks what the broker keeps across a process fault (retained
// messages, pending wills). The scheduler calls it ProbeLead before each
// kill, restart or pause (at once when the run is younger than that),
// with the occurrence's id, and calls the check it returns once the
// broker is back (back true) or the fault failed (back false: clean up
// only). A nil check means nothing was armed.
type Probe func(ctx context.Context, id string, sp Spec) (check func(ctx context.Context, back bool) *reports.LoadSurvival)

// ProbeLead is how long before a process fault its probe is armed;
// probeTimeout bounds arming, checkTimeout the check (it waits for a
// delayed will).
const (
	ProbeLead    = 300 * time.Millisecond
	probeTimeout = 5 * time.Second
	checkTimeout = 30 * time.Second
)

// NewScheduler schedules specs; proxies and broker carry them out (each
// may be nil when no spec needs it).
func NewScheduler(specs []Spec, proxies *Proxies, broker *Broker) *Scheduler {
	return &Scheduler{specs: specs, proxies: proxies, broker: broker}
}

// Start begins the schedule at t0 (the run's start). Every fault runs in
// its own goroutine until Stop; a repeated fault's next occurrence waits
// for the last to end.
func (s *Scheduler) Start(t0 time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.t0, s.cancel = t0, cancel
	s.mu.Unlock()
	for i := range s.specs {
		sp := &s.specs[i]
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, i, sp)
		}()
	}
}

// Stop ends the schedule: faults not begun never will, active ones are
// healed (a killed broker restarted, a paused one continued), and the
// occurrences are returned in the order they began, times in seconds
// since origin (the run's start as its summary gives it).
func (s *Scheduler) Stop(origin time.Time) []reports.LoadFault {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	sort.SliceStable(s.records, func(i, j int) bool { return s.records[i].start.Before(s.records[j].start) })
	out := make([]reports.LoadFault, 0, len(s.records))
	sec := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return t.Sub(origin).Seconds()
	}
	for _, r := range s.records {
		lf := reports.LoadFault{Name: r.spec.Name, Kind: string(r.spec.Kind), Target: r.spec.Group,
			Start: sec(r.start), End: sec(r.end), Recovered: sec(r.recovered)}
		if r.err != nil {
			lf.Error = r.err.Error()
		}
		lf.Survival = r.survival
		out = append(out, lf)
	}
	return out
}

// run carries out every occurrence of spec i.
func (s *Scheduler) run(ctx context.Context, i int, sp *Spec) {
	at := sp.At
	if at == 0 && sp.Every > 0 {
		at = sp.Every
	}
	for n := 0; ; n++ {
		id := fmt.Sprintf("mqttbench-fault-%d-%d", i, n)
		var check func(context.Context, bool) *reports.LoadSurvival
		if s.Probe != nil && sp.Kind.Process() {
			if !s.sleepUntil(ctx, at-ProbeLead) {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			check = s.Probe(pctx, id, *sp)
			cancel()
		}
		if !s.sleepUntil(ctx, at) {
			s.check(ctx, check, nil)
			return
		}
		r := s.occur(ctx, id, sp)
		// The check runs beside the schedule: waiting for a delayed will
		// must not push the next fault back.
		if check != nil {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.check(ctx, check, r)
			}()
		}
		if sp.Every == 0 {
			return
		}
		// The next one on the grid, after this one has ended.
		el := s.clock().Sub(s.t0)
		for at += sp.Every; at < el; at += sp.Every {
		}
	}
}

func (s *Scheduler) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// sleepUntil waits until offset from t0; false when the run ended first.
func (s *Scheduler) sleepUntil(ctx context.Context, offset time.Duration) bool {
	d := s.t0.Add(offset).Sub(s.clock())
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sleepFor waits d, or until the run ends; 0 waits for the run's end.
func sleepFor(ctx context.Context, d time.Duration) {
	if d == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// check runs a probe's check for occurrence r (nil: it never began) and
// keeps what it found. Like healing, it outlives the run's end.
func (s *Scheduler) check(ctx context.Context, check func(context.Context, bool) *reports.LoadSurvival, r *record) {
	if check == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	defer cancel()
	back := false
	if r != nil {
		s.mu.Lock()
		back = r.err == nil && !r.recovered.IsZero()
		s.mu.Unlock()
	}
	sv := check(cctx, back)
	if r != nil {
		s.mu.Lock()
		r.survival = sv
		s.mu.Unlock()
	}
}

// occur injects one occurrence, keeps it for its duration and heals it.
// Healing does not stop at the run's end: it has its own deadline.
func (s *Scheduler) occur(ctx context.Context, id string, sp *Spec) *record {
	r := &record{spec: sp, start: s.clock()}
	s.mu.Lock()
	s.records = append(s.records, r)
	s.mu.Unlock()
	heal := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), healTimeout)
	}
	set := func(end, recovered time.Time, err error) {
		s.mu.Lock()
		r.end, r.recovered, r.err = end, recovered, err
		s.mu.Unlock()
	}
	if sp.Kind.Process() {
		s.process(ctx, sp, r, heal, set)
		return r
	}
	if s.proxies == nil {
		set(r.start, time.Time{}, fmt.Errorf("%s needs the fault proxy", sp.Kind))
		return r
	}
	ictx, cancel := heal()
	err := s.proxies.Inject(ictx, *sp, id)
	cancel()
	if err != nil {
		hctx, cancel := heal()
		s.proxies.Heal(hctx, id) //nolint:errcheck // what was added, if anything
		cancel()
		set(s.clock(), time.Time{}, err)
		return r
	}
	d := sp.For
	if d == 0 && sp.Kind == Reset {
		d = DefaultResetWindow
	}
	sleepFor(ctx, d)
	hctx, cancel := heal()
	defer cancel()
	if err := s.proxies.Heal(hctx, id); err != nil {
		set(s.clock(), time.Time{}, err)
		return r
	}
	end := s.clock()
	set(end, end, nil)
	return r
}

// process carries out a kill, restart or pause.
func (s *Scheduler) process(ctx context.Context, sp *Spec, r *record, heal func() (context.Context, context.CancelFunc), set func(end, recovered time.Time, err error)) {
	b := s.broker
	if b == nil {
		set(r.start, time.Time{}, fmt.Errorf("%s needs the broker process (--broker-pid or --broker-cmd)", sp.Kind))
		return
	}
	hctx, cancel := heal()
	defer cancel()
	var err error
	switch sp.Kind {
	case Pause:
		if err = b.Pause(); err != nil {
			set(s.clock(), time.Time{}, err)
			return
		}
		sleepFor(ctx, sp.For)
		end := s.clock()
		err = b.Resume(hctx)
		set(end, s.recoveredAt(err), err)
		return
	case Kill:
		err = b.Kill(hctx)
	case Restart:
		err = b.Stop(hctx)
	}
	if err != nil {
		set(s.clock(), time.Time{}, err)
		return
	}
	end := s.clock()
	if sp.For > 0 {
		sleepFor(ctx, sp.For) // down for a while; still restarted if the run ends
		end = s.clock()
	}
	err = b.Restarted(hctx)
	set(end, s.recoveredAt(err), err)
}

func (s *Scheduler) recoveredAt(err error) time.Time {
	if err != nil {
		return time.Time{}
	}
	return s.clock()
}
