package reports

import (
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
}

func (t *Tally) add(state string) {
	switch state {
	case Passed:
		t.Passed++
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

// SectionTallies counts specs per specification section, in section order.
func (c *Conformance) SectionTallies() []Tally {
	return c.tally(func(s SpecResult) []string { return []string{s.Section} },
		func(a, b string) bool { return statementLess("MQTT-"+a, "MQTT-"+b) })
}

// LabelTallies counts specs per label, alphabetically.
func (c *Conformance) LabelTallies() []Tally {
	return c.tally(func(s SpecResult) []string { return s.Labels }, func(a, b string) bool { return a < b })
}

// Statement verdicts in the order reports list them.
var Verdicts = []string{Passed, Failed, Deviation, Inconclusive, Skipped, "not-testable", "not-covered"}

// VerdictCount is how many statements got one verdict.
type VerdictCount struct {
	Verdict string `json:"verdict"`
	Count   int    `json:"count"`
}

// VerdictCounts counts statements per verdict, in Verdicts order, leaving
// out verdicts no statement got.
func (c *Conformance) VerdictCounts() []VerdictCount {
	n := map[string]int{}
	for _, s := range c.Statements {
		n[s.Verdict]++
	}
	var out []VerdictCount
	for _, v := range Verdicts {
		if n[v] > 0 {
			out = append(out, VerdictCount{v, n[v]})
			delete(n, v)
		}
	}
	rest := make([]string, 0, len(n))
	for v := range n {
		rest = append(rest, v)
	}
	sort.Strings(rest)
	for _, v := range rest {
		out = append(out, VerdictCount{v, n[v]})
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
		if a.Section != b.Section {
			return statementLess("MQTT-"+a.Section, "MQTT-"+b.Section)
		}
		return a.Name < b.Name
	})
	return out
}
