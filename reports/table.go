package reports

import (
	"fmt"
	"io"
	"sort"

	"github.com/olekukonko/tablewriter"
)

// WriteConformanceTable prints spec counts per section and statement
// verdicts as terminal tables.
func WriteConformanceTable(w io.Writer, c *Conformance) {
	type counts struct{ pass, fail, skip, dev int }
	bySection := map[string]*counts{}
	for _, s := range c.Specs {
		k := bySection[s.Section]
		if k == nil {
			k = &counts{}
			bySection[s.Section] = k
		}
		switch s.State {
		case Passed:
			k.pass++
		case Failed:
			k.fail++
		case Deviation:
			k.dev++
		default:
			k.skip++
		}
	}
	names := make([]string, 0, len(bySection))
	for n := range bySection {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return statementLess("MQTT-"+names[i], "MQTT-"+names[j]) })
	t := tablewriter.NewWriter(w)
	t.Header("Section", "Passed", "Failed", "Skipped", "Known deviations")
	for _, n := range names {
		k := bySection[n]
		t.Append(n, fmt.Sprint(k.pass), fmt.Sprint(k.fail), fmt.Sprint(k.skip), fmt.Sprint(k.dev)) //nolint:errcheck
	}
	t.Render() //nolint:errcheck

	verdicts := map[string]int{}
	for _, s := range c.Statements {
		verdicts[s.Verdict]++
	}
	if len(verdicts) > 0 {
		v := tablewriter.NewWriter(w)
		v.Header("Statements", "Count")
		for _, k := range []string{Passed, Failed, Deviation, Skipped, "not-testable", "not-covered"} {
			if verdicts[k] > 0 {
				v.Append(k, fmt.Sprint(verdicts[k])) //nolint:errcheck
			}
		}
		v.Render() //nolint:errcheck
	}
}
