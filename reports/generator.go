package reports

import (
	"fmt"
	"strings"
)

// LoadGenerator is what the generator saw of itself while it published:
// the CPU it used, how long its goroutines waited for a CPU, its GC
// pauses and how late its sends went out. Saturated says the generator,
// not the broker, limited the run: its latencies and missed sends are
// then partly its own, and `load --find-max` never reports its rate as
// the broker's. Reasons name each threshold crossed.
type LoadGenerator struct {
	Saturated bool     `json:"saturated"`
	Reasons   []string `json:"reasons,omitempty"`
	// Notes are what was seen that did not saturate it but shows in the
	// measurements (occasional stalls).
	Notes []string `json:"notes,omitempty"`

	// CPU is the process's CPU time over the publishing phase divided by
	// its length, in cores; Cores is GOMAXPROCS, what it could use.
	CPU   float64 `json:"cpu_cores"`
	Cores int     `json:"cores"`
	// WithBroker says the in-process broker ran in the same process: the
	// CPU is theirs together.
	WithBroker bool `json:"with_broker,omitempty"`
	// SchedP99 is the 99th percentile of the time goroutines spent
	// runnable before they ran (runtime/metrics /sched/latencies).
	SchedP99 int64 `json:"sched_latency_p99_us"`
	// GCPauses and GCPauseP99 are the stop-the-world GC pauses.
	GCPauses   uint64 `json:"gc_pauses"`
	GCPauseP99 int64  `json:"gc_pause_p99_us"`
	// SendLagP90 and SendLagP99 are the send_lag metric's; MissedLate
	// the sends due longer ago than max_lag.
	SendLagP90 int64  `json:"send_lag_p90_us"`
	SendLagP99 int64  `json:"send_lag_p99_us"`
	MissedLate uint64 `json:"missed_late"`
	// WriteShare is the share of the senders' time spent writing to the
	// broker: near 1, a late send waited for the broker to read, which
	// is the broker's back-pressure, not the generator's limit.
	WriteShare float64 `json:"write_share"`
	// ReaderBusy is the share of the publishing phase the busiest
	// connection's reader spent handling what it read (decoding,
	// verifying, timing): near 1, that one goroutine could not have read
	// faster, so a delivery rate it bounded is the generator's (a fan-in's
	// single subscriber). ReaderBusyConn is its connection index.
	ReaderBusy     float64 `json:"reader_busy,omitempty"`
	ReaderBusyConn int     `json:"reader_busy_conn,omitempty"`
	// Workers counts the generator processes merged into this one (0 or
	// 1: a single process).
	Workers int `json:"workers,omitempty"`
}

// Summary is one line: "saturated: reason; reason", or what was measured
// when it was not.
func (g *LoadGenerator) Summary() string {
	if g == nil {
		return "not measured"
	}
	if g.Saturated {
		return "SATURATED: " + strings.Join(g.Reasons, "; ")
	}
	who := ""
	if g.WithBroker {
		who = " (with the in-process broker)"
	}
	s := fmt.Sprintf("ok: CPU %.2f of %d cores%s, scheduler latency p99 %s, GC pause p99 %s, send lag p90 %s, busiest reader %.0f%%",
		g.CPU, g.Cores, who, us(g.SchedP99), us(g.GCPauseP99), us(g.SendLagP90), g.ReaderBusy*100)
	if len(g.Notes) > 0 {
		s += "; " + strings.Join(g.Notes, "; ")
	}
	return s
}
