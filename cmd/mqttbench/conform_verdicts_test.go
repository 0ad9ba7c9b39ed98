package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// conformChild runs mqttbench conform (this test binary standing in for
// it) with args plus --json and --junit in a fresh directory, and returns
// the exit code, the outputs and the results read back.
func conformChild(t *testing.T, args ...string) (code int, stdout, stderr string, res *reports.Conformance, junit []byte) {
	t.Helper()
	dir := t.TempDir()
	jsonOut, xmlOut := filepath.Join(dir, "c.json"), filepath.Join(dir, "c.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append(append([]string{"conform"}, args...), "--json", jsonOut, "--junit", xmlOut)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	res, rerr := reports.ReadConformance(jsonOut)
	if rerr != nil {
		t.Fatalf("no result (%v), exit %d\nstdout:\n%s\nstderr:\n%s", rerr, code, out.String(), errb.String())
	}
	junit, err = os.ReadFile(xmlOut)
	if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String(), res, junit
}

func referenceBroker(t *testing.T) string {
	t.Helper()
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addrs()[0].String()
}

type junitTotals struct {
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, b []byte) junitTotals {
	t.Helper()
	var x junitTotals
	if err := xml.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	return x
}

var closingLine = regexp.MustCompile(`^\d+ passed, \d+ failed, \d+ skipped( \(.*\))?$`)

func lastOutputLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// A broker that answers QoS 2 PUBLISH packets with PUBACK (as RabbitMQ 3.10
// does; here the reference broker behind a proxy turning each PUBREC into
// a PUBACK) breaks MQTT-3.3.4-1 and MQTT-4.3.3-2. The specs about other
// statements that publish at QoS 2 on the way do not fail: they are
// inconclusive, and the two statements are failed in their place. The run
// fails (exit 1) for those two statements.
func TestConformStepBreaksAnotherStatement(t *testing.T) {
	addr := startProxy(t, referenceBroker(t), pubackForPubrec)
	code, stdout, stderr, res, junit := conformChild(t, "--broker", "tcp://"+addr, "--label-filter", "qos2", "--timeout", "2s")
	if code != exitFailures {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFailures, stdout, stderr)
	}
	owed := []string{"MQTT-3.3.4-1", "MQTT-4.3.3-2"}
	checksOwed := func(s reports.SpecResult) bool {
		return slices.ContainsFunc(s.Statements, func(id string) bool { return slices.Contains(owed, id) })
	}
	breached := 0
	for _, s := range res.Specs {
		switch {
		case s.State == reports.Inconclusive && len(s.Broke) > 0:
			breached++
			if checksOwed(s) {
				t.Errorf("%s checks %v itself but was left inconclusive", s.Name, owed)
			}
			for _, b := range s.Broke {
				if !slices.Equal(b.Statements, owed) || !strings.Contains(b.Message, "got PUBACK") {
					t.Errorf("%s: breach %+v", s.Name, b)
				}
			}
		case s.State == reports.Failed && strings.Contains(s.Message, "expected PUBREC") && !checksOwed(s):
			// The symptom must never fail a spec about something else.
			t.Errorf("%s failed on the PUBACK for PUBREC: %s", s.Name, s.Message)
		}
	}
	if breached < 5 {
		t.Errorf("%d specs were left inconclusive by the broken step; want the QoS 2 specs about other statements", breached)
	}
	for _, st := range res.Statements {
		if slices.Contains(owed, st.ID) && (st.Verdict != reports.Failed || len(st.BrokenIn) != breached) {
			t.Errorf("%s: verdict %s, broken in %d specs; want failed, in %d", st.ID, st.Verdict, len(st.BrokenIn), breached)
		}
	}
	if !slices.Contains(res.BrokenStatements(), "MQTT-4.3.3-2") {
		t.Errorf("broken statements %v", res.BrokenStatements())
	}

	last := lastOutputLine(stdout)
	t.Logf("%s (%d specs broken in steps)", last, breached)
	if !closingLine.MatchString(last) || !strings.Contains(last, " inconclusive") || !strings.Contains(last, " statements broken") {
		t.Errorf("closing line %q", last)
	}
	if !strings.Contains(stdout, "INCONCLUSIVE [") || !strings.Contains(stdout, "Statements broken (") {
		t.Errorf("stdout lacks the inconclusive specs or the broken statements:\n%s", stdout)
	}

	x := readJUnit(t, junit)
	if x.Errors != countState(res, reports.Inconclusive) {
		t.Errorf("JUnit errors %d; want one per inconclusive spec (%d)", x.Errors, countState(res, reports.Inconclusive))
	}
	steps := map[string]bool{}
	for _, s := range x.Suites {
		for _, c := range s.Cases {
			if c.Error != nil && c.Error.Type != reports.Inconclusive {
				t.Errorf("%s: error of type %q", c.Name, c.Error.Type)
			}
			if s.Name == "steps" && c.Failure != nil {
				steps[c.Name] = true
			}
		}
	}
	for _, id := range owed {
		if !steps["["+id+"] broken in steps of other specs"] {
			t.Errorf("JUnit: no failure for %s in the steps testsuite (%v)", id, steps)
		}
	}
}

func countState(res *reports.Conformance, state string) int {
	n := 0
	for _, s := range res.Specs {
		if s.State == state {
			n++
		}
	}
	return n
}

// A broker slower than --timeout proves nothing: the specs whose SUBACK
// comes late are inconclusive ("no answer in 1s"), the run exits 0, the
// JUnit report has errors of type inconclusive and no failure, and stderr
// says the answers came slowly.
func TestConformSlowAnswersAreInconclusive(t *testing.T) {
	addr := startProxy(t, referenceBroker(t), holding(packetgen.TypeSuback, 1500*time.Millisecond))
	code, stdout, stderr, res, junit := conformChild(t, "--broker", "tcp://"+addr, "--timeout", "1s",
		"--focus", `MQTT-3\.8\.4-2\]`, "--focus", `MQTT-4\.3\.1-1\]`)
	if code != exitOK {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitOK, stdout, stderr)
	}
	if len(res.Specs) != 2 {
		t.Fatalf("%d specs ran, want 2", len(res.Specs))
	}
	for _, s := range res.Specs {
		if s.State != reports.Inconclusive || !strings.HasPrefix(s.Message, "no answer in 1s: expected SUBACK") {
			t.Errorf("%s: %s %q", s.Name, s.State, s.Message)
		}
	}
	if n := len(res.BrokenStatements()); n != 0 {
		t.Errorf("%d statements broken by slowness", n)
	}
	if !strings.Contains(stderr, "answers came slowly") || !strings.Contains(stderr, "did not come within it") {
		t.Errorf("stderr lacks the slow note:\n%s", stderr)
	}
	if last := lastOutputLine(stdout); last != "0 passed, 0 failed, 2 skipped (2 inconclusive)" {
		t.Errorf("closing line %q", last)
	}
	if x := readJUnit(t, junit); x.Failures != 0 || x.Errors != 2 {
		t.Errorf("JUnit failures %d, errors %d; want 0 and 2\n%s", x.Failures, x.Errors, junit)
	}
}

// A spec about timers (label keepalive) is the exception: there an answer
// that does not come in time is the finding.
func TestConformLateAnswerFailsATimingSpec(t *testing.T) {
	addr := startProxy(t, referenceBroker(t), holding(packetgen.TypePingresp, 1500*time.Millisecond))
	code, stdout, stderr, res, _ := conformChild(t, "--broker", "tcp://"+addr, "--timeout", "1s", "--focus", `MQTT-3\.12\.4-1\]`)
	if code != exitFailures || len(res.Specs) != 1 || res.Specs[0].State != reports.Failed {
		t.Fatalf("exit %d, specs %+v\n%s\n%s", code, res.Specs, stdout, stderr)
	}
}

// --concurrency N runs the same specs as one process, once each, in N
// shards, and reports them as one run.
func TestConformConcurrency(t *testing.T) {
	focus := []string{"--focus", `MQTT-3\.1\.0-`, "--focus", `MQTT-3\.2\.`, "--focus", `MQTT-3\.12\.`, "--seed", "42"}
	code, stdout, stderr, serial, _ := conformChild(t, focus...)
	if code != exitOK {
		t.Fatalf("serial: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr, par, _ := conformChild(t, append(focus, "--concurrency", "3")...)
	if code != exitOK {
		t.Fatalf("--concurrency 3: exit %d\n%s\n%s", code, stdout, stderr)
	}
	names := func(r *reports.Conformance) []string {
		var n []string
		for _, s := range r.Specs {
			n = append(n, s.Name)
		}
		slices.Sort(n)
		return n
	}
	if a, b := names(serial), names(par); len(a) < 10 || !slices.Equal(a, b) {
		t.Errorf("serial ran %d specs, concurrent %d:\n%v\n%v", len(a), len(b), a, b)
	}
	if par.Concurrency != 3 || par.Seed != 42 || len(par.Answers) == 0 {
		t.Errorf("concurrency %d, seed %d, answers %v", par.Concurrency, par.Seed, par.Answers)
	}
	if last := lastOutputLine(stdout); last != serial.SummaryLine() {
		t.Errorf("closing line %q; the serial run's %q", last, serial.SummaryLine())
	}
}

// --concurrency and --timeout are checked before anything runs.
func TestConformConcurrencyFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--concurrency", "0"},
		{"--concurrency", "33"},
		{"--shard", "3/2"},
		{"--shard", "1/2", "--concurrency", "2"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"conform"}, args...), &stdout, &stderr)
		if code != exitUsage || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
