package reports

import (
	"math"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Percentile is one point of a latency distribution: the value (µs) at
// or below which Percent of the samples fall.
type Percentile struct {
	Percent float64 `json:"percent"`
	Value   int64   `json:"value_us"`
}

// stepsPerDecade spaces the points of a distribution: ten per factor of
// ten in 1/(1-p), so 90%, 99%, 99.9% ... are all points of the curve.
const stepsPerDecade = 10

// Distribution is the percentile distribution of h in the classic
// HdrHistogram layout: points evenly spaced in log10(1/(1-p)) from the
// 0th percentile up to where the samples run out (one in TotalCount),
// ending with the maximum at 100%.
func Distribution(h *hdr.Histogram) []Percentile {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	decades := math.Log10(float64(h.TotalCount()))
	var pcts []float64
	for i := 0; float64(i) <= decades*stepsPerDecade; i++ {
		x := math.Pow(10, float64(i)/stepsPerDecade)
		pcts = append(pcts, 100*(1-1/x))
	}
	vals := h.ValueAtPercentilesSlice(pcts)
	out := make([]Percentile, 0, len(pcts)+1)
	for i, p := range pcts {
		out = append(out, Percentile{Percent: round6(p), Value: vals[i]})
	}
	return append(out, Percentile{Percent: 100, Value: h.Max()})
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// percentileX is where a percentile sits on the plot's x axis: 1/(1-p).
// 100% has no place there; it is drawn one decade beyond the last point.
func percentileX(pct, last float64) float64 {
	if pct >= 100 {
		return last * 10
	}
	return 1 / (1 - pct/100)
}

// percentileTicks label the x axis 0%, 90%, 99%, 99.9% ... up to x.
func percentileTicks(maxX float64) []tick {
	out := []tick{{1, "0%"}}
	for d := 1; math.Pow(10, float64(d)) <= maxX*1.0001; d++ {
		out = append(out, tick{math.Pow(10, float64(d)), percentLabel(100 * (1 - math.Pow(10, -float64(d))))})
	}
	return out
}

// percentLabel prints 99.9 as "99.9%" without float noise.
func percentLabel(p float64) string {
	s := strconv.FormatFloat(p, 'f', 6, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// percentilePlot overlays the distributions of one metric.
func percentilePlot(id, title string, names []string, dists [][]Percentile) plot {
	p := plot{ID: id, Title: title, XLabel: "percentile (log scale of 1/(1-p))", YLabel: "latency", LogX: true, YFormat: usFloat}
	maxX := 10.0
	for i, d := range dists {
		s := series{Name: names[i]}
		if len(d) == 0 {
			p.Series = append(p.Series, s)
			continue
		}
		last := 1.0
		if len(d) > 1 {
			last = percentileX(d[len(d)-2].Percent, 1)
		}
		for _, q := range d {
			x := percentileX(q.Percent, last)
			s.Points = append(s.Points, point{x, float64(q.Value)})
			maxX = math.Max(maxX, x)
		}
		p.Series = append(p.Series, s)
	}
	p.XTicks = percentileTicks(maxX)
	return p
}

func usFloat(v float64) string { return us(int64(math.Round(v))) }
