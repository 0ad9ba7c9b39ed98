package reports

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFuzzResult(t *testing.T) {
	f := &Fuzz{Kind: "fuzz", Broker: "tcp://127.0.0.1:1883", Protocol: "5.0", Seed: 9, Cases: 1200,
		Duration: 2 * time.Second, CasesPerSecond: 600,
		Findings: []FuzzFinding{
			{Class: "spec-deviation", Case: 7, CaseClass: "trailing-bytes", Rule: "MQTT-4.13.1-1", Reproducer: "r/a.json", Bytes: 3, OriginalBytes: 3, Occurrences: 2},
			{Class: "crash", Case: 40, CaseClass: "cut-body", Reproducer: "r/b.json", Bytes: 9, OriginalBytes: 30, Minimized: true, Verified: true, Occurrences: 1},
		}}
	f.SortFindings()
	if f.Findings[0].Class != "crash" || f.OK() {
		t.Fatalf("sorted %+v", f.Findings)
	}
	if got, want := f.SummaryLine(), "1200 cases in 2s (600 cases/s), 2 findings (1 crash, 1 spec-deviation)"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	if by := f.FindingsByClass(); len(by["crash"]) != 1 || len(by["spec-deviation"]) != 1 {
		t.Fatalf("by class %+v", by)
	}
	path := filepath.Join(t.TempDir(), "fuzz.json")
	if err := f.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFuzz(path)
	if err != nil || len(back.Findings) != 2 || back.Seed != 9 {
		t.Fatalf("%+v %v", back, err)
	}
	var w bytes.Buffer
	WriteFuzzTable(&w, f)
	for _, s := range []string{"r/b.json", "9 (from 30)", "cut-body", "600"} {
		if !strings.Contains(w.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, w.String())
		}
	}
}
