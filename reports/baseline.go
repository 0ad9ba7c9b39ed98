package reports

import (
	"fmt"
	"slices"
	"strings"
)

// A broker that is not yet fully conformant cannot gate its pull requests
// on "no failure"; it gates them on "no statement worse than before"
// (mqttbench conform --baseline FILE). Statements are compared by ID and
// protocol version, so a run of 3.1.1 and 5.0 is compared per version.
//
// The rules, by the statement's verdict in the baseline (was) and now:
//
//   - worse (exit 1): now failed, and was anything but failed, or absent
//     from the baseline (a new failure). A statement of a version the
//     baseline did not run that fails now is worse too: nothing says the
//     failure is known.
//   - better: now passed or warning, and was failed, a known deviation,
//     inconclusive, interrupted, skipped or not-testable; or now passed
//     and was warning.
//   - known failure: failed in both. It does not gate.
//   - changed: every other difference (passed to warning, passed to
//     inconclusive or skipped, failed to inconclusive...). Listed, does
//     not gate: a warning or an inconclusive spec never fails a run
//     without a baseline either, and inconclusive specs come and go with
//     a slow broker.
//
// A statement no spec ran (not-covered) in this run is not compared: a
// run with --focus or --label-filter leaves most statements uncovered.
// One the baseline has no verdict for is compared only if it fails now.

// Baseline is how a conformance run compares with an earlier result of
// the same broker.
type Baseline struct {
	// File is the baseline as given on the command line.
	File string `json:"file"`
	// Protocol and Started are the baseline run's.
	Protocol string `json:"protocol,omitempty"`
	Started  string `json:"started,omitempty"`
	// Compared counts statements with a verdict in both runs (bar those
	// not testable in both).
	Compared int             `json:"compared"`
	Worse    []VerdictChange `json:"worse"`
	Better   []VerdictChange `json:"better"`
	Changed  []VerdictChange `json:"changed,omitempty"`
	Known    []StatementRef  `json:"known,omitempty"`
	// KnownFailures counts statements failed in both runs.
	KnownFailures int `json:"known_failures"`
	// Notes say what did not overlap: versions only one run has,
	// statements one run has and the other has not.
	Notes []string `json:"notes,omitempty"`
}

// VerdictChange is a statement whose verdict differs from the baseline's.
type VerdictChange struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol,omitempty"`
	// Was is the baseline's verdict, "" when the baseline has none.
	Was string `json:"was"`
	Now string `json:"now"`
}

// StatementRef names a statement of one version.
type StatementRef struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol,omitempty"`
}

// Label is "MQTT-3.1.0-2 (5.0)", or the ID alone without a version.
func (r StatementRef) Label() string {
	return Statement{ID: r.ID, Protocol: r.Protocol}.Label(r.Protocol != "")
}

// Label is "MQTT-3.1.0-2 (5.0): passed -> failed".
func (v VerdictChange) Label() string {
	was := v.Was
	if was == "" {
		was = "no verdict"
	}
	return StatementRef{v.ID, v.Protocol}.Label() + ": " + was + " -> " + v.Now
}

// OK reports that no statement got worse.
func (b *Baseline) OK() bool { return len(b.Worse) == 0 }

// Summary is the one line the terminal closes the comparison with.
func (b *Baseline) Summary() string {
	return fmt.Sprintf("baseline %s: %d worse, %d better, %d known failures, %d other changes (%d statements compared)",
		b.File, len(b.Worse), len(b.Better), b.KnownFailures, len(b.Changed), b.Compared)
}

// noVerdict are the verdicts that say nothing against the broker nor
// for it.
var noVerdict = []string{Inconclusive, Interrupted, Skipped, "not-testable", Deviation}

// CompareBaseline compares c's statement verdicts with base's, by the
// rules above. file is how the baseline is named in reports.
func (c *Conformance) CompareBaseline(base *Conformance, file string) *Baseline {
	b := &Baseline{File: file, Protocol: base.Protocol, Worse: []VerdictChange{}, Better: []VerdictChange{}}
	if !base.Started.IsZero() {
		b.Started = base.Started.UTC().Format("2006-01-02T15:04:05Z")
	}
	was := map[StatementRef]string{}
	baseVersions := map[string]bool{}
	for _, st := range base.Statements {
		r := base.ref(st)
		was[r] = st.Verdict
		baseVersions[r.Protocol] = true
	}
	nowVersions := map[string]bool{}
	notRun, baseFailedNotRun, noBaseline, seen := 0, 0, 0, map[StatementRef]bool{}
	for _, st := range c.Statements {
		r := c.ref(st)
		seen[r] = true
		nowVersions[r.Protocol] = true
		before, inBase := was[r]
		if !inBase || before == "not-covered" {
			before = ""
		}
		change := VerdictChange{ID: r.ID, Protocol: r.Protocol, Was: before, Now: st.Verdict}
		switch {
		case st.Verdict == "not-covered":
			if before != "" {
				notRun++
				if before == Failed {
					baseFailedNotRun++
				}
			}
		case st.Verdict == Failed && before == Failed:
			b.KnownFailures++
			b.Known = append(b.Known, r)
			b.Compared++
		case st.Verdict == Failed:
			b.Worse = append(b.Worse, change)
			if before != "" {
				b.Compared++
			}
		case before == "":
			if baseVersions[r.Protocol] {
				noBaseline++
			}
		case st.Verdict == before:
			if before != "not-testable" { // nothing was tested, in either run
				b.Compared++
			}
		case (st.Verdict == Passed || st.Verdict == Warning) && (before == Failed || slices.Contains(noVerdict, before)),
			st.Verdict == Passed && before == Warning:
			b.Better = append(b.Better, change)
			b.Compared++
		default:
			b.Changed = append(b.Changed, change)
			b.Compared++
		}
	}
	for _, v := range sortedKeys(baseVersions) {
		if !nowVersions[v] {
			b.Notes = append(b.Notes, fmt.Sprintf("the baseline has verdicts for MQTT %s, this run has none: not compared", v))
		}
	}
	for _, v := range sortedKeys(nowVersions) {
		if !baseVersions[v] {
			b.Notes = append(b.Notes, fmt.Sprintf("the baseline has no verdicts for MQTT %s: its failures count as new", v))
		}
	}
	gone := 0
	for r, v := range was {
		if !seen[r] && nowVersions[r.Protocol] && v != "not-covered" {
			gone++
		}
	}
	if gone > 0 {
		b.Notes = append(b.Notes, fmt.Sprintf("%d statements of the baseline are not in this run's suite: not compared", gone))
	}
	if notRun > 0 {
		note := fmt.Sprintf("%d statements the baseline judged were not run this time: not compared", notRun)
		if baseFailedNotRun > 0 {
			note += fmt.Sprintf(" (%d of them failed there)", baseFailedNotRun)
		}
		b.Notes = append(b.Notes, note)
	}
	if noBaseline > 0 {
		b.Notes = append(b.Notes, fmt.Sprintf("%d statements have a verdict now and none in the baseline: compared only had they failed", noBaseline))
	}
	return b
}

// ref names a statement with its version; results of one version from
// before statements carried it take the run's.
func (c *Conformance) ref(st Statement) StatementRef {
	p := st.Protocol
	if p == "" && !strings.Contains(c.Protocol, "+") {
		p = c.Protocol
	}
	return StatementRef{ID: st.ID, Protocol: p}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Gate reports whether the run passes: with a baseline, when no
// statement got worse (known failures allowed); without, when OK. Either
// way a suite error or an interruption fails it, since neither can be
// compared with anything.
func (c *Conformance) Gate() bool {
	if c.Baseline == nil {
		return c.OK()
	}
	return c.Baseline.OK() && len(c.SuiteErrors) == 0 && !c.Interrupted
}
