package loadgen

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// A recorder's interval logs and summary read back through ReadResults
// with the same counts and percentiles, interval by interval.
func TestResultsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	files, err := createLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs [numMetrics]io.Writer
	for i, f := range files {
		logs[i] = f
	}
	start := time.Date(2025, 3, 1, 12, 0, 0, 300e6, time.UTC)
	rec, err := NewRecorder(start, logs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 1000; i++ {
		rec.Record(MetricEndToEnd, time.Duration(i)*time.Microsecond)
	}
	rec.Record(MetricConnect, 3*time.Millisecond)
	rec.Rotate(start.Add(time.Second))
	for i := 1; i <= 10; i++ {
		rec.Record(MetricEndToEnd, 500*time.Millisecond)
	}
	rec.Record(MetricEndToEnd, 2*time.Hour) // clamped to an hour, not lost
	rec.Rotate(start.Add(2 * time.Second))
	for _, f := range files {
		f.Close()
	}
	res := &Results{Dir: dir, Summary: &reports.Load{Kind: "load", RunID: "cafe0001"}}
	if err := res.writeSummary(); err != nil {
		t.Fatal(err)
	}

	back, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Summary.RunID != "cafe0001" || back.Summary.Files["e2e"] != "e2e.hlog" {
		t.Errorf("summary %+v", back.Summary)
	}
	e2e := back.Histograms["e2e"]
	want := rec.Total(MetricEndToEnd)
	if e2e.TotalCount() != 1011 || e2e.TotalCount() != want.TotalCount() {
		t.Fatalf("e2e count %d, recorded %d", e2e.TotalCount(), want.TotalCount())
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if a, b := e2e.ValueAtQuantile(q), want.ValueAtQuantile(q); a != b {
			t.Errorf("p%v: read %d, recorded %d", q, a, b)
		}
	}
	if iv := back.Intervals["e2e"]; len(iv) != 2 || iv[0].TotalCount() != 1000 || iv[1].TotalCount() != 11 {
		t.Errorf("intervals %d", len(iv))
	} else if iv[0].StartTimeMs() != start.UnixMilli() || iv[1].EndTimeMs() != start.Add(2*time.Second).UnixMilli() {
		t.Errorf("interval times %d..%d, want %d..%d", iv[0].StartTimeMs(), iv[1].EndTimeMs(),
			start.UnixMilli(), start.Add(2*time.Second).UnixMilli())
	}
	if c := back.Histograms["connect"]; c.TotalCount() != 1 || c.Max() < 2990 || c.Max() > 3010 {
		t.Errorf("connect %d max %d", c.TotalCount(), c.Max())
	}
	if back.Histograms["subscribe"].TotalCount() != 0 {
		t.Error("subscribe should be empty")
	}
	if _, err := ReadResults(t.TempDir()); err == nil {
		t.Error("ReadResults of an empty directory succeeded")
	}
}

// The summary never holds the user name or password.
func TestResultsHoldNoCredentials(t *testing.T) {
	sc := DefaultScenario()
	sc.Username, sc.Password = "alice-user", "hunter2-secret"
	sc.Duration, sc.Rate = 200*time.Millisecond, 100
	dir := t.TempDir()
	if _, err := Run(context.Background(), sc, Options{Out: dir}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "hunter2") || strings.Contains(s, "alice-user") {
		t.Errorf("credentials in summary.json:\n%s", s)
	}
}
