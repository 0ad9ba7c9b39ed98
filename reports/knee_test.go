package reports

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKnee() *Knee {
	return &Knee{
		Kind: "knee", Target: "tcp://bob:secret@127.0.0.1:1883", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Elapsed: time.Minute,
		SLO: []string{"e2e.p99<50ms"}, Search: KneeSearch{Start: 1000, Factor: 2, Precision: 0.1, MaxSteps: 12},
		Steps: []KneeStep{
			{N: 1, Dir: "step-01-rate-1000", Offered: 1000, Achieved: 1000, Delivered: 1000, E2E: KneeLat{500, 900, 1200}, Clean: true},
			{N: 2, Dir: "step-02-rate-2000", Offered: 2000, Achieved: 1990, Delivered: 1700, E2E: KneeLat{800, 80_000, 120_000}, Lost: 12,
				Why: []string{"12 lost", "SLO e2e.p99<50ms: 80.0ms, BROKEN"}},
			{N: 3, Dir: "step-03-rate-1500", Offered: 1500, Achieved: 1500, Delivered: 1500, E2E: KneeLat{600, 30_000, 40_000}, Saturated: true,
				Why: []string{"generator saturated: generator CPU 1.95 of 2 cores"}},
		},
		Answer: KneeAnswer{Rate: 1000, Step: 1, AtLeast: true, SaturatedAt: 1500, Stop: "saturated", Text: "at least 1000 msg/s: the generator saturated at 1500 msg/s"},
	}
}

func TestKneeTable(t *testing.T) {
	var b bytes.Buffer
	WriteKneeTable(&b, testKnee())
	out := b.String()
	for _, want := range []string{"Offered/s", "e2e p99.9", "80.0ms", "generator saturated", "unclean", "clean", "12 lost; SLO e2e.p99<50ms",
		"knee: at least 1000 msg/s: the generator saturated at 1500 msg/s\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestKneeJSONAndHTML(t *testing.T) {
	k := testKnee()
	path := filepath.Join(t.TempDir(), "knee.json")
	if err := k.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadKnee(path)
	if err != nil || len(back.Steps) != 3 || back.Answer.Rate != 1000 || !back.Answer.AtLeast || back.Steps[1].E2E.P999 != 120_000 {
		t.Fatalf("read back %+v, %v", back, err)
	}
	if _, err := ReadLoad(path); err == nil || !strings.Contains(err.Error(), `not a load result (kind "knee")`) {
		t.Errorf("knee.json read as a load summary: %v", err)
	}

	var b bytes.Buffer
	if err := WriteKneeHTML(&b, k); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`id="plot-knee"`, "<circle", `href="step-02-rate-2000/summary.json"`, "at least 1000 msg/s",
		"generator saturated", "e2e.p99&lt;50ms", "tcp://127.0.0.1:1883"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html, "secret") {
		t.Error("the broker's password is in the report")
	}
	// One mark per step with a latency: 2 clean+unclean, 1 saturated.
	if n := strings.Count(html, `<circle class="mark"`); n != 3 {
		t.Errorf("%d marks; want 3", n)
	}
	if strings.Contains(html, "src=") || strings.Contains(html, "https://") {
		t.Error("the report fetches something")
	}
}

func TestGeneratorSummary(t *testing.T) {
	var none *LoadGenerator
	if none.Summary() != "not measured" {
		t.Error(none.Summary())
	}
	g := &LoadGenerator{Saturated: true, Reasons: []string{"generator CPU 1.95 of 2 cores", "scheduler latency p99 12ms"}}
	if s := g.Summary(); s != "SATURATED: generator CPU 1.95 of 2 cores; scheduler latency p99 12ms" {
		t.Error(s)
	}
	g = &LoadGenerator{CPU: 0.4, Cores: 2, SchedP99: 120, SendLagP90: 900, WithBroker: true}
	if s := g.Summary(); !strings.HasPrefix(s, "ok: CPU 0.40 of 2 cores (with the in-process broker), scheduler latency p99 120µs") {
		t.Error(s)
	}
}
