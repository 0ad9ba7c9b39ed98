package suites

import (
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/mqttbench/mqttbench/reports"
)

// A spec Ginkgo reports as interrupted (SIGINT mid-spec) is interrupted in
// the result, not failed: its statement gets no "failed" verdict and the
// run is marked interrupted.
func TestConvertInterrupted(t *testing.T) {
	const name = "[MQTT-3.1.2-24] closes a connection silent for 1.5 x its keep alive"
	r := types.Report{
		SpecialSuiteFailureReasons: []string{"Interrupted by User"},
		SpecReports: types.SpecReports{
			{LeafNodeType: types.NodeTypeIt, LeafNodeText: name, ContainerHierarchyTexts: []string{"3.1 CONNECT"},
				State: types.SpecStateInterrupted, Failure: types.Failure{Message: "Interrupted by User"}},
			// Specs the interruption kept from running: skipped, no message.
			{LeafNodeType: types.NodeTypeIt, LeafNodeText: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT",
				State: types.SpecStateSkipped},
		},
	}
	res := Convert(r, Config{Broker: "inproc", Seed: 1})
	if !res.Interrupted || len(res.SuiteErrors) != 0 {
		t.Errorf("interrupted %v, suite errors %v", res.Interrupted, res.SuiteErrors)
	}
	if len(res.Specs) != 1 || res.Specs[0].State != reports.Interrupted {
		t.Fatalf("specs %+v", res.Specs)
	}
	for _, st := range res.Statements {
		if st.ID == "MQTT-3.1.2-24" && st.Verdict != reports.Interrupted {
			t.Errorf("MQTT-3.1.2-24: verdict %s", st.Verdict)
		}
	}
	if line := res.SummaryLine(); line != "0 passed, 0 failed, 1 skipped (interrupted: 1 spec stopped before its verdict)" {
		t.Errorf("summary %q", line)
	}
}

// TestSelectionCheckOneLine: a bad label expression is one plain line
// naming the flag, without Ginkgo's colours, line breaks or link.
func TestSelectionCheckOneLine(t *testing.T) {
	err := Selection{LabelFilter: "qos2 &&"}.Check()
	if err == nil {
		t.Fatal("a bad label filter passed the check")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\x1b") || !strings.HasPrefix(msg, `--label-filter "qos2 &&": `) || !strings.Contains(msg, "Unexpected EOF") {
		t.Fatalf("want one plain line naming the flag and the problem, got %q", msg)
	}
	if err := (Selection{LabelFilter: "qos2 && !slow", Focus: []string{"MQTT-3"}}).Check(); err != nil {
		t.Fatalf("a good selection failed: %v", err)
	}
	if err := (Selection{Focus: []string{"("}}).Check(); err == nil || !strings.HasPrefix(err.Error(), `--focus "("`) {
		t.Fatalf("bad --focus: got %v", err)
	}
}

// A spec that ended on a step breaking another statement (Ginkgo: failed,
// with the inconclusive prefix and a breach entry) and one left without an
// answer (Ginkgo: skipped, with the prefix) are inconclusive: their own
// statements are not failed, the statement the step broke is.
func TestConvertInconclusive(t *testing.T) {
	breach := breachValue{Statements: []string{"MQTT-3.3.4-1", "MQTT-4.3.3-2"},
		Message: "[MQTT-3.3.4-1 MQTT-4.3.3-2] expected PUBREC id=1 at pub; got PUBACK id=1"}
	r := types.Report{SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "[MQTT-3.3.1-5] stores a retained message", ContainerHierarchyTexts: []string{"3.3 PUBLISH"},
			State: types.SpecStateFailed, Failure: types.Failure{Message: inconclusivePrefix + "a step broke MQTT-3.3.4-1 MQTT-4.3.3-2, which this spec does not check: expected PUBREC id=1 at pub; got PUBACK id=1"},
			ReportEntries: types.ReportEntries{{Name: breachEntryName, Value: types.WrapEntryValue(breach)}}},
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "[MQTT-3.8.4-2] answers SUBSCRIBE with a SUBACK", ContainerHierarchyTexts: []string{"3.8 SUBSCRIBE"},
			State: types.SpecStateSkipped, Failure: types.Failure{Message: inconclusivePrefix + "no answer in 5s: expected SUBACK id=1 at sub; got nothing in 5s"}},
	}}
	res := Convert(r, Config{Broker: "inproc", Seed: 1})
	if len(res.Specs) != 2 {
		t.Fatalf("specs %+v", res.Specs)
	}
	for _, s := range res.Specs {
		if s.State != reports.Inconclusive || strings.HasPrefix(s.Message, inconclusivePrefix) {
			t.Errorf("%s: state %s, message %q", s.Name, s.State, s.Message)
		}
	}
	if b := res.Specs[0].Broke; len(b) != 1 || b[0].Message != breach.Message {
		t.Errorf("breach %+v", b)
	}
	want := map[string]string{"MQTT-3.3.1-5": reports.Inconclusive, "MQTT-3.8.4-2": reports.Inconclusive,
		"MQTT-3.3.4-1": reports.Failed, "MQTT-4.3.3-2": reports.Failed}
	for _, st := range res.Statements {
		if w, ok := want[st.ID]; ok && st.Verdict != w {
			t.Errorf("%s: verdict %s, want %s", st.ID, st.Verdict, w)
		}
	}
	if res.OK() {
		t.Error("a statement broken in a step must fail the run")
	}
}

// A breach printed by another process of a parallel run reads back whole.
func TestParseBreach(t *testing.T) {
	for _, b := range []breachValue{
		{Statements: []string{"MQTT-3.3.4-1", "MQTT-4.3.3-2"}, Message: "[MQTT-3.3.4-1 MQTT-4.3.3-2] expected PUBREC id=1 at pub; got PUBACK id=1"},
		{Statements: []string{"MQTT-3.3.4-1"}, Message: "[MQTT-3.3.4-1] got PUBACK (id=1)", Deviation: "MQTT-3.3.4-1: QoS 2 answered with PUBACK (RabbitMQ)"},
	} {
		got, ok := parseBreach(b.String())
		if !ok || reports.Breach(b).Message != got.Message || b.Deviation != got.Deviation || strings.Join(got.Statements, " ") != strings.Join(b.Statements, " ") {
			t.Errorf("parseBreach(%q) = %+v, %v", b.String(), got, ok)
		}
	}
}
