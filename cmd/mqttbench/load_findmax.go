package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
)

const findMaxHint = "mqttbench load --broker tcp://127.0.0.1:1883 --publishers 10 --subscribers 10 --qos 1 --duration 10s --find-max --slo 'e2e.p99<50ms'"

// kneeFlags are load's flags for latency objectives and the search for
// the highest clean rate.
type kneeFlags struct {
	slo        *string
	saturation *string
	findMax    *bool
	start      *float64
	factor     *float64
	precision  *float64
	steps      *int
}

func addKneeFlags(fs *flag.FlagSet) *kneeFlags {
	return &kneeFlags{
		slo:        fs.String("slo", "", "latency objectives, e.g. 'e2e.p99<50ms,publish_ack.p99.9<200ms' (metrics: "+strings.Join(metricList(), ", ")+"; p50, p90, p99, p99.9, max, mean; < or <=): a run that breaks one fails (exit 1)"),
		saturation: fs.String("saturation", "", "the generator's limits on itself, past which it calls a run generator-saturated, e.g. 'lag=50ms,sched=20ms' on a shared machine (cpu=0.9,sched=5ms,sched-share=0.5,gc=10ms,read=0.9,lag=10ms,write=0.5 by default; sched and gc count only when also sched-share of the measured p99)"),
		findMax:    fs.Bool("find-max", false, "find the highest rate the broker sustains cleanly: run the scenario at rising rates (×--find-max-factor, then bisecting), each step a full verified run in DIR/step-NN-rate-R; writes knee.json and knee.html"),
		start:      fs.Float64("find-max-start", 0, "--find-max: the first step's rate in msg/s (default the scenario's rate)"),
		factor:     fs.Float64("find-max-factor", loadgen.DefaultFindMaxFactor, "--find-max: rate multiplier while steps are clean"),
		precision:  fs.Float64("find-max-precision", loadgen.DefaultFindMaxPrecision, "--find-max: stop bisecting when the first unclean rate is within this fraction of the last clean one"),
		steps:      fs.Int("find-max-steps", loadgen.DefaultFindMaxSteps, "--find-max: most steps (runs) to make"),
	}
}

func metricList() []string {
	var out []string
	for _, m := range loadgen.Metrics() {
		out = append(out, m.String())
	}
	return out
}

// parseSaturation reads --saturation (zero: the defaults).
func (k *kneeFlags) parseSaturation() (loadgen.SaturationLimits, error) {
	if *k.saturation == "" {
		return loadgen.SaturationLimits{}, nil
	}
	return loadgen.ParseSaturationLimits(*k.saturation)
}

// parseSLO reads --slo (nil when not given).
func (k *kneeFlags) parseSLO() (loadgen.SLO, error) {
	if *k.slo == "" {
		return nil, nil
	}
	return loadgen.ParseSLO(*k.slo)
}

// search is the FindMax --find-max asks for, the scenario's rate by
// default; an error names the flag at fault, or a flag given without
// --find-max.
func (k *kneeFlags) search(fs *flag.FlagSet, sc *loadgen.Scenario) (loadgen.FindMax, error) {
	if !*k.findMax {
		var stray string
		fs.Visit(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "find-max-") && stray == "" {
				stray = f.Name
			}
		})
		if stray != "" {
			return loadgen.FindMax{}, fmt.Errorf("--%s needs --find-max", stray)
		}
		return loadgen.FindMax{}, nil
	}
	f := loadgen.FindMax{Start: *k.start, Factor: *k.factor, Precision: *k.precision, MaxSteps: *k.steps}
	if f.Start == 0 {
		f.Start = sc.TotalRate()
	}
	return f, f.Validate()
}

// findMaxRun is one `load --find-max`: the scenario, checked and probed,
// and how each step runs.
type findMaxRun struct {
	sc      loadgen.Scenario
	opts    loadgen.Options // Out and Progress are set per step
	search  loadgen.FindMax
	slo     loadgen.SLO
	workers workerRun // workers > 1: each step over worker processes
	dir     string
	quiet   bool
	target  string // for people: URLs redacted
}

// runFindMax steps the offered rate up until a run is not clean, then
// bisects, keeping every step's results in DIR/step-NN-rate-R. The answer
// goes to stdout with the step table, to DIR/knee.json and DIR/knee.html.
// Exit codes: 0 an answer, 1 not even the first step was clean, 2 a step
// could not start, 130 interrupted (what was collected is written).
func runFindMax(ctx context.Context, fm findMaxRun, stdout, stderr io.Writer) int {
	sc := fm.sc
	f := fm.search
	fmt.Fprintf(stderr, "mqttbench load --find-max: %d connections (%d publishers, %d subscribers) to %s, %sQoS %d, %s each step, from %s msg/s; results in %s\n",
		sc.TotalConnections(), sc.Publishers, sc.Subscribers, fm.target, protocolNote(&sc), sc.QoS, sc.Duration, reports.Rate(f.Start), fm.dir)
	if err := os.MkdirAll(fm.dir, 0o755); err != nil {
		return usageError(stderr, "load", "", "%v", err)
	}
	k := &reports.Knee{Kind: "knee", Target: fm.target, Started: time.Now(), SLO: sloTerms(fm.slo),
		Search: reports.KneeSearch{Start: f.Start, Factor: f.Factor, Precision: f.Precision, MaxSteps: f.MaxSteps}}
	sums := map[int]*reports.Load{}
	errStep := errors.New("step could not run")
	step := func(ctx context.Context, n int, rate float64) (loadgen.StepVerdict, error) {
		name := fmt.Sprintf("step-%02d-rate-%s", n, reports.Rate(rate))
		dir := filepath.Join(fm.dir, name)
		ssc := sc
		ssc.Rate, ssc.RatePerPublisher = rate, 0
		fmt.Fprintf(stderr, "mqttbench load: step %d: %s msg/s offered for %s\n", n, reports.Rate(rate), sc.Duration)
		sum, code := fm.runStep(ctx, ssc, dir, stderr)
		if sum == nil {
			if code == exitInterrupted {
				return loadgen.StepVerdict{Interrupted: true}, nil
			}
			return loadgen.StepVerdict{}, errStep
		}
		v := loadgen.JudgeStep(sum)
		st := reports.NewKneeStep(n, name, sum, v.Clean, v.Why)
		if len(k.Steps) == 0 {
			k.Scenario = sum.Scenario
		}
		k.Steps = append(k.Steps, st)
		sums[n] = sum
		fmt.Fprintf(stderr, "mqttbench load: step %d: %s msg/s offered, %s sent, %s delivered/s, e2e p99 %s: %s\n",
			n, reports.Rate(rate), reports.Rate(st.Achieved), reports.Rate(st.Delivered), micros(st.E2E.P99), stepWord(st))
		return v, nil
	}
	res, err := f.Search(ctx, step)
	k.Elapsed = time.Since(k.Started)
	if err != nil {
		// The step has said why on stderr; keep what came before.
		writeKnee(k, fm.dir) //nolint:errcheck // the step's error is the one to report
		return exitUsage
	}
	k.Interrupted = res.Stop == loadgen.StopInterrupted
	k.Answer = kneeAnswer(res, k.Steps)
	if err := writeKnee(k, fm.dir); err != nil {
		return usageError(stderr, "load", "", "writing %s: %v", filepath.Join(fm.dir, "knee.json"), err)
	}
	reports.WriteKneeTable(stdout, k)
	fmt.Fprintf(stdout, "results: %s (knee.json, knee.html; one directory per step)\n", fm.dir)
	switch {
	case k.Interrupted:
		return exitInterrupted
	case res.Rate == 0:
		return exitFailures
	}
	return exitOK
}

// runStep runs one step into dir and returns its summary, or nil and
// the exit code when it has none (having said why on stderr).
func (fm findMaxRun) runStep(ctx context.Context, sc loadgen.Scenario, dir string, stderr io.Writer) (*reports.Load, int) {
	if fm.workers.workers > 1 {
		wr := fm.workers
		wr.dir = dir
		code := runWorkers(ctx, sc, wr, io.Discard, stderr) // the step table replaces each run's
		if code == exitUsage {
			return nil, code
		}
		sum, err := reports.ReadLoad(filepath.Join(dir, loadgen.SummaryFile))
		if err != nil {
			if ctx.Err() != nil {
				return nil, exitInterrupted
			}
			usageError(stderr, "load", "", "step results: %v", err)
			return nil, exitUsage
		}
		return sum, code
	}
	opts := fm.opts
	opts.Out = dir
	if !fm.quiet {
		var errs, missed uint64
		n := sc.TotalConnections()
		opts.Progress = func(s reports.LoadSecond) {
			errs += s.Errors
			missed += s.Missed
			fmt.Fprintf(stderr, "[%5.0fs %-7s] conns %d/%d  sent %d/s  recv %d/s  p99 e2e %s  errors %d  missed %d\n",
				s.T, s.Phase, s.Connections, n, s.Sent, s.Received, micros(s.P99E2E), errs, missed)
		}
	}
	res, err := loadgen.Run(ctx, sc, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, exitInterrupted
		}
		usageError(stderr, "load", loadHint, "%v", err)
		return nil, exitUsage
	}
	return res.Summary, exitOK
}

func stepWord(s reports.KneeStep) string {
	switch {
	case s.Interrupted:
		return "interrupted"
	case s.Clean:
		return "clean"
	}
	return "unclean: " + strings.Join(s.Why, "; ")
}

func sloTerms(s loadgen.SLO) []string {
	var out []string
	for _, o := range s {
		out = append(out, o.String())
	}
	return out
}

// kneeAnswer words the search's answer.
func kneeAnswer(res loadgen.Knee, steps []reports.KneeStep) reports.KneeAnswer {
	a := reports.KneeAnswer{Rate: res.Rate, AtLeast: res.AtLeast, SaturatedAt: res.SaturatedAt, FirstUnclean: res.FirstUnclean, Stop: res.Stop}
	find := func(rate float64) *reports.KneeStep {
		for i := range steps {
			if steps[i].Offered == rate && !steps[i].Interrupted {
				return &steps[i]
			}
		}
		return nil
	}
	if s := find(res.Rate); s != nil && res.Rate > 0 {
		a.Step = s.N
	}
	why := func(rate float64) string {
		if s := find(rate); s != nil && len(s.Why) > 0 {
			a.Why = s.Why
			return ": " + strings.Join(s.Why, "; ")
		}
		return ""
	}
	r := reports.Rate
	switch {
	case res.Stop == loadgen.StopInterrupted && res.Rate > 0:
		a.Text = fmt.Sprintf("interrupted; the highest clean rate so far is %s msg/s", r(res.Rate))
	case res.Stop == loadgen.StopInterrupted:
		a.Text = "interrupted before any clean step"
	case res.Rate == 0 && res.SaturatedAt > 0:
		a.Text = fmt.Sprintf("none: the generator saturated at the start rate %s msg/s%s; start lower, or spread the load with --workers or over machines (--shard)", r(res.SaturatedAt), why(res.SaturatedAt))
	case res.Rate == 0:
		a.Text = fmt.Sprintf("none: the broker did not sustain %s msg/s cleanly, the lowest rate tried%s", r(res.FirstUnclean), why(res.FirstUnclean))
	case res.SaturatedAt > 0:
		a.Text = fmt.Sprintf("at least %s msg/s: the generator saturated at %s msg/s before the broker failed%s", r(res.Rate), r(res.SaturatedAt), why(res.SaturatedAt))
	case res.FirstUnclean == 0:
		a.Text = fmt.Sprintf("at least %s msg/s: every step was clean; raise --find-max-steps or --find-max-start", r(res.Rate))
	case res.Stop == loadgen.StopSteps:
		gap := 100 * (res.FirstUnclean - res.Rate) / res.Rate
		a.Text = fmt.Sprintf("%s msg/s (first unclean %s msg/s%s; the steps ran out %.0f%% apart)", r(res.Rate), r(res.FirstUnclean), why(res.FirstUnclean), gap)
	default:
		a.Text = fmt.Sprintf("%s msg/s (first unclean %s msg/s%s)", r(res.Rate), r(res.FirstUnclean), why(res.FirstUnclean))
	}
	return a
}

// writeKnee writes knee.json and knee.html.
func writeKnee(k *reports.Knee, dir string) error {
	if err := k.WriteJSON(filepath.Join(dir, "knee.json")); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "knee.html"))
	if err != nil {
		return err
	}
	if err := reports.WriteKneeHTML(f, k); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printGeneratorSLO prints the generator's watch on itself and the
// latency objectives, under a run's tables.
func printGeneratorSLO(stdout io.Writer, sum *reports.Load) {
	if g := sum.Generator; g != nil {
		if g.Saturated {
			fmt.Fprintf(stdout, "GENERATOR SATURATED: %s: the generator, not the broker, limited this run\n", strings.Join(g.Reasons, "; "))
		} else {
			fmt.Fprintf(stdout, "generator: %s\n", g.Summary())
		}
	}
	for _, o := range sum.SLO {
		fmt.Fprintf(stdout, "slo: %s\n", o.Verdict())
	}
}
