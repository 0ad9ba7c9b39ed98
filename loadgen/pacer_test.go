package loadgen

import (
	"context"
	"testing"
	"time"
)

// fakeClock advances only when the schedule sleeps or a test moves it.
type fakeClock struct {
	t      time.Duration
	sleeps int
}

func (c *fakeClock) Elapsed() time.Duration { return c.t }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	c.t += d
	c.sleeps++
	return ctx.Err() == nil
}

func TestConstantPacer(t *testing.T) {
	p := ConstantPacer{Rate: 100, Duration: time.Second}
	cases := []struct {
		name    string
		elapsed time.Duration
		hits    uint64
		wait    time.Duration
		stop    bool
	}{
		{"first hit is due at once", 0, 0, 0, false},
		{"second hit waits one interval", 0, 1, 10 * time.Millisecond, false},
		{"behind: due now", 50 * time.Millisecond, 2, 0, false},
		{"ahead: wait the difference", 15 * time.Millisecond, 2, 5 * time.Millisecond, false},
		{"the 100th hit is the last within a second", 985 * time.Millisecond, 99, 5 * time.Millisecond, false},
		{"stops after Duration", time.Second, 100, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wait, stop := p.Pace(tc.elapsed, tc.hits)
			if wait != tc.wait || stop != tc.stop {
				t.Errorf("Pace(%v, %d) = %v, %v; want %v, %v", tc.elapsed, tc.hits, wait, stop, tc.wait, tc.stop)
			}
		})
	}
	if got := p.Hits(); got != 100 {
		t.Errorf("Hits() = %d, want 100", got)
	}
	if _, stop := (ConstantPacer{Rate: 0}).Pace(0, 0); !stop {
		t.Error("an unbounded pacer (no rate, no max) must stop, not run forever")
	}
	m := ConstantPacer{Max: 3}
	for i := uint64(0); i < 3; i++ {
		if w, stop := m.Pace(0, i); w != 0 || stop {
			t.Errorf("rate 0, hit %d: wait %v stop %v; want all due at once", i, w, stop)
		}
	}
	if _, stop := m.Pace(0, 3); !stop {
		t.Error("Max reached: want stop")
	}
}

// On a fake clock the schedule sends every hit at its own time, in
// order, and the intended times are exact.
func TestScheduleOnTime(t *testing.T) {
	clk := &fakeClock{}
	s := schedule{Pacer: ConstantPacer{Rate: 1000, Duration: time.Second}, Clock: clk, MaxLag: 100 * time.Millisecond}
	var dues []time.Duration
	var flushes int
	hits := s.run(context.Background(),
		func(n uint64, due time.Duration) {
			if uint64(len(dues)) != n {
				t.Fatalf("hit %d out of order", n)
			}
			if clk.t < due {
				t.Fatalf("hit %d sent at %v, before it was due at %v", n, clk.t, due)
			}
			dues = append(dues, due)
		},
		func(n uint64, _ time.Duration) { t.Fatalf("hit %d missed on an idle clock", n) },
		func() { flushes++ })
	if hits != 1000 || len(dues) != 1000 {
		t.Fatalf("ran %d hits, sent %d; want 1000", hits, len(dues))
	}
	for i, d := range dues {
		if want := time.Duration(i) * time.Millisecond; d != want {
			t.Fatalf("hit %d due at %v, want %v", i, d, want)
		}
	}
	if flushes == 0 {
		t.Error("no flush")
	}
}

// A send that blocks (a broker that stops reading) makes the schedule
// fall behind. Hits within MaxLag go out late with their intended times;
// older ones are counted missed. None disappears and the rate is not
// lowered.
func TestScheduleFallsBehind(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxLag time.Duration
		missed int
	}{
		// Hit 100 blocks 2 s at t=100ms: by t=2.1s hits 101..2100 are due.
		// With a 1 s lag, those due before 1.1s (hits 101..1099) are missed.
		{"missed beyond max lag", time.Second, 999},
		{"no max lag: every hit sent late", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{}
			s := schedule{Pacer: ConstantPacer{Rate: 1000, Duration: 3 * time.Second}, Clock: clk, MaxLag: tc.maxLag}
			var sent, missed int
			var lateDue time.Duration
			hits := s.run(context.Background(),
				func(n uint64, due time.Duration) {
					sent++
					if n == 100 {
						clk.t += 2 * time.Second // the write blocks
					}
					if n == 1500 {
						lateDue = due
					}
				},
				func(uint64, time.Duration) { missed++ },
				func() {})
			if hits != 3000 || sent+missed != 3000 {
				t.Fatalf("hits %d, sent %d + missed %d; want 3000 accounted for", hits, sent, missed)
			}
			if missed != tc.missed {
				t.Errorf("missed %d, want %d", missed, tc.missed)
			}
			if lateDue != 1500*time.Millisecond {
				t.Errorf("a late hit carried due %v, want its intended 1.5s", lateDue)
			}
		})
	}
}

func TestScheduleStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{}
	s := schedule{Pacer: ConstantPacer{Rate: 10, Duration: time.Hour}, Clock: clk}
	n := 0
	hits := s.run(ctx, func(uint64, time.Duration) {
		n++
		if n == 5 {
			cancel()
		}
	}, func(uint64, time.Duration) {}, func() {})
	if hits != 5 {
		t.Errorf("ran %d hits after cancel at 5", hits)
	}
}
