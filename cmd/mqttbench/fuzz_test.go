package main

import (
	"bytes"
	"context"
	"html"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/fuzz"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

func runCLI(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestFuzzUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--cases", "5", "--duration", "1s"},
		{"--protocol", "9"},
		{"--workers", "0"},
		{"--restart", "true"},
		{"--nope"},
		{"extra"},
		{"--broker", "http://127.0.0.1:1"},
	} {
		code, _, stderr := runCLI(context.Background(), append([]string{"fuzz"}, args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "mqttbench fuzz:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// An unreachable broker is one line on stderr and exit 2.
func TestFuzzUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	code, _, stderr := runCLI(context.Background(), "fuzz", "--broker", "tcp://"+addr, "--cases", "1", "--out", t.TempDir())
	if code != exitUsage || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "cannot reach") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// The in-process broker: no findings, exit 0, fuzz.json and a table.
func TestFuzzInProcess(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI(context.Background(), "fuzz", "--cases", "80", "--seed", "4", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := reports.ReadFuzz(filepath.Join(out, "fuzz.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Cases != 80 || res.Seed != 4 || !strings.Contains(stdout, "80 cases") || !strings.Contains(stderr, "seed 4") {
		t.Fatalf("result %+v\n%s\n%s", res, stdout, stderr)
	}
}

// lenient is a broker that answers CONNECT and any PINGREQ and never
// closes: every malformed case is a spec deviation.
func lenient(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				var buf []byte
				tmp := make([]byte, 4096)
				for {
					n, err := nc.Read(tmp)
					if err != nil {
						return
					}
					buf = append(buf, tmp[:n]...)
					for len(buf) >= 2 && buf[1]&0x80 == 0 && len(buf) >= 2+int(buf[1]) {
						switch buf[0] >> 4 {
						case 1:
							nc.Write([]byte{0x20, 2, 0, 0}) //nolint:errcheck
						case 12:
							nc.Write([]byte{0xD0, 0}) //nolint:errcheck
						}
						buf = buf[2+int(buf[1]):]
					}
					if len(buf) >= 2 && buf[1]&0x80 != 0 {
						buf = nil // long packets are skipped whole
					}
				}
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// A PINGREQ with a body: malformed (MQTT-4.8.0-1).
func pingWithBody() fuzz.Case {
	return fuzz.Case{Version: packetgen.V311, Generator: fuzz.GenMalformed, Class: "trailing-bytes", Rule: "MQTT-4.8.0-1",
		Expect: packetgen.ExpectClose, Phase: packetgen.PhaseAfterConnect, Bytes: []byte{0xC0, 0x01, 0x00}}
}

// Findings: exit 1, each with a reproducer that replays.
func TestFuzzFindingsAndReplay(t *testing.T) {
	url := lenient(t)
	out := t.TempDir()
	code, stdout, stderr := runCLI(context.Background(), "fuzz", "--broker", url, "--cases", "6", "--seed", "2", "--out", out, "--deadline", "300ms")
	if code != exitFailures {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := reports.ReadFuzz(filepath.Join(out, "fuzz.json"))
	if err != nil || len(res.Findings) == 0 || res.Findings[0].Reproducer == "" {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.Contains(stdout, res.Findings[0].Reproducer) {
		t.Fatalf("table lacks the reproducer:\n%s", stdout)
	}

	path := filepath.Join(t.TempDir(), "r.json")
	c := pingWithBody()
	if err := fuzz.NewReproducer(fuzz.SpecDeviation, "PINGREQ answered", url, c, c).Write(path); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := runCLI(context.Background(), "fuzz", "--replay", path, "--broker", url); code != exitFailures || !strings.Contains(stdout, "reproduces: spec-deviation") {
		t.Fatalf("replay against the lenient broker: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := runCLI(context.Background(), "fuzz", "--replay", path); code != exitOK || !strings.Contains(stdout, "does not reproduce") {
		t.Fatalf("replay against the reference broker: exit %d\n%s", code, stdout)
	}
	os.WriteFile(path, []byte("{}"), 0o644) //nolint:errcheck
	if code, _, _ := runCLI(context.Background(), "fuzz", "--replay", path); code != exitUsage {
		t.Fatalf("replay of a bad file: exit %d", code)
	}
}

// SIGINT (a cancelled context) stops the run, still writes the result,
// and exits 130.
func TestFuzzInterrupted(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	code, stdout, stderr := runCLI(ctx, "fuzz", "--duration", "1m", "--seed", "3", "--out", out)
	if code != exitInterrupted {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := reports.ReadFuzz(filepath.Join(out, "fuzz.json"))
	if err != nil || !res.Interrupted || res.Cases == 0 {
		t.Fatalf("%+v %v", res, err)
	}
}

// A run writes fuzz.html beside fuzz.json, the page `mqttbench report`
// renders, naming every finding's reproducer; its path closes the run.
func TestFuzzWritesHTMLReport(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI(context.Background(), "fuzz", "--broker", lenient(t), "--cases", "6", "--seed", "2", "--out", out, "--deadline", "300ms")
	if code != exitFailures {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := reports.ReadFuzz(filepath.Join(out, "fuzz.json"))
	if err != nil || len(res.Findings) == 0 {
		t.Fatalf("%+v %v", res, err)
	}
	path := filepath.Join(out, "fuzz.html")
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(page), "<!DOCTYPE html>") || !strings.Contains(string(page), `id="findings"`) {
		t.Fatalf("%s is not the fuzz report", path)
	}
	for _, f := range res.Findings {
		if f.Reproducer == "" || !strings.Contains(string(page), html.EscapeString(f.Reproducer)) {
			t.Errorf("%s does not name the reproducer %q of case %d", path, f.Reproducer, f.Case)
		}
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); !strings.Contains(lines[len(lines)-1], path) {
		t.Errorf("the last line does not name %s:\n%s", path, stderr)
	}
	// The same page as `mqttbench report DIR`, but for the time it was made.
	again := filepath.Join(t.TempDir(), "again.html")
	if code, _, errb := runCLI(context.Background(), "report", out, "-o", again); code == exitUsage {
		t.Fatalf("report: %s", errb)
	}
	b, _ := os.ReadFile(again)
	stamp := regexp.MustCompile(`(?s)<footer.*?</footer>|\d{4}-\d\d-\d\d[ T][0-9:]+( UTC)?`)
	if stamp.ReplaceAllString(string(b), "") != stamp.ReplaceAllString(string(page), "") {
		t.Error("fuzz.html differs from what mqttbench report renders")
	}
}

// The in-process broker serves 5.0: fuzzing it and replaying a 5.0
// reproducer on it work without --broker, and it passes.
func TestFuzzV5OnReferenceBroker(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(context.Background(), "fuzz", "--protocol", "5", "--cases", "300", "--seed", "5", "--out", dir)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	res, err := reports.ReadFuzz(filepath.Join(dir, "fuzz.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Cases != 300 || len(res.Findings) != 0 {
		t.Fatalf("%d cases, %d findings; want 300, 0:\n%s", res.Cases, len(res.Findings), stdout)
	}
	c := fuzz.Case{Version: packetgen.V5, Generator: fuzz.GenMalformed, Class: "trailing-bytes", Rule: "MQTT-4.13.1-1",
		Expect: packetgen.ExpectClose, Phase: packetgen.PhaseAfterConnect, Bytes: []byte{0xC0, 0x01, 0x00}}
	rep := filepath.Join(dir, "5-spec-deviation.json")
	if err := fuzz.NewReproducer(fuzz.SpecDeviation, "PINGREQ answered", "tcp://x:1", c, c).Write(rep); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(context.Background(), "fuzz", "--replay", rep); code != exitOK {
		t.Fatalf("replay: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

// A password given in a broker URL never reaches the output of conform
// or fuzz: the URL is refused with its password masked.
func TestFuzzConformURLPasswordMasked(t *testing.T) {
	const secret = "s3cr3t-Pw"
	for _, cmd := range []string{"fuzz", "conform"} {
		for _, url := range []string{
			"tcp://user:" + secret + "@127.0.0.1:1883",
			"user:" + secret + "@127.0.0.1:1883",
			"tcp://user:" + secret + "@@127.0.0.1:1883",
			"mqtt://user:" + secret + "@127.0.0.1:1883",
			"tcp://user:" + secret + "%zz@127.0.0.1:1883",
		} {
			code, stdout, stderr := runCLI(context.Background(), cmd, "--broker", url)
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("%s --broker %s: the password is printed:\n%s%s", cmd, url, stdout, stderr)
			}
			if code != exitUsage || !strings.Contains(stderr, "user:xxxxx@") || !strings.HasPrefix(stderr, "mqttbench "+cmd+": --broker") {
				t.Errorf("%s --broker %s: exit %d, stderr %q", cmd, url, code, stderr)
			}
		}
	}
}

// A fuzz run over TLS says what the handshake negotiated: in fuzz.json,
// in the terminal table and in the comparison rows of its report.
func TestFuzzOverTLSRecordsNegotiation(t *testing.T) {
	p := newTestPKI(t)
	url := serveBroker(t, "tls://127.0.0.1:0", transport.ListenOptions{Cert: p.serverCert, Key: p.serverKey})
	out := t.TempDir()
	code, stdout, stderr := runCLI(context.Background(), "fuzz", "--broker", url, "--cacert", p.ca,
		"--cases", "30", "--seed", "7", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := reports.ReadFuzz(filepath.Join(out, "fuzz.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.TLS == nil || res.TLS.Version != "TLS 1.3" || !strings.HasPrefix(res.TLS.Cipher, "TLS_") {
		t.Fatalf("fuzz.json tls %+v", res.TLS)
	}
	if !strings.Contains(stdout, "TLS: "+res.TLS.String()) {
		t.Errorf("the terminal output lacks the TLS line:\n%s", stdout)
	}
	rows := reports.FuzzRows([]reports.Entry{{Name: "tls", Fuzz: res}})
	if last := rows[len(rows)-1]; last[0] != "tls" || last[1] != res.TLS.String() {
		t.Errorf("comparison rows end with %v, want the TLS row", last)
	}
}
