package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// SIGINT while a spec runs: exit 130, reports written, and the spec is
// interrupted, not failed. Its statement gets no "failed" verdict, the
// closing line counts it among the skipped and says the run was
// interrupted, and the JUnit report has no <failure>. Ginkgo installs its
// own SIGINT handler, so the run is a child process (the test binary
// standing in for mqttbench, main_test.go) sent a real signal.
func TestConformInterrupted(t *testing.T) {
	// The broker never enforces keep alive and the grace is long, so the
	// keep alive spec cannot end before the signal comes.
	opts := broker.Options{Listen: []string{"127.0.0.1:0"}}
	if !broker.ParseFault("ignore-keepalive", &opts.Faults) {
		t.Fatal("no ignore-keepalive fault")
	}
	srv := broker.New(opts)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	junit, jsonOut := filepath.Join(dir, "c.xml"), filepath.Join(dir, "c.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "conform", "--broker", "tcp://"+srv.Addrs()[0].String(),
		"--focus", `MQTT-3\.1\.2-24\]`, "--grace", "60s", "--junit", junit, "--json", jsonOut)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The spec holds four clients open while it waits for the broker to
	// close the silent one.
	for srv.Stats().Connections.Load() < 4 {
		if ctx.Err() != nil {
			t.Fatalf("the keep alive spec never connected its clients\n%s\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d\nstdout:\n%s\nstderr:\n%s", err, exitInterrupted, stdout.String(), stderr.String())
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if last := lines[len(lines)-1]; last != "0 passed, 0 failed, 1 skipped (interrupted: 1 spec stopped before its verdict)" {
		t.Errorf("last line %q", last)
	}
	if strings.Contains(stdout.String(), "FAIL ") {
		t.Errorf("the interrupted spec was printed as a failure:\n%s", stdout.String())
	}
	res, err := reports.ReadConformance(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || len(res.Specs) != 1 || res.Specs[0].State != reports.Interrupted {
		t.Fatalf("result: interrupted %v, specs %+v", res.Interrupted, res.Specs)
	}
	for _, st := range res.Statements {
		if st.ID == "MQTT-3.1.2-24" && st.Verdict != reports.Interrupted {
			t.Errorf("MQTT-3.1.2-24: verdict %q, want %q", st.Verdict, reports.Interrupted)
		}
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
	}
	if err := xml.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	if x.Failures != 0 || x.Errors != 1 || x.Skipped != 1 || bytes.Contains(b, []byte("<failure")) ||
		!bytes.Contains(b, []byte(`<skipped message="interrupted`)) || !bytes.Contains(b, []byte(`type="interrupted"`)) {
		t.Errorf("JUnit report:\n%s", b)
	}
}
