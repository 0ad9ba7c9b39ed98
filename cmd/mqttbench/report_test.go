package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// runMainEnv makes the test binary behave as mqttbench (main_test.go):
// compare runs each conformance suite in a child process of its own
// binary, which under go test is this one.
const runMainEnv = "MQTTBENCH_TEST_MAIN"

func TestReportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notResult := filepath.Join(dir, "x.json")
	os.WriteFile(notResult, []byte(`{"kind":"weather"}`), 0o644) //nolint:errcheck
	for _, args := range [][]string{
		{},
		{"-o"},
		{filepath.Join(dir, "missing.json")},
		{dir},
		{notResult},
		{"--nope", notResult},
	} {
		code, _, stderr := runCLI(context.Background(), append([]string{"report"}, args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "mqttbench report:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestCompareUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--broker", "ref"},
		{"--broker", "a=http://127.0.0.1:1"},
		{"--broker", "a=inproc", "--broker", "a=inproc"},
		{"--broker", "a=inproc", "--profile", "b=profiles/x.yaml"},
		{"--broker", "a=inproc", "--profile", "a=/nonexistent.yaml"},
		{"--broker", "a=inproc", "--grace", "soon"},
		{"--broker", "a=inproc", "--skip-conform", "--skip-load"},
		{"--broker", "a=tcp://127.0.0.1:1"},
	} {
		code, _, stderr := runCLI(context.Background(), append([]string{"compare"}, args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "mqttbench compare:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// faultyBroker is the reference broker answering a second CONNECT
// instead of closing the connection: [MQTT-3.1.0-2] fails, with a trace.
func faultyBroker(t *testing.T) string {
	t.Helper()
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Faults: broker.Faults{AcceptSecondConnect: true}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addrs()[0].String()
}

// tinyScenario is a load short enough for tests.
func tinyScenario(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.yaml")
	yaml := "publishers: 2\nsubscribers: 2\nqos: 1\npayload: 64\ntopic: bench/{p}\n" +
		"phases:\n  publish: {duration: 1s, rate: 200}\n  drain: {duration: 1s}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// compareRun runs mqttbench compare of the reference broker and a faulty
// one, with a password on the command line and in a URL, focused on a
// few specs; it returns the results directory.
func compareRun(t *testing.T, secrets ...string) (dir, stdout string) {
	t.Helper()
	t.Setenv(runMainEnv, "1")
	dir = filepath.Join(t.TempDir(), "compare")
	code, stdout, stderr := runCLI(context.Background(), "compare",
		"--broker", "ref=inproc",
		"--broker", "faulty=tcp://bench:"+secrets[0]+"@"+faultyBroker(t),
		"--username", "bench", "--password", secrets[1],
		"--focus", `MQTT-3\.1\.0-`, "--focus", `MQTT-3\.12\.`,
		"--scenario", tinyScenario(t), "--grace", "1s", "-o", dir)
	if code != exitFailures {
		t.Fatalf("exit %d (want 1: the faulty broker fails)\n%s\n%s", code, stdout, stderr)
	}
	return dir, stdout
}

func TestCompare(t *testing.T) {
	secrets := []string{"url-pass-7f3e", "flag-pass-91c2"}
	dir, stdout := compareRun(t, secrets...)
	for _, want := range []string{"Conformance", "Statements that differ", "MQTT-3.1.0-2", "Load", "e2e p99", "report: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("terminal table lacks %q:\n%s", want, stdout)
		}
	}
	cmp, err := reports.ReadComparison(filepath.Join(dir, "compare.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Brokers) != 2 || cmp.Brokers[0].Conformance == "" || cmp.Brokers[1].Load == "" {
		t.Fatalf("compare.json: %+v", cmp)
	}
	// Saved comparisons render again, with the same verdict.
	code, out, stderr := runCLI(context.Background(), "report", filepath.Join(dir, "compare.json"), "-o", filepath.Join(dir, "again.html"))
	if code != exitFailures || !strings.Contains(out, "Statements that differ") {
		t.Fatalf("report of compare.json: exit %d\n%s\n%s", code, out, stderr)
	}
	assertNoSecrets(t, dir, secrets)
}

// assertNoSecrets fails if any file under dir holds any secret.
func assertNoSecrets(t *testing.T, dir string, secrets []string) {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds the password %q", p, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d files under %s", n, dir)
	}
}
