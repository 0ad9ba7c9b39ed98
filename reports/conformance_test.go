package reports

import (
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
	if line := c.SummaryLine(); line != "1 passed, 1 failed, 2 skipped (1 known deviations)" {
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
