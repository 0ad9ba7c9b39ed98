package reports

// LoadObjective is one latency objective of a run (--slo) and how the run
// measured against it.
type LoadObjective struct {
	Objective string `json:"objective"` // as written, e.g. "e2e.p99<50ms"
	Metric    string `json:"metric"`
	Quantile  string `json:"quantile"` // p50, p90, p99, p99.9, max, mean
	Limit     int64  `json:"limit_us"`
	Measured  int64  `json:"measured_us"`
	// Samples is the metric's count: an objective on a metric with no
	// samples is broken, since nothing shows it was met.
	Samples int64 `json:"samples"`
	Met     bool  `json:"met"`
}

// BrokenObjectives lists the objectives the run did not meet.
func (l *Load) BrokenObjectives() []LoadObjective {
	var out []LoadObjective
	for _, o := range l.SLO {
		if !o.Met {
			out = append(out, o)
		}
	}
	return out
}

// Verdict is "e2e.p99<50ms: 12.3ms, met" or "..., BROKEN".
func (o LoadObjective) Verdict() string {
	switch {
	case o.Samples == 0:
		return o.Objective + ": no samples, BROKEN"
	case o.Met:
		return o.Objective + ": " + us(o.Measured) + ", met"
	}
	return o.Objective + ": " + us(o.Measured) + ", BROKEN"
}
