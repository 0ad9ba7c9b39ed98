package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

const loadHint = "mqttbench load --publishers 10 --subscribers 10 --qos 1 --rate 1000 --duration 10s"

// runLoad runs a load scenario: flags override the scenario file, which
// overrides the defaults. Exit codes: 0 clean, 1 a verification violation,
// 2 a bad flag, scenario or unreachable broker, 130 interrupted (results
// still written).
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	def := loadgen.DefaultScenario()
	brokers := fs.String("broker", "", "broker URLs, tcp://host:port[,tcp://host:port...] (default: the in-process reference broker over net.Pipe)")
	scenario := fs.String("scenario", "", "scenario file (YAML); flags override it")
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
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "broker":
			sc.Brokers = nil
			for _, u := range strings.Split(*brokers, ",") {
				if u = strings.TrimSpace(u); u != "" {
					sc.Brokers = append(sc.Brokers, u)
				}
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
		}
	})
	if flagErr != nil {
		return usageError(stderr, "load", loadHint, "%v", flagErr)
	}
	if sc.Password == "" {
		sc.Password = os.Getenv("MQTTBENCH_PASSWORD")
	}
	if err := sc.Validate(); err != nil {
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	if err := loadgen.Preflight(sc); err != nil {
		return usageError(stderr, "load", "", "%v", err)
	}
	if len(sc.Brokers) > 0 {
		dial, err := loadgen.TCPDialer(sc.Brokers, sc.SourceIPs)
		if err != nil {
			return usageError(stderr, "load", loadHint, "%v", err)
		}
		if err := loadgen.Probe(ctx, sc, dial); err != nil {
			if ctx.Err() != nil {
				return exitInterrupted
			}
			return usageError(stderr, "load", "", "%v", err)
		}
	}

	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "load-"+time.Now().Format("20060102-150405"))
	}
	target := "the in-process broker (net.Pipe)"
	if len(sc.Brokers) > 0 {
		target = strings.Join(sc.Brokers, ",")
	}
	fmt.Fprintf(stderr, "mqttbench load: %d connections (%d publishers, %d subscribers) to %s, QoS %d, %g msg/s for %s; results in %s\n",
		sc.TotalConnections(), sc.Publishers, sc.Subscribers, target, sc.QoS, sc.TotalRate(), sc.Duration, dir)

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
	opts := loadgen.Options{Out: dir}
	if !*quiet {
		var errs, missed uint64
		n := sc.TotalConnections()
		opts.Progress = func(s reports.LoadSecond) {
			errs += s.Errors
			missed += s.Missed
			fmt.Fprintf(stderr, "[%5.0fs %-7s] conns %d/%d  sent %d/s  recv %d/s  p99 e2e %s  errors %d  missed %d\n",
				s.T, s.Phase, s.Connections, n, s.Sent, s.Received, micros(s.P99E2E), errs, missed)
		}
	}
	res, err := loadgen.Run(ctx, sc, opts)
	if err != nil {
		return usageError(stderr, "load", loadHint, "%v", err)
	}
	sum := res.Summary
	reports.WriteLoadTable(stdout, sum)
	for _, n := range sum.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, v := range sum.Violations {
		fmt.Fprintf(stdout, "VIOLATION: %s\n", v)
	}
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
