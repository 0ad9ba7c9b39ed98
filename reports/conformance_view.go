package reports

import (
	"fmt"
	"slices"
	"sort"
)

// Tally counts specs by state under one name (a section or a label).
type Tally struct {
	Name       string `json:"name"`
	Passed     int    `json:"passed"`
	Failed     int    `json:"failed"`
	Skipped    int    `json:"skipped"`
	Deviations int    `json:"deviations"`
	// Inconclusive specs are counted here, not among the skipped.
	Inconclusive int `json:"inconclusive"`
	// Warnings counts specs that passed with warnings (SHOULDs broken);
	// they are counted among the passed too.
	Warnings int `json:"warnings,omitempty"`
}

func (t *Tally) add(state string) {
	switch state {
	case Passed:
		t.Passed++
	case Warning:
		t.Passed++
		t.Warnings++
	case Failed:
		t.Failed++
	case Deviation:
		t.Deviations++
	case Inconclusive:
		t.Inconclusive++
	default:
		t.Skipped++
	}
}

// Total is the number of specs counted.
func (t Tally) Total() int { return t.Passed + t.Failed + t.Skipped + t.Deviations + t.Inconclusive }

// tally counts specs under every key keys gives them, in the order less
// sorts the keys.
func (c *Conformance) tally(keys func(SpecResult) []string, less func(a, b string) bool) []Tally {
	by := map[string]*Tally{}
	for _, s := range c.Specs {
		for _, k := range keys(s) {
			t := by[k]
			if t == nil {
				t = &Tally{Name: k}
				by[k] = t
			}
			t.add(s.State)
		}
	}
	out := make([]Tally, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Name, out[j].Name) })
	return out
}

// SectionTallies counts specs per specification section, in section order;
// in a run of several versions, per section of each ("3.1 CONNECT (5.0)").
func (c *Conformance) SectionTallies() []Tally {
	multi := c.MultiProtocol()
	return c.tally(func(s SpecResult) []string { return []string{s.sectionKey(multi)} },
		func(a, b string) bool {
			if statementLess("MQTT-"+a, "MQTT-"+b) != statementLess("MQTT-"+b, "MQTT-"+a) {
				return statementLess("MQTT-"+a, "MQTT-"+b)
			}
			return a < b
		})
}

// sectionKey is the spec's section, with its version in a run of several.
func (s SpecResult) sectionKey(multi bool) string {
	if multi && s.Protocol != "" {
		return s.Section + " (" + s.Protocol + ")"
	}
	return s.Section
}

// LabelTallies counts specs per label, alphabetically.
func (c *Conformance) LabelTallies() []Tally {
	return c.tally(func(s SpecResult) []string { return s.Labels }, func(a, b string) bool { return a < b })
}

// Statement verdicts in the order reports list them.
var Verdicts = []string{Passed, Failed, Deviation, Warning, Inconclusive, Skipped, "not-testable", "not-covered"}

// VerdictCount is how many statements got one verdict.
type VerdictCount struct {
	Verdict string `json:"verdict"`
	Count   int    `json:"count"`
	// Protocol is the version counted, in a run of several.
	Protocol string `json:"protocol,omitempty"`
}

// VerdictCounts counts statements per verdict, in Verdicts order, leaving
// out verdicts no statement got; in a run of several versions, per
// version.
func (c *Conformance) VerdictCounts() []VerdictCount {
	var protocols []string
	if c.MultiProtocol() {
		for _, st := range c.Statements {
			if len(protocols) == 0 || protocols[len(protocols)-1] != st.Protocol {
				protocols = append(protocols, st.Protocol)
			}
		}
		sort.Strings(protocols)
		protocols = slices.Compact(protocols)
	} else {
		protocols = []string{""}
	}
	var out []VerdictCount
	for _, p := range protocols {
		n := map[string]int{}
		for _, s := range c.Statements {
			if p == "" || s.Protocol == p {
				n[s.Verdict]++
			}
		}
		for _, v := range Verdicts {
			if n[v] > 0 {
				out = append(out, VerdictCount{v, n[v], p})
				delete(n, v)
			}
		}
		rest := make([]string, 0, len(n))
		for v := range n {
			rest = append(rest, v)
		}
		sort.Strings(rest)
		for _, v := range rest {
			out = append(out, VerdictCount{v, n[v], p})
		}
	}
	return out
}

// Failures are the failed specs, in section order.
func (c *Conformance) Failures() []SpecResult {
	var out []SpecResult
	for _, s := range c.sortedSpecs() {
		if s.State == Failed {
			out = append(out, s)
		}
	}
	return out
}

// Warnings are the specs that passed with warnings, in section order.
func (c *Conformance) Warnings() []SpecResult {
	var out []SpecResult
	for _, s := range c.sortedSpecs() {
		if s.State == Warning {
			out = append(out, s)
		}
	}
	return out
}

// Inconclusives are the inconclusive specs, in section order.
func (c *Conformance) Inconclusives() []SpecResult {
	var out []SpecResult
	for _, s := range c.sortedSpecs() {
		if s.State == Inconclusive {
			out = append(out, s)
		}
	}
	return out
}

// sortedSpecs orders specs by section, then name (runs are in random order).
func (c *Conformance) sortedSpecs() []SpecResult {
	out := append([]SpecResult(nil), c.Specs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.Section != b.Section {
			return statementLess("MQTT-"+a.Section, "MQTT-"+b.Section)
		}
		return a.Name < b.Name
	})
	return out
}

// Versions are the protocol versions the run has statement verdicts for,
// in order ("3.1.1", "5.0").
func (c *Conformance) Versions() []string {
	seen := map[string]bool{}
	for _, st := range c.Statements {
		if st.Protocol != "" {
			seen[st.Protocol] = true
		}
	}
	return sortedKeys(seen)
}

// VersionRow is one statement ID's verdict in each version of a run of
// several ("" where a version has no such statement).
type VersionRow struct {
	ID       string   `json:"id"`
	Verdicts []string `json:"verdicts"`
	Differs  bool     `json:"differs,omitempty"`
}

// SideBySide lists every statement ID with its verdict in each of
// Versions, in statement order: 3.1.1 and 5.0 next to each other. The
// two versions number many statements alike, but a statement of one
// need not say what the same ID says in the other; Differs only marks
// where verdicts differ.
func (c *Conformance) SideBySide() []VersionRow {
	versions := c.Versions()
	col := map[string]int{}
	for i, v := range versions {
		col[v] = i
	}
	by := map[string]*VersionRow{}
	var ids []string
	for _, st := range c.Statements {
		i, ok := col[st.Protocol]
		if !ok {
			continue
		}
		r := by[st.ID]
		if r == nil {
			r = &VersionRow{ID: st.ID, Verdicts: make([]string, len(versions))}
			by[st.ID] = r
			ids = append(ids, st.ID)
		}
		r.Verdicts[i] = st.Verdict
	}
	sort.Slice(ids, func(i, j int) bool { return statementLess(ids[i], ids[j]) })
	out := make([]VersionRow, 0, len(ids))
	for _, id := range ids {
		r := by[id]
		r.Differs = slices.ContainsFunc(r.Verdicts, func(v string) bool { return v != r.Verdicts[0] })
		out = append(out, *r)
	}
	return out
}

// VerdictColumns counts statements per verdict with one column per
// version (the first column the verdict), in Verdicts order.
func (c *Conformance) VerdictColumns() (head []string, rows [][]string) {
	versions := c.Versions()
	head = append([]string{"Verdict"}, versions...)
	n := map[string][]int{}
	var order []string
	for _, vc := range c.VerdictCounts() {
		if n[vc.Verdict] == nil {
			n[vc.Verdict] = make([]int, len(versions))
			order = append(order, vc.Verdict)
		}
		if i := slices.Index(versions, vc.Protocol); i >= 0 {
			n[vc.Verdict][i] = vc.Count
		}
	}
	for _, v := range order {
		row := []string{v}
		for _, k := range n[v] {
			row = append(row, fmt.Sprint(k))
		}
		rows = append(rows, row)
	}
	return head, rows
}
