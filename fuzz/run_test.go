package fuzz

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// The reference broker has no findings.
func TestRunReference(t *testing.T) {
	ref, _ := reference(t)
	res, err := Run(context.Background(), Config{Target: ref, Version: packetgen.V311, Seed: 5, Cases: 400, Timing: fast})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cases != 400 || !res.OK() || res.Interrupted {
		t.Fatalf("%s; findings %+v", res.SummaryLine(), res.Findings)
	}
}

// firstCase returns the first case of seed that pred matches.
func firstCase(t *testing.T, seed uint64, v packetgen.Version, pred func(Case) bool) uint64 {
	t.Helper()
	for i := range uint64(20000) {
		if pred(Generate(seed, i, v)) {
			return i
		}
	}
	t.Fatal("no matching case")
	return 0
}

// hasFrame reports whether the case's bytes hold a packet pred matches.
func hasFrame(c Case, pred func(byte, []byte) bool) bool {
	b := c.Bytes
	for len(b) > 0 {
		typ, body, size, ok := frame(b)
		if !ok {
			return false
		}
		if pred(typ, body) {
			return true
		}
		b = b[size:]
	}
	return false
}

// A crash among concurrent cases is pinned on the case that causes it
// alone, minimized with restarts, saved, and replays.
func TestRunCrashTriageMinimizeReplay(t *testing.T) {
	f := startFake(t, "crash", subscribeCut)
	culprit := firstCase(t, 3, packetgen.V311, func(c Case) bool { return hasFrame(c, subscribeCut) })
	out := t.TempDir()
	var notes []string
	res, err := Run(context.Background(), Config{Target: f.target(), Version: packetgen.V311, Seed: 3, First: culprit - 30, Cases: 31,
		Timing: fast, Out: out, Log: func(format string, args ...any) { notes = append(notes, format) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) == 0 {
		t.Fatalf("no finding in %d cases (culprit %d): %s", res.Cases, culprit, res.SummaryLine())
	}
	var x = res.Findings[0]
	for _, y := range res.Findings {
		if y.Class == Crash && y.Case == culprit {
			x = y
		}
	}
	// The shortest SUBSCRIBE the fake dies on: identifier and first filter.
	if x.Class != Crash || x.Case != culprit || !x.Verified || !x.Minimized || x.Bytes > 2+2+2+40 {
		t.Fatalf("finding %+v, want a verified crash in case %d minimized to one filter", x, culprit)
	}
	if len(res.Findings) != 1 {
		t.Errorf("findings beside the crash: %+v", res.Findings)
	}
	rep, err := ReadReproducer(x.Reproducer)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seed != 3 || rep.Case != culprit || rep.Finding != Crash || rep.OriginalHex == "" {
		t.Fatalf("reproducer %+v", rep)
	}
	got, err := Replay(context.Background(), f.target(), rep, fast)
	if err != nil || !got.Reproduces {
		t.Fatalf("replay against the crashing broker: %+v %v", got, err)
	}
	f.restart(context.Background()) //nolint:errcheck
	ref, _ := reference(t)
	if got, err := Replay(context.Background(), ref, rep, fast); err != nil || got.Reproduces || got.Finding != "" {
		t.Fatalf("replay against the reference broker: %+v %v", got, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(out, "reproducers", "crash-*.json")); len(matches) == 0 {
		t.Fatal("no reproducer file")
	}
}

// Without a way to restart, a crash ends the run with what is known.
func TestRunCrashNoRestart(t *testing.T) {
	f := startFake(t, "crash", subscribeCut)
	culprit := firstCase(t, 3, packetgen.V311, func(c Case) bool { return hasFrame(c, subscribeCut) })
	tg := f.target()
	tg.Restart = nil
	res, err := Run(context.Background(), Config{Target: tg, Version: packetgen.V311, Seed: 3, First: culprit - 30, Cases: 80, Timing: fast})
	if err != nil {
		t.Fatal(err)
	}
	// Unverified: the case that noticed is blamed, and the suspects named.
	if res.Stopped == "" || len(res.Findings) != 1 || res.Findings[0].Class != Crash || res.Findings[0].Verified ||
		!strings.Contains(res.Findings[0].Observed, fmt.Sprint(culprit)) {
		t.Fatalf("stopped %q findings %+v", res.Stopped, res.Findings)
	}
}

// A hang is found, verified alone and minimized like a crash.
func TestRunHang(t *testing.T) {
	f := startFake(t, "hang", subscribeCut)
	culprit := firstCase(t, 3, packetgen.V311, func(c Case) bool { return hasFrame(c, subscribeCut) })
	res, err := Run(context.Background(), Config{Target: f.target(), Version: packetgen.V311, Seed: 3, First: culprit - 30, Cases: 31,
		Timing: Timing{Liveness: 150 * time.Millisecond}, Budget: Budget{Tries: 12}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range res.Findings {
		found = found || (x.Class == Hang && x.Case == culprit && x.Verified)
	}
	if !found {
		t.Fatalf("findings %+v", res.Findings)
	}
}

// RSS growth past the bound is a finding, blamed on the case during which
// the RSS rose (here: the broker allocates what a PUBLISH header declares).
func TestRunResourceGrowth(t *testing.T) {
	f := startFake(t, "grow", func(byte, []byte) bool { return false })
	culprit := firstCase(t, 9, packetgen.V311, func(c Case) bool { return c.Class == "oversized-length" })
	tg := f.target()
	tg.mu.Lock()
	tg.pid = os.Getpid() // the fake lives in this process
	tg.mu.Unlock()
	res, err := Run(context.Background(), Config{Target: tg, Version: packetgen.V311, Seed: 9, First: culprit, Cases: 1,
		Workers: 1, Timing: fast, RSSBound: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res.Findings {
		if x.Class == ResourceGrowth {
			if x.CaseClass != "oversized-length" || !strings.Contains(x.Observed, "RSS") {
				t.Fatalf("resource finding %+v", x)
			}
			return
		}
	}
	t.Fatalf("no resource finding: %+v (rss %+v)", res.Findings, res.RSS)
}

// The context ends a run; the result says so.
func TestRunInterrupted(t *testing.T) {
	ref, _ := reference(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, Config{Target: ref, Version: packetgen.V311, Seed: 5, Timing: fast})
	if err != nil || !res.Interrupted || res.Cases == 0 {
		t.Fatalf("%+v %v", res, err)
	}
}

// A deviation under a generic rule shrinks within its own kind: a broker
// that accepts any packet must get a trailing-bytes reproducer that still
// has a packet with trailing bytes, not 00 00 (reserved type 0).
func TestRunDeviationKeepsKind(t *testing.T) {
	f := lenientFake(t)
	first := firstCase(t, 11, packetgen.V311, func(c Case) bool { return c.Class == "trailing-bytes" && len(c.Splits) == 0 && c.Bytes[0] == 0xC0 })
	res, err := Run(context.Background(), Config{Target: f.target(), Version: packetgen.V311, Seed: 11, First: first, Cases: 1,
		Workers: 1, Timing: fast, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Class != SpecDeviation {
		t.Fatalf("findings %+v", res.Findings)
	}
	rep, err := ReadReproducer(res.Findings[0].Reproducer)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := rep.ToCase()
	orig := m
	if rep.OriginalHex != "" {
		orig = m.withBytes(mustHex(t, rep.OriginalHex), nil)
	}
	got, want := Judge(m.Bytes, m.Phase, m.Version), Judge(orig.Bytes, orig.Phase, orig.Version)
	if got.Kind != want.Kind || m.Bytes[0]>>4 == 0 {
		t.Fatalf("trailing-bytes case % X shrank to % X: %q, want %q", orig.Bytes, m.Bytes, got.Kind, want.Kind)
	}
	t.Logf("% X shrank to % X (%s)", orig.Bytes, m.Bytes, got.Kind)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
