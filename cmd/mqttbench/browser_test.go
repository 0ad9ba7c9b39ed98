package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReportsInBrowser renders every kind of HTML report from real runs
// (a conformance run with a failing spec, a load run, a fuzz run with
// findings, a comparison) and opens each in headless Chromium, as a person
// would: no console message, the key elements present, the filtering
// script run. Screenshots go to results/screenshots/.
func TestReportsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a browser")
	}
	chromium := findChromium(t)
	t.Setenv(runMainEnv, "1")
	work := t.TempDir()
	ctx := context.Background()

	// The detector must see a script error, or a clean run proves nothing.
	broken := filepath.Join(work, "broken.html")
	os.WriteFile(broken, []byte(`<!DOCTYPE html><title>x</title><script>nosuchfunction();</script>`), 0o644) //nolint:errcheck
	if _, console := openInBrowser(t, chromium, broken); len(console) == 0 {
		t.Fatal("a page with a script error logged nothing: console errors would go unseen")
	}

	// Conformance against a broker that answers a second CONNECT: a
	// failing spec with its wire trace. Ginkgo runs once per process, so
	// the suite runs in a child.
	confJSON := filepath.Join(work, "conform.json")
	cmd := exec.Command(os.Args[0], "conform", "--broker", "tcp://"+faultyBroker(t), "--focus", `MQTT-3\.1\.0-`,
		"--focus", `MQTT-3\.12\.`, "--json", confJSON)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("conform passed against the faulty broker:\n%s", out)
	}
	loadDir := filepath.Join(work, "load")
	if code, out, errb := runCLI(ctx, "load", "--publishers", "2", "--subscribers", "2", "--rate", "200",
		"--duration", "1s", "--drain", "1s", "--quiet", "--out", loadDir); code != exitOK {
		t.Fatalf("load: exit %d\n%s\n%s", code, out, errb)
	}
	fuzzDir := filepath.Join(work, "fuzz")
	if code, out, errb := runCLI(ctx, "fuzz", "--broker", lenient(t), "--cases", "30", "--seed", "3", "--out", fuzzDir); code != exitFailures {
		t.Fatalf("fuzz against a lenient broker: exit %d\n%s\n%s", code, out, errb)
	}
	compareDir, _ := compareRun(t, "url-pass-55aa", "flag-pass-66bb")

	shots := filepath.Join(repoRoot(t), "results", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		result []string
		want   []string
	}{
		{"conformance", []string{confJSON}, []string{
			`id="summary"`, `id="by-section"`, `class="failure"`, `class="trace"`, `[MQTT-3.1.0-2]`,
			`CONNACK`, `id="statement-table"`, `class="filter-count">`}},
		{"load", []string{loadDir}, []string{
			`id="summary"`, `id="latency-plots"`, `id="latency-e2e"`, `class="line"`, `id="plot-throughput"`, `class="list verification"`}},
		{"load-overlay", []string{"first=" + loadDir, "second=" + loadDir}, []string{
			`id="latency-e2e"`, `>first</text>`, `>second</text>`, `<th>second</th>`}},
		{"fuzz", []string{fuzzDir}, []string{`id="summary"`, `id="findings"`, `spec-deviation`, `.json</code>`}},
		{"comparison", []string{filepath.Join(compareDir, "compare.json")}, []string{
			`id="summary"`, `id="comparison-matrix"`, `class="differs"`, `id="latency-e2e"`, `class="rows"`, `class="filter-count">`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			html := filepath.Join(work, tc.name+".html")
			code, out, errb := runCLI(ctx, append(append([]string{"report"}, tc.result...), "-o", html)...)
			if code == exitUsage {
				t.Fatalf("report: exit %d\n%s\n%s", code, out, errb)
			}
			dom, console := openInBrowser(t, chromium, html)
			if len(console) > 0 {
				t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
			}
			for _, w := range tc.want {
				if !strings.Contains(dom, w) {
					t.Errorf("the rendered page lacks %s", w)
				}
			}
			// The filter script ran: it writes "N of M" next to each filter.
			if strings.Contains(dom, `class="filter-count"></span>`) {
				t.Error("the filter script did not run")
			}
			shot := filepath.Join(shots, tc.name+".png")
			screenshot(t, chromium, html, shot)
			t.Logf("screenshot: %s", shot)
		})
	}
}

// chromiumScriptEnv names another installer script (a test of the
// missing-browser path uses one that fails).
const chromiumScriptEnv = "MQTTBENCH_CHROMIUM_SCRIPT"

// findChromium runs the project's installer script. When chromium cannot
// be installed the test skips on a developer's machine, and fails in CI
// (CI=true): a CI run must not pass without the browser test.
func findChromium(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	script := os.Getenv(chromiumScriptEnv)
	if script == "" {
		script = filepath.Join(repoRoot(t), "scripts", "chromium.sh")
	}
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		const install = "install it with scripts/chromium.sh (Debian package chromium; apt-get needs root or sudo)"
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("chromium cannot be installed, and CI=true needs the browser test: %v\n%s\n%s", err, errb.String(), install)
		}
		t.Skipf("chromium cannot be installed: %v\n%s\n%s; CI (CI=true) fails here instead", err, errb.String(), install)
	}
	return strings.TrimSpace(string(out))
}

// Without chromium the browser test fails in CI and skips elsewhere,
// saying how to install it.
func TestBrowserMissingFailsInCI(t *testing.T) {
	failing := filepath.Join(t.TempDir(), "no-chromium.sh")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'chromium.sh: apt-get could not install chromium' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ci, want string
	}{
		{"true", "--- FAIL: TestReportsInBrowser"},
		{"", "--- SKIP: TestReportsInBrowser"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestReportsInBrowser$", "-test.v")
			// The child is a test binary, not mqttbench (main_test.go).
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, runMainEnv+"=") && !strings.HasPrefix(kv, "CI=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "CI="+tc.ci, chromiumScriptEnv+"="+failing)
			out, err := cmd.CombinedOutput()
			if !strings.Contains(string(out), tc.want) || (err == nil) != (tc.ci == "") {
				t.Fatalf("exit %v, want %s:\n%s", err, tc.want, out)
			}
			if !strings.Contains(string(out), "scripts/chromium.sh") {
				t.Errorf("no word on installing chromium:\n%s", out)
			}
		})
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// browserArgs start headless Chromium with a fresh profile.
func browserArgs(t *testing.T, extra ...string) []string {
	return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars"}, extra...)
}

var consoleLine = regexp.MustCompile(`:CONSOLE[:(]|Uncaught `)

// openInBrowser loads page and returns the DOM after scripts ran and the
// console messages Chromium logged.
func openInBrowser(t *testing.T, chromium, page string) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, chromium, browserArgs(t, "--enable-logging=stderr", "--v=0", "--dump-dom", "file://"+page)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", page, err, stderr.String())
	}
	var console []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if consoleLine.MatchString(l) {
			console = append(console, l)
		}
	}
	return stdout.String(), console
}

func screenshot(t *testing.T, chromium, page, png string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, browserArgs(t, "--window-size=1280,2400", "--screenshot="+png, "file://"+page)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v (size %v)", png, err, st)
	}
}
