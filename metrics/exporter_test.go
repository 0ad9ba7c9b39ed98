package metrics

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
)

// scrape GETs url and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the sample of family name whose labels include kv (pairs);
// for a summary, "quantile" picks a quantile and a name ending in _count
// or _sum its count or sum.
func value(fams map[string]*dto.MetricFamily, name string, kv ...string) (float64, bool) {
	part := ""
	f := fams[name]
	if f == nil {
		for _, suf := range []string{"_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suf); ok && fams[base] != nil {
				f, part = fams[base], suf
			}
		}
	}
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	q, hasQ := want["quantile"]
	delete(want, "quantile")
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Summary != nil && part == "_count":
			return float64(m.Summary.GetSampleCount()), true
		case m.Summary != nil && part == "_sum":
			return m.Summary.GetSampleSum(), true
		case m.Summary != nil && hasQ:
			for _, sq := range m.Summary.GetQuantile() {
				if strconv.FormatFloat(sq.GetQuantile(), 'g', -1, 64) == q {
					return sq.GetValue(), true
				}
			}
			return 0, false
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// hist is a histogram of the given microseconds.
func hist(us ...int64) *loadgen.Histogram {
	h := loadgen.NewHistogram()
	for _, v := range us {
		h.RecordValue(v) //nolint:errcheck
	}
	return h
}

// Two parts' totals are summed; the latency is of their histograms
// merged; the run is in the earlier part's phase; a later update
// replaces a part's totals instead of adding to them.
func TestExporterSumsParts(t *testing.T) {
	e := New(Info{RunID: "0000abcd", Target: "tcp://127.0.0.1:1883", Protocol: "5.0", OfferedRate: 1000, Connections: 8})
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()

	errs := func(closed uint64) map[string]uint64 {
		return map[string]uint64{"refused": 0, "timeout": 0, "closed": closed, "protocol": 0, "other": 0}
	}
	e.Update(0, &loadgen.Live{Phase: "publish", Sent: 10, Received: 9, Acked: 8, MissedLate: 1, Open: 4, Connects: 4, Errors: errs(1),
		ReasonCodes: []reports.LoadReasonCode{{Packet: "PUBACK", Code: 0x10, Name: "No matching subscribers", Count: 3}},
		Latency:     map[string]*loadgen.Histogram{"e2e": hist(100, 200)}})
	e.Update(1, &loadgen.Live{Phase: "wait", Sent: 1, Open: 3, Connects: 4, Errors: errs(0),
		ReasonCodes: []reports.LoadReasonCode{{Packet: "PUBACK", Code: 0x10, Name: "No matching subscribers", Count: 2}},
		Latency:     map[string]*loadgen.Histogram{"e2e": hist(300, 400)}})
	// Part 1 again, a second later: totals, not increments.
	e.Update(1, &loadgen.Live{Phase: "publish", Sent: 20, Received: 1, Open: 4, Connects: 4, Errors: errs(2),
		ReasonCodes: []reports.LoadReasonCode{{Packet: "PUBACK", Code: 0x10, Name: "No matching subscribers", Count: 2}},
		Latency:     map[string]*loadgen.Histogram{"e2e": hist(300, 400, 500, 600)}})

	fams := scrape(t, srv.URL)
	want := []struct {
		name string
		kv   []string
		v    float64
	}{
		{"mqttbench_messages_sent_total", nil, 30},
		{"mqttbench_messages_received_total", nil, 10},
		{"mqttbench_messages_acked_total", nil, 8},
		{"mqttbench_missed_sends_total", []string{"reason", "late"}, 1},
		{"mqttbench_missed_sends_total", []string{"reason", "window"}, 0},
		{"mqttbench_connections_open", nil, 8},
		{"mqttbench_connections_target", nil, 8},
		{"mqttbench_connects_total", nil, 8},
		{"mqttbench_errors_total", []string{"class", "closed"}, 3},
		{"mqttbench_errors_total", []string{"class", "refused"}, 0},
		{"mqttbench_reason_codes_total", []string{"packet", "PUBACK", "code", "0x10", "name", "No matching subscribers"}, 5},
		{"mqttbench_phase", []string{"phase", "publish"}, 1},
		{"mqttbench_phase", []string{"phase", "wait"}, 0},
		{"mqttbench_offered_rate", nil, 1000},
		{"mqttbench_run_info", []string{"run_id", "0000abcd", "target", "tcp://127.0.0.1:1883", "protocol", "5.0"}, 1},
		{"mqttbench_latency_seconds_count", []string{"metric", "e2e"}, 6},
		{"mqttbench_latency_seconds", []string{"metric", "e2e", "quantile", "0.5"}, 300e-6},
		{"mqttbench_latency_max_seconds", []string{"metric", "e2e"}, 600e-6},
	}
	for _, w := range want {
		got, ok := value(fams, w.name, w.kv...)
		// HdrHistogram keeps 3 significant digits.
		if !ok || math.Abs(got-w.v) > 1e-3*math.Abs(w.v) {
			t.Errorf("%s%v = %v (found %v), want %v", w.name, w.kv, got, ok, w.v)
		}
	}
	if _, ok := value(fams, "mqttbench_latency_seconds", "metric", "connect", "quantile", "0.5"); ok {
		t.Error("a metric without values has a latency")
	}
	for _, n := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
		if fams[n] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", n)
		}
	}
}

// A worker's Live crosses a pipe as JSON: the histograms survive.
func TestLiveJSONRoundTrip(t *testing.T) {
	in := &loadgen.Live{RunID: "00000001", Sent: 7, Errors: map[string]uint64{"closed": 1},
		Latency: map[string]*loadgen.Histogram{"e2e": hist(1, 2, 3000)}}
	b, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var out loadgen.Live
	if err := out.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	h := out.Latency["e2e"]
	if out.Sent != 7 || out.Errors["closed"] != 1 || h == nil || h.TotalCount() != 3 || h.Max() != in.Latency["e2e"].Max() {
		t.Errorf("round trip: %+v, e2e %v", out, h)
	}
}

// The exporter's histograms are its own: the run goes on recording into
// the ones it handed over.
func TestExporterCopiesHistograms(t *testing.T) {
	e := New(Info{})
	h := hist(100)
	e.Update(0, &loadgen.Live{Latency: map[string]*loadgen.Histogram{"e2e": h}})
	h.RecordValue(5000) //nolint:errcheck
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	if n, _ := value(scrape(t, srv.URL), "mqttbench_latency_seconds_count", "metric", "e2e"); n != 1 {
		t.Errorf("count %v after the run recorded into its histogram; want 1", n)
	}
}

// Without a run id up front, run_info waits for the one the run reports.
func TestExporterRunIDFromRun(t *testing.T) {
	e := New(Info{Target: "inproc", Protocol: "3.1.1"})
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	if fams := scrape(t, srv.URL); fams["mqttbench_run_info"] != nil {
		t.Errorf("run info before the run named itself: %v", fams["mqttbench_run_info"])
	}
	e.Update(0, &loadgen.Live{RunID: "1234abcd"})
	if v, ok := value(scrape(t, srv.URL), "mqttbench_run_info", "run_id", "1234abcd", "target", "inproc"); !ok || v != 1 {
		t.Errorf("run info %v (found %v); want 1 with the run's id", v, ok)
	}
}

func ExampleExporter() {
	e := New(Info{RunID: "0000abcd", Target: "tcp://127.0.0.1:1883", Protocol: "3.1.1"})
	// loadgen.Options.Live = func(l *loadgen.Live) { e.Update(0, l) }
	e.Update(0, &loadgen.Live{Sent: 3})
	fams, _ := e.Registry().Gather()
	for _, f := range fams {
		if f.GetName() == "mqttbench_messages_sent_total" {
			fmt.Println(f.GetMetric()[0].GetCounter().GetValue())
		}
	}
	// Output: 3
}
