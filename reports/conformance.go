// Package reports turns mqttbench results into what people and CI read:
// JSON and JUnit files, terminal tables and (later) self-contained HTML.
// It holds the result models too, so saved results can be re-rendered
// without the code that produced them.
package reports

import (
	"fmt"
	"slices"
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
	// Inconclusive: the spec could not reach its own statements. An answer
	// it was owed did not come in time (slowness, not proof of a
	// violation), or a step it relied on broke another statement, which is
	// then failed in its place (SpecResult.Broke). Counted among the
	// skipped, never the failed.
	Inconclusive = "inconclusive"
	// Warning: the spec passed every MUST it checks, but the broker did
	// not do what the specification says it SHOULD. Counted among the
	// passed, never the failed.
	Warning = "warning"
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
	// Timeout is how long the suite waited for each answer it was owed.
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	// Concurrency is how many specs ran at once.
	Concurrency int `json:"concurrency,omitempty"`
	// SuiteErrors are failures outside any spec (setup, timeouts).
	SuiteErrors []string     `json:"suite_errors,omitempty"`
	Specs       []SpecResult `json:"specs"`
	Statements  []Statement  `json:"statements"`
	// Answers is how long the broker took over the answers it owed.
	Answers []AnswerTime `json:"answers,omitempty"`
	// Capabilities is what a 5.0 broker advertised in CONNACK.
	Capabilities map[string]any `json:"capabilities,omitempty"`
	// Notes are findings that blame no statement, such as a capability
	// the profile and the broker's CONNACK disagree on.
	Notes []string `json:"notes,omitempty"`
	// TLS is what the handshake negotiated (tls://, mqtts://, wss://).
	TLS *ConformanceTLS `json:"tls,omitempty"`
	// Baseline compares the run with an earlier result (--baseline).
	Baseline *Baseline `json:"baseline,omitempty"`
}

// ConformanceTLS is what a conformance run's TLS handshake negotiated.
// It names parameters only, never key material.
type ConformanceTLS struct {
	Version string `json:"version"`        // "TLS 1.3"
	Cipher  string `json:"cipher"`         // "TLS_AES_128_GCM_SHA256"
	ALPN    string `json:"alpn,omitempty"` // the protocol ALPN agreed on, if any
	// ClientCert says the suite offered a client certificate (--cert).
	// The client cannot see whether the broker asked for it.
	ClientCert bool `json:"client_cert"`
}

// String is "TLS 1.3, TLS_AES_128_GCM_SHA256[, ALPN mqtt][, client certificate]".
func (t *ConformanceTLS) String() string {
	s := t.Version + ", " + t.Cipher
	if t.ALPN != "" {
		s += ", ALPN " + t.ALPN
	}
	if t.ClientCert {
		s += ", client certificate"
	}
	return s
}

// SpecResult is one spec's outcome.
type SpecResult struct {
	Name    string `json:"name"`
	Section string `json:"section"`
	// Protocol is the MQTT version the spec spoke ("3.1.1", "5.0").
	Protocol   string        `json:"protocol,omitempty"`
	Statements []string      `json:"statements"`
	Labels     []string      `json:"labels,omitempty"`
	State      string        `json:"state"`
	Duration   time.Duration `json:"duration_ns"`
	// Message is the failure (statement, expected versus actual), the
	// skip reason or the deviation.
	Message  string       `json:"message,omitempty"`
	Location string       `json:"location,omitempty"`
	Trace    []wire.Entry `json:"trace,omitempty"`
	// Broke lists the statements a step of this (inconclusive) spec found
	// broken: statements the spec relies on but does not check, such as
	// PUBREC owed to a QoS 2 PUBLISH in a spec about retained messages.
	Broke []Breach `json:"broke,omitempty"`
}

// Breach is a statement a broker broke in a step of a spec about
// something else. It fails the statement, not the spec.
type Breach struct {
	Statements []string `json:"statements"`
	// Message says what was expected and what came.
	Message string `json:"message"`
	// Deviation is the profile's reason when the breach is a known
	// deviation: the statement is then a deviation, not a failure.
	Deviation string `json:"deviation,omitempty"`
}

// Statement is the verdict on one normative statement.
type Statement struct {
	ID string `json:"id"`
	// Protocol is the version whose statement it is: a run of several
	// versions has verdicts for each.
	Protocol string   `json:"protocol,omitempty"`
	Verdict  string   `json:"verdict"` // passed, failed, deviation, warning, inconclusive, interrupted, skipped, not-testable, not-covered
	Reason   string   `json:"reason,omitempty"`
	Specs    []string `json:"specs,omitempty"`
	// BrokenIn names the specs (citing other statements) in whose steps
	// this statement was found broken.
	BrokenIn []string `json:"broken_in,omitempty"`
}

// AnswerTime is how long a broker took over one kind of answer it owed
// the suite: CONNACK to CONNECT, SUBACK to SUBSCRIBE, PUBACK to PUBLISH...
type AnswerTime struct {
	Packet string        `json:"packet"`
	Count  int           `json:"count"`          // answers that came
	Max    time.Duration `json:"max_ns"`         // the slowest of them
	Slow   int           `json:"slow,omitempty"` // took over half the timeout
	// Missing answers did not come within the timeout.
	Missing int `json:"missing,omitempty"`
}

// Counts tallies specs by state; interrupted and inconclusive specs count
// as skipped, specs with warnings as passed.
func (c *Conformance) Counts() (passed, failed, skipped, deviations int) {
	for _, s := range c.Specs {
		switch s.State {
		case Passed, Warning:
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

// OK reports a run with no failure, no statement broken in a step and
// no suite error. Inconclusive specs alone leave a run OK: they blame
// nothing.
func (c *Conformance) OK() bool {
	_, failed, _, _ := c.Counts()
	if failed > 0 || len(c.SuiteErrors) > 0 || c.Interrupted {
		return false
	}
	for _, s := range c.Specs {
		for _, b := range s.Broke {
			if b.Deviation == "" {
				return false
			}
		}
	}
	return true
}

// SummaryLine is the closing line: "N passed, N failed, N skipped", with
// deviations, inconclusive and interrupted specs counted among the
// skipped and named after, as are the distinct statements the broker
// breaks and an interrupted run. The line keeps the form CI reads
// ("N passed, N failed, N skipped"); everything else is in parentheses.
func (c *Conformance) SummaryLine() string {
	p, f, s, d := c.Counts()
	line := fmt.Sprintf("%d passed, %d failed, %d skipped", p, f, s+d)
	var notes []string
	if n := len(c.InconclusiveSpecs()); n > 0 {
		notes = append(notes, fmt.Sprintf("%d inconclusive", n))
	}
	switch n := len(c.WarningSpecs()); n {
	case 0:
	case 1:
		notes = append(notes, "1 warning")
	default:
		notes = append(notes, fmt.Sprintf("%d warnings", n))
	}
	if d > 0 {
		notes = append(notes, fmt.Sprintf("%d known deviations", d))
	}
	switch n := len(c.BrokenStatements()); n {
	case 0:
	case 1:
		notes = append(notes, "1 statement broken")
	default:
		notes = append(notes, fmt.Sprintf("%d statements broken", n))
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

// InconclusiveSpecs are the specs that could not reach their statements.
func (c *Conformance) InconclusiveSpecs() []SpecResult {
	var out []SpecResult
	for _, s := range c.Specs {
		if s.State == Inconclusive {
			out = append(out, s)
		}
	}
	return out
}

// WarningSpecs are the specs that passed with warnings (SHOULDs broken).
func (c *Conformance) WarningSpecs() []SpecResult {
	var out []SpecResult
	for _, s := range c.Specs {
		if s.State == Warning {
			out = append(out, s)
		}
	}
	return out
}

// BrokenStatements lists the distinct statements the broker breaks
// (verdict failed), in statement order. Verdicts must have run.
func (c *Conformance) BrokenStatements() []string {
	var out []string
	for _, st := range c.Statements {
		if st.Verdict == Failed {
			out = append(out, st.Label(c.MultiProtocol()))
		}
	}
	return out
}

// MultiProtocol reports a run of several protocol versions.
func (c *Conformance) MultiProtocol() bool {
	seen := ""
	for _, st := range c.Statements {
		if st.Protocol != "" && seen != "" && st.Protocol != seen {
			return true
		}
		if st.Protocol != "" {
			seen = st.Protocol
		}
	}
	return false
}

// Label is the statement's ID, followed by its version in a run of
// several versions ("MQTT-3.1.0-1 (5.0)").
func (st Statement) Label(multi bool) string {
	if multi && st.Protocol != "" {
		return st.ID + " (" + st.Protocol + ")"
	}
	return st.ID
}

// Verdicts computes each statement's verdict from the specs that cite it
// and the breaches steps of other specs found, then adds the statements
// no spec covers: not-testable with the reason from notTestable, else
// not-covered. all lists every statement ID.
func (c *Conformance) Verdicts(all []string, notTestable map[string]string) {
	bySt := map[string][]SpecResult{}
	brokenIn := map[string][]string{} // statement -> specs whose steps broke it
	breachVerdict := map[string]string{}
	for _, s := range c.Specs {
		for _, id := range s.Statements {
			bySt[id] = append(bySt[id], s)
		}
		for _, b := range s.Broke {
			v := Failed
			if b.Deviation != "" {
				v = Deviation
			}
			for _, id := range b.Statements {
				if !slices.Contains(brokenIn[id], s.Name) {
					brokenIn[id] = append(brokenIn[id], s.Name)
				}
				if breachVerdict[id] != Failed {
					breachVerdict[id] = v
				}
			}
		}
	}
	// An interrupted or inconclusive spec reached no verdict: it never
	// fails a statement, but a pass by another spec is not the whole
	// story either.
	rank := map[string]int{Failed: 7, Deviation: 6, Warning: 5, Inconclusive: 4, Interrupted: 3, Passed: 2, Skipped: 1}
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
		case notTestable[id] != "" && len(brokenIn[id]) == 0:
			st.Verdict, st.Reason = "not-testable", notTestable[id]
		case len(brokenIn[id]) == 0:
			st.Verdict = "not-covered"
		}
		// A statement broken in a step of another spec is broken whatever
		// its own specs say.
		if v := breachVerdict[id]; v != "" && rank[v] > rank[st.Verdict] {
			st.Verdict = v
		}
		st.BrokenIn = brokenIn[id]
		out = append(out, st)
	}
	for _, id := range all {
		add(id)
	}
	for id := range bySt {
		add(id)
	}
	for id := range brokenIn {
		add(id)
	}
	sort.Slice(out, func(i, j int) bool { return statementLess(out[i].ID, out[j].ID) })
	c.Statements = out
}

// SlowNote says, when the broker answered slowly, how slowly and what to
// do about it; it is empty when every answer came within half the
// timeout. A missing answer makes a spec inconclusive, not failed, so a
// run against a slow broker says so instead of blaming statements.
func (c *Conformance) SlowNote() string {
	var slowest AnswerTime
	slow, missing := 0, 0
	for _, a := range c.Answers {
		slow += a.Slow
		missing += a.Missing
		if a.Max > slowest.Max {
			slowest = a
		}
	}
	if slow == 0 && missing == 0 {
		return ""
	}
	var parts []string
	if slowest.Count > 0 {
		parts = append(parts, fmt.Sprintf("the slowest %s took %s", slowest.Packet, slowest.Max.Round(time.Millisecond)))
	}
	switch {
	case slow == 1:
		parts = append(parts, fmt.Sprintf("1 answer took over half the %s timeout", c.Timeout))
	case slow > 1:
		parts = append(parts, fmt.Sprintf("%d answers took over half the %s timeout", slow, c.Timeout))
	}
	if missing > 0 {
		parts = append(parts, fmt.Sprintf("%d did not come within it", missing))
	}
	return "answers came slowly: " + strings.Join(parts, ", ") +
		"; specs left without an answer are inconclusive (try a longer --timeout or a lower --concurrency)"
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
