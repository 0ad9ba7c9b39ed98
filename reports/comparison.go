package reports

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Comparison is what mqttbench compare saves (compare.json): the brokers
// compared and where each one's raw results are, relative to the file,
// so the comparison can be re-rendered by mqttbench report.
type Comparison struct {
	Kind        string           `json:"kind"` // "comparison"
	Started     time.Time        `json:"started"`
	Duration    time.Duration    `json:"duration_ns"`
	Interrupted bool             `json:"interrupted,omitempty"`
	Seed        uint64           `json:"seed,omitempty"`
	Brokers     []ComparedBroker `json:"brokers"`
}

// ComparedBroker is one broker of a comparison. URLs never carry
// credentials (see RedactURL).
type ComparedBroker struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	Profile     string `json:"profile,omitempty"`
	Conformance string `json:"conformance,omitempty"` // conformance JSON
	Load        string `json:"load,omitempty"`        // load results directory
	Fuzz        string `json:"fuzz,omitempty"`        // fuzz.json
	// Errors are what kept a part of the run from producing a result.
	Errors []string `json:"errors,omitempty"`
}

// WriteJSON writes the comparison as indented JSON.
func (c *Comparison) WriteJSON(path string) error { return writeJSON(path, c) }

// ReadComparison reads a comparison written by WriteJSON.
func ReadComparison(path string) (*Comparison, error) {
	var c Comparison
	if err := readResult(path, "comparison", &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Entry is one broker's results as a comparison report shows them; any
// part may be missing.
type Entry struct {
	Name        string
	URL         string
	Conformance *Conformance
	Load        *LoadRun
	Fuzz        *Fuzz
	Errors      []string
}

// OK reports an entry whose every result passed; a conformance result
// compared with a baseline passes when no statement got worse.
func (e Entry) OK() bool {
	return len(e.Errors) == 0 &&
		(e.Conformance == nil || e.Conformance.Gate()) &&
		(e.Load == nil || (e.Load.Summary.OK() && !e.Load.Summary.Interrupted)) &&
		(e.Fuzz == nil || (e.Fuzz.OK() && !e.Fuzz.Interrupted))
}

// MatrixRow is one statement's verdict at each broker ("" where a broker
// has no conformance result).
type MatrixRow struct {
	Statement string   `json:"statement"`
	Verdicts  []string `json:"verdicts"`
	Differs   bool     `json:"differs,omitempty"`
}

// Matrix is the statement × broker verdict table over every statement
// any broker's result lists, in statement order.
func Matrix(entries []Entry) []MatrixRow {
	verdict := make([]map[string]string, len(entries))
	seen := map[string]bool{}
	var ids []string
	for i, e := range entries {
		verdict[i] = map[string]string{}
		if e.Conformance == nil {
			continue
		}
		for _, s := range e.Conformance.Statements {
			verdict[i][s.ID] = s.Verdict
			if !seen[s.ID] {
				seen[s.ID] = true
				ids = append(ids, s.ID)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return statementLess(ids[i], ids[j]) })
	out := make([]MatrixRow, 0, len(ids))
	for _, id := range ids {
		r := MatrixRow{Statement: id}
		for i, e := range entries {
			v := verdict[i][id]
			if e.Conformance != nil && v == "" {
				v = "not-covered"
			}
			r.Verdicts = append(r.Verdicts, v)
			if v != r.Verdicts[0] {
				r.Differs = true
			}
		}
		out = append(out, r)
	}
	return out
}

// ConformanceRows is the conformance summary side by side: spec counts
// and statement verdicts, one column per broker.
func ConformanceRows(entries []Entry) [][]string {
	row := func(name string, f func(c *Conformance) string) []string {
		r := []string{name}
		for _, e := range entries {
			if e.Conformance == nil {
				r = append(r, "-")
				continue
			}
			r = append(r, f(e.Conformance))
		}
		return r
	}
	rows := [][]string{
		row("specs passed / failed / skipped", func(c *Conformance) string {
			p, f, s, _ := c.Counts()
			return fmt.Sprintf("%d / %d / %d", p, f, s)
		}),
		row("known deviations", func(c *Conformance) string { _, _, _, d := c.Counts(); return fmt.Sprint(d) }),
		row("specs inconclusive", func(c *Conformance) string { return fmt.Sprint(len(c.InconclusiveSpecs())) }),
	}
	for _, v := range Verdicts {
		rows = append(rows, row("statements "+v, func(c *Conformance) string {
			for _, k := range c.VerdictCounts() {
				if k.Verdict == v {
					return fmt.Sprint(k.Count)
				}
			}
			return "0"
		}))
	}
	return rows
}

// FuzzRows is the fuzzing summary side by side.
func FuzzRows(entries []Entry) [][]string {
	row := func(name string, f func(z *Fuzz) string) []string {
		r := []string{name}
		for _, e := range entries {
			if e.Fuzz == nil {
				r = append(r, "-")
				continue
			}
			r = append(r, f(e.Fuzz))
		}
		return r
	}
	rows := [][]string{
		row("cases", func(z *Fuzz) string { return fmt.Sprint(z.Cases) }),
		row("cases/s", func(z *Fuzz) string { return fmt.Sprintf("%.0f", z.CasesPerSecond) }),
	}
	for _, c := range FindingClasses {
		rows = append(rows, row(c, func(z *Fuzz) string { return fmt.Sprint(len(z.FindingsByClass()[c])) }))
	}
	for _, e := range entries {
		if e.Fuzz != nil && e.Fuzz.TLS != nil {
			rows = append(rows, row("tls", func(z *Fuzz) string {
				if z.TLS == nil {
					return "-"
				}
				return z.TLS.String()
			}))
			break
		}
	}
	return rows
}

// comparisonParts say which parts of a comparison have data.
func comparisonParts(entries []Entry) (conf, load, fuzz bool) {
	for _, e := range entries {
		conf = conf || e.Conformance != nil
		load = load || e.Load != nil
		fuzz = fuzz || e.Fuzz != nil
	}
	return
}

// loadRuns are the entries' load runs, named after their broker.
func loadRuns(entries []Entry) []LoadRun {
	var out []LoadRun
	for _, e := range entries {
		if e.Load != nil {
			r := *e.Load
			r.Name = e.Name
			out = append(out, r)
		}
	}
	return out
}

// WriteComparisonTable prints a comparison as terminal tables: the
// conformance summary, the statements whose verdicts differ, load
// measures and fuzzing findings, one column per broker.
func WriteComparisonTable(w io.Writer, entries []Entry) {
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name)
	}
	conf, load, fuzz := comparisonParts(entries)
	if conf {
		writeRows(w, append([]string{"Conformance"}, names...), ConformanceRows(entries))
		var differ [][]string
		for _, r := range Matrix(entries) {
			if r.Differs {
				differ = append(differ, append([]string{r.Statement}, r.Verdicts...))
			}
		}
		if len(differ) > 0 {
			writeRows(w, append([]string{"Statements that differ"}, names...), differ)
		}
	}
	if load {
		runs := loadRuns(entries)
		head := []string{"Load"}
		for _, r := range runs {
			head = append(head, r.Name)
		}
		writeRows(w, head, LoadMetricsRows(runs))
	}
	if fuzz {
		writeRows(w, append([]string{"Fuzz"}, names...), FuzzRows(entries))
	}
	for _, e := range entries {
		for _, err := range e.Errors {
			fmt.Fprintf(w, "%s: %s\n", e.Name, err)
		}
	}
}

func writeRows(w io.Writer, header []string, rows [][]string) {
	t := newLoadTable(w)
	t.Header(header)
	for _, r := range rows {
		t.Append(r) //nolint:errcheck
	}
	t.Render() //nolint:errcheck
}

// RedactURL removes the password (and the user name with it) from a
// broker URL: tcp://user:secret@host:1883 becomes tcp://host:1883.
// Anything that does not parse as a URL is returned as it is.
func RedactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			// Not a URL but still a user:password@host form.
			scheme := ""
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				scheme = s[:j+3]
			}
			return scheme + s[i+1:]
		}
		return s
	}
	u.User = nil
	return u.String()
}
