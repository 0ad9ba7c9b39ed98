package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
)

const dashboardFile = "../deploy/grafana/mqttbench-load.json"

// exposedNames are the series names a scrape of an exporter can show:
// every family of the registry, with a summary's _sum and _count and a
// histogram's _bucket. The exporter is fed values for every family, and
// the test fails if one is still missing.
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	e := New(Info{RunID: "00000001", Target: "inproc", Protocol: "3.1.1"})
	e.Update(0, &loadgen.Live{Phase: "publish", Errors: map[string]uint64{"closed": 1},
		ReasonCodes: []reports.LoadReasonCode{{Packet: "CONNACK", Code: 5, Name: "not authorized", Count: 1}},
		Latency:     map[string]*loadgen.Histogram{"e2e": hist(10)}})
	fams, err := e.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	ours := 0
	for _, f := range fams {
		n := f.GetName()
		names[n] = true
		switch f.GetType() {
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		case dto.MetricType_HISTOGRAM:
			names[n+"_sum"], names[n+"_count"], names[n+"_bucket"] = true, true, true
		}
		if strings.HasPrefix(n, "mqttbench_") {
			ours++
		}
	}
	if ours != len(descs) {
		t.Fatalf("the registry gathered %d mqttbench families of the %d described: feed the rest", ours, len(descs))
	}
	return names
}

// exprs collects every PromQL expression of the dashboard: panel
// targets, in rows too, and template variable queries.
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch s, ok := x.(string); {
			case ok && (k == "expr" || k == "definition"):
				*out = append(*out, s)
			default:
				exprs(x, out)
			}
		}
	case []any:
		for _, x := range v {
			exprs(x, out)
		}
	}
}

// The dashboard queries only series the exporter (with the Go and
// process collectors) exposes, so that renaming a metric without the
// dashboard, or the other way round, fails here.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if v, _ := dash["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v; want 36 or later", dash["schemaVersion"])
	}
	if !strings.Contains(string(b), `"uid": "${DS_PROMETHEUS}"`) || !strings.Contains(string(b), `"name": "DS_PROMETHEUS"`) {
		t.Error("panels do not take their data source from the DS_PROMETHEUS variable")
	}
	var all []string
	exprs(dash["panels"], &all)
	exprs(dash["templating"], &all)
	if len(all) < 10 {
		t.Fatalf("found only %d expressions: %q", len(all), all)
	}
	names := exposedNames(t)
	metric := regexp.MustCompile(`\b(?:mqttbench|go|process)_[a-zA-Z0-9_]*`)
	used := map[string]bool{}
	for _, e := range all {
		for _, n := range metric.FindAllString(e, -1) {
			used[n] = true
			if !names[n] {
				t.Errorf("the dashboard queries %s, which no scrape shows (in %q)", n, e)
			}
		}
	}
	// Each concept of the issue has a panel.
	for _, n := range []string{"mqttbench_messages_sent_total", "mqttbench_messages_received_total", "mqttbench_messages_acked_total",
		"mqttbench_connections_open", "mqttbench_errors_total", "mqttbench_reason_codes_total", "mqttbench_latency_seconds",
		"mqttbench_missed_sends_total", "mqttbench_phase", "mqttbench_offered_rate", "mqttbench_run_info",
		"go_memstats_heap_alloc_bytes", "go_gc_duration_seconds_count"} {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}
