package loadgen

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/reports"
)

// Metric is a latency the generator records.
type Metric int

const (
	// MetricTCPConnect is the TCP connect of a dial (tcp_connect).
	MetricTCPConnect Metric = iota
	// MetricTLSHandshake is the TLS handshake of a tls://, mqtts:// or
	// wss:// dial, resumed ones included (tls_handshake).
	MetricTLSHandshake
	// MetricWSUpgrade is the HTTP upgrade of a ws:// or wss:// dial
	// (ws_upgrade).
	MetricWSUpgrade
	// MetricConnect is CONNECT written → CONNACK read.
	MetricConnect
	// MetricSubscribe is SUBSCRIBE written → SUBACK read.
	MetricSubscribe
	// MetricPublishAck is from when a QoS 1/2 PUBLISH was due (not when
	// it went out) → PUBACK or PUBCOMP read.
	MetricPublishAck
	// MetricEndToEnd is from when a message was due (the time in its
	// header) → a subscriber read it.
	MetricEndToEnd
	// MetricSendLag is how late each PUBLISH went out after it was due:
	// the generator's own share of the two latencies above.
	MetricSendLag
	// MetricRequestResponse is from when a request was due → its
	// response read by the publisher (request/response runs, reqresp.go).
	MetricRequestResponse
	// MetricReconnect is from a connection's drop → the CONNACK of its
	// next connection, backoff included (churn.go).
	MetricReconnect
	// MetricWill is from a will connection's abrupt close → its will
	// delivered to the watcher (will.go).
	MetricWill
	// MetricRetainedFetch is from a subscriber's SUBSCRIBE → the last of
	// the retained fleet's messages (retained.go).
	MetricRetainedFetch
	numMetrics
)

var metricNames = [numMetrics]string{"tcp_connect", "tls_handshake", "ws_upgrade", "connect", "subscribe", "publish_ack", "e2e", "send_lag", "request_response", "reconnect", "will", "retained_fetch"}

func (m Metric) String() string { return metricNames[m] }

// Metrics lists every metric in order.
func Metrics() []Metric {
	out := make([]Metric, numMetrics)
	for i := range out {
		out[i] = Metric(i)
	}
	return out
}

// ParseMetric is the inverse of Metric.String.
func ParseMetric(s string) (Metric, bool) {
	for i, n := range metricNames {
		if n == s {
			return Metric(i), true
		}
	}
	return 0, false
}

// Histogram bounds: microseconds from 1 µs to one hour, 3 significant
// digits. Longer values are clamped to an hour.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

// NewHistogram returns an empty histogram with the generator's bounds.
func NewHistogram() *hdr.Histogram { return hdr.New(histLowest, histHighest, histDigits) }

// recorder holds one metric: the current interval's histogram (written by
// many goroutines under mu), a spare for the next interval, and the run's
// total. Rotation swaps cur and spare under mu and does the rest outside,
// so recording never waits for an encoding.
type recorder struct {
	mu    sync.Mutex
	cur   *hdr.Histogram
	spare *hdr.Histogram
	total *hdr.Histogram
	log   *hdr.HistogramLogWriter // nil: intervals are not kept
}

func (r *recorder) record(d time.Duration) {
	v := int64(d / time.Microsecond)
	if v < histLowest {
		v = histLowest
	} else if v > histHighest {
		v = histHighest
	}
	r.mu.Lock()
	r.cur.RecordValue(v) //nolint:errcheck // clamped into range above
	r.mu.Unlock()
}

// Recorder records the run's latencies and writes each one-second interval
// to an HdrHistogram interval log (.hlog) when given a writer.
type Recorder struct {
	m      [numMetrics]recorder
	baseMs int64 // whole seconds: the log's BaseTime
	last   int64 // end of the last interval, Unix ms
	// keep, when set, receives a copy of each interval's end-to-end
	// histogram; it is cleared after each call.
	keep func(*hdr.Histogram)
}

// NewRecorder starts recording at start. logs, when non-nil, receive the
// interval log of each metric (logs[m] may be nil).
func NewRecorder(start time.Time, logs [numMetrics]io.Writer) (*Recorder, error) {
	ms := start.UnixMilli()
	r := &Recorder{baseMs: ms - ms%1000, last: ms}
	for i := range r.m {
		m := &r.m[i]
		m.cur, m.spare, m.total = NewHistogram(), NewHistogram(), NewHistogram()
		m.total.SetTag(metricNames[i])
		if logs[i] == nil {
			continue
		}
		lw := hdr.NewHistogramLogWriter(logs[i])
		lw.SetBaseTime(r.baseMs)
		// The interval max column is in the writer's default ratio
		// (value / 1e6), so for microseconds it reads in seconds.
		for _, err := range []error{
			lw.OutputLogFormatVersion(),
			lw.OutputComment(fmt.Sprintf("[mqttbench %s latency in microseconds; interval max column in seconds]", metricNames[i])),
			lw.OutputStartTime(ms),
			lw.OutputBaseTime(r.baseMs),
			lw.OutputLegend(),
		} {
			if err != nil {
				return nil, err
			}
		}
		m.log = lw
	}
	return r, nil
}

// Record adds one latency.
func (r *Recorder) Record(m Metric, d time.Duration) { r.m[m].record(d) }

// Rotate closes the interval ending at now: each metric's interval goes to
// its log and into the total. It returns the interval's p99 end-to-end
// latency in microseconds. Only one goroutine may rotate.
func (r *Recorder) Rotate(now time.Time) (p99E2E int64, err error) {
	end := now.UnixMilli()
	for i := range r.m {
		m := &r.m[i]
		m.mu.Lock()
		h := m.cur
		empty := h.TotalCount() == 0
		if !empty {
			m.cur, m.spare = m.spare, nil
		}
		m.mu.Unlock()
		if empty {
			// Nothing to rotate. Leaving it alone also leaves the pages of
			// a metric never recorded untouched, so not resident: a
			// histogram of this range is 180 KiB, three per metric.
			continue
		}
		if Metric(i) == MetricEndToEnd {
			p99E2E = h.ValueAtQuantile(99)
			if r.keep != nil {
				r.keep(hdr.Import(h.Export()))
			}
		}
		m.total.Merge(h)
		if m.log != nil {
			h.SetStartTimeMs(r.last)
			h.SetEndTimeMs(end)
			h.SetTag(metricNames[i])
			if e := m.log.OutputIntervalHistogram(h); e != nil && err == nil {
				err = e
			}
		}
		h.Reset()
		m.spare = h
	}
	r.keep = nil
	r.last = end
	return p99E2E, err
}

// Total returns the run's histogram of m so far (rotated intervals only).
// It must not be used concurrently with Rotate.
func (r *Recorder) Total(m Metric) *hdr.Histogram { return r.m[m].total }

// Summarize turns a histogram into percentiles.
func Summarize(name string, h *hdr.Histogram) reports.LoadLatency {
	l := reports.LoadLatency{Metric: name, Count: h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	l.Mean = h.Mean()
	l.P50 = h.ValueAtQuantile(50)
	l.P90 = h.ValueAtQuantile(90)
	l.P99 = h.ValueAtQuantile(99)
	l.P999 = h.ValueAtQuantile(99.9)
	l.Max = h.Max()
	return l
}

// Counters are the run's running totals, read every second for the time
// series and the progress line.
type Counters struct {
	Sent, Received, Acked      atomic.Uint64
	MissedLate, MissedDisc     atomic.Uint64
	MissedWindow               atomic.Uint64
	MissedTooLarge, Rejected   atomic.Uint64 // MQTT 5.0
	Attempts, Connects, Errors atomic.Uint64
	Reconnects                 atomic.Uint64
	Open, Ready, Peak          atomic.Int64
	ByClass                    [numClasses]atomic.Uint64
}

// Missed is the sum of missed sends.
func (c *Counters) Missed() uint64 {
	return c.MissedLate.Load() + c.MissedDisc.Load() + c.MissedWindow.Load() + c.MissedTooLarge.Load()
}

func (c *Counters) opened() {
	n := c.Open.Add(1)
	for {
		p := c.Peak.Load()
		if n <= p || c.Peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// snapshot is the counters at one instant, for per-second deltas.
type snapshot struct {
	sent, received, acked, missed, connects, errors uint64
}

func (c *Counters) snapshot() snapshot {
	return snapshot{c.Sent.Load(), c.Received.Load(), c.Acked.Load(), c.Missed(), c.Connects.Load(), c.Errors.Load()}
}

// second builds a time-series entry from two snapshots.
func second(t float64, phase string, prev, cur snapshot, open int64, p99 int64) reports.LoadSecond {
	return reports.LoadSecond{
		T: t, Phase: phase, Sent: cur.sent - prev.sent, Received: cur.received - prev.received,
		Acked: cur.acked - prev.acked, Missed: cur.missed - prev.missed,
		Connects: cur.connects - prev.connects, Errors: cur.errors - prev.errors,
		Connections: open, P99E2E: p99,
	}
}
