package loadgen

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// Objective is one latency objective: a quantile of a metric's whole-run
// histogram below (or at most) a limit, e.g. e2e.p99<50ms.
type Objective struct {
	Metric   Metric
	Quantile string // p50, p90, p99, p99.9, max, mean
	OrEqual  bool   // <= rather than <
	Limit    time.Duration
}

// SLO is a run's latency objectives; a run breaks it when it misses any.
type SLO []Objective

// sloQuantiles reads each quantile out of a summary row, in microseconds.
var sloQuantiles = map[string]func(reports.LoadLatency) int64{
	"p50":   func(l reports.LoadLatency) int64 { return l.P50 },
	"p90":   func(l reports.LoadLatency) int64 { return l.P90 },
	"p99":   func(l reports.LoadLatency) int64 { return l.P99 },
	"p99.9": func(l reports.LoadLatency) int64 { return l.P999 },
	"max":   func(l reports.LoadLatency) int64 { return l.Max },
	"mean":  func(l reports.LoadLatency) int64 { return int64(math.Round(l.Mean)) },
}

const sloQuantileNames = "p50, p90, p99, p99.9, max or mean"

// String is the objective as ParseSLO reads it.
func (o Objective) String() string {
	op := "<"
	if o.OrEqual {
		op = "<="
	}
	return o.Metric.String() + "." + o.Quantile + op + o.Limit.String()
}

// String joins the objectives with commas.
func (s SLO) String() string {
	parts := make([]string, len(s))
	for i, o := range s {
		parts[i] = o.String()
	}
	return strings.Join(parts, ",")
}

// ParseSLO reads objectives separated by commas, each
// METRIC.QUANTILE<DURATION or METRIC.QUANTILE<=DURATION:
// "e2e.p99<50ms,publish_ack.p99.9<200ms". Metrics are those Metrics
// lists; the error names the term at fault.
func ParseSLO(s string) (SLO, error) {
	var out SLO
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		o, err := parseObjective(term)
		if err != nil {
			return nil, fmt.Errorf("--slo %q: %v", term, err)
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--slo %q: no objective; want e.g. e2e.p99<50ms", s)
	}
	return out, nil
}

func parseObjective(term string) (Objective, error) {
	var o Objective
	i := strings.IndexByte(term, '<')
	if i < 0 {
		return o, fmt.Errorf("no < or <=; want METRIC.QUANTILE<DURATION, e.g. e2e.p99<50ms")
	}
	lhs, rhs := strings.TrimSpace(term[:i]), term[i+1:]
	if strings.HasPrefix(rhs, "=") {
		o.OrEqual, rhs = true, rhs[1:]
	}
	name, q, ok := strings.Cut(lhs, ".")
	if !ok {
		return o, fmt.Errorf("%q names no quantile; want METRIC.QUANTILE, e.g. e2e.p99", lhs)
	}
	m, ok := ParseMetric(name)
	if !ok {
		return o, fmt.Errorf("unknown metric %q; want one of %s", name, strings.Join(metricNames[:], ", "))
	}
	if _, ok := sloQuantiles[q]; !ok {
		return o, fmt.Errorf("unknown quantile %q; want %s", q, sloQuantileNames)
	}
	d, err := time.ParseDuration(strings.TrimSpace(rhs))
	if err != nil {
		return o, fmt.Errorf("limit %q is not a duration such as 50ms", strings.TrimSpace(rhs))
	}
	if d <= 0 {
		return o, fmt.Errorf("limit %s must be above 0", d)
	}
	if d < time.Microsecond {
		return o, fmt.Errorf("limit %s is below the histograms' resolution of 1µs", d)
	}
	o.Metric, o.Quantile, o.Limit = m, q, d
	return o, nil
}

// Check measures a summary against each objective. A metric without
// samples breaks its objective: nothing shows it was met.
func (s SLO) Check(l *reports.Load) []reports.LoadObjective {
	if len(s) == 0 {
		return nil
	}
	out := make([]reports.LoadObjective, 0, len(s))
	for _, o := range s {
		r := reports.LoadObjective{Objective: o.String(), Metric: o.Metric.String(), Quantile: o.Quantile, Limit: o.Limit.Microseconds()}
		for _, m := range l.Latency {
			if m.Metric == r.Metric {
				r.Samples = m.Count
				r.Measured = sloQuantiles[o.Quantile](m)
			}
		}
		r.Met = r.Samples > 0 && (r.Measured < r.Limit || o.OrEqual && r.Measured == r.Limit)
		out = append(out, r)
	}
	return out
}

// sloOf reads back the objectives a summary was checked against.
func sloOf(l *reports.Load) (SLO, error) {
	if len(l.SLO) == 0 {
		return nil, nil
	}
	terms := make([]string, len(l.SLO))
	for i, o := range l.SLO {
		terms[i] = o.Objective
	}
	return ParseSLO(strings.Join(terms, ","))
}
