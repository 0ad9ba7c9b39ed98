// Package reports turns mqttbench results into what people and CI read:
// JSON and JUnit files, terminal tables and (later) self-contained HTML.
// It holds the result models too, so saved results can be re-rendered
// without the code that produced them.
package reports

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/wire"
)

// Spec states.
const (
	Passed    = "passed"
	Failed    = "failed"
	Skipped   = "skipped"
	Deviation = "deviation" // failed as the profile's known deviation says
	// Interrupted: the run was interrupted (SIGINT) while the spec ran, so
	// it reached no verdict. Counted among the skipped, never the failed.
	Interrupted = "interrupted"
)

// Conformance is the result of one conformance run.
type Conformance struct {
	Kind        string         `json:"kind"` // "conformance"
	Broker      string         `json:"broker"`
	Protocol    string         `json:"protocol"`
	Profile     map[string]any `json:"profile,omitempty"`
	Seed        uint64         `json:"seed"`
	Started     time.Time      `json:"started"`
	Duration    time.Duration  `json:"duration_ns"`
	Interrupted bool           `json:"interrupted,omitempty"`
	// SuiteErrors are failures outside any spec (setup, timeouts).
	SuiteErrors []string     `json:"suite_errors,omitempty"`
	Specs       []SpecResult `json:"specs"`
	Statements  []Statement  `json:"statements"`
}

// SpecResult is one spec's outcome.
type SpecResult struct {
	Name       string        `json:"name"`
	Section    string        `json:"section"`
	Statements []string      `json:"statements"`
	Labels     []string      `json:"labels,omitempty"`
	State      string        `json:"state"`
	Duration   time.Duration `json:"duration_ns"`
	// Message is the failure (statement, expected versus actual), the
	// skip reason or the deviation.
	Message  string       `json:"message,omitempty"`
	Location string       `json:"location,omitempty"`
	Trace    []wire.Entry `json:"trace,omitempty"`
}

// Statement is the verdict on one normative statement.
type Statement struct {
	ID      string   `json:"id"`
	Verdict string   `json:"verdict"` // passed, failed, deviation, interrupted, skipped, not-testable, not-covered
	Reason  string   `json:"reason,omitempty"`
	Specs   []string `json:"specs,omitempty"`
}

// Counts tallies specs by state; interrupted specs count as skipped.
func (c *Conformance) Counts() (passed, failed, skipped, deviations int) {
	for _, s := range c.Specs {
		switch s.State {
		case Passed:
			passed++
		case Failed:
			failed++
		case Deviation:
			deviations++
		default:
			skipped++
		}
	}
	return
}

// OK reports a run with no failure and no suite error.
func (c *Conformance) OK() bool {
	_, failed, _, _ := c.Counts()
	return failed == 0 && len(c.SuiteErrors) == 0 && !c.Interrupted
}

// SummaryLine is the closing line: "N passed, N failed, N skipped", with
// deviations and interrupted specs counted among the skipped and named
// after, as is an interrupted run.
func (c *Conformance) SummaryLine() string {
	p, f, s, d := c.Counts()
	line := fmt.Sprintf("%d passed, %d failed, %d skipped", p, f, s+d)
	var notes []string
	if d > 0 {
		notes = append(notes, fmt.Sprintf("%d known deviations", d))
	}
	if c.Interrupted {
		switch n := len(c.InterruptedSpecs()); n {
		case 0:
			notes = append(notes, "interrupted")
		case 1:
			notes = append(notes, "interrupted: 1 spec stopped before its verdict")
		default:
			notes = append(notes, fmt.Sprintf("interrupted: %d specs stopped before their verdicts", n))
		}
	}
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	return line
}

// InterruptedSpecs are the specs an interruption stopped mid-run.
func (c *Conformance) InterruptedSpecs() []SpecResult {
	var out []SpecResult
	for _, s := range c.Specs {
		if s.State == Interrupted {
			out = append(out, s)
		}
	}
	return out
}

// Verdicts computes each statement's verdict from the specs that cite it,
// then adds the statements no spec covers: not-testable with the reason
// from notTestable, else not-covered. all lists every statement ID.
func (c *Conformance) Verdicts(all []string, notTestable map[string]string) {
	bySt := map[string][]SpecResult{}
	for _, s := range c.Specs {
		for _, id := range s.Statements {
			bySt[id] = append(bySt[id], s)
		}
	}
	// An interrupted spec reached no verdict: it never fails a statement,
	// but a pass by another spec is not the whole story either.
	rank := map[string]int{Failed: 5, Deviation: 4, Interrupted: 3, Passed: 2, Skipped: 1}
	seen := map[string]bool{}
	var out []Statement
	add := func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		st := Statement{ID: id}
		specs := bySt[id]
		switch {
		case len(specs) > 0:
			for _, s := range specs {
				st.Specs = append(st.Specs, s.Name)
				// The worst outcome decides: one failing spec fails it.
				if rank[s.State] > rank[st.Verdict] {
					st.Verdict = s.State
				}
			}
		case notTestable[id] != "":
			st.Verdict, st.Reason = "not-testable", notTestable[id]
		default:
			st.Verdict = "not-covered"
		}
		out = append(out, st)
	}
	for _, id := range all {
		add(id)
	}
	for id := range bySt {
		add(id)
	}
	sort.Slice(out, func(i, j int) bool { return statementLess(out[i].ID, out[j].ID) })
	c.Statements = out
}

// statementLess orders MQTT-3.1.2-10 after MQTT-3.1.2-9.
func statementLess(a, b string) bool {
	split := func(s string) []int {
		var n []int
		for _, f := range strings.FieldsFunc(strings.TrimPrefix(s, "MQTT-"), func(r rune) bool { return r == '.' || r == '-' }) {
			var x int
			fmt.Sscan(f, &x) //nolint:errcheck
			n = append(n, x)
		}
		return n
	}
	x, y := split(a), split(b)
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return len(x) < len(y)
}

// WriteJSON writes the run as indented JSON.
func (c *Conformance) WriteJSON(path string) error { return writeJSON(path, c) }

// ReadConformance reads a run written by WriteJSON.
func ReadConformance(path string) (*Conformance, error) {
	var c Conformance
	if err := readResult(path, "conformance", &c); err != nil {
		return nil, err
	}
	return &c, nil
}
