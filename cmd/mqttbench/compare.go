package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

const compareHint = "mqttbench compare --broker ref=inproc --broker mosquitto=tcp://127.0.0.1:1883 --profile mosquitto=profiles/mosquitto-2.0.yaml -o results/compare"

// namedFlag collects repeated NAME=VALUE flags in order.
type namedFlag struct {
	names []string
	vals  map[string]string
}

func (f *namedFlag) String() string { return "" }

func (f *namedFlag) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok || name == "" || val == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	if f.vals == nil {
		f.vals = map[string]string{}
	}
	if _, dup := f.vals[name]; dup {
		return fmt.Errorf("%s named twice", name)
	}
	f.names = append(f.names, name)
	f.vals[name] = val
	return nil
}

// compareScenario is the built-in load of a comparison: ten publishers
// each feeding its own subscriber at QoS 1, 1,000 msg/s in all for 10 s:
// modest enough for any broker on a laptop, long enough for a p99.9.
func compareScenario() loadgen.Scenario {
	sc := loadgen.DefaultScenario()
	sc.Publishers, sc.Subscribers, sc.QoS, sc.Rate = 10, 10, packetgen.QoS(1), 1000
	sc.Duration = 10 * time.Second
	return sc
}

// comparedBroker is one --broker as compare runs it.
type comparedBroker struct {
	name               string
	url                string // as shown: no credentials, query values masked
	dial               string // as dialed: no credentials
	inproc             bool
	transport          transport.Options // the flags' options that apply to its URL
	tlsInfo            string            // version and cipher suite negotiated, when TLS
	username, password string
	profile            string
	grace              string
	// versions are the conformance protocols to run (3.1.1, 5.0); none
	// means ask the broker (probe5).
	versions []string
}

// parseCompared reads NAME=URL: "inproc", or any broker URL (tcp://,
// tls://, ws://, wss://, host:port) with optional user:password@.
// Credentials move out of the URL into the broker's own fields.
func parseCompared(name, raw string) (comparedBroker, error) {
	b := comparedBroker{name: name}
	u, err := transport.Parse(raw)
	switch {
	case err != nil:
		return b, fmt.Errorf("--broker %s=%v", name, err)
	case u.Inproc() && u.Name != "":
		return b, fmt.Errorf("--broker %s=%s: want inproc, the reference broker compare starts", name, u)
	case u.Inproc():
		b.inproc, b.url = true, "inproc"
		return b, nil
	}
	if u.User != nil {
		b.username = u.User.Username()
		b.password, _ = u.User.Password()
	}
	s := raw
	if !strings.Contains(s, "://") {
		s = "tcp://" + s
	}
	pu, err := url.Parse(s)
	if err != nil {
		return b, fmt.Errorf("--broker %s=%q: not a URL", name, transport.Redact(raw))
	}
	pu.User = nil
	b.dial, b.url = pu.String(), u.String()
	return b, nil
}

// runCompare runs the conformance suite and a load scenario against each
// broker in turn, then writes the raw results, compare.json and one
// comparison report (HTML and terminal tables).
//
// Each conformance run is a child process of this binary (mqttbench
// conform): Ginkgo runs a suite once per process. Load runs in process.
func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	brokers, profiles := &namedFlag{}, &namedFlag{}
	fs.Var(brokers, "broker", "NAME=URL of a broker to compare (repeatable): inproc for the reference broker, or tcp://, tls://, ws://, wss://[user:password@]host:port[/path]")
	dialF := addDialFlags(fs)
	fs.Var(profiles, "profile", "NAME=FILE: the conformance profile (YAML) of broker NAME (repeatable)")
	var protocols listFlag
	fs.Var(&protocols, "protocol", "conformance protocol: auto (both 3.1.1 and 5.0 for a broker that answers a 5.0 CONNECT, else 3.1.1), 3.1.1, 5 or all; for every broker or NAME=VALUE (repeatable)")
	var graces listFlag
	fs.Var(&graces, "grace", "extra time beyond the specification's timings for conformance: DURATION for every broker or NAME=DURATION (repeatable)")
	scenario := fs.String("scenario", "", "load scenario (YAML, as mqttbench load --scenario; default: 10 publishers → 10 subscribers, QoS 1, 1000 msg/s, 10 s)")
	duration := fs.Duration("duration", 0, "length of the load's publishing phase (overrides the scenario)")
	var focus listFlag
	fs.Var(&focus, "focus", "conformance: run only specs matching this regular expression (repeatable)")
	labels := fs.String("label-filter", "", "conformance: Ginkgo label expression")
	skipConform := fs.Bool("skip-conform", false, "run no conformance suite")
	skipLoad := fs.Bool("skip-load", false, "run no load")
	username := fs.String("username", "", "user name for every CONNECT (a URL's own user wins)")
	password := fs.String("password", "", "password for every CONNECT (or MQTTBENCH_PASSWORD); never written to results")
	seed := fs.Uint64("seed", 0, "conformance order seed, the same for every broker (0: from the clock)")
	out := fs.String("o", "", "results directory (default results/compare-YYYYMMDD-HHMMSS)")
	if code, ok := parseFlags(fs, args, stderr, compareHint); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "compare", compareHint, "unexpected argument %q", fs.Arg(0))
	}
	if len(brokers.names) == 0 {
		return usageError(stderr, "compare", compareHint, "no --broker given")
	}
	if *skipConform && *skipLoad {
		return usageError(stderr, "compare", compareHint, "--skip-conform and --skip-load leave nothing to compare")
	}
	if *password == "" {
		*password = os.Getenv("MQTTBENCH_PASSWORD")
	}
	defaultGrace, perGrace := "", map[string]string{}
	for _, g := range graces {
		name, d, named := strings.Cut(g, "=")
		if !named {
			name, d = "", g
		}
		if _, err := time.ParseDuration(d); err != nil {
			return usageError(stderr, "compare", compareHint, "--grace %q: %v", g, err)
		}
		if named {
			perGrace[name] = d
		} else {
			defaultGrace = d
		}
	}
	defaultProto, perProto := []string(nil), map[string][]string{}
	for _, p := range protocols {
		name, v, named := strings.Cut(p, "=")
		if !named {
			name, v = "", p
		}
		vs, err := parseCompareProtocol(v)
		if err != nil {
			return usageError(stderr, "compare", compareHint, "%v", err)
		}
		if named {
			perProto[name] = vs
		} else {
			defaultProto = vs
		}
	}
	dialOpts, err := dialF.dialOptions()
	if err != nil {
		return usageError(stderr, "compare", compareHint, "%v", err)
	}
	var list []comparedBroker
	anyTLS, anyWS := false, false
	for _, n := range brokers.names {
		b, err := parseCompared(n, brokers.vals[n])
		if err != nil {
			return usageError(stderr, "compare", compareHint, "%v", err)
		}
		if !b.inproc {
			// The TLS flags apply to the TLS URLs, --header to the
			// WebSocket ones: brokers compared need not share a transport.
			u, _ := transport.Parse(b.dial)
			b.transport = optionsFor(dialOpts, u)
			anyTLS, anyWS = anyTLS || u.Secure(), anyWS || u.WebSocket()
		}
		if b.username == "" {
			b.username, b.password = *username, firstNonEmpty(b.password, *password)
		}
		if p := profiles.vals[n]; p != "" {
			if _, err := os.Stat(p); err != nil {
				return usageError(stderr, "compare", compareHint, "--profile %s=%s: %v", n, p, err)
			}
			b.profile = p
		}
		b.grace = firstNonEmpty(perGrace[n], defaultGrace)
		b.versions = defaultProto
		if vs, ok := perProto[n]; ok {
			b.versions = vs
		}
		list = append(list, b)
	}
	for _, n := range profiles.names {
		if _, ok := brokers.vals[n]; !ok {
			return usageError(stderr, "compare", compareHint, "--profile %s: no --broker named %s", n, n)
		}
	}
	for n := range perGrace {
		if _, ok := brokers.vals[n]; !ok {
			return usageError(stderr, "compare", compareHint, "--grace %s: no --broker named %s", n, n)
		}
	}
	for n := range perProto {
		if _, ok := brokers.vals[n]; !ok {
			return usageError(stderr, "compare", compareHint, "--protocol %s: no --broker named %s", n, n)
		}
	}
	sc := compareScenario()
	if *scenario != "" {
		var err error
		if sc, err = loadgen.LoadScenario(*scenario, sc); err != nil {
			return usageError(stderr, "compare", compareHint, "%v", err)
		}
	}
	if *duration > 0 {
		sc.Duration = *duration
	}
	if !*skipLoad {
		for _, b := range list {
			one := sc
			one.Username, one.Password = b.username, b.password
			if err := one.Validate(); err != nil {
				return usageError(stderr, "compare", compareHint, "%s: %v", b.name, err)
			}
		}
	}
	switch {
	case !dialOpts.TLS.IsZero() && !anyTLS:
		return usageError(stderr, "compare", compareHint, "%s: no --broker is a TLS URL (tls://, mqtts://, wss://)", dialFlagSet(fs))
	case len(dialOpts.WebSocket.Headers) > 0 && !anyWS:
		return usageError(stderr, "compare", compareHint, "--header: no --broker is a WebSocket URL (ws://, wss://)")
	}
	warnInsecure(stderr, "compare", dialOpts)
	// Every broker must be there before hours of work begin.
	for i, b := range list {
		if b.inproc {
			continue
		}
		d, err := transport.NewDialer(b.dial, b.transport)
		if err != nil {
			return usageError(stderr, "compare", compareHint, "%v", transport.FlagError("--broker", err))
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nc, err := d.DialContext(dctx)
		cancel()
		if err != nil {
			return usageError(stderr, "compare", "", "broker %s (%s) is unreachable: %v", b.name, b.url, err)
		}
		if v, cipher, ok := transport.TLSInfo(nc); ok {
			list[i].tlsInfo = v + ", " + cipher
		}
		nc.Close()
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "compare-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageError(stderr, "compare", "", "%v", err)
	}

	cmp := &reports.Comparison{Kind: "comparison", Started: time.Now(), Seed: *seed}
	// cmp5 holds the 5.0 conformance results, one broker per --broker.
	cmp5 := &reports.Comparison{Kind: "comparison", Started: cmp.Started, Seed: *seed}
	var runs []versionRun
	any5 := false
	save := func() {
		cmp.Duration = time.Since(cmp.Started)
		if err := cmp.WriteJSON(filepath.Join(dir, "compare.json")); err != nil {
			fmt.Fprintf(stderr, "mqttbench compare: writing compare.json: %v\n", err)
		}
		if any5 {
			cmp5.Duration = cmp.Duration
			if err := cmp5.WriteJSON(filepath.Join(dir, "compare-5.0.json")); err != nil {
				fmt.Fprintf(stderr, "mqttbench compare: writing compare-5.0.json: %v\n", err)
			}
		}
	}
	for _, b := range list {
		if ctx.Err() != nil {
			break
		}
		cb := reports.ComparedBroker{Name: b.name, URL: b.url, Profile: b.profile}
		cb5 := cb
		run := versionRun{name: b.name, byVersion: map[string]*reports.Conformance{}}
		target, stop, err := b.listen()
		if err != nil {
			cb.Errors = append(cb.Errors, err.Error())
			cmp.Brokers = append(cmp.Brokers, cb)
			cmp5.Brokers = append(cmp5.Brokers, cb5)
			runs = append(runs, run)
			continue
		}
		bdir := filepath.Join(dir, b.name)
		if err := os.MkdirAll(bdir, 0o755); err != nil {
			stop()
			return usageError(stderr, "compare", "", "%v", err)
		}
		if !*skipConform {
			tlsNote := ""
			if b.tlsInfo != "" {
				tlsNote = " (" + b.tlsInfo + ")"
			}
			versions := b.versions
			if len(versions) == 0 {
				versions = []string{proto311}
				if ok, why := probe5(ctx, b, target); ok {
					versions = append(versions, proto5)
				} else {
					run.notSupported = why
				}
			}
			fmt.Fprintf(stderr, "mqttbench compare: %s: conformance against %s%s, MQTT %s\n", b.name, b.url, tlsNote, joinVersions(versions))
			for _, v := range versions {
				if ctx.Err() != nil {
					break
				}
				into := &cb
				if v == proto5 {
					into, any5 = &cb5, true
				}
				if err := compareConform(ctx, b, target, bdir, v, *seed, focus, *labels, stderr); err != nil {
					into.Errors = append(into.Errors, "conformance "+v+": "+err.Error())
				}
				if c, err := reports.ReadConformance(filepath.Join(bdir, conformFile(v, ".json"))); err == nil {
					into.Conformance = filepath.Join(b.name, conformFile(v, ".json"))
					run.byVersion[v] = c
				}
			}
		}
		if !*skipLoad && ctx.Err() == nil {
			fmt.Fprintf(stderr, "mqttbench compare: %s: load, %d publishers → %d subscribers, QoS %d, %g msg/s for %s\n",
				b.name, sc.Publishers, sc.Subscribers, sc.QoS, sc.TotalRate(), sc.Duration)
			if err := compareLoad(ctx, b, sc, target, filepath.Join(bdir, "load"), stderr); err != nil {
				cb.Errors = append(cb.Errors, "load: "+err.Error())
			}
			if _, err := os.Stat(filepath.Join(bdir, "load", loadgen.SummaryFile)); err == nil {
				cb.Load = filepath.Join(b.name, "load")
			}
		}
		stop()
		cmp.Brokers = append(cmp.Brokers, cb)
		cmp5.Brokers = append(cmp5.Brokers, cb5)
		runs = append(runs, run)
		save() // partial results survive a later failure
	}
	cmp.Interrupted = ctx.Err() != nil
	save()

	entries, err := readEntries([]string{filepath.Join(dir, "compare.json")})
	if err != nil {
		return usageError(stderr, "compare", "", "%v", err)
	}
	html := filepath.Join(dir, "report.html")
	if err := writeHTMLFile(html, func(w io.Writer) error { return reports.WriteComparisonHTML(w, entries) }); err != nil {
		return usageError(stderr, "compare", "", "writing %s: %v", html, err)
	}
	htmls := []string{html}
	var entries5 []reports.Entry
	if any5 {
		if entries5, err = readEntries([]string{filepath.Join(dir, "compare-5.0.json")}); err != nil {
			return usageError(stderr, "compare", "", "%v", err)
		}
		html5 := filepath.Join(dir, "report-5.0.html")
		if err := writeHTMLFile(html5, func(w io.Writer) error { return reports.WriteComparisonHTML(w, entries5) }); err != nil {
			return usageError(stderr, "compare", "", "writing %s: %v", html5, err)
		}
		htmls = append(htmls, html5)
	}
	// Conformance side by side per version, then load, fuzz and errors.
	if !*skipConform {
		versions := []string{proto311}
		if any5 {
			versions = append(versions, proto5)
		}
		writeConformanceByVersion(stdout, runs, versions)
	}
	rest := make([]reports.Entry, len(entries))
	for i, e := range entries {
		e.Conformance = nil
		rest[i] = e
	}
	for _, e := range entries5 {
		for _, err := range e.Errors {
			rest = append(rest, reports.Entry{Name: e.Name, Errors: []string{err}})
		}
	}
	reports.WriteComparisonTable(stdout, rest)
	for _, h := range htmls {
		fmt.Fprintf(stdout, "report: %s\n", h)
	}
	if cmp.Interrupted {
		return exitInterrupted
	}
	for _, e := range append(entries, entries5...) {
		if !e.OK() {
			return exitFailures
		}
	}
	return exitOK
}

// listen returns the URL to dial the broker at, starting the in-process
// broker on a loopback port for the duration of its runs.
func (b comparedBroker) listen() (string, func(), error) {
	if !b.inproc {
		return b.dial, func() {}, nil
	}
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the in-process broker: %v", err)
	}
	return "tcp://" + srv.Addrs()[0].String(), func() { srv.Close() }, nil
}

// selfExe is this binary, which runs each conformance suite (tests
// replace the test binary's behaviour through TestMain).
var selfExe = os.Executable

// compareConform runs mqttbench conform of one protocol version against
// one broker (at url) in a child process, results in dir (conform.json,
// conform.xml, conform.txt; conform-5.0.* for 5.0).
// The password and any WebSocket headers go through the environment,
// never the command line.
func compareConform(ctx context.Context, b comparedBroker, url, dir, version string, seed uint64, focus []string, labels string, stderr io.Writer) error {
	exe, err := selfExe()
	if err != nil {
		return err
	}
	args := []string{"conform", "--broker", url, "--protocol", version, "--seed", fmt.Sprint(seed),
		"--json", filepath.Join(dir, conformFile(version, ".json")), "--junit", filepath.Join(dir, conformFile(version, ".xml"))}
	args = append(args, dialArgs(b.transport)...)
	if b.profile != "" {
		args = append(args, "--profile", b.profile)
	}
	if b.grace != "" {
		args = append(args, "--grace", b.grace)
	}
	if b.username != "" {
		args = append(args, "--username", b.username)
	}
	for _, f := range focus {
		args = append(args, "--focus", f)
	}
	if labels != "" {
		args = append(args, "--label-filter", labels)
	}
	txt, err := os.Create(filepath.Join(dir, conformFile(version, ".txt")))
	if err != nil {
		return err
	}
	defer txt.Close()
	var tail bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), "MQTTBENCH_PASSWORD="+b.password), dialEnv(b.transport)...)
	cmd.Stdout = txt
	cmd.Stderr = io.MultiWriter(stderr, &tail)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The child writes its partial results on SIGINT.
		cmd.Process.Signal(os.Interrupt) //nolint:errcheck
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			err = <-done
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case exitFailures:
			return nil // failures are the result, not an error
		case exitInterrupted:
			return errors.New("interrupted")
		case exitUsage:
			return fmt.Errorf("%s", lastLine(tail.String()))
		}
	}
	return err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "mqttbench") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// compareLoad runs the load scenario against one broker (at url),
// results in dir.
func compareLoad(ctx context.Context, b comparedBroker, sc loadgen.Scenario, url, dir string, stderr io.Writer) error {
	sc.Brokers = []string{url}
	sc.Username, sc.Password = b.username, b.password
	if err := sc.Validate(); err != nil {
		return err
	}
	if err := loadgen.Preflight(sc, loadgen.Shard{}, 1); err != nil {
		return err
	}
	dial, err := loadgen.ShardDialer(sc.Brokers, sc.SourceIPs, loadgen.Shard{}, b.transport)
	if err != nil {
		return err
	}
	if err := loadgen.Probe(ctx, sc, dial); err != nil {
		return err
	}
	opts := loadgen.Options{Out: dir, Target: b.url, Transport: b.transport}
	opts.Progress = func(s reports.LoadSecond) {
		if int(s.T)%5 == 0 {
			fmt.Fprintf(stderr, "  %s [%4.0fs %-10s] sent %d/s  delivered %d/s  p99 e2e %s  connections %d\n",
				b.name, s.T, s.Phase, s.Sent, s.Received, micros(s.P99E2E), s.Connections)
		}
	}
	_, err = loadgen.Run(ctx, sc, opts)
	return err
}
