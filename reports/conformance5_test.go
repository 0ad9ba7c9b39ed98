package reports

import (
	"bytes"
	"strings"
	"testing"
)

// twoVersions is a run of 3.1.1 and 5.0 (mqttbench conform --protocol
// all): the same statement ID in both versions, a 5.0 spec with a
// warning, capabilities and a note.
func twoVersions() *Conformance {
	c := &Conformance{
		Kind: "conformance", Broker: "inproc", Protocol: "3.1.1+5.0", Seed: 1,
		Capabilities: map[string]any{"maximum_qos": 1},
		Notes:        []string{"the profile says retain: true; the broker's CONNACK advertises false"},
		Specs: []SpecResult{
			{Name: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT", Section: "3.1 CONNECT", Protocol: "3.1.1",
				Statements: []string{"MQTT-3.1.0-1"}, State: Passed},
			{Name: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT", Section: "3.1 CONNECT", Protocol: "5.0",
				Statements: []string{"MQTT-3.1.0-1"}, State: Failed, Message: "[MQTT-3.1.0-1] expected a close"},
			{Name: "[MQTT-3.1.4-3] closes the existing connection, after DISCONNECT 0x8E", Section: "3.1 CONNECT", Protocol: "5.0",
				Statements: []string{"MQTT-3.1.4-3"}, State: Warning, Message: "[MQTT-3.1.4-3] expected DISCONNECT 0x8E; got a bare close"},
		},
	}
	// Verdicts per version, as suites.Convert computes them.
	for _, v := range []string{"3.1.1", "5.0"} {
		part := &Conformance{}
		for _, s := range c.Specs {
			if s.Protocol == v {
				part.Specs = append(part.Specs, s)
			}
		}
		part.Verdicts([]string{"MQTT-3.1.0-1", "MQTT-3.1.4-3"}, nil)
		for _, st := range part.Statements {
			st.Protocol = v
			c.Statements = append(c.Statements, st)
		}
	}
	return c
}

// A warning counts among the passed, never fails the run, gets its own
// verdict and a note in the summary line; a run of two versions keeps a
// verdict per version and names the version where a statement ID alone
// would be ambiguous.
func TestWarningsAndVersions(t *testing.T) {
	c := twoVersions()
	if p, f, _, _ := c.Counts(); p != 2 || f != 1 {
		t.Errorf("counts passed=%d failed=%d, want 2 and 1", p, f)
	}
	if got := c.SummaryLine(); got != "2 passed, 1 failed, 0 skipped (1 warning; 1 statement broken)" {
		t.Errorf("summary %q", got)
	}
	if !c.MultiProtocol() {
		t.Fatal("not seen as a run of several versions")
	}
	if got := c.BrokenStatements(); len(got) != 1 || got[0] != "MQTT-3.1.0-1 (5.0)" {
		t.Errorf("broken statements %v, want [MQTT-3.1.0-1 (5.0)]", got)
	}
	verdicts := map[string]string{}
	for _, st := range c.Statements {
		verdicts[st.Label(true)] = st.Verdict
	}
	for id, want := range map[string]string{"MQTT-3.1.0-1 (3.1.1)": Passed, "MQTT-3.1.0-1 (5.0)": Failed,
		"MQTT-3.1.4-3 (5.0)": Warning, "MQTT-3.1.4-3 (3.1.1)": "not-covered"} {
		if verdicts[id] != want {
			t.Errorf("%s: verdict %q, want %q", id, verdicts[id], want)
		}
	}
	sections := map[string]Tally{}
	for _, s := range c.SectionTallies() {
		sections[s.Name] = s
	}
	if s := sections["3.1 CONNECT (5.0)"]; s.Passed != 1 || s.Failed != 1 || s.Warnings != 1 {
		t.Errorf("5.0 section tally %+v (sections %v)", s, sections)
	}
	if s := sections["3.1 CONNECT (3.1.1)"]; s.Passed != 1 || s.Total() != 1 {
		t.Errorf("3.1.1 section tally %+v", s)
	}
	perVersion := map[string]int{}
	for _, v := range c.VerdictCounts() {
		perVersion[v.Protocol+" "+v.Verdict] = v.Count
	}
	if perVersion["5.0 warning"] != 1 || perVersion["3.1.1 passed"] != 1 || perVersion["5.0 failed"] != 1 {
		t.Errorf("verdict counts per version %v", perVersion)
	}
}

// JUnit: one testsuite per section of each version, the version in its
// protocol property; a warning is a passed testcase that says so.
func TestJUnitVersionsAndWarnings(t *testing.T) {
	got, b := writeJUnit(t, twoVersions())
	if got.Tests != 3 || got.Failures != 1 || got.Errors != 0 {
		t.Fatalf("totals tests=%d failures=%d errors=%d\n%s", got.Tests, got.Failures, got.Errors, b)
	}
	protocols := map[string]string{}
	for _, s := range got.Suites {
		for _, p := range s.Properties {
			if p.Name == "protocol" {
				protocols[s.Name] = p.Value
			}
		}
		for _, tc := range s.Cases {
			if strings.Contains(tc.Name, "0x8E") && (tc.Failure != nil || tc.Skipped != nil || !strings.HasPrefix(tc.SystemOut, "WARNING: ")) {
				t.Errorf("warning testcase %+v", tc)
			}
		}
	}
	if protocols["3.1 CONNECT (3.1.1)"] != "3.1.1" || protocols["3.1 CONNECT (5.0)"] != "5.0" {
		t.Errorf("testsuites and their protocol %v", protocols)
	}
}

// HTML: the version of each spec and statement, the warnings, the
// capabilities and the notes.
func TestConformanceHTMLVersions(t *testing.T) {
	var b bytes.Buffer
	if err := WriteConformanceHTML(&b, twoVersions()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<section id="warnings">`, `<h2>Warnings (1)</h2>`, `<span class="st st-warning">warning</span> [MQTT-3.1.4-3]`,
		`<th>Protocol</th>`, `<td>5.0</td>`, `<td>3.1.1</td>`, `3.1 CONNECT (5.0)`, `id="capabilities"`, `maximum_qos`,
		`id="notes"`, `the broker&#39;s CONNACK advertises false`, `<option>warning</option>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
