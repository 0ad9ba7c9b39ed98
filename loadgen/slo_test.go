package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

func TestParseSLO(t *testing.T) {
	cases := []struct {
		in   string
		want string // the objectives as String prints them; "" for an error
		err  string // part of the error
	}{
		{"e2e.p99<50ms", "e2e.p99<50ms", ""},
		{"e2e.p99<50ms,publish_ack.p99.9<200ms", "e2e.p99<50ms,publish_ack.p99.9<200ms", ""},
		{" e2e.p50 <= 1.5s , send_lag.max<500us ", "e2e.p50<=1.5s,send_lag.max<500µs", ""},
		{"connect.mean<2s,subscribe.p90<1s", "connect.mean<2s,subscribe.p90<1s", ""},
		{"e2e.p98<50ms", "", `--slo "e2e.p98<50ms": unknown quantile "p98"`},
		{"e2e.p99<50ms,latency.p99<1s", "", `--slo "latency.p99<1s": unknown metric "latency"`},
		{"e2e.p99>50ms", "", `--slo "e2e.p99>50ms": no < or <=`},
		{"e2e<50ms", "", `names no quantile`},
		{"e2e.p99<50", "", `limit "50" is not a duration`},
		{"e2e.p99<0s", "", `limit 0s must be above 0`},
		{"e2e.p99<5ns", "", `below the histograms' resolution`},
		{",", "", `no objective`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSLO(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("ParseSLO(%q) = %v, %v; want one line with %q", tc.in, s, err, tc.err)
				}
				return
			}
			if err != nil || s.String() != tc.want {
				t.Fatalf("ParseSLO(%q) = %q, %v; want %q", tc.in, s, err, tc.want)
			}
			again, err := ParseSLO(s.String())
			if err != nil || again.String() != s.String() {
				t.Errorf("round trip: %q, %v", again, err)
			}
		})
	}
}

func TestSLOCheck(t *testing.T) {
	l := &reports.Load{Latency: []reports.LoadLatency{
		{Metric: "e2e", Count: 100, P50: 800, P99: 50_000, P999: 70_000, Max: 90_000, Mean: 1200.4},
		{Metric: "publish_ack", Count: 0},
	}}
	cases := []struct {
		slo      string
		measured int64
		met      bool
	}{
		{"e2e.p99<50ms", 50_000, false}, // < is strict
		{"e2e.p99<=50ms", 50_000, true},
		{"e2e.p99<51ms", 50_000, true},
		{"e2e.p99.9<60ms", 70_000, false},
		{"e2e.max<1s", 90_000, true},
		{"e2e.mean<1200us", 1200, false},
		{"e2e.p50<1ms", 800, true},
		{"publish_ack.p99<1s", 0, false}, // no samples: nothing shows it was met
	}
	for _, tc := range cases {
		s, err := ParseSLO(tc.slo)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Check(l)
		if len(got) != 1 || got[0].Measured != tc.measured || got[0].Met != tc.met || got[0].Objective != s.String() {
			t.Errorf("%s: %+v; want measured %d, met %v", tc.slo, got, tc.measured, tc.met)
		}
	}
	l.SLO = SLO{{Metric: MetricEndToEnd, Quantile: "p99", Limit: 10 * time.Millisecond}}.Check(l)
	if l.OK() || len(l.BrokenObjectives()) != 1 {
		t.Errorf("a broken objective leaves the run OK: %+v", l.SLO)
	}
}
