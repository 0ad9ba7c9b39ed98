package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// The CI examples under ci-examples/ are what a broker team copies into
// their repository, so they are checked here as far as can be without
// GitHub or GitLab: their structure, and the mqttbench command line in
// them parsed by conform's own flag parser (a renamed flag breaks this
// test, not the broker team's pipeline). The GitHub workflow also goes
// through actionlint (scripts/check-ci-examples.sh) when it is installed.

const (
	githubExample = "../../ci-examples/github-actions.yml"
	gitlabExample = "../../ci-examples/gitlab-ci.yml"
)

// ghWorkflow is the part of a GitHub Actions workflow the examples use;
// a field outside it (a typo such as runs_on) fails the decoding.
type ghWorkflow struct {
	Name        string            `yaml:"name"`
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		RunsOn   string `yaml:"runs-on"`
		Timeout  int    `yaml:"timeout-minutes"`
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Ports   []string `yaml:"ports"`
			Options string   `yaml:"options"`
		} `yaml:"services"`
		Steps []ghStep `yaml:"steps"`
	} `yaml:"jobs"`
}

type ghStep struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	If   string            `yaml:"if"`
	With map[string]any    `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

// checkGitHubWorkflow returns what is wrong with a workflow.
func checkGitHubWorkflow(src []byte) []string {
	var w ghWorkflow
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil {
		return []string{"yaml: " + err.Error()}
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if _, ok := w.On["pull_request"]; !ok {
		bad("on: no pull_request trigger")
	}
	if len(w.Jobs) == 0 {
		bad("no jobs")
	}
	for id, job := range w.Jobs {
		if job.RunsOn == "" {
			bad("jobs.%s: no runs-on", id)
		}
		for name, s := range job.Services {
			if s.Image == "" {
				bad("jobs.%s.services.%s: no image", id, name)
			}
		}
		var scripts []string
		installs, kept := false, []string(nil)
		for i, st := range job.Steps {
			if (st.Uses == "") == (st.Run == "") {
				bad("jobs.%s.steps[%d] (%s): wants exactly one of uses and run", id, i, st.Name)
			}
			if st.Run != "" {
				scripts = append(scripts, st.Run)
				installs = installs || strings.Contains(st.Run, "go install github.com/mqttbench/mqttbench/cmd/mqttbench@")
			}
			if strings.HasPrefix(st.Uses, "actions/upload-artifact@") {
				if st.If != "always()" {
					bad("jobs.%s.steps[%d]: the reports are uploaded only if: %q, want always()", id, i, st.If)
				}
				if p, _ := st.With["path"].(string); p != "" {
					kept = append(kept, strings.Fields(p)...)
				}
			}
		}
		if !installs {
			bad("jobs.%s: no step installs mqttbench with go install", id)
		}
		problems = append(problems, checkConformCommand("jobs."+id, scripts, kept)...)
	}
	return problems
}

// checkGitLabJob returns what is wrong with the GitLab CI example: one
// job with a script, a service with an image, and the JUnit report.
func checkGitLabJob(src []byte) []string {
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return []string{"yaml: " + err.Error()}
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	jobs := 0
	for id, v := range doc {
		job, ok := v.(map[string]any)
		if !ok || job["script"] == nil {
			continue // stages:, variables: and the like
		}
		jobs++
		var scripts []string
		for _, line := range asList(job["script"]) {
			s, ok := line.(string)
			if !ok {
				bad("%s.script: %v is not a command", id, line)
			}
			scripts = append(scripts, s)
		}
		services := asList(job["services"])
		if len(services) == 0 {
			bad("%s: no services (the broker)", id)
		}
		for i, s := range services {
			switch s := s.(type) {
			case string:
			case map[string]any:
				if name, _ := s["name"].(string); name == "" {
					bad("%s.services[%d]: no name (the image)", id, i)
				}
			default:
				bad("%s.services[%d]: neither an image nor a map", id, i)
			}
		}
		artifacts, _ := job["artifacts"].(map[string]any)
		reports, _ := artifacts["reports"].(map[string]any)
		junit, _ := reports["junit"].(string)
		if junit == "" {
			bad("%s: no artifacts.reports.junit", id)
		}
		if artifacts["when"] != "always" {
			bad("%s: artifacts.when is %v, want always (a failed run's reports matter most)", id, artifacts["when"])
		}
		var kept []string
		for _, p := range asList(artifacts["paths"]) {
			if s, ok := p.(string); ok {
				kept = append(kept, s)
			}
		}
		problems = append(problems, checkConformCommand(id, scripts, append(kept, junit))...)
		if f := conformFlagsIn(scripts); f != nil && *f.junit != junit {
			bad("%s: artifacts.reports.junit is %s, conform writes %s", id, junit, *f.junit)
		}
	}
	if jobs == 0 {
		bad("no job with a script")
	}
	return problems
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// checkConformCommand finds the mqttbench conform command in scripts,
// parses it with conform's own flags (nothing runs) and checks that it
// runs both versions against a baseline and writes JUnit, JSON and HTML
// reports under the paths kept as artifacts.
func checkConformCommand(where string, scripts, kept []string) []string {
	calls, err := conformCalls(scripts)
	if err != nil {
		return []string{where + ": " + err.Error()}
	}
	if len(calls) != 1 {
		return []string{fmt.Sprintf("%s: %d mqttbench conform commands, want 1", where, len(calls))}
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, where+": "+fmt.Sprintf(format, a...)) }
	f := newConformFlags()
	var stderr bytes.Buffer
	if _, ok := f.parse(calls[0], &stderr); !ok {
		return []string{fmt.Sprintf("%s: conform rejects %q: %s", where, strings.Join(calls[0], " "), strings.TrimSpace(stderr.String()))}
	}
	if len(f.versions) != 2 {
		bad("--protocol %s runs %d versions, want all", *f.proto, len(f.versions))
	}
	if *f.baseline == "" {
		bad("no --baseline")
	}
	if *f.brokerURL == "" {
		bad("no --broker: conform would test its own in-process broker")
	}
	for flag, path := range map[string]string{"--junit": *f.junit, "--json": *f.jsonOut, "--html": *f.htmlOut} {
		switch {
		case path == "":
			bad("no %s report", flag)
		case !slices.ContainsFunc(kept, func(k string) bool { return path == k || strings.HasPrefix(path, strings.TrimSuffix(k, "/")+"/") }):
			bad("%s %s is not kept as an artifact (kept: %v)", flag, path, kept)
		}
	}
	return problems
}

// conformFlagsIn is the parsed conform command of scripts, nil if none.
func conformFlagsIn(scripts []string) *conformFlags {
	calls, err := conformCalls(scripts)
	if err != nil || len(calls) != 1 {
		return nil
	}
	f := newConformFlags()
	if _, ok := f.parse(calls[0], &bytes.Buffer{}); !ok {
		return nil
	}
	return f
}

// conformCalls parses scripts as the shell does (continuation lines,
// quotes) and returns the arguments of every mqttbench conform command.
func conformCalls(scripts []string) ([][]string, error) {
	var calls [][]string
	for _, s := range scripts {
		file, err := syntax.NewParser().Parse(strings.NewReader(s), "")
		if err != nil {
			return nil, fmt.Errorf("script %q: %v", s, err)
		}
		var ferr error
		syntax.Walk(file, func(n syntax.Node) bool {
			call, ok := n.(*syntax.CallExpr)
			if !ok || len(call.Args) < 2 || ferr != nil {
				return true
			}
			args, err := expand.Fields(&expand.Config{}, call.Args...)
			if err != nil {
				ferr = err
				return false
			}
			if filepath.Base(args[0]) == "mqttbench" && args[1] == "conform" {
				calls = append(calls, args[2:])
			}
			return true
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	return calls, nil
}

func TestCIExamples(t *testing.T) {
	for _, tc := range []struct {
		path  string
		check func([]byte) []string
	}{
		{githubExample, checkGitHubWorkflow},
		{gitlabExample, checkGitLabJob},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			src, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.check(src) {
				t.Error(p)
			}
		})
	}
}

// The checks catch what they are there for: each broken copy of an
// example is rejected with the problem named.
func TestCIExampleChecksFail(t *testing.T) {
	for _, tc := range []struct {
		name, path, old, new, want string
	}{
		{"renamed flag", githubExample, "--baseline", "--base-line", "flag provided but not defined: -base-line"},
		{"one version", githubExample, "--protocol all", "--protocol 5", "runs 1 versions, want all"},
		{"no baseline", gitlabExample, "--baseline .mqttbench/baseline.json", "", "no --baseline"},
		{"step with neither", githubExample, "run: go install github.com/mqttbench/mqttbench/cmd/mqttbench@latest", "with: {}", "wants exactly one of uses and run"},
		{"misspelt key", githubExample, "runs-on:", "runs_on:", "field runs_on not found"},
		{"mqttbench not installed", githubExample, "go install github.com/mqttbench/mqttbench/cmd/mqttbench@latest", "echo", "no step installs mqttbench"},
		{"reports not always kept", githubExample, "if: always()\n        uses: actions/upload", "if: success()\n        uses: actions/upload", "want always()"},
		{"report outside the artifacts", githubExample, "--html mqttbench-results/conform.html", "--html conform.html", "--html conform.html is not kept"},
		{"gitlab junit elsewhere", gitlabExample, "junit: mqttbench-results/conform.xml", "junit: report.xml", "artifacts.reports.junit is report.xml"},
		{"gitlab no service", gitlabExample, "  services:\n", "  x-services:\n", "no services"},
		{"unterminated quote", gitlabExample, "--protocol all", "--protocol 'all", "script"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(src, []byte(tc.old)) {
				t.Fatalf("%s has no %q to break", tc.path, tc.old)
			}
			broken := bytes.Replace(src, []byte(tc.old), []byte(tc.new), 1)
			check := checkGitHubWorkflow
			if tc.path == gitlabExample {
				check = checkGitLabJob
			}
			problems := check(broken)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q, want one naming %q", problems, tc.want)
			}
		})
	}
}

// actionlint checks what the structure test cannot: expressions, action
// inputs, runner labels, shell scripts. scripts/check-ci-examples.sh runs
// it; here it must pass the example and fail a broken copy. The test
// never installs it (no network): without it, it is skipped, loudly.
func TestCIExampleActionlint(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH for go env")
	}
	script, err := filepath.Abs("../../scripts/check-ci-examples.sh")
	if err != nil {
		t.Fatal(err)
	}
	lint := func(path string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, script, path)
		cmd.Env = append(os.Environ(), "MQTTBENCH_NO_INSTALL=1")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		case err != nil:
			t.Fatalf("%s: %v", script, err)
		}
		return 0, string(out)
	}
	example, err := filepath.Abs(githubExample)
	if err != nil {
		t.Fatal(err)
	}
	code, out := lint(example)
	if code == 2 && strings.Contains(out, "actionlint is not installed") {
		t.Skipf("SKIPPED: actionlint is not installed, so the workflow was not linted; run scripts/check-ci-examples.sh once to install it\n%s", out)
	}
	if code != 0 {
		t.Fatalf("actionlint rejects %s (exit %d):\n%s", githubExample, code, out)
	}
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	// Mistakes the structure check lets through.
	for _, tc := range []struct{ name, old, new string }{
		{"bad expression", "if: always()", "if: ${{ always( }}"},
		{"unknown action input", "if-no-files-found: warn", "if-no-file-found: warn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(src, []byte(tc.old)) {
				t.Fatalf("no %q to break", tc.old)
			}
			broken := filepath.Join(t.TempDir(), "broken.yml")
			if err := os.WriteFile(broken, bytes.Replace(src, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out := lint(broken); code != 1 {
				t.Errorf("actionlint: exit %d on a broken copy, want 1:\n%s", code, out)
			}
		})
	}
}
