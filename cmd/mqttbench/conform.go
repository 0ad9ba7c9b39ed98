package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/suites"
	"github.com/mqttbench/mqttbench/wire"
)

const conformHint = "mqttbench conform --broker tcp://127.0.0.1:1883 --junit conform.xml"

// brokerAddr turns tcp://host:port or host:port into host:port. Its
// errors show the URL with any password masked: they end up in CI logs.
func brokerAddr(url string) (string, error) {
	addr := strings.TrimPrefix(url, "tcp://")
	if strings.Contains(addr, "://") {
		return "", fmt.Errorf("--broker %q: only tcp:// is supported", maskPassword(url))
	}
	if strings.Contains(addr, "@") {
		return "", fmt.Errorf("--broker %q: credentials in the URL are not supported (conform takes --username and --password)", maskPassword(url))
	}
	if !strings.Contains(addr, ":") {
		return "", fmt.Errorf("--broker %q: want tcp://host:port", url)
	}
	return addr, nil
}

// maskPassword replaces the password of scheme://user:password@host with
// xxxxx; a URL that does not parse is masked the same way.
func maskPassword(url string) string {
	at := strings.LastIndexByte(url, '@')
	if at < 0 {
		return url
	}
	start := 0
	if i := strings.Index(url, "://"); i >= 0 && i < at {
		start = i + 3
	}
	user, _, ok := strings.Cut(url[start:at], ":")
	if !ok {
		return url
	}
	return url[:start] + user + ":xxxxx" + url[at:]
}

// runConform runs the conformance suite against a broker (the in-process
// reference broker by default).
func runConform(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	brokerURL := fs.String("broker", "", "broker under test, tcp://host:port (default: the in-process reference broker)")
	proto := fs.String("protocol", "3.1.1", "protocol version (3.1.1)")
	labels := fs.String("label-filter", "", "Ginkgo label expression, e.g. 'qos2 && !slow'")
	var focus listFlag
	fs.Var(&focus, "focus", "run only specs whose name matches this regular expression (repeatable; a statement ID prefix works)")
	profilePath := fs.String("profile", "", "capability profile (YAML): max_qos, retain, wildcards, max_payload, known deviations")
	grace := fs.Duration("grace", 0, "extra time allowed beyond the specification's timings (default 1.5s)")
	timeout := fs.Duration("timeout", 0, "how long an expected packet may take (default 2s)")
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
	v, err := packetgen.ParseVersion(*proto)
	if err != nil || v != packetgen.V311 {
		return usageError(stderr, "conform", conformHint, "--protocol %q: only 3.1.1 suites exist so far", *proto)
	}
	cfg := suites.Config{Version: v, Grace: *grace, Timeout: *timeout, Quiet: *quiet, Seed: *seed}
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
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if *brokerURL == "" {
		srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
		if err := srv.Start(); err != nil {
			return usageError(stderr, "conform", conformHint, "starting the in-process broker: %v", err)
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		cfg.Broker, cfg.Dial = "inproc ("+addr+")", wire.TCP(addr)
	} else {
		addr, err := brokerAddr(*brokerURL)
		if err != nil {
			return usageError(stderr, "conform", conformHint, "%v", err)
		}
		cfg.Broker, cfg.Dial = *brokerURL, wire.TCP(addr)
	}
	fmt.Fprintf(stderr, "mqttbench conform: %s, MQTT %s, seed %d\n", cfg.Broker, v, cfg.Seed)
	res, err := suites.Run(ctx, cfg, sel)
	if err != nil {
		return usageError(stderr, "conform", conformHint, "%v", err)
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

// printConformance prints failures with their traces, then the closing
// summary line.
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
	for _, e := range res.SuiteErrors {
		fmt.Fprintf(w, "SUITE ERROR %s\n", e)
	}
	reports.WriteConformanceTable(w, res)
	fmt.Fprintln(w, res.SummaryLine())
}
