package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// --protocol all runs the specs of 3.1.1 and 5.0 in one run: one report,
// each spec and statement with its version, verdicts per version, the
// broker's 5.0 capabilities. (Ginkgo runs once per process, so the run is
// a child process.)
func TestConformProtocolAll(t *testing.T) {
	dir := t.TempDir()
	jsonOut, junit := filepath.Join(dir, "c.json"), filepath.Join(dir, "c.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "conform", "--protocol", "all", "--focus", `MQTT-3\.1\.0-1\]`,
		"--json", jsonOut, "--junit", junit)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("conform --protocol all: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	res, err := reports.ReadConformance(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if res.Protocol != "3.1.1+5.0" || res.Capabilities["maximum_qos"] == nil {
		t.Errorf("protocol %q, capabilities %v", res.Protocol, res.Capabilities)
	}
	specs := map[string]int{}
	for _, s := range res.Specs {
		specs[s.Protocol]++
		if s.State != reports.Passed {
			t.Errorf("%s (%s): %s %s", s.Name, s.Protocol, s.State, s.Message)
		}
	}
	if specs["3.1.1"] == 0 || specs["5.0"] == 0 || specs[""] != 0 {
		t.Errorf("specs per version %v", specs)
	}
	verdicts := map[string]string{}
	for _, st := range res.Statements {
		verdicts[st.ID+" "+st.Protocol] = st.Verdict
	}
	if verdicts["MQTT-3.1.0-1 3.1.1"] != reports.Passed || verdicts["MQTT-3.1.0-1 5.0"] != reports.Passed ||
		verdicts["MQTT-3.3.2-17 5.0"] == "" || verdicts["MQTT-3.3.2-17 3.1.1"] != "" {
		t.Errorf("per-version verdicts: %v", verdicts)
	}
	x, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`name="3.1 CONNECT (5.0)"`, `name="3.1 CONNECT (3.1.1)"`, `name="protocol" value="5.0"`} {
		if !bytes.Contains(x, []byte(want)) {
			t.Errorf("JUnit lacks %s", want)
		}
	}
	if !strings.Contains(stdout.String(), "Capabilities (5.0 CONNACK):") {
		t.Errorf("stdout lacks the capabilities:\n%s", stdout.String())
	}
}

// An unknown --protocol is a usage error naming what it takes.
func TestConformProtocolBad(t *testing.T) {
	code, _, stderr := runCLI(context.Background(), "conform", "--protocol", "6")
	if code != exitUsage || !strings.Contains(stderr, `--protocol "6": want 3.1.1, 5 or all`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
