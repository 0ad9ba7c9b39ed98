package reports

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixtureConformance is two brokers' worth of specs: b fails one
// statement that a passes and skips another.
func fixtureConformance(fail bool) *Conformance {
	c := &Conformance{Kind: "conformance", Broker: "tcp://user:hunter2@127.0.0.1:1883", Protocol: "3.1.1", Seed: 7}
	state := Passed
	if fail {
		state = Failed
	}
	c.Specs = []SpecResult{
		{Name: "[MQTT-3.1.0-1] first packet", Section: "3.1 CONNECT", Statements: []string{"MQTT-3.1.0-1"}, Labels: []string{"v3.1.1", "connect"}, State: Passed, Duration: time.Millisecond},
		{Name: "[MQTT-3.1.0-2] second connect", Section: "3.1 CONNECT", Statements: []string{"MQTT-3.1.0-2"}, Labels: []string{"v3.1.1", "connect"}, State: state, Duration: 2 * time.Second,
			Message: "expected close; got CONNACK", Trace: []wire.Entry{{At: time.Millisecond, Dir: wire.Sent, Packet: "c CONNECT", Hex: "10 0C"}, {At: 2 * time.Millisecond, Dir: wire.Received, Packet: "c CONNACK code=0x00", Hex: "20 02 00 00"}}},
		{Name: "[MQTT-3.12.4-1] ping", Section: "3.12 PINGREQ", Statements: []string{"MQTT-3.12.4-1"}, Labels: []string{"v3.1.1", "keepalive"}, State: Passed},
		{Name: "[MQTT-3.3.1-5] retained", Section: "3.3 PUBLISH", Statements: []string{"MQTT-3.3.1-5"}, Labels: []string{"v3.1.1", "retain"}, State: Skipped, Message: "retain off in profile"},
		{Name: "[MQTT-3.3.5-1] overlapping", Section: "3.3 PUBLISH", Statements: []string{"MQTT-3.3.5-1"}, Labels: []string{"v3.1.1", "qos2"}, State: Deviation, Message: "QoS 1 not 2"},
	}
	all := []string{"MQTT-3.1.0-1", "MQTT-3.1.0-2", "MQTT-3.1.2-1", "MQTT-3.12.4-1", "MQTT-3.3.1-5", "MQTT-3.3.5-1", "MQTT-6.0.0-1"}
	c.Verdicts(all, map[string]string{"MQTT-6.0.0-1": "WebSocket"})
	return c
}

// fixtureHistogram holds 1..1000 µs once each and one 50 ms outlier.
func fixtureHistogram() *hdr.Histogram {
	h := hdr.New(1, 3_600_000_000, 3)
	for v := int64(1); v <= 1000; v++ {
		h.RecordValue(v) //nolint:errcheck
	}
	h.RecordValue(50_000) //nolint:errcheck
	return h
}

func fixtureLoad(name string, lost uint64) LoadRun {
	h := fixtureHistogram()
	l := &Load{Kind: "load", Target: "tcp://127.0.0.1:1883", Scenario: LoadScenario{Rate: 1000, QoS: 1},
		Connections: LoadConnections{Target: 20, Ready: 20},
		Messages:    LoadMessages{Sent: 10000, Received: 10000 - lost, Expected: 10000, SentRate: 1000.4, ReceivedRate: 999.6},
		Latency: []LoadLatency{
			{Metric: "connect"},
			{Metric: "e2e", Count: h.TotalCount(), P50: h.ValueAtPercentile(50), P99: h.ValueAtPercentile(99), P999: h.ValueAtPercentile(99.9), Max: h.Max()},
		},
		Verify: []LoadVerification{
			{QoS: 0, Streams: 4, Sent: 5000, Confirmed: 5000, Received: 5000, Reordered: 1},
			{QoS: 1, Streams: 4, Sent: 3000, Confirmed: 3000, Received: 3000 - lost, Lost: lost, Duplicates: 3},
			{QoS: 2, Streams: 2, Sent: 2000, Confirmed: 2000, Received: 1999, LostExcused: 1},
		},
		Errors:      map[string]uint64{"timeout": 2, "refused": 1},
		ErrorSample: map[string]string{"timeout": "publish 17: no PUBACK within 5s", "refused": "dial tcp 127.0.0.1:1883: connection refused"},
		Series: []LoadSecond{
			{T: 1, Phase: "publish", Sent: 1000, Received: 990, Connections: 20, P99E2E: 900},
			{T: 2, Phase: "publish", Sent: 1000, Received: 1010 - lost, Connections: 20, P99E2E: 950 + 10*int64(lost)},
			{T: 3, Phase: "drain", Received: 0, Connections: 19}, // no latency sample: no p99 point
		},
	}
	if lost > 0 {
		l.Verify[1].Violations = []string{fmt.Sprintf("%d lost", lost)}
		l.Violations = []string{"QoS 1 lost"}
	}
	return LoadRun{Name: name, Summary: l, Histograms: map[string]*hdr.Histogram{"e2e": h}}
}

// fixtureFuzz is a fuzz run with its cases by generator and outcome, and
// findings of two classes, each with a reproducer.
func fixtureFuzz(cases int64, findings ...FuzzFinding) *Fuzz {
	return &Fuzz{Kind: "fuzz", Cases: cases, Duration: 2 * time.Second, CasesPerSecond: float64(cases) / 2, Workers: 4, Skipped: 1,
		Generators: map[string]int64{"malformed": cases / 2, "unusual": cases / 5, "mutated": cases - cases/2 - cases/5},
		Outcomes:   map[string]int64{"closed": cases - 11, "answered": 6, "silent": 3, "skipped": 1, "restarts": 1},
		Findings:   findings}
}

// plotData is what a plot draws: its series' points (a plot's tick
// formatter is a function, which JSON cannot hold).
func plotData(plots []plot) map[string]map[string][]point {
	out := map[string]map[string][]point{}
	for _, p := range plots {
		out[p.ID] = map[string][]point{}
		for _, s := range p.Series {
			out[p.ID][s.Name] = s.Points
		}
	}
	return out
}

// errorRows are the errors by class as the load report lists them:
// class, count and the first error seen, by class.
func errorRows(l *Load) [][3]string {
	rows := [][3]string{}
	for k, v := range l.Errors {
		rows = append(rows, [3]string{k, fmt.Sprint(v), l.ErrorSample[k]})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	return rows
}

// fuzzData is what the fuzz report shows besides the summary line: cases
// by generator, the broker's outcomes, findings by class in report order.
func fuzzData(f *Fuzz) map[string]any {
	by := f.FindingsByClass()
	classes := [][2]any{}
	for _, c := range FindingClasses {
		classes = append(classes, [2]any{c, by[c]})
	}
	return map[string]any{"generators": f.Generators, "outcomes": f.Outcomes, "findings_by_class": classes, "summary": f.SummaryLine()}
}

// TestReportModelGolden pins the data the reports render: section and
// label tallies, statement verdicts, percentile distributions, load time
// series, verification per QoS and errors by class, fuzz cases by
// generator and outcome with findings by class, the comparison matrix and
// the side-by-side tables.
func TestReportModelGolden(t *testing.T) {
	a, b := fixtureConformance(false), fixtureConformance(true)
	la, lb := fixtureLoad("a", 0), fixtureLoad("b", 5)
	fa := fixtureFuzz(100)
	fb := fixtureFuzz(80,
		FuzzFinding{Class: "spec-deviation", Case: 12, Generator: "malformed", CaseClass: "trailing-bytes", Rule: "MQTT-4.8.0-1",
			Observed: "malformed input accepted", Reproducer: "r/spec-deviation-trailing-bytes-12.json", Bytes: 3, OriginalBytes: 9, Minimized: true, Verified: true, Occurrences: 4},
		FuzzFinding{Class: "crash", Case: 40, Generator: "malformed", CaseClass: "cut-body", Observed: "liveness probe: refused",
			Reproducer: "r/crash-cut-body-40.json", Bytes: 7, OriginalBytes: 7, Verified: true, Occurrences: 1},
		FuzzFinding{Class: "spec-deviation", Case: 3, Generator: "mutated", CaseClass: "mutated:flip", Rule: "MQTT-3.1.0-2",
			Observed: "malformed input accepted", Reproducer: "r/spec-deviation-mutated-flip-3.json", Bytes: 20, OriginalBytes: 44, Minimized: true, Verified: true, Occurrences: 1})
	fb.SortFindings()
	entries := []Entry{
		{Name: "a", Conformance: a, Load: &la, Fuzz: fa},
		{Name: "b", Conformance: b, Load: &lb, Fuzz: fb},
	}
	model := map[string]any{
		"sections":             b.SectionTallies(),
		"labels":               b.LabelTallies(),
		"verdicts":             b.VerdictCounts(),
		"statements":           b.Statements,
		"failures":             len(b.Failures()),
		"distributions":        LoadDistributions([]LoadRun{la}),
		"load_rows":            LoadMetricsRows([]LoadRun{la, lb}),
		"matrix":               Matrix(entries),
		"conformance_rows":     ConformanceRows(entries),
		"fuzz_rows":            FuzzRows(entries),
		"percentile_ticks":     percentileTicks(1e4),
		"entries_ok":           []bool{entries[0].OK(), entries[1].OK()},
		"matrix_one_broker":    Matrix(entries[:1])[1],
		"load_series":          plotData(seriesPlots([]LoadRun{la})),
		"load_series_overlaid": plotData(seriesPlots([]LoadRun{la, lb})),
		"load_verification":    map[string][]LoadVerification{"a": la.Summary.Verify, "b": lb.Summary.Verify},
		"load_violations":      map[string][]string{"a": la.Summary.Violations, "b": lb.Summary.Violations},
		"load_errors":          map[string][][3]string{"a": errorRows(la.Summary), "b": errorRows(lb.Summary)},
		"fuzz":                 map[string]any{"a": fuzzData(fa), "b": fuzzData(fb)},
	}
	got, err := json.MarshalIndent(model, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", "model.json")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755) //nolint:errcheck
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the report model changed; if on purpose, run go test ./reports -update and review the diff\ngot:\n%s", got)
	}
}

// The distribution follows the histogram: 0% is the minimum, 90% and 99%
// are points of the curve, 100% is the maximum.
func TestDistribution(t *testing.T) {
	d := Distribution(fixtureHistogram())
	at := map[float64]int64{}
	for _, p := range d {
		at[p.Percent] = p.Value
	}
	for pct, want := range map[float64]int64{0: 1, 90: 901, 99: 991, 99.9: 1000, 100: 50015} {
		if got, ok := at[pct]; !ok || got != want {
			t.Errorf("p%v = %d (present %v), want %d", pct, got, ok, want)
		}
	}
	if Distribution(nil) != nil || Distribution(hdr.New(1, 10, 3)) != nil {
		t.Error("an empty histogram has a distribution")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://user:pw@127.0.0.1:1883": "tcp://127.0.0.1:1883",
		"tcp://user@127.0.0.1:1883":    "tcp://127.0.0.1:1883",
		"tcp://127.0.0.1:1883":         "tcp://127.0.0.1:1883",
		"u:p%zz@host:1":                "host:1",
		"inproc":                       "inproc",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every writer renders with data and with next to none, and no broker
// URL's password reaches the page.
func TestHTMLWriters(t *testing.T) {
	la := fixtureLoad("a", 0)
	empty := LoadRun{Name: "empty", Summary: &Load{Kind: "load"}}
	c := fixtureConformance(true)
	f := &Fuzz{Broker: "tcp://u:hunter2@h:1", Findings: []FuzzFinding{{Class: "hang", Reproducer: "r/1.json"}}}
	entries := []Entry{{Name: "a", URL: "tcp://u:hunter2@h:1", Conformance: c, Load: &la, Fuzz: f}, {Name: "none", Errors: []string{"unreachable"}}}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"conformance":       func(b *bytes.Buffer) error { return WriteConformanceHTML(b, c) },
		"conformance-empty": func(b *bytes.Buffer) error { return WriteConformanceHTML(b, &Conformance{}) },
		"load":              func(b *bytes.Buffer) error { return WriteLoadHTML(b, []LoadRun{la, empty}) },
		"fuzz":              func(b *bytes.Buffer) error { return WriteFuzzHTML(b, f) },
		"comparison":        func(b *bytes.Buffer) error { return WriteComparisonHTML(b, entries) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s := b.String()
		if !strings.HasPrefix(s, "<!DOCTYPE html>") || !strings.Contains(s, `id="summary"`) {
			t.Errorf("%s: not a report page", name)
		}
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s: the page holds a password", name)
		}
		// Inline SVG names its namespace by URL; nothing else may.
		offline := strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, "")
		if strings.Contains(offline, "http://") || strings.Contains(offline, "https://") {
			t.Errorf("%s: the page refers to the network", name)
		}
	}
}

func TestWriteComparisonTable(t *testing.T) {
	la, lb := fixtureLoad("a", 0), fixtureLoad("b", 5)
	var b bytes.Buffer
	WriteComparisonTable(&b, []Entry{
		{Name: "a", Conformance: fixtureConformance(false), Load: &la},
		{Name: "b", Conformance: fixtureConformance(true), Load: &lb, Errors: []string{"load: refused"}},
	})
	for _, want := range []string{"Conformance", "Statements that differ", "MQTT-3.1.0-2", "e2e p99", "VIOLATION", "b: load: refused"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
