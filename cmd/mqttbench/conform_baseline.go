package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/mqttbench/mqttbench/reports"
)

// A broker team gates pull requests with conform --baseline FILE, FILE
// being an earlier JSON result of their broker (kept in their repository
// and renewed on purpose): the run fails only for statements worse than
// in the baseline, so a broker that is not yet fully conformant can still
// keep its failures from growing. reports.CompareBaseline has the rules.

// readBaseline reads a baseline result, its error one line naming the
// file and what is wrong with it.
func readBaseline(path string) (*reports.Conformance, error) {
	base, err := reports.ReadConformance(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--baseline %s: no such file (write one with conform --json)", path)
	case err != nil:
		// ReadConformance names the file; JSON errors are one line.
		return nil, fmt.Errorf("--baseline: %s", strings.ReplaceAll(err.Error(), "\n", " "))
	case len(base.Statements) == 0:
		return nil, fmt.Errorf("--baseline %s: a conformance result without statement verdicts", path)
	}
	return base, nil
}

// printBaseline lists the statements worse and better than the baseline
// and the known failures, then the closing line of the comparison.
func printBaseline(w io.Writer, b *reports.Baseline) {
	for _, c := range b.Worse {
		fmt.Fprintf(w, "WORSE %s\n", c.Label())
	}
	for _, c := range b.Better {
		fmt.Fprintf(w, "BETTER %s\n", c.Label())
	}
	for _, c := range b.Changed {
		fmt.Fprintf(w, "CHANGED %s\n", c.Label())
	}
	if len(b.Known) > 0 {
		var ids []string
		for _, r := range b.Known {
			ids = append(ids, r.Label())
		}
		fmt.Fprintf(w, "KNOWN failures (%d, in the baseline too): %s\n", len(b.Known), strings.Join(ids, ", "))
	}
	for _, n := range b.Notes {
		fmt.Fprintf(w, "NOTE %s\n", n)
	}
	fmt.Fprintln(w, b.Summary())
}
