package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// baselineSpecs keeps each run to the two specs of MQTT-3.1.0: the
// accept-second-connect fault fails MQTT-3.1.0-2 and leaves -1 passed.
var baselineSpecs = []string{"--protocol", "3.1.1", "--focus", `\[MQTT-3\.1\.0-`, "--timeout", "2s"}

// The gate of a broker team: a run with failures is the baseline; the
// fixed broker against it exits 0 and lists the statement as better; the
// broken broker against a clean baseline exits 1 and lists it as worse;
// the broken broker against its own baseline exits 0, the failure known.
// mqttbench report re-judges the JSON the same way.
func TestConformBaseline(t *testing.T) {
	dir := t.TempDir()
	faulty, clean := faultyBroker(t), referenceBroker(t)
	save := func(res *reports.Conformance, name string) string {
		p := filepath.Join(dir, name)
		if err := res.WriteJSON(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code, stdout, stderr, bad, _ := conformChild(t, append([]string{"--broker", "tcp://" + faulty}, baselineSpecs...)...)
	if code != exitFailures || !strings.Contains(stdout, "Statements broken (1): MQTT-3.1.0-2") {
		t.Fatalf("faulty broker: exit %d, want %d\n%s\n%s", code, exitFailures, stdout, stderr)
	}
	badPath := save(bad, "faulty.json")
	code, stdout, stderr, good, _ := conformChild(t, append([]string{"--broker", "tcp://" + clean}, baselineSpecs...)...)
	if code != exitOK {
		t.Fatalf("clean broker: exit %d\n%s\n%s", code, stdout, stderr)
	}
	goodPath := save(good, "clean.json")

	for _, tc := range []struct {
		name, broker, baseline string
		code                   int
		lines                  []string // on stdout
		worse, better, known   []string // in the JSON
	}{
		{"fixed", clean, badPath, exitOK,
			[]string{"BETTER MQTT-3.1.0-2 (3.1.1): failed -> passed", "baseline " + badPath + ": 0 worse, 1 better, 0 known failures"},
			nil, []string{"MQTT-3.1.0-2"}, nil},
		{"broken", faulty, goodPath, exitFailures,
			[]string{"WORSE MQTT-3.1.0-2 (3.1.1): passed -> failed", "baseline " + goodPath + ": 1 worse, 0 better, 0 known failures"},
			[]string{"MQTT-3.1.0-2"}, nil, nil},
		{"known", faulty, badPath, exitOK,
			[]string{"KNOWN failures (1, in the baseline too): MQTT-3.1.0-2 (3.1.1)", "baseline " + badPath + ": 0 worse, 0 better, 1 known failures"},
			nil, nil, []string{"MQTT-3.1.0-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			html := filepath.Join(t.TempDir(), "c.html")
			args := append([]string{"--broker", "tcp://" + tc.broker, "--baseline", tc.baseline, "--html", html}, baselineSpecs...)
			code, stdout, stderr, res, junit := conformChild(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, stdout, stderr)
			}
			for _, l := range tc.lines {
				if !strings.Contains(stdout, l) {
					t.Errorf("stdout lacks %q:\n%s", l, stdout)
				}
			}
			if !closingLine.MatchString(lastOutputLine(stdout)) {
				t.Errorf("last line %q is not the closing line", lastOutputLine(stdout))
			}
			b := res.Baseline
			if b == nil {
				t.Fatal("no baseline section in the JSON")
			}
			ids := func(cs []reports.VerdictChange) []string {
				var out []string
				for _, c := range cs {
					out = append(out, c.ID)
				}
				return out
			}
			var known []string
			for _, r := range b.Known {
				known = append(known, r.ID)
			}
			if !slices.Equal(ids(b.Worse), tc.worse) || !slices.Equal(ids(b.Better), tc.better) || !slices.Equal(known, tc.known) ||
				b.KnownFailures != len(tc.known) || b.File != tc.baseline || b.Compared != 2 {
				t.Errorf("baseline section %+v", b)
			}
			if !strings.Contains(string(junit), `<property name="baseline_worse" value="`+strconv.Itoa(len(tc.worse))+`">`) {
				t.Errorf("JUnit lacks the baseline properties:\n%.2000s", junit)
			}
			page, err := os.ReadFile(html)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(page), `<section id="baseline">`) || !strings.Contains(string(page), "Worse ("+strconv.Itoa(len(tc.worse))+")") ||
				!strings.Contains(string(page), "Better ("+strconv.Itoa(len(tc.better))+")") {
				t.Errorf("HTML report lacks the baseline section")
			}

			// mqttbench report judges the result again by the baseline
			// conform wrote into it, and by one given on its command line.
			jsonPath := filepath.Join(t.TempDir(), "r.json")
			if err := res.WriteJSON(jsonPath); err != nil {
				t.Fatal(err)
			}
			if code, out, errs := runCLI(context.Background(), "report", jsonPath, "-o", "-"); code != tc.code {
				t.Errorf("report: exit %d, want %d\n%s\n%s", code, tc.code, out, errs)
			}
			res.Baseline = nil
			if err := res.WriteJSON(jsonPath); err != nil {
				t.Fatal(err)
			}
			if code, out, errs := runCLI(context.Background(), "report", jsonPath, "--baseline", tc.baseline, "-o", "-"); code != tc.code || !strings.Contains(out, tc.lines[0]) {
				t.Errorf("report --baseline: exit %d, want %d\n%s\n%s", code, tc.code, out, errs)
			}
		})
	}
}

// A missing or corrupt baseline, or one that is not a conformance result,
// stops conform (and report) before anything runs: one line, exit 2.
func TestConformBaselineErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	os.WriteFile(corrupt, []byte(`{"kind": "conformance", "statements": [`), 0o644) //nolint:errcheck
	fuzz := filepath.Join(dir, "fuzz.json")
	os.WriteFile(fuzz, []byte(`{"kind": "fuzz"}`), 0o644) //nolint:errcheck
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{"kind": "conformance", "statements": []}`), 0o644) //nolint:errcheck
	result := filepath.Join(dir, "result.json")
	if err := (&reports.Conformance{Kind: "conformance", Statements: []reports.Statement{{ID: "MQTT-3.1.0-1", Verdict: reports.Passed}}}).WriteJSON(result); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.json"), "nope.json: no such file"},
		{"corrupt", corrupt, "corrupt.json: unexpected end of JSON input"},
		{"another kind", fuzz, `not a conformance result (kind "fuzz")`},
		{"no verdicts", empty, "without statement verdicts"},
	} {
		for _, cmd := range [][]string{{"conform"}, {"report", result, "-o", "-"}} {
			t.Run(tc.name+" "+cmd[0], func(t *testing.T) {
				code, stdout, stderr := runCLI(context.Background(), append(cmd, "--baseline", tc.path)...)
				first, _, _ := strings.Cut(stderr, "\n")
				if code != exitUsage || stdout != "" || !strings.Contains(first, tc.want) || !strings.HasPrefix(first, "mqttbench "+cmd[0]+": --baseline") {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one line naming %q", code, stdout, stderr, exitUsage, tc.want)
				}
			})
		}
	}
}

// The TLS a conformance run negotiated is in its JSON, its JUnit report
// (testsuite properties) and the header of its HTML report, whether a
// client certificate was offered with it; no key material is anywhere.
func TestConformTLSInReports(t *testing.T) {
	p := newTestPKI(t)
	for _, tc := range []struct {
		name       string
		lopts      transport.ListenOptions
		flags      []string
		clientCert bool
	}{
		{"server certificate", transport.ListenOptions{Cert: p.serverCert, Key: p.serverKey}, []string{"--cacert", p.ca}, false},
		{"mutual TLS", transport.ListenOptions{Cert: p.serverCert, Key: p.serverKey, ClientCA: p.ca, RequireClientCert: true},
			[]string{"--cacert", p.ca, "--cert", p.clientCert, "--key", p.clientKey}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serveBroker(t, "tls://127.0.0.1:0", tc.lopts)
			html := filepath.Join(t.TempDir(), "c.html")
			args := append([]string{"--broker", url, "--focus", `MQTT-3\.1\.0-1\]`, "--html", html}, tc.flags...)
			code, stdout, stderr, res, junit := conformChild(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			tl := res.TLS
			if tl == nil || tl.Version != "TLS 1.3" || !strings.HasPrefix(tl.Cipher, "TLS_") || tl.ClientCert != tc.clientCert {
				t.Fatalf("JSON tls %+v", tl)
			}
			for _, prop := range []string{`<property name="tls_version" value="TLS 1.3">`, `<property name="tls_cipher" value="` + tl.Cipher + `">`} {
				if !strings.Contains(string(junit), prop) {
					t.Errorf("JUnit lacks %s", prop)
				}
			}
			page, err := os.ReadFile(html)
			if err != nil {
				t.Fatal(err)
			}
			if want := "<dt>TLS</dt><dd>" + tl.String() + "</dd>"; !strings.Contains(string(page), want) {
				t.Errorf("HTML header lacks %q", want)
			}
			key, err := os.ReadFile(p.clientKey)
			if err != nil {
				t.Fatal(err)
			}
			body := keyBody(string(key))
			for name, out := range map[string]string{"stdout": stdout, "stderr": stderr, "JUnit": string(junit), "HTML": string(page)} {
				if strings.Contains(out, body) || strings.Contains(out, "PRIVATE KEY") {
					t.Errorf("%s holds key material", name)
				}
			}
		})
	}
}

// keyBody is a line from the middle of a PEM key.
func keyBody(pem string) string {
	lines := strings.Split(strings.TrimSpace(pem), "\n")
	return lines[len(lines)/2]
}
