package reports

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/wire"
)

func sample() *Conformance {
	return &Conformance{
		Kind: "conformance", Broker: "tcp://127.0.0.1:1883", Protocol: "3.1.1", Seed: 7,
		Specs: []SpecResult{
			{Name: "[MQTT-3.1.0-2] closes the network connection on a second CONNECT", Section: "3.1 CONNECT",
				Statements: []string{"MQTT-3.1.0-2"}, State: Failed, Duration: time.Millisecond,
				Message: "[MQTT-3.1.0-2] expected the broker to close the connection; got PINGRESP first",
				Trace:   []wire.Entry{{Dir: wire.Sent, Packet: "c1 CONNECT", Hex: "10 0D"}}},
			{Name: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT", Section: "3.1 CONNECT",
				Statements: []string{"MQTT-3.1.0-1"}, State: Passed},
			{Name: "[MQTT-3.3.5-1] delivers overlapping subscriptions at the highest QoS", Section: "3.3 PUBLISH",
				Statements: []string{"MQTT-3.3.5-1"}, State: Deviation, Message: "MQTT-3.3.5-1: delivers at QoS 1"},
			{Name: "[MQTT-3.3.1-5] stores retained messages", Section: "3.3 PUBLISH",
				Statements: []string{"MQTT-3.3.1-5", "MQTT-3.1.0-1"}, State: Skipped, Message: "profile: no retain"},
		},
	}
}

// The JUnit report marks a broken statement as <failure> (never <error>),
// with the statement and expected versus actual in its message and the
// trace in its body; deviations and profile skips are <skipped>.
func TestJUnit(t *testing.T) {
	got, b := writeJUnit(t, sample())
	if got.Tests != 4 || got.Failures != 1 || got.Errors != 0 || got.Skipped != 2 {
		t.Fatalf("totals tests=%d failures=%d errors=%d skipped=%d", got.Tests, got.Failures, got.Errors, got.Skipped)
	}
	if strings.Contains(string(b), "<error") {
		t.Fatal("a statement failure was written as <error>")
	}
	f := got.Suites[0].Cases[0].Failure
	if f == nil || !strings.Contains(f.Message, "MQTT-3.1.0-2") || !strings.Contains(f.Message, "expected") ||
		!strings.Contains(f.Body, "c1 CONNECT") || !strings.Contains(f.Body, "10 0D") {
		t.Fatalf("failure element %+v", f)
	}
	if got.Suites[1].Cases[0].Skipped == nil || !strings.Contains(got.Suites[1].Cases[0].Skipped.Message, "QoS 1") {
		t.Fatalf("deviation not reported as skipped with its reason")
	}
}

// A statement's verdict is the worst of its specs'; uncited statements
// are not-testable (with the reason) or not-covered.
func TestVerdicts(t *testing.T) {
	c := sample()
	c.Verdicts([]string{"MQTT-3.1.0-1", "MQTT-3.1.0-2", "MQTT-3.3.5-1", "MQTT-3.3.1-5", "MQTT-6.0.0-1", "MQTT-3.1.2-10", "MQTT-3.1.2-9"},
		map[string]string{"MQTT-6.0.0-1": "WebSocket"})
	want := map[string]string{
		"MQTT-3.1.0-1": Passed, "MQTT-3.1.0-2": Failed, "MQTT-3.3.5-1": Deviation, "MQTT-3.3.1-5": Skipped,
		"MQTT-6.0.0-1": "not-testable", "MQTT-3.1.2-10": "not-covered",
	}
	var order []string
	for _, s := range c.Statements {
		order = append(order, s.ID)
		if w, ok := want[s.ID]; ok && s.Verdict != w {
			t.Errorf("%s: verdict %s, want %s", s.ID, s.Verdict, w)
		}
	}
	if strings.Join(order[:4], " ") != "MQTT-3.1.0-1 MQTT-3.1.0-2 MQTT-3.1.2-9 MQTT-3.1.2-10" {
		t.Errorf("statements not in numeric order: %v", order)
	}
	if line := c.SummaryLine(); line != "1 passed, 1 failed, 2 skipped (1 known deviations; 1 statement broken)" {
		t.Errorf("summary %q", line)
	}
}

// An interrupted run blames no statement: the spec SIGINT stopped is
// <skipped> (not <failure>, not <error>) and counted among the skipped,
// its statements' verdict is "interrupted", and the run gets an
// <error type="interrupted"> of its own so that CI does not read the
// report as green.
func TestInterruptedRun(t *testing.T) {
	c := &Conformance{
		Kind: "conformance", Broker: "inproc", Protocol: "3.1.1", Seed: 7, Interrupted: true,
		Specs: []SpecResult{
			{Name: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT", Section: "3.1 CONNECT",
				Statements: []string{"MQTT-3.1.0-1"}, State: Passed},
			{Name: "[MQTT-3.1.2-24 MQTT-3.1.0-1] closes a connection silent for 1.5 x its keep alive", Section: "3.1 CONNECT",
				Statements: []string{"MQTT-3.1.2-24", "MQTT-3.1.0-1"}, State: Interrupted,
				Message: "interrupted before the spec finished (Interrupted by User)"},
		},
	}
	c.Verdicts([]string{"MQTT-3.1.0-1", "MQTT-3.1.2-24"}, nil)
	for _, st := range c.Statements {
		if st.Verdict != Interrupted {
			t.Errorf("%s: verdict %s, want %s", st.ID, st.Verdict, Interrupted)
		}
	}
	if line := c.SummaryLine(); line != "1 passed, 0 failed, 1 skipped (interrupted: 1 spec stopped before its verdict)" {
		t.Errorf("summary %q", line)
	}
	if c.OK() {
		t.Error("an interrupted run is not OK")
	}

	got, b := writeJUnit(t, c)
	if got.Tests != 3 || got.Failures != 0 || got.Errors != 1 || got.Skipped != 1 {
		t.Fatalf("totals tests=%d failures=%d errors=%d skipped=%d\n%s", got.Tests, got.Failures, got.Errors, got.Skipped, b)
	}
	if strings.Contains(string(b), "<failure") {
		t.Fatalf("an interruption was written as <failure>:\n%s", b)
	}
	spec := got.Suites[0].Cases[1]
	if spec.Skipped == nil || spec.Error != nil || !strings.HasPrefix(spec.Skipped.Message, "interrupted") {
		t.Errorf("interrupted spec: %+v", spec)
	}
	run := got.Suites[1].Cases[0]
	if run.Name != "interrupted" || run.Error == nil || run.Error.Type != Interrupted ||
		!strings.Contains(run.Error.Body, "MQTT-3.1.2-24") {
		t.Errorf("run-level testcase: %+v", run)
	}
}

// inconclusiveRun has a spec about retained messages whose QoS 2 publish
// was answered with PUBACK (a step broke MQTT-3.3.4-1 and MQTT-4.3.3-2),
// a spec left without a SUBACK in time, and the spec of MQTT-3.3.4-1
// itself, failed.
func inconclusiveRun() *Conformance {
	step := Breach{Statements: []string{"MQTT-3.3.4-1", "MQTT-4.3.3-2"},
		Message: "[MQTT-3.3.4-1 MQTT-4.3.3-2] expected PUBREC id=1 at pub; got PUBACK id=1"}
	c := &Conformance{
		Kind: "conformance", Broker: "tcp://127.0.0.1:1883", Protocol: "3.1.1", Seed: 7, Timeout: 5 * time.Second,
		Specs: []SpecResult{
			{Name: "[MQTT-3.3.1-5] stores a retained message with its QoS", Section: "3.3 PUBLISH",
				Statements: []string{"MQTT-3.3.1-5"}, State: Inconclusive,
				Message: "a step broke MQTT-3.3.4-1 MQTT-4.3.3-2, which this spec does not check: expected PUBREC id=1 at pub; got PUBACK id=1",
				Trace:   []wire.Entry{{Dir: wire.Received, Packet: "pub PUBACK id=1", Hex: "40 02 00 01"}},
				Broke:   []Breach{step}},
			{Name: "[MQTT-4.6.0-5] treats a topic as ordered by default", Section: "4.6 Message ordering",
				Statements: []string{"MQTT-4.6.0-5"}, State: Inconclusive, Broke: []Breach{step},
				Message: "a step broke MQTT-3.3.4-1 MQTT-4.3.3-2, which this spec does not check: expected PUBREC id=3 at pub; got PUBACK id=3"},
			{Name: "[MQTT-3.8.4-2] answers SUBSCRIBE with a SUBACK of the same packet identifier", Section: "3.8 SUBSCRIBE",
				Statements: []string{"MQTT-3.8.4-2"}, State: Inconclusive,
				Message: "no answer in 5s: expected SUBACK id=1 at sub; got nothing in 5s"},
			{Name: "[MQTT-3.3.4-1] answers PUBLISH with PUBREC at QoS 2", Section: "3.3 PUBLISH",
				Statements: []string{"MQTT-3.3.4-1"}, State: Failed, Message: "[MQTT-3.3.4-1] expected PUBREC; got PUBACK"},
			{Name: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT", Section: "3.1 CONNECT",
				Statements: []string{"MQTT-3.1.0-1"}, State: Passed},
		},
	}
	c.Verdicts([]string{"MQTT-3.1.0-1", "MQTT-3.3.1-5", "MQTT-3.3.4-1", "MQTT-3.8.4-2", "MQTT-4.3.3-2", "MQTT-4.6.0-5"}, nil)
	return c
}

// An inconclusive spec blames none of its statements: they are
// inconclusive, while the statement its step broke is failed, with the
// specs it broke in. The closing line keeps its form and says how many
// specs were inconclusive and how many distinct statements are broken.
func TestInconclusiveVerdicts(t *testing.T) {
	c := inconclusiveRun()
	want := map[string]string{
		"MQTT-3.1.0-1": Passed, "MQTT-3.3.1-5": Inconclusive, "MQTT-3.8.4-2": Inconclusive, "MQTT-4.6.0-5": Inconclusive,
		"MQTT-3.3.4-1": Failed, "MQTT-4.3.3-2": Failed,
	}
	for _, st := range c.Statements {
		if st.Verdict != want[st.ID] {
			t.Errorf("%s: verdict %s, want %s", st.ID, st.Verdict, want[st.ID])
		}
		if st.ID == "MQTT-4.3.3-2" && (len(st.BrokenIn) != 2 || len(st.Specs) != 0) {
			t.Errorf("MQTT-4.3.3-2: broken in %v, specs %v; want the two specs whose step broke it", st.BrokenIn, st.Specs)
		}
	}
	if got := c.BrokenStatements(); strings.Join(got, " ") != "MQTT-3.3.4-1 MQTT-4.3.3-2" {
		t.Errorf("broken statements %v", got)
	}
	if line := c.SummaryLine(); line != "1 passed, 1 failed, 3 skipped (3 inconclusive; 2 statements broken)" {
		t.Errorf("summary %q", line)
	}
	if c.OK() {
		t.Error("a run with a statement broken in a step is not OK")
	}

	// Without the breaches (and the failed spec) only slowness is left:
	// inconclusive alone is no failure.
	slow := &Conformance{Specs: []SpecResult{c.Specs[2], c.Specs[4]}}
	slow.Verdicts(nil, nil)
	if !slow.OK() || slow.SummaryLine() != "1 passed, 0 failed, 1 skipped (1 inconclusive)" {
		t.Errorf("only inconclusive: OK %v, summary %q", slow.OK(), slow.SummaryLine())
	}

	// A breach the profile knows is a deviation of that statement.
	known := inconclusiveRun()
	known.Specs = known.Specs[:3]
	for i := range known.Specs[:2] {
		known.Specs[i].Broke = []Breach{{Statements: []string{"MQTT-3.3.4-1"}, Message: "[MQTT-3.3.4-1] PUBACK for QoS 2", Deviation: "MQTT-3.3.4-1: QoS 2 answered with PUBACK"}}
	}
	known.Verdicts(nil, nil)
	if !known.OK() || len(known.BrokenStatements()) != 0 {
		t.Errorf("known breach: OK %v, broken %v", known.OK(), known.BrokenStatements())
	}
}

// JUnit: an inconclusive spec is an <error type="inconclusive"> whose
// message is the cause, never a <failure> of its statement; the statement
// a step broke is a <failure> in the "steps" testsuite, naming the specs
// it broke in, with the first one's trace.
func TestJUnitInconclusive(t *testing.T) {
	got, b := writeJUnit(t, inconclusiveRun())
	if got.Tests != 7 || got.Failures != 3 || got.Errors != 3 || got.Skipped != 0 {
		t.Fatalf("totals tests=%d failures=%d errors=%d skipped=%d\n%s", got.Tests, got.Failures, got.Errors, got.Skipped, b)
	}
	cases := map[string]junitCase{}
	for _, s := range got.Suites {
		for _, tc := range s.Cases {
			cases[tc.Name] = tc
		}
	}
	retained := cases["[MQTT-3.3.1-5] stores a retained message with its QoS"]
	if retained.Failure != nil || retained.Error == nil || retained.Error.Type != Inconclusive ||
		!strings.Contains(retained.Error.Message, "got PUBACK id=1") || !strings.Contains(retained.Error.Body, "40 02 00 01") {
		t.Errorf("inconclusive spec: %+v", retained)
	}
	slow := cases["[MQTT-3.8.4-2] answers SUBSCRIBE with a SUBACK of the same packet identifier"]
	if slow.Error == nil || slow.Error.Type != Inconclusive || !strings.HasPrefix(slow.Error.Message, "no answer in 5s") {
		t.Errorf("spec without an answer: %+v", slow)
	}
	for _, id := range []string{"MQTT-3.3.4-1", "MQTT-4.3.3-2"} {
		st := cases["["+id+"] broken in steps of other specs"]
		if st.Classname != "steps" || st.Failure == nil || st.Failure.Type != "statement" ||
			!strings.Contains(st.Failure.Message, "got PUBACK") || !strings.Contains(st.Failure.Message, "in 2 specs") ||
			!strings.Contains(st.Failure.Body, "[MQTT-4.6.0-5] treats a topic as ordered by default") ||
			!strings.Contains(st.Failure.Body, "40 02 00 01") {
			t.Errorf("%s: %+v", id, st)
		}
	}
}

// The slow note names the slowest answer and how many were slow or
// missing, and is empty when every answer came within half the timeout.
func TestSlowNote(t *testing.T) {
	c := &Conformance{Timeout: 2 * time.Second, Answers: []AnswerTime{
		{Packet: "CONNACK", Count: 100, Max: 400 * time.Millisecond},
		{Packet: "SUBACK", Count: 50, Max: 1949 * time.Millisecond, Slow: 2, Missing: 3},
	}}
	note := c.SlowNote()
	for _, want := range []string{"the slowest SUBACK took 1.949s", "2 answers took over half the 2s timeout", "3 did not come within it", "--timeout"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	c.Answers = c.Answers[:1]
	if note := c.SlowNote(); note != "" {
		t.Errorf("note %q for a quick broker", note)
	}
}

// writeJUnit writes c's JUnit report and reads it back.
func writeJUnit(t *testing.T, c *Conformance) (junitSuites, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.xml")
	if err := c.WriteJUnit(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return got, b
}

// The HTML report lists inconclusive specs with their cause, the
// statements broken in steps with the specs they broke in, and the slow
// note; the spec and statement filters offer the verdict.
func TestConformanceHTMLInconclusive(t *testing.T) {
	c := inconclusiveRun()
	c.Answers = []AnswerTime{{Packet: "SUBACK", Count: 3, Max: 4 * time.Second, Slow: 1, Missing: 1}}
	var b bytes.Buffer
	if err := WriteConformanceHTML(&b, c); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<section id="inconclusive">`, `<h2>Inconclusive (3)</h2>`,
		`<span class="st st-inconclusive">inconclusive</span> [MQTT-3.3.1-5] stores a retained message with its QoS`,
		`no answer in 5s: expected SUBACK id=1 at sub`,
		`Statements broken in steps of other specs (2)`,
		`<span class="st st-failed">failed</span> MQTT-4.3.3-2 <span class="muted">in steps of 2 specs</span>`,
		`id="slow-note"`, `<option>inconclusive</option>`,
		`1 passed, 1 failed, 3 skipped (3 inconclusive; 2 statements broken)`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
