package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// run is a result holding only statement verdicts: "ID@version" -> verdict.
func run(protocol string, verdicts map[string]string) *Conformance {
	c := &Conformance{Kind: "conformance", Broker: "tcp://127.0.0.1:1883", Protocol: protocol}
	for k, v := range verdicts {
		id, p, _ := strings.Cut(k, "@")
		c.Statements = append(c.Statements, Statement{ID: id, Protocol: p, Verdict: v})
	}
	slices.SortFunc(c.Statements, func(a, b Statement) int { return strings.Compare(a.Protocol+a.ID, b.Protocol+b.ID) })
	return c
}

func labels(cs []VerdictChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Label())
	}
	return out
}

// Each rule of the comparison, one statement at a time: what is worse,
// better, known or merely changed, and what is not compared.
func TestCompareBaselineRules(t *testing.T) {
	const id = "MQTT-3.1.0-2"
	for _, tc := range []struct {
		was, now string // "" for a statement absent from the baseline
		want     string // worse, better, changed, known, same, none (not compared)
	}{
		{Passed, Failed, "worse"},
		{Warning, Failed, "worse"},
		{Inconclusive, Failed, "worse"},
		{Skipped, Failed, "worse"},
		{Deviation, Failed, "worse"},
		{"not-covered", Failed, "worse"}, // a new failure
		{"", Failed, "worse"},            // a new statement, failing
		{Failed, Failed, "known"},
		{Failed, Passed, "better"},
		{Failed, Warning, "better"},
		{Inconclusive, Passed, "better"},
		{Skipped, Passed, "better"},
		{Deviation, Passed, "better"},
		{Warning, Passed, "better"},
		{Passed, Warning, "changed"},
		{Passed, Inconclusive, "changed"},
		{Passed, Skipped, "changed"},
		{Failed, Inconclusive, "changed"},
		{Failed, Deviation, "changed"},
		{Passed, Passed, "same"},
		{Passed, "not-covered", "none"},
		{Failed, "not-covered", "none"},
		{"", Passed, "none"},
	} {
		t.Run(tc.was+"->"+tc.now, func(t *testing.T) {
			baseV := map[string]string{"MQTT-3.1.0-1@3.1.1": Passed}
			if tc.was != "" {
				baseV[id+"@3.1.1"] = tc.was
			}
			b := run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Passed, id + "@3.1.1": tc.now}).CompareBaseline(run("3.1.1", baseV), "base.json")
			got := "same"
			switch {
			case len(b.Worse) == 1:
				got = "worse"
			case len(b.Better) == 1:
				got = "better"
			case len(b.Changed) == 1:
				got = "changed"
			case b.KnownFailures == 1:
				got = "known"
			case b.Compared == 1: // only MQTT-3.1.0-1
				got = "none"
			}
			if n := len(b.Worse) + len(b.Better) + len(b.Changed) + b.KnownFailures; n > 1 {
				t.Fatalf("counted in %d lists: %+v", n, b)
			}
			if got != tc.want {
				t.Errorf("%s -> %s: %s, want %s (%+v)", tc.was, tc.now, got, tc.want, b)
			}
			if b.OK() != (tc.want != "worse") {
				t.Errorf("OK %v with %d worse", b.OK(), len(b.Worse))
			}
		})
	}
}

// Versions are compared apart: a statement failed in 5.0 and passed in
// 3.1.1 is a known failure in 5.0 only. A version the baseline did not
// run is noted, and its failures are new; a version only the baseline
// ran is noted and not compared.
func TestCompareBaselineVersions(t *testing.T) {
	base := run("3.1.1+5.0", map[string]string{
		"MQTT-3.1.0-1@3.1.1": Passed, "MQTT-3.1.0-1@5.0": Failed,
		"MQTT-3.1.0-2@3.1.1": Failed, "MQTT-3.1.0-2@5.0": Passed,
	})
	now := run("3.1.1+5.0", map[string]string{
		"MQTT-3.1.0-1@3.1.1": Passed, "MQTT-3.1.0-1@5.0": Failed,
		"MQTT-3.1.0-2@3.1.1": Passed, "MQTT-3.1.0-2@5.0": Failed,
	})
	b := now.CompareBaseline(base, "b.json")
	if got := labels(b.Worse); !slices.Equal(got, []string{"MQTT-3.1.0-2 (5.0): passed -> failed"}) {
		t.Errorf("worse %v", got)
	}
	if got := labels(b.Better); !slices.Equal(got, []string{"MQTT-3.1.0-2 (3.1.1): failed -> passed"}) {
		t.Errorf("better %v", got)
	}
	if b.KnownFailures != 1 || b.Known[0].Label() != "MQTT-3.1.0-1 (5.0)" || b.Compared != 4 || len(b.Notes) != 0 {
		t.Errorf("known %d %v, compared %d, notes %v", b.KnownFailures, b.Known, b.Compared, b.Notes)
	}

	// A 3.1.1 baseline against a run of both: 5.0 failures are new.
	only311 := run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Passed, "MQTT-3.1.0-2@3.1.1": Failed})
	b = now.CompareBaseline(only311, "b.json")
	if got := labels(b.Worse); !slices.Equal(got, []string{"MQTT-3.1.0-1 (5.0): no verdict -> failed", "MQTT-3.1.0-2 (5.0): no verdict -> failed"}) {
		t.Errorf("worse %v", got)
	}
	if len(b.Better) != 1 || !slices.ContainsFunc(b.Notes, func(n string) bool { return strings.Contains(n, "no verdicts for MQTT 5.0") }) {
		t.Errorf("better %v, notes %v", b.Better, b.Notes)
	}
	// The other way round: 5.0 only in the baseline is not compared.
	b = run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Passed, "MQTT-3.1.0-2@3.1.1": Passed}).CompareBaseline(now, "b.json")
	if !b.OK() || b.Compared != 2 || !slices.ContainsFunc(b.Notes, func(n string) bool { return strings.Contains(n, "verdicts for MQTT 5.0, this run has none") }) {
		t.Errorf("compared %d, worse %v, notes %v", b.Compared, b.Worse, b.Notes)
	}
	// A result from before statements carried their version takes the run's.
	old := run("3.1.1", map[string]string{"MQTT-3.1.0-1": Failed})
	b = run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Passed}).CompareBaseline(old, "old.json")
	if len(b.Better) != 1 || len(b.Notes) != 0 {
		t.Errorf("better %v, notes %v", b.Better, b.Notes)
	}
}

// With a baseline the gate lets known failures through and stops new
// ones; a suite error or an interruption fails it whatever the baseline.
func TestGate(t *testing.T) {
	base := run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Failed, "MQTT-3.1.0-2@3.1.1": Passed})
	known := run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Failed, "MQTT-3.1.0-2@3.1.1": Passed})
	known.Specs = []SpecResult{{Name: "x", Statements: []string{"MQTT-3.1.0-1"}, State: Failed}}
	if known.Gate() {
		t.Error("a failure passes the gate without a baseline")
	}
	known.Baseline = known.CompareBaseline(base, "b.json")
	if !known.Gate() || !(Entry{Conformance: known}.OK()) {
		t.Error("a known failure fails the gate")
	}
	known.SuiteErrors = []string{"setup"}
	if known.Gate() {
		t.Error("a suite error passes the gate")
	}
	worse := run("3.1.1", map[string]string{"MQTT-3.1.0-1@3.1.1": Failed, "MQTT-3.1.0-2@3.1.1": Failed})
	worse.Baseline = worse.CompareBaseline(base, "b.json")
	if worse.Gate() {
		t.Error("a new failure passes the gate")
	}
}

// The comparison is in the JSON (worse and better as lists, even empty),
// the JUnit properties and the HTML report; the TLS negotiated is in all
// three, and never more than its parameters.
func TestBaselineAndTLSInReports(t *testing.T) {
	base := fixtureConformance(true)
	c := fixtureConformance(false)
	c.TLS = &ConformanceTLS{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", ClientCert: true}
	c.Baseline = c.CompareBaseline(base, "baseline.json")
	dir := t.TempDir()
	jsonPath, xmlPath := filepath.Join(dir, "c.json"), filepath.Join(dir, "c.xml")
	if err := c.WriteJSON(jsonPath); err != nil {
		t.Fatal(err)
	}
	back, err := ReadConformance(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if back.TLS == nil || *back.TLS != *c.TLS {
		t.Errorf("TLS read back %+v", back.TLS)
	}
	if b := back.Baseline; b == nil || b.File != "baseline.json" || len(b.Better) != 1 || b.Better[0].ID != "MQTT-3.1.0-2" || b.Worse == nil {
		t.Errorf("baseline read back %+v", back.Baseline)
	}
	raw := readFile(t, jsonPath)
	var shape struct {
		Baseline map[string]json.RawMessage `json:"baseline"`
		TLS      map[string]any             `json:"tls"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"file", "worse", "better", "known_failures"} {
		if _, ok := shape.Baseline[k]; !ok {
			t.Errorf("JSON baseline has no %q: %s", k, raw)
		}
	}
	if string(shape.Baseline["worse"]) != "[]" {
		t.Errorf(`JSON "worse" is %s, want []`, shape.Baseline["worse"])
	}
	if shape.TLS["version"] != "TLS 1.3" || shape.TLS["cipher"] != "TLS_AES_128_GCM_SHA256" || shape.TLS["client_cert"] != true {
		t.Errorf("JSON tls %v", shape.TLS)
	}

	if err := c.WriteJUnit(xmlPath); err != nil {
		t.Fatal(err)
	}
	var x struct {
		Suites []struct {
			Props []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(readFile(t, xmlPath), &x); err != nil {
		t.Fatal(err)
	}
	if len(x.Suites) == 0 {
		t.Fatal("no testsuite")
	}
	for _, s := range x.Suites {
		props := map[string]string{}
		for _, p := range s.Props {
			props[p.Name] = p.Value
		}
		for k, v := range map[string]string{"tls_version": "TLS 1.3", "tls_cipher": "TLS_AES_128_GCM_SHA256", "tls_client_cert": "true",
			"baseline": "baseline.json", "baseline_worse": "0", "baseline_better": "1", "protocol": "3.1.1"} {
			if props[k] != v {
				t.Errorf("testsuite property %s = %q, want %q (%v)", k, props[k], v, props)
			}
		}
	}

	var html bytes.Buffer
	if err := WriteConformanceHTML(&html, c); err != nil {
		t.Fatal(err)
	}
	page := html.String()
	for _, want := range []string{
		"<dt>TLS</dt><dd>TLS 1.3, TLS_AES_128_GCM_SHA256, client certificate</dd>",
		`<section id="baseline">`, "Better (1)", "Worse (0)", "No statement got worse.",
		`<tr><th scope="row">MQTT-3.1.0-2</th><td>3.1.1</td><td><span class="st st-failed">failed</span></td><td><span class="st st-passed">passed</span></td></tr>`,
		`class="verdict ok"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}

	// The other way round the run fails, and the HTML says which.
	worse := fixtureConformance(true)
	worse.Baseline = worse.CompareBaseline(fixtureConformance(false), "baseline.json")
	html.Reset()
	if err := WriteConformanceHTML(&html, worse); err != nil {
		t.Fatal(err)
	}
	page = html.String()
	for _, want := range []string{"Worse (1)", `<tr class="has-failed"><th scope="row">MQTT-3.1.0-2</th>`, `class="verdict bad"`, "1 worse, 0 better"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report of a worse run lacks %q", want)
		}
	}
}

// A run of 3.1.1 and 5.0 shows its versions side by side in HTML: counts
// per verdict with a column per version, and each statement ID with its
// verdict in each version.
func TestVersionsSideBySide(t *testing.T) {
	c := twoVersions()
	rows := c.SideBySide()
	if len(rows) != 2 || rows[0].ID != "MQTT-3.1.0-1" || !slices.Equal(rows[0].Verdicts, []string{Passed, Failed}) || !rows[0].Differs ||
		!slices.Equal(rows[1].Verdicts, []string{"not-covered", Warning}) {
		t.Fatalf("side by side %+v", rows)
	}
	head, counts := c.VerdictColumns()
	if !slices.Equal(head, []string{"Verdict", "3.1.1", "5.0"}) {
		t.Errorf("head %v", head)
	}
	byVerdict := map[string][]string{}
	for _, r := range counts {
		byVerdict[r[0]] = r[1:]
	}
	if !slices.Equal(byVerdict[Passed], []string{"1", "0"}) || !slices.Equal(byVerdict[Failed], []string{"0", "1"}) {
		t.Errorf("counts %v", counts)
	}
	var html bytes.Buffer
	if err := WriteConformanceHTML(&html, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<thead><tr><th>Statement</th><th>3.1.1</th><th>5.0</th></tr></thead>",
		`<tr class="differs" data-differs="1"><th scope="row">MQTT-3.1.0-1</th><td><span class="st st-passed">passed</span></td><td><span class="st st-failed">failed</span></td></tr>`,
		"<caption>Statements, versions side by side</caption>",
		"<thead><tr><th>Verdict</th><th>3.1.1</th><th>5.0</th></tr></thead>",
	} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	// A run of one version has no such section.
	html.Reset()
	if err := WriteConformanceHTML(&html, fixtureConformance(false)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), `id="versions"`) {
		t.Error("a run of one version shows versions side by side")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
