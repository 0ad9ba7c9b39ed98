package loadgen

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// SaturationLimits are the thresholds past which the generator calls
// itself saturated. Zero fields take the defaults below; a larger value
// suits a generator on a machine it shares (a CI runner), at the price
// of trusting its latencies more than it deserves.
type SaturationLimits struct {
	// CPU: the process used this share of the cores it may use
	// (GOMAXPROCS). Default 0.9: above it goroutines queue for a CPU and
	// every latency grows by the queueing, whoever is slow.
	CPU float64
	// Sched: goroutines waited longer than this for a CPU at the p99.
	// Default 5 ms: Go's goroutines wait microseconds on an idle
	// machine; milliseconds mean too few cores for the work (the
	// generator's, or another process's), which delays sends and reads.
	// It counts only when it is also at least SchedShare of the p99 the
	// run measured (end to end, else publish to acknowledgement).
	Sched time.Duration
	// SchedShare: a goroutine's wait for a CPU delays a send, or the
	// time stamp of a delivery, by that wait, so it inflates a measured
	// latency by at most the wait. When the broker's queueing makes the
	// measured p99 much longer than the generator's waits, the broker
	// set the latencies: on a machine the broker shares with the
	// generator, the broker's own CPU makes the generator's goroutines
	// wait a few milliseconds long before the generator is the limit.
	// Default 0.5: below it the broker's part of the measured p99 is the
	// larger, the generator's the smaller.
	SchedShare float64
	// GCPause: a stop-the-world pause stops every sender and reader at
	// once. Default 10 ms at the p99: that much latency on every stream.
	// Like Sched, it counts only when it is also at least SchedShare of
	// the measured p99: a pause adds its length to a latency, and a few
	// pauses cost a rate almost nothing.
	GCPause time.Duration
	// ReaderBusy: the busiest connection's reader spent this share of
	// the phase handling what it read. Default 0.9: one goroutine cannot
	// read faster than it handles, so deliveries on that connection were
	// bounded by the generator (one subscriber of a fan-in).
	ReaderBusy float64
	// SendLag: sends went out later than this at the p90. Default 10 ms:
	// on time, a sender is late by its timer's resolution (about a
	// millisecond) and its 200 µs batching. The p90, not the p99: a
	// generator that cannot keep up is late on most sends, while a
	// stall now and then (another process) makes only the tail late,
	// which the latencies show but which does not limit the rate. Lag
	// counts only when the senders were not mostly blocked writing (see
	// WriteShare): a write the broker does not read fast enough is the
	// broker's back-pressure, which is what a load test measures.
	SendLag time.Duration
	// WriteShare: senders that spent at least this share of the phase
	// inside writes were held back by the broker, not by their own work.
	// Default 0.5.
	WriteShare float64
}

// DefaultSaturationLimits are the limits a zero SaturationLimits means.
var DefaultSaturationLimits = SaturationLimits{CPU: 0.90, Sched: 5 * time.Millisecond, SchedShare: 0.5,
	GCPause: 10 * time.Millisecond, ReaderBusy: 0.9, SendLag: 10 * time.Millisecond, WriteShare: 0.5}

func (l SaturationLimits) withDefaults() SaturationLimits {
	d := DefaultSaturationLimits
	if l.CPU == 0 {
		l.CPU = d.CPU
	}
	if l.Sched == 0 {
		l.Sched = d.Sched
	}
	if l.SchedShare == 0 {
		l.SchedShare = d.SchedShare
	}
	if l.GCPause == 0 {
		l.GCPause = d.GCPause
	}
	if l.ReaderBusy == 0 {
		l.ReaderBusy = d.ReaderBusy
	}
	if l.SendLag == 0 {
		l.SendLag = d.SendLag
	}
	if l.WriteShare == 0 {
		l.WriteShare = d.WriteShare
	}
	return l
}

// ParseSaturationLimits reads
// "cpu=0.95,sched=20ms,sched-share=0.5,gc=20ms,read=0.95,lag=50ms,write=0.5" (any of
// them; the others keep their defaults).
func ParseSaturationLimits(s string) (SaturationLimits, error) {
	var l SaturationLimits
	for _, term := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(term), "=")
		if !ok {
			return l, fmt.Errorf("--saturation %q: want NAME=VALUE, e.g. lag=20ms", term)
		}
		var err error
		switch k {
		case "cpu", "write", "sched-share", "read":
			var f float64
			if f, err = strconv.ParseFloat(v, 64); err == nil && !(f > 0 && f <= 1) {
				err = errors.New("want a share of 1 or less, above 0")
			}
			*map[string]*float64{"cpu": &l.CPU, "write": &l.WriteShare, "sched-share": &l.SchedShare, "read": &l.ReaderBusy}[k] = f
		case "sched", "gc", "lag":
			var d time.Duration
			if d, err = time.ParseDuration(v); err == nil && d <= 0 {
				err = errors.New("want a duration above 0")
			}
			*map[string]*time.Duration{"sched": &l.Sched, "gc": &l.GCPause, "lag": &l.SendLag}[k] = d
		default:
			return l, fmt.Errorf("--saturation %q: unknown limit %q; want cpu, sched, sched-share, gc, read, lag or write", term, k)
		}
		if err != nil {
			return l, fmt.Errorf("--saturation %q: %v", term, err)
		}
	}
	return l, nil
}

// selfWatch measures the generator over the publishing phase: process CPU,
// scheduler latency and GC pauses from runtime/metrics (both cumulative
// histograms, so the phase is the difference of two readings), and the
// time senders spend in writes. It costs two readings and a clock read
// per flush, so it runs in every run.
type selfWatch struct {
	start   time.Time
	cpu0    time.Duration
	cpuOK   bool
	hist0   [2][]uint64 // /sched/latencies, /sched/pauses/total/gc at the start
	wall    time.Duration
	cpu     time.Duration
	sched   []uint64 // counts over the phase, by bucket
	gc      []uint64
	buckets [2][]float64
	writeNs atomic.Int64
	ended   bool
	// busy0 is each client's read-handling time at the start; busy and
	// busyConn the largest growth over the phase and whose it was.
	busy0    []int64
	busy     time.Duration
	busyConn int
}

var watchMetrics = []string{"/sched/latencies:seconds", "/sched/pauses/total/gc:seconds"}

func readWatchMetrics() ([2][]uint64, [2][]float64) {
	s := make([]metrics.Sample, len(watchMetrics))
	for i, n := range watchMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	var counts [2][]uint64
	var buckets [2][]float64
	for i := range s {
		if s[i].Value.Kind() != metrics.KindFloat64Histogram {
			continue // not in this Go: the measure stays empty
		}
		h := s[i].Value.Float64Histogram()
		counts[i] = append([]uint64(nil), h.Counts...) // Read may reuse h
		buckets[i] = h.Buckets
	}
	return counts, buckets
}

// startSelfWatch takes the first readings.
func startSelfWatch(clients []*client) *selfWatch {
	w := &selfWatch{start: time.Now(), busy0: make([]int64, len(clients))}
	for i, c := range clients {
		w.busy0[i] = c.readBusy.Load()
	}
	w.cpu0, w.cpuOK = processCPU()
	w.hist0, _ = readWatchMetrics()
	return w
}

// wrote adds a sender's time in writes.
func (w *selfWatch) wrote(d time.Duration) {
	if w != nil {
		w.writeNs.Add(int64(d))
	}
}

// end takes the second readings, when publishing stops.
func (w *selfWatch) end(clients []*client) {
	if w == nil || w.ended {
		return
	}
	w.ended = true
	w.wall = time.Since(w.start)
	for i, c := range clients {
		if i < len(w.busy0) {
			if d := time.Duration(c.readBusy.Load() - w.busy0[i]); d > w.busy {
				w.busy, w.busyConn = d, int(c.idx)
			}
		}
	}
	if cpu, ok := processCPU(); ok && w.cpuOK {
		w.cpu = cpu - w.cpu0
	} else {
		w.cpuOK = false
	}
	var counts [2][]uint64
	counts, w.buckets = readWatchMetrics()
	w.sched = subCounts(counts[0], w.hist0[0])
	w.gc = subCounts(counts[1], w.hist0[1])
}

func subCounts(now, before []uint64) []uint64 {
	if len(now) != len(before) {
		return nil
	}
	out := make([]uint64, len(now))
	for i := range now {
		out[i] = now[i] - before[i]
	}
	return out
}

// histQuantile is quantile q (0..1) of a runtime/metrics histogram's
// counts, as the upper bound of the bucket that holds it (the lower one
// for the last, unbounded bucket): an overestimate by at most the
// bucket's width, which is the safe side for a saturation test.
func histQuantile(counts []uint64, buckets []float64, q float64) (time.Duration, uint64) {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(buckets) != len(counts)+1 {
		return 0, total
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= rank {
			v := buckets[i+1]
			if math.IsInf(v, 1) {
				v = buckets[i]
			}
			if math.IsInf(v, -1) || v < 0 {
				v = 0
			}
			return time.Duration(v * float64(time.Second)), total
		}
	}
	return 0, total
}

// genSample is what the watch measured, with the run's own counts: the
// input of the saturation verdict.
type genSample struct {
	Wall       time.Duration
	CPU        time.Duration // 0 with CPUOK false: not measurable here
	CPUOK      bool
	Cores      int
	WithBroker bool
	SchedP99   time.Duration
	// MeasuredP99 is the run's end-to-end p99, or its publish to
	// acknowledgement p99 without deliveries; 0 when it measured neither.
	MeasuredP99 time.Duration
	GCPauses    uint64
	GCPauseP99  time.Duration
	SendLagP90  time.Duration
	SendLagP99  time.Duration
	MissedLate  uint64
	Senders     int
	WriteTime   time.Duration // summed over senders
	// ReadBusy is the busiest reader's handling time, on connection
	// ReadBusyConn.
	ReadBusy     time.Duration
	ReadBusyConn int
}

// sample turns the readings and the run's summary into a genSample.
func (w *selfWatch) sample(l *reports.Load, senders int, withBroker bool) genSample {
	s := genSample{Wall: w.wall, CPU: w.cpu, CPUOK: w.cpuOK, Cores: runtime.GOMAXPROCS(0), WithBroker: withBroker,
		MissedLate: l.Messages.MissedLate, Senders: senders, WriteTime: time.Duration(w.writeNs.Load()),
		ReadBusy: w.busy, ReadBusyConn: w.busyConn}
	s.SchedP99, _ = histQuantile(w.sched, w.buckets[0], 0.99)
	s.GCPauseP99, s.GCPauses = histQuantile(w.gc, w.buckets[1], 0.99)
	for _, m := range l.Latency {
		switch p99 := time.Duration(m.P99) * time.Microsecond; m.Metric {
		case MetricSendLag.String():
			s.SendLagP90 = time.Duration(m.P90) * time.Microsecond
			s.SendLagP99 = p99
		case MetricEndToEnd.String():
			if m.Count > 0 {
				s.MeasuredP99 = p99
			}
		case MetricPublishAck.String():
			if m.Count > 0 && s.MeasuredP99 == 0 {
				s.MeasuredP99 = p99
			}
		}
	}
	return s
}

// judge decides whether the generator was saturated, naming each reason.
func (s genSample) judge(lim SaturationLimits) *reports.LoadGenerator {
	lim = lim.withDefaults()
	g := &reports.LoadGenerator{Cores: s.Cores, WithBroker: s.WithBroker, SchedP99: s.SchedP99.Microseconds(),
		GCPauses: s.GCPauses, GCPauseP99: s.GCPauseP99.Microseconds(), SendLagP90: s.SendLagP90.Microseconds(), SendLagP99: s.SendLagP99.Microseconds(),
		MissedLate: s.MissedLate}
	if s.Wall > 0 {
		g.CPU = math.Round(s.CPU.Seconds()/s.Wall.Seconds()*100) / 100
		if s.Senders > 0 {
			g.WriteShare = math.Round(s.WriteTime.Seconds()/(s.Wall.Seconds()*float64(s.Senders))*100) / 100
		}
		g.ReaderBusy, g.ReaderBusyConn = math.Round(s.ReadBusy.Seconds()/s.Wall.Seconds()*1e4)/1e4, s.ReadBusyConn
	}
	var why []string
	if s.CPUOK && s.Cores > 0 && g.CPU >= lim.CPU*float64(s.Cores) {
		who := "generator"
		if s.WithBroker {
			who = "generator and in-process broker"
		}
		why = append(why, fmt.Sprintf("%s CPU %.2f of %d cores", who, g.CPU, s.Cores))
	}
	// small: a wait or pause of d that is small next to the measured p99
	// did not set the latencies (the broker's queueing did).
	small := func(d time.Duration) bool {
		return s.MeasuredP99 > 0 && float64(d) < lim.SchedShare*float64(s.MeasuredP99)
	}
	queued := fmt.Sprintf("under %.0f%% of the measured p99 %s: the broker's queueing, not the generator, set the latencies", lim.SchedShare*100, fmtLatency(s.MeasuredP99))
	if s.SchedP99 > lim.Sched {
		if small(s.SchedP99) {
			g.Notes = append(g.Notes, fmt.Sprintf("scheduler latency p99 %s, %s", fmtLatency(s.SchedP99), queued))
		} else {
			why = append(why, "scheduler latency p99 "+fmtLatency(s.SchedP99))
		}
	}
	if s.GCPauseP99 > lim.GCPause {
		if small(s.GCPauseP99) {
			g.Notes = append(g.Notes, fmt.Sprintf("GC pause p99 %s over %d pauses, %s", fmtLatency(s.GCPauseP99), s.GCPauses, queued))
		} else {
			why = append(why, fmt.Sprintf("GC pause p99 %s over %d pauses", fmtLatency(s.GCPauseP99), s.GCPauses))
		}
	}
	if g.ReaderBusy >= lim.ReaderBusy {
		why = append(why, fmt.Sprintf("the reader of connection %d was busy %.0f%% of the time: it could not read faster", g.ReaderBusyConn, g.ReaderBusy*100))
	}
	if (s.SendLagP90 > lim.SendLag || s.MissedLate > 0) && g.WriteShare < lim.WriteShare {
		lag := "send lag p90 " + fmtLatency(s.SendLagP90)
		if s.MissedLate > 0 {
			lag += fmt.Sprintf(", %d sends missed late", s.MissedLate)
		}
		why = append(why, fmt.Sprintf("%s with senders in writes only %.0f%% of the time", lag, g.WriteShare*100))
	}
	g.Saturated, g.Reasons = len(why) > 0, why
	if !g.Saturated && s.SendLagP99 > lim.SendLag && g.WriteShare < lim.WriteShare {
		g.Notes = append(g.Notes, fmt.Sprintf("send lag p99 %s: the generator stalled now and then (another process, a GC); the latency tails include its stalls", fmtLatency(s.SendLagP99)))
	}
	return g
}

// fmtLatency prints a latency rounded to what matters at this scale.
func fmtLatency(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// MergeGenerators combines the workers' watches: saturated when any
// worker was, each reason named by its worker; the measures are the
// worst worker's.
func MergeGenerators(parts []*reports.LoadGenerator) *reports.LoadGenerator {
	var out *reports.LoadGenerator
	n := 0
	for i, g := range parts {
		if g == nil {
			continue
		}
		n++
		if out == nil {
			out = &reports.LoadGenerator{}
		}
		out.Saturated = out.Saturated || g.Saturated
		for _, r := range g.Reasons {
			if len(parts) > 1 {
				r = fmt.Sprintf("worker %d: %s", i, r)
			}
			out.Reasons = append(out.Reasons, r)
		}
		out.CPU = max(out.CPU, g.CPU)
		out.Cores = max(out.Cores, g.Cores)
		out.WithBroker = out.WithBroker || g.WithBroker
		out.SchedP99 = max(out.SchedP99, g.SchedP99)
		out.GCPauses += g.GCPauses
		out.GCPauseP99 = max(out.GCPauseP99, g.GCPauseP99)
		out.SendLagP90 = max(out.SendLagP90, g.SendLagP90)
		out.SendLagP99 = max(out.SendLagP99, g.SendLagP99)
		out.Notes = append(out.Notes, g.Notes...)
		out.MissedLate += g.MissedLate
		out.WriteShare = max(out.WriteShare, g.WriteShare)
		if g.ReaderBusy > out.ReaderBusy {
			out.ReaderBusy, out.ReaderBusyConn = g.ReaderBusy, g.ReaderBusyConn
		}
		out.Workers += max(1, g.Workers)
	}
	if out != nil && n == 1 && out.Workers == 1 {
		out.Workers = 0
	}
	return out
}
