// Package metrics serves a load run to Prometheus while it goes: the
// running totals each part of the run (the one process, or each worker)
// reports once a second as a loadgen.Live, summed over the parts.
package metrics

import (
	"fmt"
	"net/http"
	"slices"
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqttbench/mqttbench/loadgen"
)

// Info describes the run. It holds no credentials: Target must already
// be free of user names and passwords.
type Info struct {
	RunID       string  // as in summary.json; "": the one the parts report
	Target      string  // broker URLs, or the in-process broker
	Protocol    string  // "3.1.1" or "5.0"
	OfferedRate float64 // messages per second over all publishers, as scheduled
	Connections int     // over all parts
}

// Quantiles are the latency quantiles served.
var Quantiles = []float64{0.5, 0.9, 0.99, 0.999}

// Phases are a run's phases in order; a part's phase is one of them.
// Parts of a run can be a phase apart for a moment (one still
// connecting while another waits): the run is in the earliest.
var Phases = []string{"connect", "wait", "hold", "publish", "drain", "stop"}

// Exporter is a prometheus.Collector of a run's totals. Counters and
// gauges are made when scraped from the latest totals of each part
// (const metrics): the parts count, Prometheus only reads.
type Exporter struct {
	info Info
	reg  *prometheus.Registry

	mu    sync.Mutex
	parts map[int]*part
	// lat is each metric's latency over every part, kept up to date by
	// Update so that a scrape does not merge histograms.
	lat map[string]latency
}

// part is the latest of one part of the run.
type part struct {
	live loadgen.Live                  // Latency unused: see hist
	hist map[string]*loadgen.Histogram // the part's own copies
}

// latency is what a summary needs of a histogram, in seconds.
type latency struct {
	count uint64
	sum   float64
	max   float64
	q     map[float64]float64
}

var (
	descInfo = prometheus.NewDesc("mqttbench_run_info",
		"The run: its id (as in summary.json), target broker(s) and MQTT version; always 1.",
		[]string{"run_id", "target", "protocol"}, nil)
	descPhase = prometheus.NewDesc("mqttbench_phase",
		"1 for the phase the run is in (the earliest of its workers'), 0 for the others.", []string{"phase"}, nil)
	descOffered = prometheus.NewDesc("mqttbench_offered_rate",
		"Messages per second the publishing phase offers over all publishers, by schedule.", nil, nil)
	descTarget = prometheus.NewDesc("mqttbench_connections_target",
		"Connections the run opens (publishers, subscribers and idle ones).", nil, nil)
	descOpen = prometheus.NewDesc("mqttbench_connections_open",
		"Connections open now.", nil, nil)
	descAttempts = prometheus.NewDesc("mqttbench_connect_attempts_total",
		"Connection attempts (dials), reconnects included.", nil, nil)
	descConnects = prometheus.NewDesc("mqttbench_connects_total",
		"Connections the broker accepted (CONNACK success).", nil, nil)
	descReconnects = prometheus.NewDesc("mqttbench_reconnects_total",
		"Attempts after a connection was lost.", nil, nil)
	descSent = prometheus.NewDesc("mqttbench_messages_sent_total",
		"PUBLISH packets sent.", nil, nil)
	descReceived = prometheus.NewDesc("mqttbench_messages_received_total",
		"PUBLISH packets subscribers received.", nil, nil)
	descAcked = prometheus.NewDesc("mqttbench_messages_acked_total",
		"QoS 1/2 PUBLISH packets the broker acknowledged (PUBACK, PUBCOMP).", nil, nil)
	descRejected = prometheus.NewDesc("mqttbench_messages_rejected_total",
		"MQTT 5.0: PUBLISH packets the broker acknowledged with an error reason code.", nil, nil)
	descMissed = prometheus.NewDesc("mqttbench_missed_sends_total",
		"Sends that were due but not made, by reason: late (the generator fell behind by more than --max-lag), disconnected, window (QoS 1/2 in-flight window full), too_large (over the broker's Maximum Packet Size).",
		[]string{"reason"}, nil)
	descErrors = prometheus.NewDesc("mqttbench_errors_total",
		"Connection failures by class: refused, timeout, closed, protocol, other.", []string{"class"}, nil)
	descReasons = prometheus.NewDesc("mqttbench_reason_codes_total",
		"Reason codes other than success the broker sent, by packet and code (3.1.1 return codes too).",
		[]string{"packet", "code", "name"}, nil)
	// The latencies are summaries made from the run's HdrHistograms, not
	// prometheus.Summary observations: that would store every value a
	// second time. The quantiles are over the run so far, as summary.json
	// gives them at the end; the sum is count × the histogram's mean.
	descLatency = prometheus.NewDesc("mqttbench_latency_seconds",
		"Latency quantiles over the run so far, by metric: tcp_connect, tls_handshake, ws_upgrade, connect, subscribe, publish_ack (from when the PUBLISH was due), e2e (due → received), send_lag.",
		[]string{"metric"}, nil)
	descLatencyMax = prometheus.NewDesc("mqttbench_latency_max_seconds",
		"Largest latency over the run so far, by metric.", []string{"metric"}, nil)
)

var descs = []*prometheus.Desc{descInfo, descPhase, descOffered, descTarget, descOpen, descAttempts, descConnects,
	descReconnects, descSent, descReceived, descAcked, descRejected, descMissed, descErrors, descReasons,
	descLatency, descLatencyMax}

// New returns an exporter of the run info describes, in a registry of its
// own (never the global one) along with the Go runtime's and the
// process's collectors.
func New(info Info) *Exporter {
	e := &Exporter{info: info, parts: map[int]*part{}, lat: map[string]latency{}}
	e.reg = prometheus.NewRegistry()
	e.reg.MustRegister(e, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return e
}

// Registry is the exporter's registry.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// Handler serves the registry in Prometheus's text (or OpenMetrics)
// format.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Update records part i's latest totals. It copies l's histograms that
// changed, so l may be the run's own (loadgen.Options.Live).
func (e *Exporter) Update(i int, l *loadgen.Live) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.parts[i]
	if p == nil {
		p = &part{hist: map[string]*loadgen.Histogram{}}
		e.parts[i] = p
	}
	p.live = *l
	p.live.Latency = nil
	p.live.Errors = make(map[string]uint64, len(l.Errors))
	for k, v := range l.Errors {
		p.live.Errors[k] = v
	}
	p.live.ReasonCodes = slices.Clone(l.ReasonCodes)
	for name, h := range l.Latency {
		if old := p.hist[name]; old != nil && old.TotalCount() == h.TotalCount() {
			continue // unchanged: histograms only grow
		}
		p.hist[name] = hdr.Import(h.Export())
		e.lat[name] = e.merged(name)
	}
}

// merged is metric name's latency over every part.
func (e *Exporter) merged(name string) latency {
	var h *loadgen.Histogram
	var n int
	for _, p := range e.parts {
		if ph := p.hist[name]; ph != nil {
			if n++; n == 1 {
				h = ph
				continue
			}
			if n == 2 {
				h = hdr.Import(h.Export()) // don't merge into a part's own
			}
			h.Merge(ph)
		}
	}
	l := latency{q: make(map[float64]float64, len(Quantiles))}
	if h == nil {
		return l
	}
	l.count = uint64(h.TotalCount())
	l.sum = h.Mean() * float64(h.TotalCount()) / 1e6
	l.max = float64(h.Max()) / 1e6
	for _, q := range Quantiles {
		l.q[q] = float64(h.ValueAtQuantile(q*100)) / 1e6
	}
	return l
}

// Describe sends every metric's description.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

// Collect sends the sums of the parts' latest totals.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var sum loadgen.Live
	errs := map[string]uint64{}
	type rcKey struct {
		packet string
		code   int
	}
	reasons := map[rcKey]uint64{}
	names := map[rcKey]string{}
	phase := -1
	runID := e.info.RunID
	for _, p := range e.parts {
		l := &p.live
		sum.Sent += l.Sent
		sum.Received += l.Received
		sum.Acked += l.Acked
		sum.Rejected += l.Rejected
		sum.MissedLate += l.MissedLate
		sum.MissedDisconnected += l.MissedDisconnected
		sum.MissedWindow += l.MissedWindow
		sum.MissedTooLarge += l.MissedTooLarge
		sum.Open += l.Open
		sum.Attempts += l.Attempts
		sum.Connects += l.Connects
		sum.Reconnects += l.Reconnects
		for k, v := range l.Errors {
			errs[k] += v
		}
		for _, r := range l.ReasonCodes {
			k := rcKey{r.Packet, r.Code}
			reasons[k] += r.Count
			names[k] = r.Name
		}
		if i := slices.Index(Phases, l.Phase); i >= 0 && (phase < 0 || i < phase) {
			phase = i
		}
		if runID == "" {
			runID = l.RunID // the parts of a run share it
		}
	}

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if runID != "" { // known from the first second on
		gauge(descInfo, 1, runID, e.info.Target, e.info.Protocol)
	}
	for i, ph := range Phases {
		gauge(descPhase, b2f(i == phase), ph)
	}
	gauge(descOffered, e.info.OfferedRate)
	gauge(descTarget, float64(e.info.Connections))
	gauge(descOpen, float64(sum.Open))
	counter(descAttempts, sum.Attempts)
	counter(descConnects, sum.Connects)
	counter(descReconnects, sum.Reconnects)
	counter(descSent, sum.Sent)
	counter(descReceived, sum.Received)
	counter(descAcked, sum.Acked)
	counter(descRejected, sum.Rejected)
	counter(descMissed, sum.MissedLate, "late")
	counter(descMissed, sum.MissedDisconnected, "disconnected")
	counter(descMissed, sum.MissedWindow, "window")
	counter(descMissed, sum.MissedTooLarge, "too_large")
	for k, v := range errs {
		counter(descErrors, v, k)
	}
	for k, v := range reasons {
		counter(descReasons, v, k.packet, fmt.Sprintf("0x%02X", k.code), names[k])
	}
	for name, l := range e.lat {
		ch <- prometheus.MustNewConstSummary(descLatency, l.count, l.sum, l.q, name)
		gauge(descLatencyMax, l.max, name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
