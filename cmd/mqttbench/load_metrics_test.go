package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
)

// syncBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// metricsRun is `mqttbench load` running in the background.
type metricsRun struct {
	stdout, stderr syncBuffer
	code           chan int
	cancel         context.CancelFunc
	url            string
}

var metricsURL = regexp.MustCompile(`(?m)^metrics: (http://127\.0\.0\.1:[0-9]+/metrics)$`)

// startLoad starts a load run and waits for the metrics line on stderr.
func startLoad(t *testing.T, args ...string) *metricsRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &metricsRun{code: make(chan int, 1), cancel: cancel}
	go func() { r.code <- run(ctx, append([]string{"load"}, args...), &r.stdout, &r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(30 * time.Second):
			t.Error("the run did not end within 30s of its cancellation")
		}
	})
	eventually(t, 30*time.Second, "the metrics address on stderr", func() bool {
		m := metricsURL.FindStringSubmatch(r.stderr.String())
		if m != nil {
			r.url = m[1]
		}
		return m != nil
	})
	return r
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrapeMetrics GETs url: the raw body and its metric families.
func scrapeMetrics(url string) (string, map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	return string(body), fams, err
}

// sample is the value of family name's series with labels kv (pairs):
// a counter's or gauge's value, a summary's quantile ("quantile", q) or,
// for name_count, its count. Missing: NaN.
func sample(fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	count := false
	f := fams[name]
	if base, ok := strings.CutSuffix(name, "_count"); ok && f == nil {
		f, count = fams[base], true
	}
	if f == nil {
		return math.NaN()
	}
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	q := want["quantile"]
	delete(want, "quantile")
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || lp.GetName() == k && lp.GetValue() == v
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Summary != nil && count:
			return float64(m.Summary.GetSampleCount())
		case m.Summary != nil:
			for _, sq := range m.Summary.GetQuantile() {
				if strconv.FormatFloat(sq.GetQuantile(), 'g', -1, 64) == q {
					return sq.GetValue()
				}
			}
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return math.NaN()
}

// sumOf adds up a family's series (NaN when there is none).
func sumOf(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil {
		return math.NaN()
	}
	var s float64
	for _, m := range f.GetMetric() {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return s
}

// checkFinal compares the last scrape with the run's summary.json.
func checkFinal(t *testing.T, fams map[string]*dto.MetricFamily, sum *reports.Load) {
	t.Helper()
	m := sum.Messages
	var errs uint64
	for _, n := range sum.Errors {
		errs += n
	}
	for _, c := range []struct {
		name string
		got  float64
		want uint64
	}{
		{"sent", sample(fams, "mqttbench_messages_sent_total"), m.Sent},
		{"received", sample(fams, "mqttbench_messages_received_total"), m.Received},
		{"acked", sample(fams, "mqttbench_messages_acked_total"), m.Acked},
		{"missed", sumOf(fams, "mqttbench_missed_sends_total"), m.Missed},
		{"errors", sumOf(fams, "mqttbench_errors_total"), errs},
		{"attempts", sample(fams, "mqttbench_connect_attempts_total"), sum.Connections.Attempts},
		{"connections target", sample(fams, "mqttbench_connections_target"), uint64(sum.Connections.Target)},
		{"phase stop", sample(fams, "mqttbench_phase", "phase", "stop"), 1},
		{"run info", sample(fams, "mqttbench_run_info", "run_id", sum.RunID), 1},
	} {
		if c.got != float64(c.want) {
			t.Errorf("final scrape: %s %v, summary.json %d", c.name, c.got, c.want)
		}
	}
	if m.Sent == 0 || m.Acked == 0 {
		t.Errorf("the run sent %d and had %d acknowledged: nothing to compare", m.Sent, m.Acked)
	}
	for _, l := range sum.Latency {
		if l.Count == 0 {
			continue
		}
		n := sample(fams, "mqttbench_latency_seconds_count", "metric", l.Metric)
		p99 := sample(fams, "mqttbench_latency_seconds", "metric", l.Metric, "quantile", "0.99")
		if n != float64(l.Count) || math.Abs(p99-float64(l.P99)/1e6) > 1e-9 {
			t.Errorf("final scrape: %s count %v p99 %vs; summary.json %d and %dµs", l.Metric, n, p99, l.Count, l.P99)
		}
	}
}

// --metrics-addr serves the run while it goes: counters grow from
// scrape to scrape, and after the run (--metrics-linger) the last
// scrape holds what summary.json holds. No credential shows.
func TestLoadMetricsDuringRun(t *testing.T) {
	dir := t.TempDir()
	r := startLoad(t, "--publishers", "2", "--subscribers", "2", "--qos", "1", "--rate", "200", "--duration", "3s",
		"--max-lag", "0", "--quiet", "--out", dir, "--username", "metrics-user", "--password", secret,
		"--metrics-addr", "127.0.0.1:0", "--metrics-linger", "1m")

	var first float64
	eventually(t, 30*time.Second, "messages sent while publishing", func() bool {
		_, fams, err := scrapeMetrics(r.url)
		if err != nil {
			t.Logf("scrape: %v", err)
			return false
		}
		first = sample(fams, "mqttbench_messages_sent_total")
		if first > 0 && sample(fams, "mqttbench_phase", "phase", "publish") == 1 {
			if open := sample(fams, "mqttbench_connections_open"); open != 4 {
				t.Errorf("publishing with %v connections open; want 4", open)
			}
			return true
		}
		return false
	})
	eventually(t, 30*time.Second, "more messages sent in a later scrape", func() bool {
		_, fams, err := scrapeMetrics(r.url)
		return err == nil && sample(fams, "mqttbench_messages_sent_total") > first
	})

	// The run is over once the results are printed; the server lingers.
	eventually(t, 60*time.Second, "results on stdout", func() bool { return strings.Contains(r.stdout.String(), "results: ") })
	body, fams, err := scrapeMetrics(r.url)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, fams, res.Summary)
	if sample(fams, "mqttbench_run_info", "target", "inproc", "protocol", "3.1.1") != 1 {
		t.Errorf("run info: %v", fams["mqttbench_run_info"])
	}
	if strings.Contains(body, secret) || strings.Contains(body, "metrics-user") {
		t.Error("the scrape shows the user name or password")
	}
	for _, n := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[n] == nil {
			t.Errorf("no %s", n)
		}
	}

	// An interrupt cuts the linger short; the run's exit code stands.
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code // for the cleanup
		if code != exitOK {
			t.Errorf("exit %d after an interrupted linger; want 0\n%s", code, r.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an interrupt did not end the linger")
	}
	if _, _, err := scrapeMetrics(r.url); err == nil {
		t.Error("the metrics server still answers after the command returned")
	}
}

// With --workers the parent serves the sum of its workers: each holds
// half the connections, and the last scrape equals the merged summary.
func TestLoadWorkersMetricsSum(t *testing.T) {
	url := tcpBroker(t)
	dir := t.TempDir()
	r := startLoad(t, "--broker", url, "--workers", "2", "--publishers", "4", "--subscribers", "4", "--qos", "1",
		"--rate-per-publisher", "50", "--duration", "4s", "--max-lag", "0", "--ramp", "0", "--connect-timeout", "5s",
		"--username", "u", "--password", secret, "--quiet", "--out", dir, "--metrics-addr", "127.0.0.1:0", "--metrics-linger", "1m")

	// Each worker reports once a second: give them a few seconds of
	// publishing, however loaded the machine.
	var last string
	eventually(t, 30*time.Second, "8 connections open over both workers while publishing", func() bool {
		_, fams, err := scrapeMetrics(r.url)
		if err != nil {
			return false
		}
		open, sent := sample(fams, "mqttbench_connections_open"), sample(fams, "mqttbench_messages_sent_total")
		if s := fmt.Sprintf("open %v sent %v publishing %v", open, sent, sample(fams, "mqttbench_phase", "phase", "publish")); s != last {
			t.Log(s)
			last = s
		}
		return open == 8 && sent > 0
	})
	eventually(t, 60*time.Second, "results on stdout", func() bool { return strings.Contains(r.stdout.String(), "results: ") })
	body, fams, err := scrapeMetrics(r.url)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkFinal(t, fams, res.Summary)
	if got := sample(fams, "mqttbench_messages_sent_total"); got != 800 {
		t.Errorf("sent %v over both workers; want 800 (4 publishers × 50/s × 4s)", got)
	}
	if strings.Contains(body, secret) {
		t.Error("the scrape shows the password")
	}
}

// A busy or bad --metrics-addr, or a negative linger: exit 2 and one
// line, before the run starts (no results written).
func TestLoadMetricsUsageErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"address in use", []string{"--metrics-addr", busy.Addr().String()}, "--metrics-addr " + busy.Addr().String() + ": listen tcp"},
		{"not an address", []string{"--metrics-addr", "nope"}, "--metrics-addr nope: "},
		{"negative linger", []string{"--metrics-addr", "127.0.0.1:0", "--metrics-linger", "-1s"}, "--metrics-linger is -1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr := loadCLI(context.Background(), append(tc.args, "--duration", "300ms", "--out", dir)...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.HasPrefix(first, "mqttbench load: ") || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q on the first line", code, stderr, stdout, tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the run started: %s exists", dir)
			}
		})
	}
}

func TestMetricsTarget(t *testing.T) {
	cases := []struct {
		brokers []string
		want    string
	}{
		{nil, "inproc"},
		{[]string{"tcp://127.0.0.1:1883"}, "tcp://127.0.0.1:1883"},
		{[]string{"mqtts://user:pw@h:8883", "ws://tok@h/mqtt?token=x"}, "mqtts://h:8883,ws://h/mqtt"},
		{[]string{"user:pw@h:1883"}, "h:1883"},
	}
	for _, tc := range cases {
		if got := metricsTarget(tc.brokers); got != tc.want {
			t.Errorf("metricsTarget(%q) = %q, want %q", tc.brokers, got, tc.want)
		}
	}
}
