package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// freePort is a 127.0.0.1 address nobody listens on: a broker killed and
// restarted by --broker-cmd must come back on the same one.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func readSummary(t *testing.T, dir string) *reports.Load {
	t.Helper()
	sum, err := reports.ReadLoad(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func latencyOf(sum *reports.Load, metric string) reports.LoadLatency {
	for _, l := range sum.Latency {
		if l.Metric == metric {
			return l
		}
	}
	return reports.LoadLatency{}
}

// Fault flags that cannot work: exit 2 and one line naming the problem.
func TestLoadFaultUsageErrors(t *testing.T) {
	tcp := "tcp://" + freePort(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fault", "explode@1s"}, `unknown kind "explode"; want one of kill, restart, pause,`},
		{[]string{"--fault", "latency=fast@1s", "--broker", tcp}, "latency=fast: want a duration"},
		{[]string{"--fault", "kill@1s", "--broker", tcp}, `fault "kill@1s" acts on the broker process: give --broker-cmd, or --broker-pid`},
		{[]string{"--fault", "kill@1s", "--broker", tcp, "--broker-pid", fmt.Sprint(os.Getpid())}, `fault "kill@1s" needs --restart CMD`},
		{[]string{"--fault", "latency=10ms@1s"}, "faults need --broker: the in-process broker"},
		{[]string{"--fault", "latency=10ms@1s", "--broker", tcp, "--workers", "2", "--publishers", "2", "--subscribers", "2", "--fault", "reset@1s:group=publishers"}, "does not combine with --workers"},
		{[]string{"--fault", "reset@1s:group=idle", "--broker", tcp}, "fault on group idle: the run has no idle"},
		{[]string{"--restart", "true", "--broker", tcp, "--fault", "pause=1s@1s"}, "--restart needs --broker-pid"},
		{[]string{"--broker-pid", "1", "--broker", tcp}, "--broker-pid without a fault to inject"},
		{[]string{"--fault", "pause=1s@1s", "--broker-pid", "999999999", "--broker", tcp}, "--broker-pid 999999999: no such process"},
		{[]string{"--fault", "kill@1s", "--broker-pid", "1", "--broker-cmd", "true", "--broker", tcp}, "--broker-pid and --broker-cmd: give one"},
		{[]string{"--toxiproxy", "http://127.0.0.1:1", "--broker", tcp, "--fault", "kill@1s", "--broker-cmd", "true"}, "--toxiproxy without a network fault"},
		{[]string{"--broker-cmd", "exit 3", "--broker", tcp}, "--broker-cmd: the broker (exit 3) exited before accepting connections"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, stdout, stderr := loadCLI(ctx, short(t.TempDir(), tc.args...)...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.Contains(first, tc.want) || !strings.HasPrefix(first, "mqttbench load: ") {
				t.Fatalf("exit %d; stderr:\n%s\nwant a first line with %q\nstdout: %s", code, stderr, tc.want, stdout)
			}
		})
	}
}

// A scenario's faults: list is read and checked like --fault.
func TestLoadFaultScenario(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte("faults:\n  - {kind: latency, at: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := loadCLI(context.Background(), short(dir, "--scenario", file)...)
	if code != exitUsage || !strings.Contains(stderr, "faults[0]: latency: needs a delay above 0") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// kill -9 of a durable broker mid-run (started and restarted by
// --broker-cmd): the run completes, the fault is in summary.json with
// its recovery, clients reconnected and resumed their sessions, and no
// acknowledged QoS 1 message was lost.
func TestLoadFaultKillDurable(t *testing.T) {
	addr := freePort(t)
	data := t.TempDir()
	out := t.TempDir()
	cmd := fmt.Sprintf("%s=1 exec %s broker --listen %s --data-dir %s --fsync always", runMainEnv, os.Args[0], addr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, stdout, stderr := loadCLI(ctx, "--broker", "tcp://"+addr, "--broker-cmd", cmd, "--fault", "kill@2s",
		"--qos", "1", "--clean-session=false", "--publishers", "2", "--subscribers", "2", "--rate", "200",
		"--duration", "6s", "--drain", "10s", "--keepalive", "5s", "--connect-timeout", "5s", "--quiet", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sum := readSummary(t, out)
	if len(sum.Faults) != 1 {
		t.Fatalf("faults %+v", sum.Faults)
	}
	f := sum.Faults[0]
	if f.Kind != "kill" || f.Error != "" || f.Start < 1.5 || f.Start > 4 || f.Recovered <= f.Start {
		t.Fatalf("fault %+v", f)
	}
	t.Logf("fault %+v; reconnects %d; verification %+v", f, sum.Connections.Reconnects, sum.Verify)
	if sum.Connections.Reconnects == 0 {
		t.Errorf("no reconnects after the kill: %+v", sum.Connections)
	}
	for _, v := range sum.Verify {
		if v.QoS == 1 && (v.Lost > 0 || len(v.Violations) > 0 || v.Received == 0) {
			t.Errorf("QoS 1 verification %+v", v)
		}
	}
	for _, want := range []string{"Faults", "kill@2s", "broker process"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(out, brokerLog)); err != nil || !strings.Contains(string(b), "listening on") {
		t.Errorf("broker log: %v\n%s", err, b)
	}
	// The broker we started is stopped at the end.
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Error("the broker started by --broker-cmd still runs")
	}
}

// Latency through the fault proxy shows in end-to-end latency; on the
// subscribers' group alone it leaves the publishers' acknowledgements
// fast.
func TestLoadFaultLatency(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "tcp://" + srv.Addrs()[0].String()
	for _, tc := range []struct {
		fault   string
		minE2E  int64 // µs
		maxAck  int64 // µs, 0: no bound
		wantTgt string
		extra   []string
	}{
		{"latency=100ms@0s", 200_000, 0, "", nil},
		{"latency=100ms@0s:group=subscribers", 100_000, 50_000, "subscribers", nil},
		// The parent runs the proxy; the workers dial it.
		{"latency=100ms@0s", 200_000, 0, "", []string{"--workers", "2", "--publishers", "2", "--subscribers", "2"}},
	} {
		t.Run(tc.fault+strings.Join(tc.extra, " "), func(t *testing.T) {
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := []string{"--broker", url, "--fault", tc.fault, "--qos", "1", "--rate", "100",
				"--duration", "2s", "--drain", "3s", "--quiet", "--out", out}
			code, stdout, stderr := loadCLI(ctx, append(args, tc.extra...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			sum := readSummary(t, out)
			if len(sum.Faults) != 1 || sum.Faults[0].Target != tc.wantTgt || sum.Faults[0].Error != "" {
				t.Fatalf("faults %+v", sum.Faults)
			}
			e2e, ack := latencyOf(sum, "e2e"), latencyOf(sum, "publish_ack")
			if e2e.Count == 0 || e2e.P50 < tc.minE2E {
				t.Errorf("e2e %+v; want p50 at least %dµs", e2e, tc.minE2E)
			}
			if tc.maxAck > 0 && ack.P99 > tc.maxAck {
				t.Errorf("publish_ack %+v; the publishers were not in the group", ack)
			}
		})
	}
}
