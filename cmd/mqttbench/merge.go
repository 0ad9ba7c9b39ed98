package main

import (
	"context"
	"flag"
	"io"
	"path/filepath"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
)

const mergeHint = "mqttbench merge results/shard-0 results/shard-1 -o results/merged"

// runMerge merges results directories of `mqttbench load` (the shards of
// one run, usually) into one with the same layout, which `mqttbench
// report` reads like any run's. Exit codes: 0 merged and clean, 1 the
// merged verification found violations, 2 a directory is missing or
// unreadable, or the shards overlap.
func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	out := fs.String("o", "", "output directory (default results/merged-YYYYMMDD-HHMMSS)")
	// Flags may follow the directories: merge A B -o OUT.
	var dirs []string
	for rest := args; ; {
		if code, ok := parseFlags(fs, rest, stderr, mergeHint); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(dirs) == 0 {
		return usageError(stderr, "merge", mergeHint, "no results directory to merge")
	}
	var parts []*loadgen.Results
	for _, d := range dirs {
		r, err := loadgen.ReadResults(d)
		if err != nil {
			return usageError(stderr, "merge", mergeHint, "%s: %v", d, err)
		}
		parts = append(parts, r)
	}
	merged, err := loadgen.Merge(parts)
	if err != nil {
		return usageError(stderr, "merge", "", "%v", err)
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "merged-"+time.Now().Format("20060102-150405"))
	}
	if err := merged.Write(dir); err != nil {
		return usageError(stderr, "merge", "", "writing %s: %v", dir, err)
	}
	if code := printLoad(stdout, merged.Summary, dir); code != exitInterrupted {
		return code
	}
	return exitOK // an interrupted run merged is still a clean merge
}
