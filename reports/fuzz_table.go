package reports

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
)

// WriteFuzzTable prints a fuzz run as terminal tables: what the cases were
// and what the broker did, then each finding with its reproducer.
func WriteFuzzTable(w io.Writer, f *Fuzz) {
	t := tablewriter.NewWriter(w)
	t.Header("Broker", "Protocol", "Seed", "Cases", "Cases/s", "Skipped", "Findings")
	t.Append(f.Broker, f.Protocol, fmt.Sprint(f.Seed), fmt.Sprint(f.Cases), fmt.Sprintf("%.0f", f.CasesPerSecond), //nolint:errcheck
		fmt.Sprint(f.Skipped), fmt.Sprint(len(f.Findings)))
	t.Render() //nolint:errcheck
	if f.TLS != nil {
		fmt.Fprintf(w, "TLS: %s\n", f.TLS)
	}

	if len(f.Findings) == 0 {
		return
	}
	by := f.FindingsByClass()
	ft := tablewriter.NewWriter(w)
	ft.Header("Finding", "Case", "Class", "Rule", "Bytes", "Seen", "Reproducer")
	for _, c := range FindingClasses {
		for _, x := range by[c] {
			size := fmt.Sprint(x.Bytes)
			if x.Minimized {
				size = fmt.Sprintf("%d (from %d)", x.Bytes, x.OriginalBytes)
			}
			ft.Append(x.Class, fmt.Sprint(x.Case), x.CaseClass, x.Rule, size, fmt.Sprintf("%dx", x.Occurrences), x.Reproducer) //nolint:errcheck
		}
	}
	ft.Render() //nolint:errcheck
}
