package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
)

const reportHint = "mqttbench report results/conform.json results/load-1 -o report.html"

// runReport renders saved results as one HTML report and terminal tables.
// One result gives its own kind of report; several load runs are
// overlaid; anything else becomes a comparison, one column per name.
// Exit codes: 0 every result passed, 1 a result holds failures, 2 a
// missing or unreadable result. A conformance result compared with a
// baseline (--baseline here, or the one conform wrote into it) holds
// failures only when a statement is worse than there.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	out := fs.String("o", "report.html", "HTML report to write (- for none)")
	baseline := fs.String("baseline", "", "compare one conformance result with this earlier one: exit 1 only for statements worse than there (as conform --baseline)")
	// Flags may follow the results: mqttbench report a.json b.json -o x.html.
	var paths []string
	for {
		if code, ok := parseFlags(fs, args, stderr, reportHint); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(paths) == 0 {
		return usageError(stderr, "report", reportHint, "no results given: name conformance or fuzz JSON files, load results directories or compare.json")
	}
	entries, err := readEntries(paths)
	if err != nil {
		return usageError(stderr, "report", reportHint, "%v", err)
	}
	if *baseline != "" {
		if reportShape(entries) != "conformance" {
			return usageError(stderr, "report", reportHint, "--baseline compares one conformance result; %d results given", len(paths))
		}
		base, err := readBaseline(*baseline)
		if err != nil {
			return usageError(stderr, "report", reportHint, "%v", err)
		}
		c := entries[0].Conformance
		c.Baseline = c.CompareBaseline(base, *baseline)
	}
	if *out != "-" {
		if err := writeHTMLFile(*out, func(w io.Writer) error { return writeReportHTML(w, entries) }); err != nil {
			return usageError(stderr, "report", "", "writing %s: %v", *out, err)
		}
	}
	writeReportTable(stdout, entries)
	if *out != "-" {
		fmt.Fprintf(stdout, "report: %s\n", *out)
	}
	for _, e := range entries {
		if !e.OK() {
			return exitFailures
		}
	}
	return exitOK
}

// reportShape says how a set of entries is shown.
func reportShape(entries []reports.Entry) string {
	conf, load, fuzz := 0, 0, 0
	for _, e := range entries {
		if e.Conformance != nil {
			conf++
		}
		if e.Load != nil {
			load++
		}
		if e.Fuzz != nil {
			fuzz++
		}
	}
	switch {
	case len(entries) == 1 && conf+load+fuzz == 1 && len(entries[0].Errors) == 0:
		switch {
		case conf == 1:
			return "conformance"
		case load == 1:
			return "load"
		}
		return "fuzz"
	case load == len(entries) && conf == 0 && fuzz == 0:
		return "load"
	}
	return "comparison"
}

func writeReportHTML(w io.Writer, entries []reports.Entry) error {
	switch reportShape(entries) {
	case "conformance":
		return reports.WriteConformanceHTML(w, entries[0].Conformance)
	case "fuzz":
		return reports.WriteFuzzHTML(w, entries[0].Fuzz)
	case "load":
		var runs []reports.LoadRun
		for _, e := range entries {
			r := *e.Load
			r.Name = e.Name
			runs = append(runs, r)
		}
		return reports.WriteLoadHTML(w, runs)
	}
	return reports.WriteComparisonHTML(w, entries)
}

func writeReportTable(w io.Writer, entries []reports.Entry) {
	switch reportShape(entries) {
	case "conformance":
		printConformance(w, entries[0].Conformance)
	case "fuzz":
		reports.WriteFuzzTable(w, entries[0].Fuzz)
		fmt.Fprintln(w, entries[0].Fuzz.SummaryLine())
	case "load":
		if len(entries) == 1 {
			reports.WriteLoadTable(w, entries[0].Load.Summary)
			return
		}
		reports.WriteComparisonTable(w, entries)
	default:
		reports.WriteComparisonTable(w, entries)
	}
}

// writeHTMLFile writes through a temporary file, so an existing report is
// replaced whole or not at all.
func writeHTMLFile(path string, write func(io.Writer) error) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".report-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// readEntries reads every result named on the command line, grouped into
// one entry per name. An argument is PATH or NAME=PATH; without a name,
// a result is named after its file, or after its directory when the file
// has the standard name (summary.json, fuzz.json, ...).
func readEntries(args []string) ([]reports.Entry, error) {
	var entries []reports.Entry
	index := map[string]int{}
	add := func(name string, set func(e *reports.Entry) bool) error {
		i, ok := index[name]
		if !ok {
			i = len(entries)
			index[name] = i
			entries = append(entries, reports.Entry{Name: name})
		}
		if !set(&entries[i]) {
			return fmt.Errorf("two results of the same kind are both named %q: name them, NAME=PATH", name)
		}
		return nil
	}
	for _, arg := range args {
		name, path := splitNamed(arg)
		kind, file, err := resultKind(path)
		if err != nil {
			return nil, err
		}
		if name == "" {
			name = defaultName(file)
		}
		switch kind {
		case "comparison":
			cmp, err := reports.ReadComparison(file)
			if err != nil {
				return nil, err
			}
			for _, b := range cmp.Brokers {
				e, err := readCompared(filepath.Dir(file), b)
				if err != nil {
					return nil, err
				}
				if err := add(b.Name, func(x *reports.Entry) bool {
					if x.Conformance != nil || x.Load != nil || x.Fuzz != nil {
						return false
					}
					*x = e
					return true
				}); err != nil {
					return nil, err
				}
			}
			continue
		case "conformance":
			c, err := reports.ReadConformance(file)
			if err != nil {
				return nil, err
			}
			err = add(name, func(e *reports.Entry) bool {
				ok := e.Conformance == nil
				e.Conformance, e.URL = c, firstNonEmpty(e.URL, c.Broker)
				return ok
			})
			if err != nil {
				return nil, err
			}
		case "load":
			run, err := readLoadRun(filepath.Dir(file))
			if err != nil {
				return nil, err
			}
			err = add(name, func(e *reports.Entry) bool {
				ok := e.Load == nil
				e.Load, e.URL = run, firstNonEmpty(e.URL, run.Summary.Target)
				return ok
			})
			if err != nil {
				return nil, err
			}
		case "fuzz":
			f, err := reports.ReadFuzz(file)
			if err != nil {
				return nil, err
			}
			err = add(name, func(e *reports.Entry) bool {
				ok := e.Fuzz == nil
				e.Fuzz, e.URL = f, firstNonEmpty(e.URL, f.Broker)
				return ok
			})
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: unknown result kind %q (want conformance, load, fuzz or comparison)", file, kind)
		}
	}
	return entries, nil
}

// readCompared reads one broker of a saved comparison; its paths are
// relative to the comparison's directory.
func readCompared(dir string, b reports.ComparedBroker) (reports.Entry, error) {
	e := reports.Entry{Name: b.Name, URL: b.URL, Errors: b.Errors}
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if b.Conformance != "" {
		c, err := reports.ReadConformance(rel(b.Conformance))
		if err != nil {
			return e, err
		}
		e.Conformance = c
	}
	if b.Load != "" {
		run, err := readLoadRun(rel(b.Load))
		if err != nil {
			return e, err
		}
		e.Load = run
	}
	if b.Fuzz != "" {
		f, err := reports.ReadFuzz(rel(b.Fuzz))
		if err != nil {
			return e, err
		}
		e.Fuzz = f
	}
	return e, nil
}

// readLoadRun reads a load results directory (a merged sharded run has
// the same layout) with its histograms.
func readLoadRun(dir string) (*reports.LoadRun, error) {
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		return nil, err
	}
	return &reports.LoadRun{Name: defaultName(filepath.Join(dir, loadgen.SummaryFile)), Summary: res.Summary, Histograms: res.Histograms}, nil
}

// resultFiles are the files a results directory may hold, by kind.
var resultFiles = []string{loadgen.SummaryFile, "compare.json", "fuzz.json", "conform.json"}

// resultKind finds the result file at path (a file, or a directory
// holding one) and reads its kind.
func resultKind(path string) (kind, file string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	file = path
	if st.IsDir() {
		file = ""
		for _, f := range resultFiles {
			if _, err := os.Stat(filepath.Join(path, f)); err == nil {
				file = filepath.Join(path, f)
				break
			}
		}
		if file == "" {
			return "", "", fmt.Errorf("%s: no result in this directory (want one of %s)", path, joinNames(resultFiles))
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return "", "", fmt.Errorf("%s: not a mqttbench result: %v", file, err)
	}
	return head.Kind, file, nil
}

// splitNamed splits NAME=PATH; a PATH that exists as written wins over
// the split, so file names with "=" still work.
func splitNamed(arg string) (name, path string) {
	n, p, ok := strings.Cut(arg, "=")
	if !ok || n == "" || strings.ContainsRune(n, os.PathSeparator) {
		return "", arg
	}
	if _, err := os.Stat(arg); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return "", arg
	}
	return n, p
}

func defaultName(file string) string {
	base := filepath.Base(file)
	for _, f := range resultFiles {
		if base == f {
			return filepath.Base(filepath.Dir(file))
		}
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
