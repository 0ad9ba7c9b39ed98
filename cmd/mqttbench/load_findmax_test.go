package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// checkSteps asserts that knee.json lists steps whose results directories
// hold their summaries, at the rates they were offered.
func checkSteps(t *testing.T, dir string) *reports.Knee {
	t.Helper()
	k, err := reports.ReadKnee(filepath.Join(dir, "knee.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range k.Steps {
		sum, err := reports.ReadLoad(filepath.Join(dir, s.Dir, "summary.json"))
		if err != nil {
			t.Fatalf("step %d: %v", s.N, err)
		}
		if sum.Scenario.Rate != s.Offered || sum.Generator == nil && !s.Interrupted {
			t.Errorf("step %d: summary at %g msg/s, generator %+v; the step says %g", s.N, sum.Scenario.Rate, sum.Generator, s.Offered)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "knee.html")); err != nil {
		t.Error(err)
	}
	return k
}

// shared relaxes the generator's limits on itself: tests share two cores
// with the race detector and each other, which saturates a generator
// by the default limits even at a few hundred messages a second.
const shared = "cpu=1,sched=1s,gc=1s,lag=1s"

// Against the in-process broker the rate doubles from 500 while steps are
// clean: the answer is a clean step's rate.
func TestLoadFindMax(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), "--find-max", "--rate", "500", "--duration", "1s", "--find-max-steps", "3",
		"--publishers", "2", "--subscribers", "2", "--qos", "1", "--slo", "e2e.p50<10s", "--saturation", shared, "--quiet", "--out", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	k := checkSteps(t, dir)
	if len(k.Steps) < 2 || k.Answer.Rate <= 0 || k.Steps[0].Offered != 500 || k.Steps[1].Offered != 1000 {
		t.Fatalf("steps %+v, answer %+v", k.Steps, k.Answer)
	}
	clean := false
	for _, s := range k.Steps {
		if s.Offered == k.Answer.Rate {
			clean = s.Clean && !s.Saturated && s.N == k.Answer.Step
		}
		if s.E2E.P99 <= 0 || s.Ack.P99 <= 0 || s.Achieved <= 0 {
			t.Errorf("step %d: %+v", s.N, s)
		}
	}
	if !clean {
		t.Errorf("the answer %g is not a clean step's rate: %+v", k.Answer.Rate, k.Steps)
	}
	if k.Scenario.Publishers != 2 || k.Scenario.QoS != 1 || len(k.SLO) != 1 {
		t.Errorf("scenario %+v, slo %v", k.Scenario, k.SLO)
	}
	for _, want := range []string{"Offered/s", "knee: ", "msg/s", "knee.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "step 1: 500 msg/s offered, ") || !strings.Contains(stderr, "step 2: 1000 msg/s offered for 1s") {
		t.Errorf("no progress per step on stderr:\n%s", stderr)
	}
}

// A broker that breaks QoS 1 at the start rate: exit 1, no answer, the
// step kept with why it was unclean.
func TestLoadFindMaxFirstStepUnclean(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Faults: broker.Faults{DowngradeToQoS0: true}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), "--find-max", "--broker", "tcp://"+srv.Addrs()[0].String(), "--qos", "1",
		"--find-max-start", "200", "--duration", "300ms", "--max-lag", "0", "--quiet", "--out", dir)
	if code != exitFailures {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	k := checkSteps(t, dir)
	if len(k.Steps) != 1 || k.Steps[0].Clean || k.Answer.Rate != 0 || k.Answer.Stop != "none-clean" ||
		!strings.Contains(strings.Join(k.Answer.Why, ";"), "delivery violations") {
		t.Fatalf("steps %+v, answer %+v", k.Steps, k.Answer)
	}
	if !strings.Contains(stdout, "knee: none: the broker did not sustain 200 msg/s cleanly, the lowest rate tried") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// cancelOn cancels when a line it is written holds s.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	s      string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.s) {
		w.cancel()
	}
	return len(p), nil
}

// SIGINT during the first step: exit 130, knee.json with what was
// collected.
func TestLoadFindMaxInterrupted(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errw := &cancelOn{s: "step 1: 500 msg/s offered for", cancel: cancel}
	var out bytes.Buffer
	code := run(ctx, []string{"load", "--find-max", "--rate", "500", "--duration", "1s", "--quiet", "--out", dir}, &out, errw)
	if code != exitInterrupted {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errw.buf.String())
	}
	k := checkSteps(t, dir)
	if !k.Interrupted || k.Answer.Stop != "interrupted" || len(k.Steps) != 1 || !k.Steps[0].Interrupted || k.Steps[0].Clean {
		t.Fatalf("knee %+v", k)
	}
}

// --slo on a single run: a broken objective fails the run (exit 1) and
// shows in the summary; one met leaves it clean.
func TestLoadSLO(t *testing.T) {
	for _, tc := range []struct {
		slo  string
		code int
		want string
	}{
		{"e2e.p99<1us", exitFailures, "slo: e2e.p99<1µs: "},
		{"e2e.max<=1h,send_lag.p50<1h", exitOK, "slo: send_lag.p50<1h0m0s: "},
	} {
		t.Run(tc.slo, func(t *testing.T) {
			out := t.TempDir()
			code, stdout, stderr := loadCLI(context.Background(), short(out, "--slo", tc.slo)...)
			if code != tc.code || !strings.Contains(stdout, tc.want) {
				t.Fatalf("exit %d, want %d and %q\n%s\n%s", code, tc.code, tc.want, stdout, stderr)
			}
			sum, err := reports.ReadLoad(filepath.Join(out, "summary.json"))
			if err != nil {
				t.Fatal(err)
			}
			broken := len(sum.BrokenObjectives()) > 0
			if len(sum.SLO) == 0 || broken != (tc.code == exitFailures) || sum.OK() == broken {
				t.Errorf("slo %+v", sum.SLO)
			}
			if !strings.Contains(stdout, "generator: ") && !strings.Contains(stdout, "GENERATOR SATURATED: ") {
				t.Errorf("no generator line:\n%s", stdout)
			}
		})
	}
}

func TestLoadFindMaxUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--slo", "e2e.p99<50ms,e2e.p98<1s"}, `--slo "e2e.p98<1s": unknown quantile "p98"`},
		{[]string{"--slo", "e2e.p99=50ms"}, `--slo "e2e.p99=50ms": no < or <=`},
		{[]string{"--find-max", "--find-max-factor", "1"}, "--find-max-factor is 1"},
		{[]string{"--find-max", "--find-max-precision", "0"}, "--find-max-precision is 0"},
		{[]string{"--find-max", "--find-max-steps", "0"}, "--find-max-steps is 0"},
		{[]string{"--find-max", "--find-max-start", "-5"}, "--find-max-start is -5"},
		{[]string{"--find-max-steps", "3"}, "--find-max-steps needs --find-max"},
		{[]string{"--saturation", "lag=soon"}, `--saturation "lag=soon"`},
		{[]string{"--find-max", "--cpuprofile", "x.prof"}, "--cpuprofile does not combine with --find-max"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := loadCLI(context.Background(), append(tc.args, "--out", t.TempDir())...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.HasPrefix(first, "mqttbench load: ") || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q on the first line", code, stderr, stdout, tc.want)
			}
		})
	}
}
