package reports

import (
	"bytes"
	"strings"
	"testing"
)

// The faults of a run show in the terminal's faults table and in the
// HTML report's list: what, on whom, when, recovered when, and why one
// failed.
func TestLoadFaultSections(t *testing.T) {
	run := fixtureLoad("faults", 0)
	run.Summary.Faults = []LoadFault{
		{Name: "kill@2s", Kind: "kill", Start: 2.01, End: 2.02, Recovered: 2.61},
		{Name: "blackhole@5s+5s:group=subscribers", Kind: "blackhole", Target: "subscribers", Start: 5, End: 10, Recovered: 10},
		{Name: "pause=3s@8s", Kind: "pause", Start: 8, End: 8, Error: "SIGSTOP to broker pid 7: operation not permitted"},
	}
	var term bytes.Buffer
	WriteLoadTable(&term, run.Summary)
	var page bytes.Buffer
	if err := WriteLoadHTML(&page, []LoadRun{run}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		where, text string
		want        []string
	}{
		{"terminal", term.String(), []string{"Faults", "Recovered", "kill@2s", "broker process", "2.0s", "2.6s", "subscribers", "10.0s", "operation not permitted"}},
		{"html", page.String(), []string{"<h3>Faults</h3>", "kill@2s: 2.0s to 2.0s, recovered at 2.6s", "blackhole@5s&#43;5s:group=subscribers on subscribers: 5.0s to 10.0s, recovered at 10.0s", "pause=3s@8s: 8.0s to 8.0s; failed: SIGSTOP"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.text, w) {
				t.Errorf("%s lacks %q:\n%s", c.where, w, c.text)
			}
		}
	}
	// No faults, no table.
	run.Summary.Faults = nil
	term.Reset()
	WriteLoadTable(&term, run.Summary)
	if strings.Contains(term.String(), "Recovered") {
		t.Error("a faults table without faults")
	}
}
