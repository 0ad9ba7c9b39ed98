package loadgen

import (
	"context"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The verdict on measures given: each threshold alone saturates, and lag
// while the senders were blocked writing is the broker's back-pressure.
func TestSaturationJudge(t *testing.T) {
	calm := genSample{Wall: 10 * time.Second, CPU: 2 * time.Second, CPUOK: true, Cores: 2, SchedP99: 200 * time.Microsecond,
		GCPauses: 4, GCPauseP99: 300 * time.Microsecond, SendLagP90: time.Millisecond, SendLagP99: 2 * time.Millisecond, Senders: 2, WriteTime: time.Second}
	cases := []struct {
		name   string
		change func(*genSample)
		why    string // "" for not saturated
	}{
		{"calm", func(*genSample) {}, ""},
		{"cpu", func(s *genSample) { s.CPU = 18500 * time.Millisecond }, "generator CPU 1.85 of 2 cores"},
		{"cpu with the in-process broker", func(s *genSample) { s.CPU, s.WithBroker = 19*time.Second, true }, "generator and in-process broker CPU 1.90 of 2 cores"},
		{"cpu just below", func(s *genSample) { s.CPU = 17900 * time.Millisecond }, ""},
		{"cpu not measurable", func(s *genSample) { s.CPU, s.CPUOK = 20*time.Second, false }, ""},
		{"scheduler", func(s *genSample) { s.SchedP99 = 12 * time.Millisecond }, "scheduler latency p99 12ms"},
		{"scheduler, over half the measured p99", func(s *genSample) { s.SchedP99, s.MeasuredP99 = 12*time.Millisecond, 20*time.Millisecond }, "scheduler latency p99 12ms"},
		{"scheduler, under half the measured p99", func(s *genSample) { s.SchedP99, s.MeasuredP99 = 6*time.Millisecond, 14*time.Millisecond }, ""},
		{"gc", func(s *genSample) { s.GCPauseP99 = 15 * time.Millisecond }, "GC pause p99 15ms over 4 pauses"},
		{"gc, small next to the broker's queueing", func(s *genSample) { s.GCPauseP99, s.MeasuredP99 = 15*time.Millisecond, 200*time.Millisecond }, ""},
		{"one reader always busy", func(s *genSample) { s.ReadBusy, s.ReadBusyConn = 9500*time.Millisecond, 7 }, "the reader of connection 7 was busy 95% of the time"},
		{"one reader mostly busy", func(s *genSample) { s.ReadBusy = 8 * time.Second }, ""},
		{"send lag", func(s *genSample) { s.SendLagP90, s.SendLagP99 = 40*time.Millisecond, 50*time.Millisecond }, "send lag p90 40ms with senders in writes only 5% of the time"},
		{"a stall in the tail only", func(s *genSample) { s.SendLagP99 = 60 * time.Millisecond }, ""},
		{"missed late", func(s *genSample) { s.MissedLate = 3 }, "3 sends missed late"},
		{"lag while blocked writing: the broker's", func(s *genSample) { s.SendLagP90, s.WriteTime = 400*time.Millisecond, 15*time.Second }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := calm
			tc.change(&s)
			g := s.judge(SaturationLimits{})
			if g.Saturated != (tc.why != "") || !strings.Contains(strings.Join(g.Reasons, "; "), tc.why) {
				t.Errorf("saturated %v, reasons %q; want %q", g.Saturated, g.Reasons, tc.why)
			}
			queued := (s.SchedP99 > DefaultSaturationLimits.Sched || s.GCPauseP99 > DefaultSaturationLimits.GCPause) && !g.Saturated
			if queued != (len(g.Notes) == 1 && strings.Contains(g.Notes[0], "the broker's queueing, not the generator")) {
				t.Errorf("notes %q with scheduler latency p99 %s, measured p99 %s", g.Notes, s.SchedP99, s.MeasuredP99)
			}
			if tail := s.SendLagP99 > DefaultSaturationLimits.SendLag && !g.Saturated && s.WriteTime < 10*time.Second; !queued && tail != (len(g.Notes) == 1) {
				t.Errorf("notes %q with send lag p99 %s", g.Notes, s.SendLagP99)
			}
		})
	}
}

func TestHistQuantile(t *testing.T) {
	buckets := []float64{math.Inf(-1), 0.001, 0.002, 0.004, math.Inf(1)}
	cases := []struct {
		counts []uint64
		q      float64
		want   time.Duration
	}{
		{[]uint64{0, 0, 0, 0}, 0.99, 0},
		{[]uint64{0, 99, 1, 0}, 0.99, 2 * time.Millisecond}, // upper bound of its bucket
		{[]uint64{0, 98, 2, 0}, 0.99, 4 * time.Millisecond}, //
		{[]uint64{0, 0, 0, 5}, 0.99, 4 * time.Millisecond},  // unbounded: the lower bound
		{[]uint64{7, 0, 0, 0}, 0.5, 1 * time.Millisecond},   // below the first bound
	}
	for _, tc := range cases {
		if got, _ := histQuantile(tc.counts, buckets, tc.q); got != tc.want {
			t.Errorf("%v q%g: %v; want %v", tc.counts, tc.q, got, tc.want)
		}
	}
}

// A run offered far more than one core can send is saturated; a light
// run is not.
func TestSaturationRuns(t *testing.T) {
	t.Run("impossible rate on one core", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		sc := quick(2, 1, 0, "bench/all")
		sc.Rate, sc.Duration, sc.MaxLag, sc.Drain = 5e6, time.Second, 100*time.Millisecond, 2*time.Second
		l := run(t, sc, Options{})
		g := l.Generator
		if g == nil || !g.Saturated || g.Cores != 1 {
			t.Fatalf("generator %+v; want saturated on 1 core (sent %d of %d)", g, l.Messages.Sent, l.Messages.Offered)
		}
		if l.Messages.MissedLate == 0 {
			t.Errorf("no sends missed late at %g msg/s: %+v", sc.Rate, l.Messages)
		}
		t.Logf("saturated: %s", g.Summary())
	})
	t.Run("light", func(t *testing.T) {
		sc := quick(1, 1, 1, "bench/all")
		sc.Rate, sc.Duration = 100, time.Second
		l := run(t, sc, Options{})
		g := l.Generator
		if g == nil || g.Saturated || g.CPU <= 0 || g.Cores != runtime.GOMAXPROCS(0) || !g.WithBroker {
			t.Fatalf("generator %+v; want measured and not saturated", g)
		}
	})
	t.Run("busiest reader", func(t *testing.T) {
		sc := quick(4, 1, 0, "bench/all")
		sc.Rate, sc.Duration = 2000, time.Second
		l := run(t, sc, Options{})
		g := l.Generator
		if g == nil || g.Saturated || g.ReaderBusy <= 0 || g.ReaderBusy >= 0.9 || g.ReaderBusyConn != 4 {
			t.Fatalf("generator %+v; want the subscriber's reader (connection 4) measured, not saturated", g)
		}
		l = run(t, sc, Options{Saturation: SaturationLimits{ReaderBusy: g.ReaderBusy / 10}})
		if g := l.Generator; !g.Saturated || !strings.Contains(strings.Join(g.Reasons, ";"), "the reader of connection 4 was busy") {
			t.Fatalf("generator %+v; want saturated by a reader limit below what it measured", g)
		}
	})
	t.Run("interrupted before publishing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := Run(ctx, quick(1, 1, 0, "t"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Summary.Generator != nil {
			t.Errorf("generator measured without publishing: %+v", res.Summary.Generator)
		}
	})
}

func TestParseSaturationLimits(t *testing.T) {
	l, err := ParseSaturationLimits("cpu=0.95, lag=50ms,sched=20ms,gc=1s,write=0.8,sched-share=0.5")
	want := SaturationLimits{CPU: 0.95, SendLag: 50 * time.Millisecond, Sched: 20 * time.Millisecond, SchedShare: 0.5, GCPause: time.Second, WriteShare: 0.8}
	if err != nil || l != want {
		t.Fatalf("%+v, %v", l, err)
	}
	if l, _ := ParseSaturationLimits("lag=1s"); l.withDefaults().CPU != 0.9 || l.withDefaults().SendLag != time.Second {
		t.Errorf("defaults not kept: %+v", l.withDefaults())
	}
	for in, want := range map[string]string{
		"cpu=2":      `--saturation "cpu=2": want a share`,
		"lag=-1s":    `--saturation "lag=-1s": want a duration above 0`,
		"lag=fast":   `--saturation "lag=fast": time: invalid duration`,
		"lag":        `--saturation "lag": want NAME=VALUE`,
		"memory=1GB": `unknown limit "memory"`,
	} {
		if _, err := ParseSaturationLimits(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", in, err, want)
		}
	}
	// Limits raised far enough, the same measures are not saturated.
	s := genSample{Wall: time.Second, CPUOK: true, Cores: 2, SchedP99: 12 * time.Millisecond, SendLagP90: 40 * time.Millisecond, Senders: 1}
	if !s.judge(SaturationLimits{}).Saturated || s.judge(SaturationLimits{Sched: time.Second, SendLag: time.Second}).Saturated {
		t.Error("limits not applied")
	}
}
