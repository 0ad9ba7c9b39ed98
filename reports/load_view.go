package reports

import (
	"fmt"
	"slices"
	"strconv"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// LoadRun is one load run as a report shows it: the summary and the
// whole-run latency histogram of each metric (from the results
// directory's .hlog files; nil histograms draw no curve).
type LoadRun struct {
	Name       string
	Summary    *Load
	Histograms map[string]*hdr.Histogram
}

// MetricDistributions is one metric's percentile distribution in each
// run, in run order.
type MetricDistributions struct {
	Metric string         `json:"metric"`
	Runs   [][]Percentile `json:"runs"`
}

// LoadDistributions computes the percentile distribution of every metric
// that has samples in at least one run, in the summary's metric order.
func LoadDistributions(runs []LoadRun) []MetricDistributions {
	var out []MetricDistributions
	for _, m := range loadMetrics(runs) {
		md := MetricDistributions{Metric: m}
		for _, r := range runs {
			md.Runs = append(md.Runs, Distribution(r.Histograms[m]))
		}
		out = append(out, md)
	}
	return out
}

// loadMetrics lists the metrics with samples in any run, in the order the
// first summaries list them.
func loadMetrics(runs []LoadRun) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range runs {
		for _, l := range r.Summary.Latency {
			if l.Count > 0 && !seen[l.Metric] {
				seen[l.Metric] = true
				out = append(out, l.Metric)
			}
		}
	}
	return out
}

func (l *Load) latency(metric string) (LoadLatency, bool) {
	for _, m := range l.Latency {
		if m.Metric == metric {
			return m, m.Count > 0
		}
	}
	return LoadLatency{}, false
}

// TotalErrors sums the errors of every class.
func (l *Load) TotalErrors() uint64 {
	var n uint64
	for _, v := range l.Errors {
		n += v
	}
	return n
}

// LoadMetricsRows is the side-by-side table of load runs: one row per
// measure, one column per run. The HTML and terminal comparison show
// the same rows.
func LoadMetricsRows(runs []LoadRun) [][]string {
	row := func(name string, f func(l *Load) string) []string {
		r := []string{name}
		for _, run := range runs {
			r = append(r, f(run.Summary))
		}
		return r
	}
	rows := [][]string{
		row("connections ready / target", func(l *Load) string {
			return fmt.Sprintf("%d / %d", l.Connections.Ready, l.Connections.Target)
		}),
		row("offered msg/s", func(l *Load) string { return strconv.FormatFloat(l.Scenario.Rate, 'f', 0, 64) }),
		row("sent msg/s", func(l *Load) string { return strconv.FormatFloat(l.Messages.SentRate, 'f', 0, 64) }),
		row("delivered msg/s", func(l *Load) string { return strconv.FormatFloat(l.Messages.ReceivedRate, 'f', 0, 64) }),
		row("delivered / expected", func(l *Load) string {
			return fmt.Sprintf("%d / %d", l.Messages.Received, l.Messages.Expected)
		}),
		row("missed sends", func(l *Load) string { return fmt.Sprint(l.Messages.Missed) }),
		row("lost / duplicated / reordered", func(l *Load) string {
			var lost, dup, reord uint64
			for _, v := range l.Verify {
				lost, dup, reord = lost+v.Lost, dup+v.Duplicates, reord+v.Reordered
			}
			return fmt.Sprintf("%d / %d / %d", lost, dup, reord)
		}),
		row("errors", func(l *Load) string { return fmt.Sprint(l.TotalErrors()) }),
	}
	if slices.ContainsFunc(runs, func(r LoadRun) bool { return r.Summary.Generator != nil }) {
		rows = append(rows, row("generator", func(l *Load) string {
			switch {
			case l.Generator == nil:
				return "-"
			case l.Generator.Saturated:
				return "saturated"
			}
			return "ok"
		}))
	}
	for _, m := range loadMetrics(runs) {
		for _, q := range []struct {
			name string
			v    func(LoadLatency) int64
		}{
			{"p50", func(x LoadLatency) int64 { return x.P50 }},
			{"p99", func(x LoadLatency) int64 { return x.P99 }},
			{"p99.9", func(x LoadLatency) int64 { return x.P999 }},
			{"max", func(x LoadLatency) int64 { return x.Max }},
		} {
			rows = append(rows, row(m+" "+q.name, func(l *Load) string {
				if x, ok := l.latency(m); ok {
					return us(q.v(x))
				}
				return "-"
			}))
		}
	}
	rows = append(rows, row("verdict", func(l *Load) string {
		switch {
		case l.Interrupted:
			return "interrupted"
		case len(l.Violations) > 0:
			return "VIOLATION"
		case !l.OK():
			return "SLO broken"
		}
		return "ok"
	}))
	return rows
}

// seriesPlots are the time-series charts of load runs: throughput,
// p99 end-to-end latency and open connections per second.
func seriesPlots(runs []LoadRun) []plot {
	name := func(run, what string) string {
		if len(runs) == 1 {
			return what
		}
		return run + " " + what
	}
	thr := plot{ID: "plot-throughput", Title: "Throughput per second", XLabel: "seconds", YLabel: "messages/s"}
	lat := plot{ID: "plot-p99", Title: "End-to-end p99 per second", XLabel: "seconds", YLabel: "latency", YFormat: usFloat}
	con := plot{ID: "plot-connections", Title: "Open connections", XLabel: "seconds", YLabel: "connections"}
	for _, r := range runs {
		sent, recv, p99, conns := series{Name: name(r.Name, "sent")}, series{Name: name(r.Name, "delivered")},
			series{Name: name(r.Name, "p99 e2e")}, series{Name: name(r.Name, "connections")}
		for _, s := range r.Summary.Series {
			sent.Points = append(sent.Points, point{s.T, float64(s.Sent)})
			recv.Points = append(recv.Points, point{s.T, float64(s.Received)})
			if s.P99E2E > 0 {
				p99.Points = append(p99.Points, point{s.T, float64(s.P99E2E)})
			}
			conns.Points = append(conns.Points, point{s.T, float64(s.Connections)})
		}
		thr.Series = append(thr.Series, sent, recv)
		lat.Series = append(lat.Series, p99)
		con.Series = append(con.Series, conns)
	}
	return []plot{thr, lat, con}
}
