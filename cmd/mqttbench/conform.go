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

// runConform runs the conformance suite against a broker (the in-process
// reference broker by default).
func runConform(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	brokerURL := fs.String("broker", "", "broker under test: tcp://, tls://, ws://, wss://host:port[/path] or host:port (default: the in-process reference broker)")
	dialF := addDialFlags(fs)
	proto := fs.String("protocol", "3.1.1", "protocol version of the specs: 3.1.1, 5 or all (both in one run, verdicts per version)")
	labels := fs.String("label-filter", "", "Ginkgo label expression, e.g. 'qos2 && !slow'")
	var focus listFlag
	fs.Var(&focus, "focus", "run only specs whose name matches this regular expression (repeatable; a statement ID prefix works)")
	profilePath := fs.String("profile", "", "capability profile (YAML): max_qos, retain, wildcards, max_payload, 5.0 capabilities (shared_subscriptions, subscription_identifiers, topic_alias_maximum, receive_maximum, max_packet_size, server_keep_alive, enhanced_auth, redirect), known deviations")
	grace := fs.Duration("grace", 0, "extra time allowed beyond the specification's timings (default 1.5s)")
	timeout := fs.Duration("timeout", 0, "how long an answer the broker owes may take (CONNACK, SUBACK, PUBACK...); one that does not come in time leaves its spec inconclusive (default 5s)")
	concurrency := fs.Int("concurrency", 1, "how many specs run at once, each in a process of its own (1: one after another, kindest to a slow broker)")
	shardFlag := fs.String("shard", "", "run only shard i/n of the specs (what --concurrency runs in each process)")
	quiet := fs.Duration("quiet", 0, "how long to wait before concluding nothing more arrives (default 300ms)")
	username := fs.String("username", "", "user name for every CONNECT")
	password := fs.String("password", "", "password for every CONNECT (or MQTTBENCH_PASSWORD); never written to reports")
	junit := fs.String("junit", "", "write a JUnit XML report here")
	jsonOut := fs.String("json", "", "write a JSON result here")
	seed := fs.Uint64("seed", 0, "random order seed (0: from the clock; printed)")
	if code, ok := parseFlags(fs, args, stderr, conformHint); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "conform", conformHint, "unexpected argument %q", fs.Arg(0))
	}
	versions, err := suites.ParseProtocols(*proto)
	if err != nil {
		return usageError(stderr, "conform", conformHint, "%v", err)
	}
	v := versions[0] // the version the broker is probed with
	cfg := suites.Config{Version: v, Versions: versions, Grace: *grace, Timeout: *timeout, Quiet: *quiet, Seed: *seed}
	if *profilePath != "" {
		p, err := suites.LoadProfile(*profilePath)
		if err != nil {
			return usageError(stderr, "conform", conformHint, "%v", err)
		}
		cfg.Profile = p
	}
	if *username != "" {
		cfg.Profile.Username = *username
	}
	if *password == "" {
		*password = os.Getenv("MQTTBENCH_PASSWORD")
	}
	if *password != "" {
		cfg.Profile.Password = *password
	}
	sel := suites.Selection{LabelFilter: *labels, Focus: focus}
	if err := sel.Check(); err != nil {
		return usageError(stderr, "conform", conformHint, "%v", err)
	}
	switch {
	case *concurrency < 1 || *concurrency > maxConcurrency:
		return usageError(stderr, "conform", conformHint, "--concurrency %d: want 1 to %d", *concurrency, maxConcurrency)
	case *timeout < 0:
		return usageError(stderr, "conform", conformHint, "--timeout %s: want a positive duration", *timeout)
	case *shardFlag != "" && *concurrency > 1:
		return usageError(stderr, "conform", conformHint, "--shard and --concurrency exclude each other (--concurrency runs the shards)")
	case *shardFlag != "":
		if sel.Shard, err = suites.ParseShard(*shardFlag); err != nil {
			return usageError(stderr, "conform", conformHint, "%v", err)
		}
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	target := *brokerURL // what shards dial
	dialOpts, err := dialF.dialOptions()
	if err != nil {
		return usageError(stderr, "conform", conformHint, "%v", err)
	}
	tlsInfo := ""
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
		cfg.Broker, cfg.Dial = transport.Redact(*brokerURL), wire.Transport(d)
		cfg.Transport = d
	}
	fmt.Fprintf(stderr, "mqttbench conform: %s, MQTT %s, seed %d\n", cfg.Broker, strings.ReplaceAll(protocolNames(versions), "+", " and "), cfg.Seed)
	if tlsInfo != "" {
		fmt.Fprintf(stderr, "mqttbench conform: %s\n", tlsInfo)
	}
	var res *reports.Conformance
	if *concurrency > 1 {
		res, err = runShards(ctx, shardRun{n: *concurrency, cfg: cfg, target: target, args: shardArgs(fs),
			password: cfg.Profile.Password, env: dialEnv(dialOpts), stderr: stderr})
	} else {
		res, err = suites.Run(ctx, cfg, sel)
	}
	if err != nil {
		return usageError(stderr, "conform", conformHint, "%v", err)
	}
	res.Concurrency = *concurrency
	if note := res.SlowNote(); note != "" {
		fmt.Fprintf(stderr, "mqttbench conform: %s\n", note)
	}
	status := exitOK
	if *jsonOut != "" {
		if err := res.WriteJSON(*jsonOut); err != nil {
			fmt.Fprintf(stderr, "mqttbench conform: writing %s: %v\n", *jsonOut, err)
			status = exitUsage
		}
	}
	if *junit != "" {
		if err := res.WriteJUnit(*junit); err != nil {
			fmt.Fprintf(stderr, "mqttbench conform: writing %s: %v\n", *junit, err)
			status = exitUsage
		}
	}
	printConformance(stdout, res)
	switch {
	case res.Interrupted:
		return exitInterrupted
	case !res.OK():
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
