package suites

import (
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
