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
