package reports

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/wire"
)

// The HTML reports are single files: the style sheet, the little script
// and every chart are inline, so a report opens offline, from a CI
// artifact or an e-mail, and fetches nothing.

//go:embed templates
var templateFS embed.FS

var (
	styleSheet = mustRead("templates/style.css")
	script     = mustRead("templates/report.js")
	pages      = map[string]*template.Template{}
)

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var funcs = template.FuncMap{
	"dur":    func(d time.Duration) string { return fmtDuration(d) },
	"us":     us,
	"join":   strings.Join,
	"redact": RedactURL,
	"ms":     func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000) },
	"arrow": func(d wire.Direction) string {
		return map[wire.Direction]string{wire.Sent: "→", wire.Received: "←", wire.Event: "!"}[d]
	},
	"dirclass": func(d wire.Direction) string { return fmt.Sprint(d) },
	"svg":      func(p plot) template.HTML { return p.SVG() },
	"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"lower":    strings.ToLower,
	"kv":       sortedKV,
}

func init() {
	for _, kind := range []string{"conformance", "load", "fuzz", "comparison"} {
		t := template.New("layout.gohtml").Funcs(funcs)
		template.Must(t.ParseFS(templateFS, "templates/layout.gohtml", "templates/parts.gohtml", "templates/"+kind+".gohtml"))
		pages[kind] = t
	}
}

// page is what the layout template shows around a report's content.
type page struct {
	Title     string
	Kind      string
	Generated time.Time
	Meta      [][2]string // label, value: broker, profile, seed ...
	OK        bool
	Verdict   string
	Style     template.CSS
	Script    template.JS
	Data      any
}

func render(w io.Writer, kind string, p page) error {
	p.Kind = kind
	p.Generated = time.Now()
	p.Style = template.CSS(styleSheet)
	p.Script = template.JS(script)
	return pages[kind].Execute(w, p)
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

// sortedKV lists a map's entries by key, values printed plainly.
func sortedKV(m map[string]any) [][2]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, fmt.Sprint(m[k])})
	}
	return out
}

// conformancePage is the data of the conformance report.
type conformancePage struct {
	C          *Conformance
	Sections   []Tally
	Labels     []Tally
	Verdicts   []VerdictCount
	Specs      []SpecResult
	Failures   []SpecResult
	Deviations []SpecResult
	// Inconclusive specs, and the statements broken in their steps.
	Inconclusive []SpecResult
	Broken       []Statement
	// Warnings are the specs that passed with SHOULDs broken.
	Warnings []SpecResult
	// A run of several versions shows them side by side: statement
	// verdict counts and every statement, a column per version.
	Versions     []string
	VerdictTable rowsTable
	SideBySide   []VersionRow
	Differing    int
}

// WriteConformanceHTML writes the conformance report: summary by section
// and label, every spec, failures with expected versus actual and the wire
// trace, statement coverage.
func WriteConformanceHTML(w io.Writer, c *Conformance) error {
	d := conformancePage{C: c, Sections: c.SectionTallies(), Labels: c.LabelTallies(),
		Verdicts: c.VerdictCounts(), Specs: c.sortedSpecs(), Failures: c.Failures(), Inconclusive: c.Inconclusives(),
		Warnings: c.Warnings()}
	for _, s := range d.Specs {
		if s.State == Deviation {
			d.Deviations = append(d.Deviations, s)
		}
	}
	for _, st := range c.Statements {
		if len(st.BrokenIn) > 0 && st.Verdict == Failed {
			d.Broken = append(d.Broken, st)
		}
	}
	if c.MultiProtocol() {
		d.Versions, d.SideBySide = c.Versions(), c.SideBySide()
		d.VerdictTable.Head, d.VerdictTable.Rows = c.VerdictColumns()
		for _, r := range d.SideBySide {
			if r.Differs {
				d.Differing++
			}
		}
	}
	meta := [][2]string{
		{"Broker", RedactURL(c.Broker)},
		{"Protocol", c.Protocol},
		{"Profile", profileName(c.Profile)},
		{"Seed", fmt.Sprint(c.Seed)},
		{"Started", c.Started.UTC().Format(time.RFC3339)},
		{"Duration", fmtDuration(c.Duration)},
	}
	if c.Timeout > 0 {
		meta = append(meta, [2]string{"Answer timeout", fmtDuration(c.Timeout)})
	}
	if c.Concurrency > 0 {
		meta = append(meta, [2]string{"Concurrency", fmt.Sprint(c.Concurrency)})
	}
	if c.TLS != nil {
		meta = append(meta, [2]string{"TLS", c.TLS.String()})
	}
	verdict := c.SummaryLine() // names an interruption
	if b := c.Baseline; b != nil {
		meta = append(meta, [2]string{"Baseline", b.File})
		verdict += fmt.Sprintf("; against the baseline: %d worse, %d better, %d known failures", len(b.Worse), len(b.Better), b.KnownFailures)
	}
	return render(w, "conformance", page{Title: "Conformance: " + RedactURL(c.Broker), Meta: meta, OK: c.Gate(), Verdict: verdict, Data: d})
}

func profileName(p map[string]any) string {
	if n, _ := p["name"].(string); n != "" {
		return n
	}
	return "default"
}

// loadPage is the data of the load report (one run, or several overlaid).
type loadPage struct {
	Runs        []LoadRun
	Names       []string
	Table       rowsTable
	Percentiles []plot
	Series      []plot
}

// rowsTable is a measure-per-row table, one column per run or broker.
type rowsTable struct {
	Head []string
	Rows [][]string
}

func newLoadPage(runs []LoadRun) loadPage {
	d := loadPage{Runs: runs, Series: seriesPlots(runs)}
	for _, r := range runs {
		d.Names = append(d.Names, r.Name)
	}
	d.Table = rowsTable{append([]string{"Measure"}, d.Names...), LoadMetricsRows(runs)}
	for _, md := range LoadDistributions(runs) {
		d.Percentiles = append(d.Percentiles, percentilePlot("latency-"+md.Metric, md.Metric+" latency by percentile", d.Names, md.Runs))
	}
	return d
}

// WriteLoadHTML writes the load report of one run, or of several runs
// overlaid: scenario, latency distributions on a log percentile axis,
// time series, verification and errors.
func WriteLoadHTML(w io.Writer, runs []LoadRun) error {
	if len(runs) == 0 {
		return fmt.Errorf("no load run to report")
	}
	ok := true
	var targets []string
	for _, r := range runs {
		ok = ok && r.Summary.OK() && !r.Summary.Interrupted
		targets = append(targets, RedactURL(r.Summary.Target))
	}
	first := runs[0].Summary
	meta := [][2]string{{"Target", strings.Join(targets, "; ")}, {"Started", first.Started.UTC().Format(time.RFC3339)}}
	verdict := "no violations"
	if !ok {
		verdict = "violations found"
	}
	title := "Load: " + RedactURL(first.Target)
	if len(runs) > 1 {
		title = fmt.Sprintf("Load: %d runs overlaid", len(runs))
	}
	return render(w, "load", page{Title: title, Meta: meta, OK: ok, Verdict: verdict, Data: newLoadPage(runs)})
}

// fuzzPage is the data of the fuzz report.
type fuzzPage struct {
	F       *Fuzz
	Classes []fuzzClass
}

type fuzzClass struct {
	Class    string
	Findings []FuzzFinding
}

// WriteFuzzHTML writes the fuzz report: the run's summary and its
// findings by class with their reproducers.
func WriteFuzzHTML(w io.Writer, f *Fuzz) error {
	d := fuzzPage{F: f}
	by := f.FindingsByClass()
	for _, c := range FindingClasses {
		d.Classes = append(d.Classes, fuzzClass{c, by[c]})
	}
	meta := [][2]string{
		{"Broker", RedactURL(f.Broker)},
		{"Protocol", f.Protocol},
		{"Seed", fmt.Sprint(f.Seed)},
		{"Started", f.Started.UTC().Format(time.RFC3339)},
		{"Duration", fmtDuration(f.Duration)},
	}
	verdict := f.SummaryLine()
	if f.Stopped != "" {
		verdict += "; stopped: " + f.Stopped
	}
	return render(w, "fuzz", page{Title: "Fuzz: " + RedactURL(f.Broker), Meta: meta, OK: f.OK() && !f.Interrupted, Verdict: verdict, Data: d})
}

// comparisonPage is the data of the comparison report.
type comparisonPage struct {
	Entries                []Entry
	Names                  []string
	HasConf, HasLoad, Fuzz bool
	ConfTable              rowsTable
	Matrix                 []MatrixRow
	Differing              int
	Load                   loadPage
	FuzzTable              rowsTable
}

// WriteComparisonHTML writes brokers side by side: the conformance
// summary and statement matrix, load measures with overlaid latency
// distributions and time series, and fuzzing findings.
func WriteComparisonHTML(w io.Writer, entries []Entry) error {
	d := comparisonPage{Entries: entries}
	d.HasConf, d.HasLoad, d.Fuzz = comparisonParts(entries)
	ok := true
	var meta [][2]string
	for _, e := range entries {
		d.Names = append(d.Names, e.Name)
		ok = ok && e.OK()
		meta = append(meta, [2]string{e.Name, RedactURL(e.URL)})
	}
	if d.HasConf {
		d.ConfTable = rowsTable{append([]string{"Conformance"}, d.Names...), ConformanceRows(entries)}
		d.Matrix = Matrix(entries)
		for _, r := range d.Matrix {
			if r.Differs {
				d.Differing++
			}
		}
	}
	if d.HasLoad {
		d.Load = newLoadPage(loadRuns(entries))
	}
	if d.Fuzz {
		d.FuzzTable = rowsTable{append([]string{"Fuzz"}, d.Names...), FuzzRows(entries)}
	}
	verdict := "every broker passed"
	if !ok {
		verdict = "failures found"
	}
	return render(w, "comparison", page{Title: "Comparison: " + strings.Join(d.Names, ", "), Meta: meta, OK: ok, Verdict: verdict, Data: d})
}
