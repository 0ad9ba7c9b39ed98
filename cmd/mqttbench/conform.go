package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/suites"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

const conformHint = "mqttbench conform --broker tcp://127.0.0.1:1883 --junit conform.xml"

// conformFlags are conform's flags and what they say once checked.
type conformFlags struct {
	fs                                *flag.FlagSet
	brokerURL, proto, labels          *string
	profilePath, shard                *string
	username, password                *string
	junit, jsonOut, htmlOut, baseline *string
	focus                             listFlag
	grace, timeout, quiet             *time.Duration
	concurrency                       *int
	seed                              *uint64
	dial                              *dialFlags
	versions                          []packetgen.Version // from --protocol
	sel                               suites.Selection    // from --label-filter, --focus and --shard
	dialOpts                          transport.Options
}

func newConformFlags() *conformFlags {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	f := &conformFlags{fs: fs}
	f.brokerURL = fs.String("broker", "", "broker under test: tcp://, tls://, ws://, wss://host:port[/path] or host:port (default: the in-process reference broker)")
	f.dial = addDialFlags(fs)
	f.proto = fs.String("protocol", "3.1.1", "protocol version of the specs: 3.1.1, 5 or all (both in one run, verdicts per version)")
	f.labels = fs.String("label-filter", "", "Ginkgo label expression, e.g. 'qos2 && !slow'")
	fs.Var(&f.focus, "focus", "run only specs whose name matches this regular expression (repeatable; a statement ID prefix works)")
	f.profilePath = fs.String("profile", "", "capability profile (YAML): max_qos, retain, wildcards, max_payload, 5.0 capabilities (shared_subscriptions, subscription_identifiers, topic_alias_maximum, receive_maximum, max_packet_size, server_keep_alive, enhanced_auth, redirect), known deviations")
	f.grace = fs.Duration("grace", 0, "extra time allowed beyond the specification's timings (default 1.5s)")
	f.timeout = fs.Duration("timeout", 0, "how long an answer the broker owes may take (CONNACK, SUBACK, PUBACK...); one that does not come in time leaves its spec inconclusive (default 5s)")
	f.concurrency = fs.Int("concurrency", 1, "how many specs run at once, each in a process of its own (1: one after another, kindest to a slow broker)")
	f.shard = fs.String("shard", "", "run only shard i/n of the specs (what --concurrency runs in each process)")
	f.quiet = fs.Duration("quiet", 0, "how long to wait before concluding nothing more arrives (default 300ms)")
	f.username = fs.String("username", "", "user name for every CONNECT")
	f.password = fs.String("password", "", "password for every CONNECT (or MQTTBENCH_PASSWORD); never written to reports")
	f.junit = fs.String("junit", "", "write a JUnit XML report here")
	f.jsonOut = fs.String("json", "", "write a JSON result here")
	f.htmlOut = fs.String("html", "", "write the HTML report here (what mqttbench report draws from the JSON)")
	f.baseline = fs.String("baseline", "", "an earlier JSON result of this broker: exit 1 only for statements worse than there (new failures); list those that got better")
	f.seed = fs.Uint64("seed", 0, "random order seed (0: from the clock; printed)")
	return f
}

// parse parses and checks args without reading a file or dialing, so
// that a command line can be checked before anything runs (the CI
// examples' test does).
func (f *conformFlags) parse(args []string, stderr io.Writer) (int, bool) {
	if code, ok := parseFlags(f.fs, args, stderr, conformHint); !ok {
		return code, false
	}
	fail := func(format string, a ...any) (int, bool) {
		return usageError(stderr, "conform", conformHint, format, a...), false
	}
	if f.fs.NArg() > 0 {
		return fail("unexpected argument %q", f.fs.Arg(0))
	}
	var err error
	if f.versions, err = suites.ParseProtocols(*f.proto); err != nil {
		return fail("%v", err)
	}
	f.sel = suites.Selection{LabelFilter: *f.labels, Focus: f.focus}
	if err := f.sel.Check(); err != nil {
		return fail("%v", err)
	}
	switch {
	case *f.concurrency < 1 || *f.concurrency > maxConcurrency:
		return fail("--concurrency %d: want 1 to %d", *f.concurrency, maxConcurrency)
	case *f.timeout < 0:
		return fail("--timeout %s: want a positive duration", *f.timeout)
	case *f.shard != "" && *f.concurrency > 1:
		return fail("--shard and --concurrency exclude each other (--concurrency runs the shards)")
	case *f.shard != "":
		if f.sel.Shard, err = suites.ParseShard(*f.shard); err != nil {
			return fail("%v", err)
		}
	}
	if f.dialOpts, err = f.dial.dialOptions(); err != nil {
		return fail("%v", err)
	}
	return exitOK, true
}

// runConform runs the conformance suite against a broker (the in-process
// reference broker by default).
func runConform(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newConformFlags()
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	fs, brokerURL, versions, sel, dialOpts := f.fs, f.brokerURL, f.versions, f.sel, f.dialOpts
	var base *reports.Conformance
	if *f.baseline != "" {
		var err error
		if base, err = readBaseline(*f.baseline); err != nil {
			return usageError(stderr, "conform", conformHint, "%v", err)
		}
	}
	v := versions[0] // the version the broker is probed with
	cfg := suites.Config{Version: v, Versions: versions, Grace: *f.grace, Timeout: *f.timeout, Quiet: *f.quiet, Seed: *f.seed}
	if *f.profilePath != "" {
		p, err := suites.LoadProfile(*f.profilePath)
		if err != nil {
			return usageError(stderr, "conform", conformHint, "%v", err)
		}
		cfg.Profile = p
	}
	if *f.username != "" {
		cfg.Profile.Username = *f.username
	}
	password := *f.password
	if password == "" {
		password = os.Getenv("MQTTBENCH_PASSWORD")
	}
	if password != "" {
		cfg.Profile.Password = password
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	target := *brokerURL // what shards dial
	var tlsInfo *reports.ConformanceTLS
	if *brokerURL == "" || *brokerURL == "inproc" {
		if set := dialFlagSet(fs); set != "" {
			return usageError(stderr, "conform", conformHint, "%s: the in-process broker listens on plain TCP; give --broker", set)
		}
		srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
		if err := srv.Start(); err != nil {
			return usageError(stderr, "conform", conformHint, "starting the in-process broker: %v", err)
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		cfg.Broker, cfg.Dial = "inproc ("+addr+")", wire.TCP(addr)
		target = "tcp://" + addr
	} else {
		d, err := suites.BrokerDialer(*brokerURL, dialOpts)
		if err != nil {
			return usageError(stderr, "conform", conformHint, "%v", err)
		}
		warnInsecure(stderr, "conform", dialOpts)
		if tlsInfo, err = probeBroker(ctx, d, v, cfg.Profile.Username, cfg.Profile.Password); err != nil {
			return usageError(stderr, "conform", "", "broker %s %v", d.URL(), err)
		}
		if tlsInfo != nil {
			tlsInfo.ClientCert = dialOpts.TLS.Cert != ""
		}
		cfg.Broker, cfg.Dial = transport.Redact(*brokerURL), wire.Transport(d)
		cfg.Transport = d
	}
	fmt.Fprintf(stderr, "mqttbench conform: %s, MQTT %s, seed %d\n", cfg.Broker, strings.ReplaceAll(protocolNames(versions), "+", " and "), cfg.Seed)
	if tlsInfo != nil {
		fmt.Fprintf(stderr, "mqttbench conform: %s\n", tlsInfo)
	}
	var res *reports.Conformance
	var err error
	if *f.concurrency > 1 {
		res, err = runShards(ctx, shardRun{n: *f.concurrency, cfg: cfg, target: target, args: shardArgs(fs),
			password: cfg.Profile.Password, env: dialEnv(dialOpts), stderr: stderr})
	} else {
		res, err = suites.Run(ctx, cfg, sel)
	}
	if err != nil {
		return usageError(stderr, "conform", conformHint, "%v", err)
	}
	res.Concurrency = *f.concurrency
	res.TLS = tlsInfo
	if base != nil {
		res.Baseline = res.CompareBaseline(base, *f.baseline)
	}
	if note := res.SlowNote(); note != "" {
		fmt.Fprintf(stderr, "mqttbench conform: %s\n", note)
	}
	status := exitOK
	if *f.jsonOut != "" {
		if err := res.WriteJSON(*f.jsonOut); err != nil {
			fmt.Fprintf(stderr, "mqttbench conform: writing %s: %v\n", *f.jsonOut, err)
			status = exitUsage
		}
	}
	if *f.junit != "" {
		if err := res.WriteJUnit(*f.junit); err != nil {
			fmt.Fprintf(stderr, "mqttbench conform: writing %s: %v\n", *f.junit, err)
			status = exitUsage
		}
	}
	if *f.htmlOut != "" {
		if err := writeHTMLFile(*f.htmlOut, func(w io.Writer) error { return reports.WriteConformanceHTML(w, res) }); err != nil {
			fmt.Fprintf(stderr, "mqttbench conform: writing %s: %v\n", *f.htmlOut, err)
			status = exitUsage
		}
	}
	printConformance(stdout, res)
	switch {
	case res.Interrupted:
		return exitInterrupted
	case !res.Gate():
		return exitFailures
	}
	return status
}

// maxConcurrency bounds --concurrency: each shard is a process holding
// its own clients, and more than this only makes the broker the queue.
const maxConcurrency = 32

// printConformance prints failures with their traces, inconclusive specs
// with their cause, the statements broken in steps of other specs (with
// the trace of the first), then the tables and the closing summary line.
func printConformance(w io.Writer, res *reports.Conformance) {
	for _, s := range res.Specs {
		if s.State != reports.Failed {
			continue
		}
		fmt.Fprintf(w, "FAIL %s\n  %s\n", s.Name, s.Message)
		for _, e := range s.Trace {
			fmt.Fprintf(w, "    %s\n", e)
		}
	}
	traced := map[string]bool{} // statements whose breach was shown with a trace
	for _, s := range res.Inconclusives() {
		fmt.Fprintf(w, "INCONCLUSIVE %s\n  %s\n", s.Name, s.Message)
		for _, b := range s.Broke {
			if b.Deviation != "" {
				continue
			}
			key := strings.Join(b.Statements, " ")
			if traced[key] {
				continue
			}
			traced[key] = true
			for _, e := range s.Trace {
				fmt.Fprintf(w, "    %s\n", e)
			}
		}
	}
	for _, s := range res.Warnings() {
		fmt.Fprintf(w, "WARNING %s\n  %s\n", s.Name, s.Message)
	}
	for _, e := range res.SuiteErrors {
		fmt.Fprintf(w, "SUITE ERROR %s\n", e)
	}
	if len(res.Capabilities) > 0 {
		keys := slices.Sorted(maps.Keys(res.Capabilities))
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, res.Capabilities[k]))
		}
		fmt.Fprintf(w, "Capabilities (5.0 CONNACK): %s\n", strings.Join(parts, ", "))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "NOTE %s\n", n)
	}
	reports.WriteConformanceTable(w, res)
	if broken := res.BrokenStatements(); len(broken) > 0 {
		fmt.Fprintf(w, "Statements broken (%d): %s\n", len(broken), strings.Join(broken, ", "))
	}
	// The baseline comes before the closing line, which CI scripts read
	// as the last line.
	if res.Baseline != nil {
		printBaseline(w, res.Baseline)
	}
	fmt.Fprintln(w, res.SummaryLine())
}

// protocolNames names the versions of a run: "3.1.1", "5.0", "3.1.1+5.0".
func protocolNames(vs []packetgen.Version) string {
	var names []string
	for _, v := range vs {
		names = append(names, v.String())
	}
	return strings.Join(names, "+")
}
