package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	exitOK          = 0
	exitFailures    = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// command is one subcommand: it parses its own flags and returns an exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"broker":  {"run the in-process reference broker on TCP listeners", runBroker},
	"cert":    {"write a throwaway CA, server and client certificates (and bad ones) for TLS tests", runCert},
	"compare": {"run conformance and load against several brokers and report them side by side", runCompare},
	"conform": {"run the conformance suite against a broker (default: the in-process one)", runConform},
	"decode":  {"decode packets given as hex and name the rule any of them breaks", runDecode},
	"fuzz":    {"fuzz a broker over the wire with malformed and mutated packets (default: the in-process one)", runFuzz},
	"gen":     {"print seeded valid or malformed packets as hex", runGen},
	"load":    {"load-test a broker: publish on a fixed schedule, measure latency, verify delivery", runLoad},
	"report":  {"render saved conformance, load, fuzz or comparison results as HTML and tables", runReport},
	"merge":   {"merge results directories of shards of a load run (or of runs) into one", runMerge},
	// Internal: one worker process of `mqttbench load`, which starts it.
	"load-worker": {"", runLoadWorker},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mqttbench: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mqttbench COMMAND [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if c.summary != "" { // internal commands have none
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'mqttbench COMMAND -h' for a command's flags.")
}

// parseFlags parses args, printing a one-line error and a hint on failure.
// It returns the exit code to use and whether to go on.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer, hint string) (int, bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "usage: mqttbench %s [flags]\n", fs.Name())
		fs.PrintDefaults()
		return exitOK, false
	}
	fmt.Fprintf(stderr, "mqttbench %s: %v\n", fs.Name(), err)
	if hint != "" {
		fmt.Fprintf(stderr, "Try: %s\n", hint)
	}
	return exitUsage, false
}

// usageError prints a one-line error with a hint and returns exitUsage.
func usageError(stderr io.Writer, name, hint string, format string, args ...any) int {
	fmt.Fprintf(stderr, "mqttbench %s: %s\n", name, fmt.Sprintf(format, args...))
	if hint != "" {
		fmt.Fprintf(stderr, "Try: %s\n", hint)
	}
	return exitUsage
}

func joinNames(names []string) string { return strings.Join(names, ", ") }
