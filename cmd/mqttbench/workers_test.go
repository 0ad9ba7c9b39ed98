package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
)

const secret = "pw-3f9a1c-never-written"

// tcpBroker starts a reference broker on a loopback port that admits
// user u with the test password.
func tcpBroker(t *testing.T) string {
	t.Helper()
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Users: map[string]string{"u": secret}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "tcp://" + srv.Addrs()[0].String()
}

// crossArgs is a scenario whose subscribers mostly hear publishers of
// other shards (with 3: subscriber j, connection 4+j, hears publisher
// j mod 4), each publisher sending exactly 50 messages.
func crossArgs(url, out string, qos int) []string {
	return []string{"--broker", url, "--publishers", "4", "--subscribers", "6", "--connections", "12",
		"--qos", fmt.Sprint(qos), "--rate-per-publisher", "100", "--duration", "500ms", "--max-lag", "0",
		"--drain", "10s", "--ramp", "0", "--connect-timeout", "3s", "--username", "u", "--out", out}
}

// sameTotals compares a merged summary with a whole run's: counts
// exactly, and the verification row.
func sameTotals(t *testing.T, merged, whole *reports.Load) {
	t.Helper()
	wm, mm := whole.Messages, merged.Messages
	if wm.Sent != 200 || wm.Expected != 300 {
		t.Fatalf("whole run sent %d, expected %d; want 200 and 300", wm.Sent, wm.Expected)
	}
	if mm.Offered != wm.Offered || mm.Sent != wm.Sent || mm.Acked != wm.Acked || mm.Received != wm.Received ||
		mm.Expected != wm.Expected || mm.Missed != wm.Missed {
		t.Errorf("messages: merged %+v\nwhole %+v", mm, wm)
	}
	if merged.Connections.Target != whole.Connections.Target || merged.Connections.Ready != whole.Connections.Ready {
		t.Errorf("connections: merged %+v, whole %+v", merged.Connections, whole.Connections)
	}
	if len(merged.Verify) != 1 || len(whole.Verify) != 1 {
		t.Fatalf("verification: merged %+v, whole %+v", merged.Verify, whole.Verify)
	}
	mv, wv := merged.Verify[0], whole.Verify[0]
	if mv.Streams != wv.Streams || mv.Sent != wv.Sent || mv.Confirmed != wv.Confirmed || mv.Received != wv.Received ||
		mv.Lost != 0 || wv.Lost != 0 {
		t.Errorf("verification: merged %+v, whole %+v", mv, wv)
	}
	for _, l := range merged.Latency {
		for _, w := range whole.Latency {
			if l.Metric == w.Metric && l.Count != w.Count {
				t.Errorf("%s: %d values merged, %d in the whole run", l.Metric, l.Count, w.Count)
			}
		}
	}
}

// noSecret fails if the password is in any file under dir.
func noSecret(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the password", p)
			}
		}
		return nil
	})
}

// childCmdlines collects, until stop closes, the command lines of this
// process's children, as ps would show them.
func childCmdlines(stop <-chan struct{}) []string {
	found := map[string]string{}
	for {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...
			rest := string(st[bytes.LastIndexByte(st, ')')+2:])
			f := strings.Fields(rest)
			if len(f) < 2 || f[1] != fmt.Sprint(os.Getpid()) {
				continue
			}
			if cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && len(cl) > 0 {
				found[e.Name()] = strings.ReplaceAll(string(cl), "\x00", " ")
			}
		}
		select {
		case <-stop:
			var out []string
			for _, c := range found {
				out = append(out, c)
			}
			return out
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// --workers 3 spreads the run over three processes of this binary; the
// merged results equal a single-process run of the same scenario, a
// progress line covers all workers, and the password reaches neither a
// file nor a worker's command line.
func TestLoadWorkersMergeLikeOneRun(t *testing.T) {
	url := tcpBroker(t)
	t.Setenv("MQTTBENCH_PASSWORD", secret)
	wholeDir := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), append(crossArgs(url, wholeDir, 1), "--quiet")...)
	if code != exitOK {
		t.Fatalf("single run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	dir := t.TempDir()
	// The password as a flag this time; watch the workers' command lines.
	t.Setenv("MQTTBENCH_PASSWORD", "")
	watch := make(chan struct{})
	seen := make(chan []string, 1)
	go func() { seen <- childCmdlines(watch) }()
	code, stdout, stderr = loadCLI(context.Background(), append(crossArgs(url, dir, 1), "--workers", "3", "--password", secret)...)
	close(watch)
	if code != exitOK {
		t.Fatalf("workers: exit %d\n%s\n%s", code, stdout, stderr)
	}
	workers := 0
	for _, c := range <-seen {
		if strings.Contains(c, secret) {
			t.Errorf("a worker's command line holds the password: %q", c)
		}
		if strings.Contains(c, "load-worker") {
			workers++
		}
	}
	if workers != 3 {
		t.Errorf("saw %d worker command lines, want 3", workers)
	}
	if !strings.Contains(stderr, "over 3 worker processes") || !strings.Contains(stderr, "(3 workers)") {
		t.Errorf("stderr lacks the spread or the aggregated progress line:\n%s", stderr)
	}
	whole, err := loadgen.ReadResults(wholeDir)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameTotals(t, merged.Summary, whole.Summary)
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("shard-%d", i), "summary.json")); err != nil {
			t.Errorf("worker %d's results: %v", i, err)
		}
	}
	noSecret(t, dir)
}

// Three shards as three processes, lined up by --start-at, then
// `mqttbench merge`: the same totals as one run, and percentiles of the
// merged histograms.
func TestShardProcessesAndMerge(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	url := tcpBroker(t)
	t.Setenv("MQTTBENCH_PASSWORD", secret)
	wholeDir := t.TempDir()
	if code, stdout, stderr := loadCLI(context.Background(), append(crossArgs(url, wholeDir, 2), "--quiet")...); code != exitOK {
		t.Fatalf("single run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	base := t.TempDir()
	start := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	var dirs []string
	for i := range 3 {
		d := filepath.Join(base, fmt.Sprint(i))
		dirs = append(dirs, d)
		args := append([]string{"load"}, crossArgs(url, d, 2)...)
		args = append(args, "--quiet", "--start-at", start)
		if i == 2 { // the Indexed Job way
			args = append(args, "--shards", "3")
		} else {
			args = append(args, "--shard", fmt.Sprintf("%d/3", i))
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), "MQTTBENCH_TEST_MAIN=1")
		if i == 2 {
			cmd.Env = append(cmd.Env, "JOB_COMPLETION_INDEX=2")
		}
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &buf)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, outs[i])
		}
	}
	out := filepath.Join(base, "merged")
	var mo, me bytes.Buffer
	if code := run(context.Background(), append([]string{"merge"}, append(dirs, "-o", out)...), &mo, &me); code != exitOK {
		t.Fatalf("merge: exit %d\n%s\n%s", code, mo.String(), me.String())
	}
	whole, _ := loadgen.ReadResults(wholeDir)
	merged, err := loadgen.ReadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	sameTotals(t, merged.Summary, whole.Summary)
	h := loadgen.NewHistogram()
	for _, d := range dirs {
		r, err := loadgen.ReadResults(d)
		if err != nil {
			t.Fatal(err)
		}
		h.Merge(r.Histograms["e2e"])
	}
	for _, l := range merged.Summary.Latency {
		if l.Metric == "e2e" && l != loadgen.Summarize("e2e", h) {
			t.Errorf("merged e2e %+v, shards' histograms merged %+v", l, loadgen.Summarize("e2e", h))
		}
	}
	if !strings.Contains(mo.String(), "merged shards 0,1,2 of 3") {
		t.Errorf("merge output lacks the shards merged:\n%s", mo.String())
	}
	noSecret(t, base)
}

// SIGINT to a run spread over workers: they stop, and what they collected
// is merged and written; exit 130.
func TestLoadWorkersInterrupted(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for srv.Stats().Received.Load() < 50 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	dir := t.TempDir()
	code, stdout, stderr := loadCLI(ctx, "--broker", "tcp://"+srv.Addrs()[0].String(), "--workers", "2", "--publishers", "2",
		"--subscribers", "2", "--qos", "1", "--duration", "1m", "--quiet", "--out", dir)
	if code != exitInterrupted {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Summary.Interrupted || res.Summary.Messages.Sent == 0 || res.Summary.Connections.Target != 4 {
		t.Errorf("merged summary: interrupted %v, %+v, %+v", res.Summary.Interrupted, res.Summary.Messages, res.Summary.Connections)
	}
}

// Bad shard and worker flags, and merge inputs: exit 2, one line.
func TestShardUsageErrors(t *testing.T) {
	dir := t.TempDir()
	url := "tcp://127.0.0.1:1"
	cases := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"bad shard", "", []string{"--broker", url, "--shard", "3/3"}, `shard "3/3"`},
		{"shard without start", "", []string{"--broker", url, "--shard", "0/2"}, "needs --start-at"},
		{"shard in process", "", []string{"--shard", "0/2", "--start-at", "2026-01-02T15:04:05Z"}, "needs --broker"},
		{"bad start", "", []string{"--broker", url, "--shard", "0/2", "--start-at", "tomorrow"}, "RFC 3339"},
		{"index without count", "JOB_COMPLETION_INDEX=1", []string{"--broker", url}, "without a shard count"},
		{"workers in process", "", []string{"--workers", "2"}, "--workers needs --broker"},
		{"too few source addresses", "", []string{"--broker", url, "--workers", "3", "--connections", "10", "--source-ips", "127.0.0.2-127.0.0.3"}, "cannot be split among 3"},
		{"one process cannot hold it", "", []string{"--broker", url, "--workers", "1", "--connections", "30000"}, "use --workers 2"},
		{"one shard cannot hold it", "", []string{"--broker", url, "--shard", "0/2", "--start-at", "2026-01-02T15:04:05Z", "--connections", "60000"}, "use --shards 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			code, stdout, stderr := loadCLI(context.Background(), append(tc.args, "--out", dir)...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.HasPrefix(first, "mqttbench load: ") || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q", code, stderr, stdout, tc.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"merge", filepath.Join(dir, "none")}, &out, &errb); code != exitUsage ||
		!strings.HasPrefix(errb.String(), "mqttbench merge: ") {
		t.Errorf("merge of a missing directory: exit %d, %q", code, errb.String())
	}
}
