package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

const (
	loadHint  = "mqttbench load --publishers 10 --subscribers 10 --qos 1 --rate 1000 --duration 10s"
	shardHint = "mqttbench load --broker tcp://10.0.0.5:1883 --connections 100000 --shard 0/4 --start-at 2026-01-02T15:04:05Z"
)

// shardFromFlags reads --shard i/N, or JOB_COMPLETION_INDEX (set by a
// Kubernetes Indexed Job) with the count from --shards or MQTTBENCH_SHARDS.
func shardFromFlags(flagV string, count int) (loadgen.Shard, error) {
	if flagV != "" {
		return loadgen.ParseShard(flagV)
	}
	idx := os.Getenv("JOB_COMPLETION_INDEX")
	if count == 0 {
		if v := os.Getenv("MQTTBENCH_SHARDS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return loadgen.Shard{}, fmt.Errorf("MQTTBENCH_SHARDS=%q: want a count of 1 or more", v)
			}
			count = n
		}
	}
	switch {
	case idx == "" && count == 0:
		return loadgen.Shard{}, nil
	case idx == "":
		return loadgen.Shard{}, fmt.Errorf("a shard count (%d) without JOB_COMPLETION_INDEX or --shard: which shard is this?", count)
	case count == 0:
		return loadgen.Shard{}, fmt.Errorf("JOB_COMPLETION_INDEX=%s without a shard count: give --shards N or MQTTBENCH_SHARDS", idx)
	}
	return loadgen.ParseShard(idx + "/" + strconv.Itoa(count))
}

// runLoad runs a load scenario: flags override the scenario file, which
// overrides the defaults. Exit codes: 0 clean, 1 a verification violation,
// 2 a bad flag, scenario or unreachable broker, 130 interrupted (results
// still written).
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	def := loadgen.DefaultScenario()
	brokers := fs.String("broker", "", "broker URLs, comma separated: tcp://, tls://, ws://, wss://host:port[/path] or host:port (default: the in-process reference broker over net.Pipe)")
	dialF := addDialFlags(fs)
	var ct loadgen.ClientTLS
	fs.StringVar(&ct.CertTemplate, "cert-template", "", "TLS: PEM client certificate per connection, {i} the connection index from 0, e.g. 'certs/client-{i}.pem' (its key: the same name with -key before .pem)")
	fs.StringVar(&ct.KeyTemplate, "key-template", "", "TLS: PEM key per connection when not named after --cert-template, e.g. 'keys/{i}.key'")
	fs.StringVar(&ct.MintCA, "client-ca-cert", "", "TLS: PEM CA certificate that signs one client certificate per connection at the start (needs --client-ca-key)")
	fs.StringVar(&ct.MintKey, "client-ca-key", "", "TLS: PEM private key of --client-ca-cert")
	fs.StringVar(&ct.CommonName, "cert-cn", "", "TLS: common name of minted certificates, {i} the connection index (default "+loadgen.DefaultCommonName+")")
	fs.BoolVar(&ct.Resume, "tls-resume", false, "TLS: resume sessions (shared by connections without certificates of their own; with them, each reconnect resumes its own)")
	scenario := fs.String("scenario", "", "scenario file (YAML); flags override it")
	tolerate := fs.String("tolerate", "", "statements the broker may break without the connection being closed, comma separated: "+strings.Join(loadgen.Tolerable, ", ")+" (acknowledgement reason codes); each breach is counted and shown, the run goes on")
	profile := fs.String("profile", "", "broker profile (YAML, as conform reads it): its queue_limit judges offline subscribers' backlogs, its username and password connect; flags and the scenario win")
	connections := fs.Int("connections", 0, "total connections; the ones beyond publishers and subscribers stay idle (default publishers+subscribers)")
	publishers := fs.Int("publishers", def.Publishers, "publishing connections")
	subscribers := fs.Int("subscribers", def.Subscribers, "subscribing connections")
	qos := fs.Int("qos", int(def.QoS), "QoS of every PUBLISH and SUBSCRIBE: 0, 1 or 2")
	rate := fs.Float64("rate", def.Rate, "offered messages per second over all publishers")
	ratePer := fs.Float64("rate-per-publisher", 0, "offered messages per second per publisher (replaces --rate)")
	payload := fs.Int("payload", def.Payload, fmt.Sprintf("payload bytes (at least %d for the sequence header)", loadgen.HeaderSize))
	topicT := fs.String("topic", def.Topic, "publish topic template: {p} publisher index, {i} connection index; no placeholder: one shared topic")
	filter := fs.String("filter", "", "subscription filter template (default: --topic, {p} = subscriber index mod publishers)")
	duration := fs.Duration("duration", def.Duration, "length of the publishing phase")
	ramp := fs.Float64("ramp", def.Ramp, "connections opened per second (0: all at once)")
	drain := fs.Duration("drain", def.Drain, "longest wait for outstanding deliveries after publishing")
	maxLag := fs.Duration("max-lag", def.MaxLag, "sends due longer ago than this are counted as missed instead of sent")
	keepalive := fs.Duration("keepalive", def.Keepalive, "MQTT keep alive")
	clean := fs.Bool("clean-session", def.CleanSession, "connect with clean session (false: persistent sessions, resumed on reconnect)")
	inflight := fs.Int("inflight", def.Inflight, "unacknowledged QoS 1/2 messages per publisher (at most 65535)")
	connTimeout := fs.Duration("connect-timeout", def.ConnectTimeout, "time allowed for CONNACK and SUBACK")
	username := fs.String("username", "", "user name for every CONNECT")
	password := fs.String("password", "", "password for every CONNECT (or MQTTBENCH_PASSWORD); never logged or written to results")
	sourceIPs := fs.String("source-ips", "", "local addresses to bind TCP connections to, round robin: 127.0.0.2-127.0.0.40[,addr...]")
	out := fs.String("out", "", "results directory (default results/load-YYYYMMDD-HHMMSS)")
	seed := fs.Uint64("seed", 0, "seed for payload filler and reconnect jitter")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's CPU profile here (is the generator the bottleneck?)")
	workers := fs.Int("workers", 0, "worker processes to spread TCP connections over (default: as many as the file-descriptor limit needs)")
	shardFlag := fs.String("shard", "", "run only shard i/N of the scenario (default from JOB_COMPLETION_INDEX and --shards, as a Kubernetes Indexed Job sets them)")
	shards := fs.Int("shards", 0, "shard count when the index comes from JOB_COMPLETION_INDEX (or MQTTBENCH_SHARDS)")
	startAt := fs.String("start-at", "", "wall-clock time to start at, RFC 3339 (shards need it to publish together)")
	runIDFlag := fs.String("run-id", "", "name shared by a run's shards, for client ids and message headers (or MQTTBENCH_RUN_ID; default from --start-at)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics of the run at http://HOST:PORT/metrics while it goes (port 0: any free port)")
	metricsLinger := fs.Duration("metrics-linger", 0, "keep serving --metrics-addr this long after the run, for a last scrape")
	v5Flags := addProtocolFlags(fs)
	sharedF := addSharedFlags(fs)
	kf := addKneeFlags(fs)
	faultF := addFaultFlags(fs)
	churnF := addChurnFlags(fs)
	if code, ok := parseFlags(fs, args, stderr, loadHint); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "load", loadHint, "unexpected argument %q", fs.Arg(0))
	}

	sc := def
	if *scenario != "" {
		var err error
		if sc, err = loadgen.LoadScenario(*scenario, def); err != nil {
			return usageError(stderr, "load", loadHint, "%v", err)
		}
	}
	var flagErr error
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		switch f.Name {
		case "broker":
			sc.Brokers = nil
			if *brokers != "inproc" {
				sc.Brokers = commaList(*brokers)
			}
		case "connections":
			sc.Connections = *connections
		case "publishers":
			sc.Publishers = *publishers
		case "subscribers":
			sc.Subscribers = *subscribers
		case "qos":
			if *qos < 0 || *qos > 2 {
				flagErr = fmt.Errorf("--qos is %d; want 0, 1 or 2", *qos)
			}
			sc.QoS = packetgen.QoS(*qos)
		case "rate":
			sc.Rate, sc.RatePerPublisher = *rate, 0
		case "rate-per-publisher":
			sc.RatePerPublisher = *ratePer
		case "payload":
			sc.Payload = *payload
		case "topic":
			sc.Topic = *topicT
		case "filter":
			sc.Filter = *filter
		case "duration":
			sc.Duration = *duration
		case "ramp":
			sc.Ramp = *ramp
		case "drain":
			sc.Drain = *drain
		case "max-lag":
			sc.MaxLag = *maxLag
		case "keepalive":
			sc.Keepalive = *keepalive
		case "clean-session":
			sc.CleanSession = *clean
		case "inflight":
			sc.Inflight = *inflight
		case "connect-timeout":
			sc.ConnectTimeout = *connTimeout
		case "username":
			sc.Username = *username
		case "password":
			sc.Password = *password
		case "source-ips":
			ips, err := loadgen.ParseSourceIPs(*sourceIPs)
			if err != nil {
				flagErr = err
			}
			sc.SourceIPs = ips
		case "seed":
			sc.Seed = *seed
		case "tolerate":
			sc.Tolerate = commaList(*tolerate)
		default:
			if err := v5Flags.apply(f.Name, &sc); err != nil {
				flagErr = err
			}
			if err := churnF.apply(f.Name, &sc); err != nil {
				flagErr = err
			}
			sharedF.apply(f.Name, &sc)
		}
	})
	if flagErr != nil {
		return usageError(stderr, "load", loadHint, "%v", flagErr)
	}
	if *profile != "" {
		if err := applyLoadProfile(*profile, &sc, set); err != nil {
			return usageError(stderr, "load", loadHint, "%v", err)
		}
	}
	if sc.Password == "" {
		sc.Password = os.Getenv("MQTTBENCH_PASSWORD")
	}
	if err := sc.Validate(); err != nil {
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	if err := sc.CheckSharedTarget(len(sc.Brokers) == 0); err != nil {
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	slo, err := kf.parseSLO()
	if err != nil {
		return usageError(stderr, "load", findMaxHint, "%v", err)
	}
	search, err := kf.search(fs, &sc)
	if err != nil {
		return usageError(stderr, "load", findMaxHint, "%v", err)
	}
	limits, err := kf.parseSaturation()
	if err != nil {
		return usageError(stderr, "load", findMaxHint, "%v", err)
	}
	dialOpts, err := dialF.dialOptions()
	if err != nil {
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	if set := dialFlagSet(fs); set != "" && len(sc.Brokers) == 0 {
		return usageError(stderr, "load", loadHint, "%s: the in-process broker is reached over net.Pipe; give --broker", set)
	}
	if err := ct.Validate(sc.Brokers, dialOpts.TLS); err != nil {
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	opts := loadgen.Options{Transport: dialOpts, TLS: ct, SLO: slo, Saturation: limits}
	sh, err := shardFromFlags(*shardFlag, *shards)
	if err != nil {
		return usageError(stderr, "load", shardHint, "%v", err)
	}
	if err := sh.Validate(&sc); err != nil {
		return usageError(stderr, "load", shardHint, "%v", err)
	}
	if *startAt != "" {
		t, err := time.Parse(time.RFC3339, *startAt)
		if err != nil {
			return usageError(stderr, "load", shardHint, "--start-at %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", *startAt)
		}
		opts.StartAt = t
	}
	runName := *runIDFlag
	if runName == "" {
		runName = os.Getenv("MQTTBENCH_RUN_ID")
	}
	if !sh.Whole() {
		switch {
		case *startAt == "":
			return usageError(stderr, "load", shardHint, "--shard %s needs --start-at so that the shards publish together", sh)
		case *workers > 1:
			return usageError(stderr, "load", shardHint, "--shard and --workers do not combine: a shard is one process")
		case len(sc.Brokers) == 0:
			return usageError(stderr, "load", shardHint, "--shard needs --broker: each in-process broker is private to its process")
		}
		if runName == "" {
			runName = *startAt
		}
		opts.Shard = sh
		opts.Coordinator = &loadgen.ClockCoordinator{Start: opts.StartAt, Sc: &sc}
	}
	if runName != "" {
		opts.RunID = loadgen.RunIDFrom(runName)
	}
	nw := *workers
	if nw < 0 {
		return usageError(stderr, "load", loadHint, "--workers is %d; want 1 or more", nw)
	}
	if nw > 1 && len(sc.Brokers) == 0 {
		return usageError(stderr, "load", loadHint, "--workers needs --broker: the in-process broker runs in this process (it holds 100k connections over net.Pipe alone)")
	}
	if nw == 0 {
		nw = 1
		if capacity, ok := loadgen.ProcessCapacity(); ok && len(sc.Brokers) > 0 && sh.Whole() && sc.TotalConnections() > capacity {
			nw = (sc.TotalConnections() + capacity - 1) / capacity
		}
	}
	if nw > sc.TotalConnections() {
		return usageError(stderr, "load", loadHint, "--workers %d is more than the %d connections", nw, sc.TotalConnections())
	}
	if nw > 1 {
		if err := (loadgen.Shard{Index: 0, Count: nw}).Validate(&sc); err != nil {
			return usageError(stderr, "load", loadHint, "%v", err)
		}
	}
	if err := churnConflict(&sc, !sh.Whole(), nw); err != nil {
		return usageError(stderr, "load", churnHint, "%v", err)
	}
	if err := loadgen.Preflight(sc, sh, nw); err != nil {
		return usageError(stderr, "load", "", "%v", err)
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "load-"+time.Now().Format("20060102-150405"))
	}
	fr, err := startFaults(ctx, fs, faultF, loadSetup{sc: &sc, opts: &opts, shard: sh, workers: nw, dir: dir, findMax: *kf.findMax})
	if err != nil {
		return usageError(stderr, "load", faultHint, "%v", err)
	}
	defer fr.close()
	dialOpts = opts.Transport // through the fault proxy, if there is one
	tlsInfo := ""
	if len(sc.Brokers) > 0 {
		dial, err := loadgen.ProbeDialer(sc, sh, opts)
		if err != nil {
			return usageError(stderr, "load", loadHint, "%v", transport.FlagError("--broker", err))
		}
		warnInsecure(stderr, "load", dialOpts)
		if err := loadgen.Probe(ctx, sc, dial); err != nil {
			if ctx.Err() != nil {
				return exitInterrupted
			}
			return usageError(stderr, "load", "", "%v", err)
		}
		tlsInfo = loadTLSNote(ctx, dial, sc.Brokers[0])
	}

	var ms *metricsServer
	if *metricsAddr != "" {
		if ms, err = startMetrics(*metricsAddr, *metricsLinger, metricsInfo(&sc, sh, opts.RunID)); err != nil {
			return usageError(stderr, "load", loadHint, "%v", err)
		}
		defer ms.stop(ctx, stderr)
		opts.Live = ms.update
	}

	target := "the in-process broker (net.Pipe)"
	if len(sc.Brokers) > 0 {
		shown := make([]string, len(sc.Brokers))
		for i, b := range sc.Brokers {
			shown[i] = transport.Redact(b)
		}
		target = strings.Join(shown, ",")
	}
	if tlsInfo != "" {
		target += " (" + tlsInfo + ")"
	}
	spread := ""
	switch {
	case nw > 1:
		spread = fmt.Sprintf(" over %d worker processes", nw)
	case !sh.Whole():
		spread = fmt.Sprintf(", shard %s (%d connections)", sh, sh.Size(sc.TotalConnections()))
	}
	if *kf.findMax {
		switch {
		case !sh.Whole() || *startAt != "":
			return usageError(stderr, "load", findMaxHint, "--find-max runs its steps one after another in one place: it does not combine with --shard or --start-at")
		case *cpuProfile != "":
			return usageError(stderr, "load", findMaxHint, "--cpuprofile does not combine with --find-max; profile a single run at the rate in question")
		}
		if *out == "" {
			dir = filepath.Join("results", "knee-"+time.Now().Format("20060102-150405"))
		}
		wr := workerRun{workers: nw, quiet: *quiet, runID: opts.RunID, transport: dialOpts, tls: ct, slo: slo, saturation: limits}
		return runFindMax(ctx, findMaxRun{sc: sc, opts: opts, search: search, slo: slo, workers: wr, dir: dir, quiet: *quiet, target: target + spread}, stdout, stderr)
	}
	fmt.Fprintf(stderr, "mqttbench load: %d connections (%d publishers, %d subscribers) to %s%s, %sQoS %d, %g msg/s for %s; results in %s\n",
		sc.TotalConnections(), sc.Publishers, sc.Subscribers, target, spread, protocolNote(&sc), sc.QoS, sc.TotalRate(), sc.Duration, dir)
	if ms != nil {
		fmt.Fprintf(stderr, "metrics: %s\n", ms.url())
	}
	if nw > 1 {
		return runWorkers(ctx, sc, workerRun{workers: nw, dir: dir, quiet: *quiet, startAt: opts.StartAt, runID: opts.RunID, transport: dialOpts, tls: ct, metrics: ms, slo: slo, saturation: limits, faults: fr}, stdout, stderr)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usageError(stderr, "load", "", "%v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usageError(stderr, "load", "", "%v", err)
		}
		defer pprof.StopCPUProfile()
	}
	opts.Out = dir
	if !*quiet {
		var errs, missed uint64
		n := sh.Size(sc.TotalConnections())
		opts.Progress = func(s reports.LoadSecond) {
			errs += s.Errors
			missed += s.Missed
			fmt.Fprintf(stderr, "[%5.0fs %-7s] conns %d/%d  sent %d/s  recv %d/s  p99 e2e %s  errors %d  missed %d\n",
				s.T, s.Phase, s.Connections, n, s.Sent, s.Received, micros(s.P99E2E), errs, missed)
		}
	}
	fr.hook(&opts)
	res, err := loadgen.Run(ctx, sc, opts)
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	if err := fr.recordFile(res.Summary, res.Verify, dir); err != nil {
		return usageError(stderr, "load", "", "writing the faults to the summary: %v", err)
	}
	return printLoad(stdout, res.Summary, dir)
}

// loadTLSNote dials connection 0 as the run will (its certificate
// included) and names the TLS version and cipher suite negotiated; ""
// for a plain URL or a failed dial (the probe has reported that).
func loadTLSNote(ctx context.Context, dial loadgen.DialFunc, broker string) string {
	u, err := transport.Parse(broker)
	if err != nil || !u.Secure() {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := dial(ctx, 0)
	if err != nil {
		return ""
	}
	defer nc.Close()
	return tlsDescription(nc, u)
}

// printLoad prints a summary's tables, notes and violations and returns
// the exit code it calls for.
func printLoad(stdout io.Writer, sum *reports.Load, dir string) int {
	reports.WriteLoadTable(stdout, sum)
	for _, n := range sum.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, t := range sum.Tolerated {
		fmt.Fprintf(stdout, "TOLERATED: [%s] broken %d times, the run went on (--tolerate); first: %s\n", t.Statement, t.Count, t.Sample)
	}
	for _, v := range sum.Violations {
		fmt.Fprintf(stdout, "VIOLATION: %s\n", v)
	}
	if n := sum.Errors["protocol"]; n > 0 {
		fmt.Fprintf(stdout, "PROTOCOL ERROR: the broker broke the protocol %d times; first: %s\n", n, sum.ErrorSample["protocol"])
	}
	printGeneratorSLO(stdout, sum)
	fmt.Fprintf(stdout, "results: %s\n", dir)
	switch {
	case sum.Interrupted:
		return exitInterrupted
	case !sum.OK():
		return exitFailures
	}
	return exitOK
}

func micros(v int64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fms", float64(v)/1000)
	}
	return fmt.Sprintf("%dµs", v)
}

// commaList is a comma-separated flag's items, trimmed, empty ones left
// out.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
