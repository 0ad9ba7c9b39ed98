package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/loadgen"
)

func loadCLI(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"load"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// short is a run of a few hundred milliseconds that never misses a send.
func short(out string, extra ...string) []string {
	return append([]string{"--duration", "300ms", "--rate", "500", "--max-lag", "0", "--quiet", "--out", out}, extra...)
}

// A clean run: exit 0, the summary table on stdout, results that read back.
func TestLoadClean(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), short(out, "--publishers", "2", "--subscribers", "2", "--qos", "1")...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"publish_ack", "e2e", "p99.9", "delivered / expected", "ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	res, err := loadgen.ReadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Messages.Received == 0 || res.Histograms["e2e"].TotalCount() != int64(res.Summary.Messages.Received) {
		t.Errorf("received %d, e2e histogram %d", res.Summary.Messages.Received, res.Histograms["e2e"].TotalCount())
	}
}

// A broker that breaks the QoS it granted: exit 1 and the violation named.
func TestLoadViolation(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Faults: broker.Faults{DowngradeToQoS0: true}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, stdout, stderr := loadCLI(context.Background(), short(t.TempDir(), "--broker", "tcp://"+srv.Addrs()[0].String(), "--qos", "1")...)
	if code != exitFailures || !strings.Contains(stdout, "VIOLATION: ") || !strings.Contains(stdout, "below QoS 1") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// Bad flags, a bad scenario file and an unreachable broker: exit 2 and a
// one-line error (a hint may follow a usage error).
func TestLoadUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("publishers: 2\nphases:\n  publish: {duraton: 5s}\n"), 0o644)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"qos 3", []string{"--qos", "3"}, "--qos is 3"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined: -nope"},
		{"extra argument", []string{"extra"}, `unexpected argument "extra"`},
		{"small payload", []string{"--payload", "10"}, "payload: 10 bytes"},
		{"no duration", []string{"--duration", "0s"}, "duration: must be above 0"},
		{"bad source ips", []string{"--broker", "tcp://127.0.0.1:1", "--source-ips", "x"}, "source IPs"},
		{"http broker", []string{"--broker", "http://127.0.0.1:1"}, `unknown scheme "http"`},
		{"unknown scenario field", []string{"--scenario", bad}, `bad.yaml: line 3: unknown field "duraton"`},
		{"missing scenario", []string{"--scenario", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"unreachable broker", []string{"--broker", "tcp://" + closed}, "connection refused"},
		{"too many connections for the descriptor limit", []string{"--broker", "tcp://127.0.0.1:1", "--connections", "1000000", "--workers", "1"}, "file descriptors"},
		{"too many connections for the port range", []string{"--broker", "tcp://127.0.0.1:1", "--connections", "1000000"}, "ephemeral port range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := loadCLI(context.Background(), append(tc.args, "--out", dir)...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.HasPrefix(first, "mqttbench load: ") || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q on the first line", code, stderr, stdout, tc.want)
			}
			if tc.name == "unreachable broker" && strings.Count(stderr, "\n") != 1 {
				t.Errorf("unreachable broker: want exactly one line, got %q", stderr)
			}
		})
	}
}

// SIGINT (ctx cancelled) mid-run: exit 130 with everything collected
// written.
func TestLoadInterrupted(t *testing.T) {
	out := t.TempDir()
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // cancel once messages flow, however slow the machine
		for srv.Stats().Received.Load() < 20 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	code, stdout, stderr := loadCLI(ctx, "--broker", "tcp://"+srv.Addrs()[0].String(), "--duration", "1m", "--quiet", "--out", out, "--qos", "1")
	if code != exitInterrupted {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := loadgen.ReadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Summary.Interrupted || res.Summary.Messages.Sent == 0 || res.Histograms["e2e"].TotalCount() == 0 {
		t.Errorf("summary %+v", res.Summary.Messages)
	}
}

// Flags override the scenario file; the file overrides the defaults.
func TestLoadFlagsOverrideScenario(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "s.yaml")
	os.WriteFile(sc, []byte("publishers: 3\nsubscribers: 1\nqos: 2\ntopic: bench/all\npayload: 40\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, stdout, stderr := loadCLI(context.Background(), short(out, "--scenario", sc, "--qos", "1")...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := loadgen.ReadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary.Scenario
	if s.QoS != 1 || s.Publishers != 3 || s.Subscribers != 1 || s.Payload != 40 || s.Topic != "bench/all" {
		t.Errorf("scenario as run: %+v", s)
	}
}

// Without --quiet a progress line goes to stderr every second.
func TestLoadProgress(t *testing.T) {
	code, stdout, stderr := loadCLI(context.Background(), "--duration", "1100ms", "--rate", "200", "--out", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"s publish] conns 2/2  sent ", "/s  p99 e2e ", "errors 0  missed 0"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
