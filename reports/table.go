package reports

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
)

// WriteConformanceTable prints spec counts per section and statement
// verdicts as terminal tables.
func WriteConformanceTable(w io.Writer, c *Conformance) {
	t := tablewriter.NewWriter(w)
	t.Header("Section", "Passed", "Failed", "Inconclusive", "Skipped", "Known deviations", "Warnings")
	for _, k := range c.SectionTallies() {
		t.Append(k.Name, fmt.Sprint(k.Passed), fmt.Sprint(k.Failed), fmt.Sprint(k.Inconclusive), fmt.Sprint(k.Skipped), fmt.Sprint(k.Deviations), fmt.Sprint(k.Warnings)) //nolint:errcheck
	}
	t.Render() //nolint:errcheck

	if counts := c.VerdictCounts(); len(counts) > 0 {
		v := tablewriter.NewWriter(w)
		if c.MultiProtocol() {
			v.Header("Protocol", "Statements", "Count")
		} else {
			v.Header("Statements", "Count")
		}
		for _, k := range counts {
			if c.MultiProtocol() {
				v.Append(k.Protocol, k.Verdict, fmt.Sprint(k.Count)) //nolint:errcheck
			} else {
				v.Append(k.Verdict, fmt.Sprint(k.Count)) //nolint:errcheck
			}
		}
		v.Render() //nolint:errcheck
	}
}
