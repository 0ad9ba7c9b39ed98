package loadgen

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/reports"
)

// fakeBroker is clean up to capacity; above saturateAt (when set) the
// generator saturates before the broker is pushed that far.
type fakeBroker struct {
	capacity, saturateAt float64
	saturateOnly         float64 // this rate alone saturates the generator
	rates                []float64
	cancelAt             int  // cancel the search's context during this step
	broken               bool // every step breaks the protocol
	cancel               context.CancelFunc
}

func (b *fakeBroker) step(ctx context.Context, n int, rate float64) (StepVerdict, error) {
	b.rates = append(b.rates, rate)
	if n == b.cancelAt {
		b.cancel()
		return StepVerdict{Interrupted: true}, nil
	}
	switch {
	case b.broken:
		return StepVerdict{Broken: true, Why: []string{"protocol errors"}}, nil
	case b.saturateAt > 0 && rate >= b.saturateAt, rate == b.saturateOnly:
		return StepVerdict{GeneratorOnly: true, Why: []string{"generator saturated"}}, nil
	case rate > b.capacity:
		return StepVerdict{Why: []string{"lost"}}, nil
	}
	return StepVerdict{Clean: true}, nil
}

func TestFindMaxSearch(t *testing.T) {
	cases := []struct {
		name   string
		search FindMax
		broker fakeBroker
		rates  []float64
		want   Knee // Steps left out
	}{
		{
			name:   "doubles, then bisects to within 10%",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 5000},
			rates:  []float64{1000, 2000, 4000, 8000, 6000, 5000, 5500},
			want:   Knee{Rate: 5000, FirstUnclean: 5500, Stop: StopPrecision},
		},
		{
			name:   "factor 3 and 25%",
			search: FindMax{Start: 100, Factor: 3, Precision: 0.25},
			broker: fakeBroker{capacity: 1000},
			rates:  []float64{100, 300, 900, 2700, 1800, 1350, 1125},
			want:   Knee{Rate: 900, FirstUnclean: 1125, Stop: StopPrecision},
		},
		{
			name:   "the steps run out while bisecting",
			search: FindMax{Start: 1000, MaxSteps: 5},
			broker: fakeBroker{capacity: 5000},
			rates:  []float64{1000, 2000, 4000, 8000, 6000},
			want:   Knee{Rate: 4000, FirstUnclean: 6000, Stop: StopSteps},
		},
		{
			name:   "every step clean: at least the last",
			search: FindMax{Start: 1000, MaxSteps: 3},
			broker: fakeBroker{capacity: 1e9},
			rates:  []float64{1000, 2000, 4000},
			want:   Knee{Rate: 4000, AtLeast: true, Stop: StopSteps},
		},
		{
			name:   "the start is too much: steps down, then bisects",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 300},
			rates:  []float64{1000, 500, 250, 375, 313, 282, 298},
			want:   Knee{Rate: 298, FirstUnclean: 313, Stop: StopPrecision},
		},
		{
			name:   "broken at the start: no stepping down",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 1e9, broken: true},
			rates:  []float64{1000},
			want:   Knee{FirstUnclean: 1000, Stop: StopFirstFailed},
		},
		{
			name:   "unclean down to the lowest rate",
			search: FindMax{Start: 4},
			broker: fakeBroker{capacity: 0.5},
			rates:  []float64{4, 2, 1},
			want:   Knee{FirstUnclean: 1, Stop: StopFirstFailed},
		},
		{
			name:   "the generator saturates first: at least the last clean rate, never the saturated one",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 1e9, saturateAt: 3000},
			rates:  []float64{1000, 2000, 4000},
			want:   Knee{Rate: 2000, AtLeast: true, SaturatedAt: 4000, Stop: StopSaturated},
		},
		{
			name:   "the generator saturates while bisecting",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 5000, saturateOnly: 6000},
			rates:  []float64{1000, 2000, 4000, 8000, 6000},
			want:   Knee{Rate: 4000, FirstUnclean: 8000, AtLeast: true, SaturatedAt: 6000, Stop: StopSaturated},
		},
		{
			name:   "the generator saturates at the start rate",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 1e9, saturateAt: 1000},
			rates:  []float64{1000},
			want:   Knee{AtLeast: true, SaturatedAt: 1000, Stop: StopSaturated},
		},
		{
			name:   "interrupted",
			search: FindMax{Start: 1000},
			broker: fakeBroker{capacity: 1e9, cancelAt: 3},
			rates:  []float64{1000, 2000, 4000},
			want:   Knee{Rate: 2000, Stop: StopInterrupted},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := tc.broker
			b.cancel = cancel
			k, err := tc.search.Search(ctx, b.step)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.rates, tc.rates) {
				t.Errorf("rates %v; want %v", b.rates, tc.rates)
			}
			if len(k.Steps) != len(tc.rates) {
				t.Errorf("%d steps kept; want %d", len(k.Steps), len(tc.rates))
			}
			for i, s := range k.Steps {
				if s.Rate != b.rates[i] {
					t.Errorf("step %d: rate %g, ran at %g", i+1, s.Rate, b.rates[i])
				}
			}
			k.Steps = nil
			if !reflect.DeepEqual(k, tc.want) {
				t.Errorf("answer %+v; want %+v", k, tc.want)
			}
			if k.SaturatedAt > 0 && k.Rate >= k.SaturatedAt {
				t.Errorf("answer %g at or above the saturated rate %g", k.Rate, k.SaturatedAt)
			}
		})
	}
}

func TestFindMaxErrors(t *testing.T) {
	for _, tc := range []struct {
		f    FindMax
		want string
	}{
		{FindMax{}, "--find-max-start is 0"},
		{FindMax{Start: 100, Factor: 1, Precision: 0.1, MaxSteps: 3}, "--find-max-factor is 1"},
		{FindMax{Start: 100, Factor: 2, Precision: 1.5, MaxSteps: 3}, "--find-max-precision is 1.5"},
		{FindMax{Start: 100, Factor: 2, Precision: 0.1}, "--find-max-steps is 0"},
	} {
		if err := tc.f.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.f, err, tc.want)
		}
	}
	boom := errors.New("boom")
	n := 0
	k, err := FindMax{Start: 10}.Search(context.Background(), func(context.Context, int, float64) (StepVerdict, error) {
		if n++; n == 2 {
			return StepVerdict{}, boom
		}
		return StepVerdict{Clean: true}, nil
	})
	if !errors.Is(err, boom) || len(k.Steps) != 1 || k.Rate != 10 {
		t.Errorf("a failing step: %+v, %v", k, err)
	}
}

// cleanLoad is a summary every check of JudgeStep passes.
func cleanLoad() *reports.Load {
	return &reports.Load{
		Scenario:    reports.LoadScenario{Rate: 1000},
		Connections: reports.LoadConnections{Target: 4, Ready: 4},
		Messages:    reports.LoadMessages{Offered: 10000, Sent: 10000, Expected: 20000, Received: 20000, PublishSec: 10, SentRate: 1000, ReceivedRate: 1990},
		Verify:      []reports.LoadVerification{{QoS: 1, Sent: 10000, Received: 20000}},
		Generator:   &reports.LoadGenerator{Cores: 2},
	}
}

func TestJudgeStep(t *testing.T) {
	saturate := func(l *reports.Load) {
		l.Generator.Saturated, l.Generator.Reasons = true, []string{"generator CPU 1.95 of 2 cores"}
	}
	cases := []struct {
		name           string
		change         func(*reports.Load)
		clean, genOnly bool
		why            string // part of the reasons
	}{
		{"clean", func(*reports.Load) {}, true, false, ""},
		{"violation", func(l *reports.Load) { l.Violations = []string{"QoS 1: 3 lost"} }, false, false, "1 delivery violations (QoS 1: 3 lost)"},
		{"errors", func(l *reports.Load) {
			l.Errors = map[string]uint64{"closed": 2}
			l.ErrorSample = map[string]string{"closed": "EOF"}
		}, false, false, "2 closed errors (EOF)"},
		{"a few missed sends are tolerated", func(l *reports.Load) { l.Messages.Missed = 10 }, true, false, ""},
		{"missed sends", func(l *reports.Load) { l.Messages.Missed, l.Messages.MissedWindow = 11, 11 }, false, false, "11 of 10000 sends missed"},
		{"behind while publishing", func(l *reports.Load) { l.Messages.ReceivedRate = 1800 }, false, false, "delivery fell behind: 1800/s of 2000/s"},
		{"connections not ready", func(l *reports.Load) { l.Connections.Ready = 3 }, false, false, "only 3 of 4 connections ready"},
		{"slo broken", func(l *reports.Load) {
			l.SLO = []reports.LoadObjective{{Objective: "e2e.p99<1ms", Samples: 5, Measured: 2000, Limit: 1000}}
		}, false, false, "SLO e2e.p99<1ms: 2.00ms, BROKEN"},
		{"saturated only", saturate, false, true, "generator saturated: generator CPU 1.95 of 2 cores"},
		{"saturated, with what saturation explains", func(l *reports.Load) {
			saturate(l)
			l.Messages.Missed, l.Messages.MissedLate = 500, 500
			l.Errors = map[string]uint64{"timeout": 1}
		}, false, true, "500 of 10000 sends missed"},
		{"saturated and a violation: the broker's", func(l *reports.Load) {
			saturate(l)
			l.Violations = []string{"QoS 1: 3 duplicated"}
		}, false, false, "delivery violations"},
		{"saturated and refused: the broker's", func(l *reports.Load) {
			saturate(l)
			l.Errors = map[string]uint64{"refused": 1}
		}, false, false, "1 refused errors"},
		{"protocol errors", func(l *reports.Load) { l.Errors = map[string]uint64{"protocol": 3} }, false, false, "3 protocol errors"},
		{"downgraded", func(l *reports.Load) {
			l.Verify = []reports.LoadVerification{{QoS: 1, Downgraded: 4}}
			l.Violations = []string{"4 messages delivered below QoS 1"}
		}, false, false, "delivered below"},
		{"interrupted", func(l *reports.Load) { l.Interrupted = true }, false, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := cleanLoad()
			tc.change(l)
			v := JudgeStep(l)
			if v.Clean != tc.clean || v.GeneratorOnly != tc.genOnly || !strings.Contains(strings.Join(v.Why, "; "), tc.why) {
				t.Errorf("clean %v, generator only %v, why %q; want %v, %v, %q", v.Clean, v.GeneratorOnly, v.Why, tc.clean, tc.genOnly, tc.why)
			}
			if v.Clean != (len(v.Why) == 0 && !l.Interrupted) {
				t.Errorf("clean %v with reasons %q", v.Clean, v.Why)
			}
			if broken := l.Errors["protocol"]+l.Errors["refused"] > 0 || len(l.Verify) > 0 && l.Verify[0].Downgraded > 0; v.Broken != broken {
				t.Errorf("broken %v; want %v (no lower rate cures protocol errors or refusals)", v.Broken, broken)
			}
			if fmt.Sprint(v.Rate) != "1000" {
				t.Errorf("rate %v", v.Rate)
			}
		})
	}
}
