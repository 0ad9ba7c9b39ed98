package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/fuzz"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

const fuzzHint = "mqttbench fuzz --broker tcp://127.0.0.1:1883 --duration 2m --pid 1234"

// runFuzz sends seeded malformed, unusual and mutated packets to a broker
// (the in-process one by default), or replays one reproducer.
func runFuzz(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
	brokerURL := fs.String("broker", "", "broker under test: tcp://, tls://, ws://, wss://host:port[/path] or host:port (default: the in-process reference broker)")
	dialF := addDialFlags(fs)
	duration := fs.Duration("duration", 0, "how long to fuzz (default 1m unless --cases is given)")
	cases := fs.Uint64("cases", 0, "how many cases to run (instead of --duration)")
	seed := fs.Uint64("seed", 0, "seed: case i of a seed is always the same bytes (0: from the clock; printed)")
	proto := fs.String("protocol", "3.1.1", "protocol version: 3.1.1 or 5 (3.1 too)")
	pid := fs.Int("pid", 0, "broker process ID: a crash is also the process gone, and RSS growth is watched")
	rssBound := fs.Int64("rss-bound", 256, "RSS growth over the start, in MiB, that is a finding (with --pid)")
	out := fs.String("out", "", "directory for fuzz.json, fuzz.html and reproducers/ (default results/fuzz-<time>)")
	replay := fs.String("replay", "", "replay this reproducer file and report whether it still reproduces")
	workers := fs.Int("workers", 4, "cases run concurrently")
	deadline := fs.Duration("deadline", 5*time.Second, "a liveness probe unanswered this long is a hang")
	restart := fs.String("restart", "", "shell command that starts the broker again after a crash or hang and prints \"PORT PID\" (as scripts/brokers/*.sh start do); the old --pid is killed first")
	if code, ok := parseFlags(fs, args, stderr, fuzzHint); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "fuzz", fuzzHint, "unexpected argument %q", fs.Arg(0))
	}
	v, err := packetgen.ParseVersion(*proto)
	if err != nil {
		return usageError(stderr, "fuzz", fuzzHint, "--protocol: %v", err)
	}
	if *duration < 0 || *workers < 1 || *deadline <= 0 || *rssBound <= 0 || *pid < 0 {
		return usageError(stderr, "fuzz", fuzzHint, "--duration, --workers, --deadline, --rss-bound and --pid must be positive")
	}
	if *duration > 0 && *cases > 0 {
		return usageError(stderr, "fuzz", fuzzHint, "give --duration or --cases, not both")
	}
	if *duration == 0 && *cases == 0 {
		*duration = time.Minute
	}
	if *restart != "" && *brokerURL == "" {
		return usageError(stderr, "fuzz", fuzzHint, "--restart needs --broker")
	}
	if *pid > 0 && !pidExists(*pid) {
		return usageError(stderr, "fuzz", fuzzHint, "--pid %d: no such process", *pid)
	}

	dialOpts, err := dialF.dialOptions()
	if err != nil {
		return usageError(stderr, "fuzz", fuzzHint, "%v", err)
	}
	if set := dialFlagSet(fs); set != "" && (*brokerURL == "" || *brokerURL == "inproc") {
		return usageError(stderr, "fuzz", fuzzHint, "%s: the in-process broker listens on plain TCP; give --broker", set)
	}
	warnInsecure(stderr, "fuzz", dialOpts)
	target, stop, err := fuzzTarget(*brokerURL, dialOpts, *pid, *restart)
	if err != nil {
		return setupError(stderr, "%v", err)
	}
	defer stop()
	timing := fuzz.Timing{Liveness: *deadline}

	if *replay != "" {
		return replayFuzz(ctx, target, *replay, timing, *rssBound<<20, stdout, stderr)
	}

	if err := fuzz.Preflight(ctx, target, v, timing.Liveness); err != nil {
		return setupError(stderr, "%v", err)
	}
	// What TLS the broker negotiates goes into the results.
	var negotiated *reports.ConformanceTLS
	if d, err := transport.NewDialer(*brokerURL, dialOpts); err == nil && d.URL().Secure() {
		if negotiated, err = probeBroker(ctx, d, v, "", ""); err != nil {
			return setupError(stderr, "%v", err)
		}
		fmt.Fprintf(stderr, "mqttbench fuzz: TLS %s\n", negotiated)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *out == "" {
		*out = filepath.Join("results", "fuzz-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return setupError(stderr, "--out: %v", err)
	}
	fmt.Fprintf(stderr, "mqttbench fuzz: %s, MQTT %s, seed %d, %d workers, results in %s\n", target.Name, v, *seed, *workers, *out)
	// Workers log findings while the ticker prints progress: one line at
	// a time.
	var errMu sync.Mutex
	say := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		fmt.Fprintf(stderr, format, args...)
	}
	cfg := fuzz.Config{Target: target, Version: v, Seed: *seed, Cases: *cases, Duration: *duration,
		Workers: *workers, Timing: timing, RSSBound: *rssBound << 20, Out: *out,
		Progress: func(p fuzz.Progress) {
			say("  %6.1fs  %8d cases  %6.0f cases/s  %d findings\n", p.Elapsed.Seconds(), p.Cases, p.Rate, p.Findings)
		},
		Log: func(format string, args ...any) { say("mqttbench fuzz: "+format+"\n", args...) },
	}
	res, err := fuzz.Run(ctx, cfg)
	if err != nil {
		return setupError(stderr, "%v", err)
	}
	res.TLS = negotiated
	status := exitOK
	jsonPath := filepath.Join(*out, "fuzz.json")
	if err := res.WriteJSON(jsonPath); err != nil {
		fmt.Fprintf(stderr, "mqttbench fuzz: writing %s: %v\n", jsonPath, err)
		status = exitUsage
	}
	// The same page as `mqttbench report DIR`, so a run can be looked at
	// without a second command.
	htmlPath := filepath.Join(*out, "fuzz.html")
	err = writeHTMLFile(htmlPath, func(w io.Writer) error {
		return writeReportHTML(w, []reports.Entry{{Name: defaultName(jsonPath), URL: res.Broker, Fuzz: res}})
	})
	if err != nil {
		fmt.Fprintf(stderr, "mqttbench fuzz: writing %s: %v\n", htmlPath, err)
		status = exitUsage
	}
	reports.WriteFuzzTable(stdout, res)
	if res.Stopped != "" {
		fmt.Fprintf(stdout, "stopped early: %s\n", res.Stopped)
	}
	fmt.Fprintln(stdout, res.SummaryLine())
	fmt.Fprintf(stderr, "mqttbench fuzz: seed %d; result %s; report %s\n", res.Seed, jsonPath, htmlPath)
	switch {
	case res.Interrupted:
		return exitInterrupted
	case !res.OK():
		return exitFailures
	}
	return status
}

// setupError prints a one-line error and returns exitUsage.
func setupError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "mqttbench fuzz: %s\n", fmt.Sprintf(format, args...))
	return exitUsage
}

// fuzzTarget is the broker at url (any transport) with opts, or an
// in-process reference broker whose recovered panics count as crashes.
func fuzzTarget(url string, opts transport.Options, pid int, restartCmd string) (*fuzz.Target, func(), error) {
	if url == "" || url == "inproc" {
		watch := &fuzz.PanicWatch{}
		srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Logger: slog.New(watch)})
		if err := srv.Start(); err != nil {
			return nil, nil, fmt.Errorf("starting the in-process broker: %v", err)
		}
		addr := srv.Addrs()[0].String()
		t := fuzz.NewTarget("inproc ("+addr+")", addr, 0)
		t.Panics = watch.Count
		return t, func() { srv.Close() }, nil
	}
	t, err := fuzz.NewURLTarget(transport.Redact(url), url, opts, pid)
	if err != nil {
		return nil, nil, transport.FlagError("--broker", err)
	}
	if restartCmd != "" {
		host, _, _ := net.SplitHostPort(t.Addr())
		t.Restart = func(ctx context.Context) (string, int, error) { return restartBroker(ctx, t.PID(), host, restartCmd) }
	}
	return t, func() {}, nil
}

// restartBroker kills old (when known) and runs cmd, which must print
// "PORT PID" or "HOST:PORT PID" on its first line of output.
func restartBroker(ctx context.Context, old int, host, cmd string) (string, int, error) {
	if old > 0 {
		syscall.Kill(old, syscall.SIGKILL) //nolint:errcheck
		for deadline := time.Now().Add(2 * time.Second); pidExists(old) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
	if err != nil {
		return "", 0, fmt.Errorf("%s: %v", cmd, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	f := strings.Fields(line)
	if len(f) < 1 {
		return "", 0, fmt.Errorf("%s printed nothing; want \"PORT PID\"", cmd)
	}
	addr := f[0]
	if !strings.Contains(addr, ":") {
		addr = net.JoinHostPort(host, addr)
	}
	newPID := 0
	if len(f) > 1 {
		newPID, _ = strconv.Atoi(f[1])
	}
	return addr, newPID, nil
}

func pidExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// replayFuzz replays one reproducer: exit 1 when it still reproduces.
func replayFuzz(ctx context.Context, t *fuzz.Target, path string, tm fuzz.Timing, bound int64, stdout, stderr io.Writer) int {
	rep, err := fuzz.ReadReproducer(path)
	if err != nil {
		return setupError(stderr, "--replay: %v", err)
	}
	c, _ := rep.ToCase()
	fmt.Fprintf(stderr, "mqttbench fuzz: replaying %s (%s, found on %s) against %s\n", path, rep.Finding, rep.Broker, t.Name)
	if err := fuzz.Preflight(ctx, t, c.Version, tm.Liveness); err != nil && c.Phase == packetgen.PhaseAfterConnect {
		return setupError(stderr, "%v", err)
	} else if err != nil && strings.HasPrefix(err.Error(), "cannot reach") {
		return setupError(stderr, "%v", err)
	}
	before := t.RSS()
	got, err := fuzz.Replay(ctx, t, rep, tm)
	if err != nil {
		return setupError(stderr, "--replay: %v", err)
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	if rep.Finding == fuzz.ResourceGrowth && t.PID() > 0 {
		if grown := got.Observation.RSS - before; grown > bound {
			got.Finding, got.Reproduces = fuzz.ResourceGrowth, true
			got.Why = fmt.Sprintf("RSS grew by %d MiB during the case (bound %d MiB)", grown>>20, bound>>20)
		}
	}
	fmt.Fprintf(stdout, "%s\n", c)
	switch {
	case got.Skipped != "" && got.Finding == "":
		fmt.Fprintf(stdout, "could not run: %s\n", got.Skipped)
		return exitUsage
	case got.Reproduces:
		fmt.Fprintf(stdout, "reproduces: %s: %s\n", got.Finding, got.Why)
		return exitFailures
	case got.Finding != "":
		fmt.Fprintf(stdout, "does not reproduce as %s, but shows %s: %s\n", rep.Finding, got.Finding, got.Why)
		return exitFailures
	}
	fmt.Fprintf(stdout, "does not reproduce: the broker handled it (%s)\n", describe(got.Observation))
	return exitOK
}

func describe(o fuzz.Observation) string {
	s := "connection left open"
	switch {
	case o.Closed:
		s = "connection closed"
	case o.Answered:
		s = "PINGREQ answered"
	}
	if len(o.Received) > 0 {
		s += "; received " + strings.Join(o.Received, ", ")
	}
	return s + fmt.Sprintf("; alive after %s", o.Probe.Took.Round(time.Microsecond))
}
