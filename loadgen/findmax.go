package loadgen

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mqttbench/mqttbench/reports"
)

// FindMax searches for the highest offered rate a broker sustains cleanly
// (the knee): from Start it multiplies the rate by Factor while runs are
// clean (or divides it while they are not, when Start was already too
// much), then bisects between the highest clean and the lowest unclean
// rate until they are within Precision of each other or MaxSteps runs were
// made. It assumes that what is clean at a rate is clean below it.
type FindMax struct {
	Start     float64 // messages/s of the first step
	Factor    float64 // > 1; 0 means 2
	Precision float64 // relative gap at which bisection stops, in (0, 1); 0 means 0.1
	MaxSteps  int     // 0 means 12
}

// Defaults for FindMax's zero fields.
const (
	DefaultFindMaxFactor    = 2
	DefaultFindMaxPrecision = 0.10
	DefaultFindMaxSteps     = 12
)

func (f FindMax) withDefaults() FindMax {
	if f.Factor == 0 {
		f.Factor = DefaultFindMaxFactor
	}
	if f.Precision == 0 {
		f.Precision = DefaultFindMaxPrecision
	}
	if f.MaxSteps == 0 {
		f.MaxSteps = DefaultFindMaxSteps
	}
	return f
}

// Validate names the setting at fault; zero fields are errors here
// (Search fills them in first).
func (f FindMax) Validate() error {
	switch {
	case !(f.Start > 0) || math.IsInf(f.Start, 0):
		return fmt.Errorf("--find-max-start is %g; want a rate above 0", f.Start)
	case !(f.Factor > 1) || math.IsInf(f.Factor, 0):
		return fmt.Errorf("--find-max-factor is %g; want above 1", f.Factor)
	case !(f.Precision > 0 && f.Precision < 1):
		return fmt.Errorf("--find-max-precision is %g; want a fraction between 0 and 1, e.g. 0.1", f.Precision)
	case f.MaxSteps < 1:
		return fmt.Errorf("--find-max-steps is %d; want 1 or more", f.MaxSteps)
	}
	return nil
}

// StepVerdict is how one step of the search went.
type StepVerdict struct {
	Rate  float64
	Clean bool
	// GeneratorOnly: unclean only because the generator saturated (and
	// what followed from it): the broker was not shown to fail.
	GeneratorOnly bool
	// Broken: unclean for what no lower rate cures (protocol errors,
	// refused connections, messages downgraded, reordered or, at QoS 2,
	// duplicated), so the search does not step down. Loss is not: an
	// overloaded broker may drop what it cannot queue.
	Broken      bool
	Interrupted bool
	Why         []string
}

// StepFunc runs step n (from 1) at rate.
type StepFunc func(ctx context.Context, n int, rate float64) (StepVerdict, error)

// Search stops for one of these reasons.
const (
	StopPrecision   = "precision"   // clean and unclean rates within Precision
	StopSteps       = "steps"       // MaxSteps runs made
	StopSaturated   = "saturated"   // the generator saturated before the broker failed
	StopFirstFailed = "none-clean"  // no rate was clean: the broker broke the protocol, or even minRate was too much
	StopInterrupted = "interrupted" // ctx done
)

// Knee is the search's answer and the steps that led to it.
type Knee struct {
	Steps []StepVerdict
	// Rate is the highest clean rate (0: none). AtLeast says the broker
	// was never shown to fail above it: the generator saturated first
	// (SaturatedAt), or the steps ran out before a step was unclean.
	Rate         float64
	AtLeast      bool
	SaturatedAt  float64
	FirstUnclean float64 // lowest unclean rate above Rate (0: none)
	Stop         string
}

// minRate is the lowest rate the search steps down to, messages/s.
const minRate = 1

// Search runs the steps. An error from step ends it and is returned with
// the steps so far.
func (f FindMax) Search(ctx context.Context, step StepFunc) (Knee, error) {
	f = f.withDefaults()
	if err := f.Validate(); err != nil {
		return Knee{}, err
	}
	var k Knee
	rate := f.Start
	for n := 1; ; n++ {
		if ctx.Err() != nil {
			k.Stop = StopInterrupted
			break
		}
		v, err := step(ctx, n, rate)
		v.Rate = rate
		if err != nil {
			return k, err
		}
		k.Steps = append(k.Steps, v)
		switch {
		case v.Interrupted || ctx.Err() != nil:
			k.Stop = StopInterrupted
		case v.Clean:
			k.Rate = rate
		case v.GeneratorOnly:
			// Not the broker's failure, and no rate above this one can be
			// measured: the broker sustains at least the last clean rate.
			k.SaturatedAt, k.AtLeast, k.Stop = rate, true, StopSaturated
		default:
			k.FirstUnclean = rate // the lowest unclean so far: every later step is lower
			if k.Rate == 0 && (v.Broken || rate/f.Factor < minRate) {
				k.Stop = StopFirstFailed
			}
		}
		if k.Stop != "" {
			break
		}
		if k.FirstUnclean > 0 && (k.FirstUnclean-k.Rate)/k.Rate <= f.Precision {
			k.Stop = StopPrecision
			break
		}
		if n >= f.MaxSteps {
			k.Stop = StopSteps
			k.AtLeast = k.FirstUnclean == 0
			break
		}
		switch {
		case k.FirstUnclean == 0:
			rate *= f.Factor
		case k.Rate == 0:
			rate /= f.Factor // the start was too much: step down to a clean rate
		default:
			rate = midRate(k.Rate, k.FirstUnclean)
		}
	}
	return k, nil
}

// midRate is halfway between lo and hi, rounded to a whole message per
// second once that is fine enough (results directories are named by it).
func midRate(lo, hi float64) float64 {
	m := (lo + hi) / 2
	if r := math.Round(m); hi-lo >= 4 && r > lo && r < hi {
		return r
	}
	return m
}

// Tolerances of JudgeStep.
const (
	// stepMissedShare: sends missed beyond this share of those offered
	// make a step unclean (a reconnect's few, say, do not).
	stepMissedShare = 0.001
	// stepBehindShare: a broker that delivered less than this share of
	// what was due while publishing fell behind, even if the drain
	// caught up afterwards: it only kept up by queueing.
	stepBehindShare = 0.95
)

// JudgeStep decides whether a run was clean: no delivery violations, no
// errors, (almost) no missed sends, deliveries keeping up while
// publishing, every connection ready, every latency objective met and the
// generator not saturated. When the generator was saturated, only what a
// slow generator cannot cause (delivery violations, refused connections,
// protocol errors) counts against the broker; the rest (late and missed
// sends, latencies, falling behind, timeouts) may be the generator's own.
func JudgeStep(l *reports.Load) StepVerdict {
	v := StepVerdict{Rate: l.Scenario.Rate, Interrupted: l.Interrupted}
	var broker, either []string
	if n := len(l.Violations); n > 0 {
		broker = append(broker, fmt.Sprintf("%d delivery violations (%s)", n, l.Violations[0]))
	}
	var lost uint64
	for _, r := range l.Verify {
		lost += r.Lost
	}
	if lost > 0 && len(l.Violations) == 0 {
		either = append(either, fmt.Sprintf("%d lost", lost)) // QoS 0: allowed, yet not clean
	}
	var classes []string
	for c := range l.Errors {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		why := fmt.Sprintf("%d %s errors", l.Errors[c], c)
		if s := l.ErrorSample[c]; s != "" {
			why += " (" + s + ")"
		}
		if c == ClassRefused.String() || c == ClassProtocol.String() {
			broker = append(broker, why)
		} else {
			either = append(either, why)
		}
	}
	m := l.Messages
	if float64(m.Missed) > stepMissedShare*float64(m.Offered) {
		either = append(either, fmt.Sprintf("%d of %d sends missed (late %d, disconnected %d, window full %d)",
			m.Missed, m.Offered, m.MissedLate, m.MissedDisconnected, m.MissedWindow))
	}
	if m.Sent > 0 && m.Expected > 0 && m.PublishSec > 0 {
		due := m.SentRate * float64(m.Expected) / float64(m.Sent)
		if m.ReceivedRate < stepBehindShare*due {
			either = append(either, fmt.Sprintf("delivery fell behind: %.0f/s of %.0f/s due while publishing", m.ReceivedRate, due))
		}
	}
	if c := l.Connections; c.Ready < int64(c.Target) {
		either = append(either, fmt.Sprintf("only %d of %d connections ready", c.Ready, c.Target))
	}
	for _, o := range l.BrokenObjectives() {
		either = append(either, "SLO "+o.Verdict())
	}
	saturated := l.Generator != nil && l.Generator.Saturated
	if saturated {
		v.Why = append(v.Why, "generator saturated: "+strings.Join(l.Generator.Reasons, "; "))
	}
	v.Why = append(append(v.Why, broker...), either...)
	v.Clean = len(v.Why) == 0 && !v.Interrupted
	v.GeneratorOnly = saturated && len(broker) == 0
	v.Broken = l.Errors[ClassRefused.String()] > 0 || l.Errors[ClassProtocol.String()] > 0
	for _, r := range l.Verify {
		v.Broken = v.Broken || r.Downgraded > 0 || r.Reordered > 0 || r.QoS == 2 && r.Duplicates > 0
	}
	return v
}
