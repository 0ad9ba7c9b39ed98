package reports

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// plot is a line chart drawn as inline SVG: no script, no fonts to
// fetch, so a report renders the same offline and in a CI artifact.
type plot struct {
	ID     string // element id, for tests and links
	Title  string
	XLabel string
	YLabel string
	// LogX draws x on a log10 scale (the percentile plot's 1/(1-p)).
	LogX bool
	// XTicks replace the automatic x ticks (percentile labels).
	XTicks []tick
	// YFormat prints a y tick value.
	YFormat func(float64) string
	Series  []series
}

type tick struct {
	V     float64
	Label string
}

type series struct {
	Name   string
	Points []point
	// Marks draws a dot at each point instead of a line through them.
	Marks bool
}

type point struct{ X, Y float64 }

// palette is distinguishable in colour and in grey.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

const (
	plotW, plotH         = 720, 300
	padL, padR           = 70, 36
	padT, padB           = 30, 45
	innerW, innerH       = plotW - padL - padR, plotH - padT - padB
	maxAutoTicks         = 6
	legendRow, legendCol = 16, 170
)

// SVG renders the chart. An empty chart says so instead of drawing axes
// around nothing.
func (p plot) SVG() template.HTML {
	var xmin, xmax, ymax float64 = math.Inf(1), math.Inf(-1), 0
	n := 0
	for _, s := range p.Series {
		for _, pt := range s.Points {
			x := p.xv(pt.X)
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymax = math.Max(ymax, pt.Y)
			n++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" id="%s" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		esc(p.ID), plotW, plotH+8+legendRows(len(p.Series))*legendRow, esc(p.Title))
	fmt.Fprintf(&b, `<text class="title" x="%d" y="18">%s</text>`, padL, esc(p.Title))
	if n == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d">no data</text></svg>`, plotW/2, plotH/2)
		return template.HTML(b.String())
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	ymax = niceCeil(ymax)
	if ymax == 0 {
		ymax = 1
	}
	sx := func(x float64) float64 { return padL + (p.xv(x)-xmin)/(xmax-xmin)*innerW }
	sy := func(y float64) float64 { return padT + innerH - y/ymax*innerH }
	yf := p.YFormat
	if yf == nil {
		yf = func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	}

	// Grid and ticks.
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		y := sy(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, y, padL+innerW, y)
		fmt.Fprintf(&b, `<text class="ytick" x="%d" y="%.1f">%s</text>`, padL-6, y+4, esc(yf(v)))
	}
	xt := p.XTicks
	if len(xt) == 0 {
		xt = autoTicks(xmin, xmax)
	}
	for _, t := range xt {
		if v := p.xv(t.V); v < xmin-1e-9 || v > xmax+1e-9 {
			continue
		}
		x := sx(t.V)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`, x, padT, x, padT+innerH)
		fmt.Fprintf(&b, `<text class="xtick" x="%.1f" y="%d">%s</text>`, x, padT+innerH+16, esc(t.Label))
	}
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>`, padL, padT, innerW, innerH)
	fmt.Fprintf(&b, `<text class="xlabel" x="%d" y="%d">%s</text>`, padL+innerW/2, padT+innerH+36, esc(p.XLabel))
	fmt.Fprintf(&b, `<text class="ylabel" transform="translate(14 %d) rotate(-90)">%s</text>`, padT+innerH/2, esc(p.YLabel))

	for i, s := range p.Series {
		color := palette[i%len(palette)]
		var d strings.Builder
		for j, pt := range s.Points {
			cmd := 'L'
			if j == 0 {
				cmd = 'M'
			}
			fmt.Fprintf(&d, "%c%.1f %.1f", cmd, sx(pt.X), sy(pt.Y))
		}
		if s.Marks {
			for _, pt := range s.Points {
				fmt.Fprintf(&b, `<circle class="mark" cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s</title></circle>`, sx(pt.X), sy(pt.Y), color, esc(s.Name))
			}
		} else {
			fmt.Fprintf(&b, `<path class="line" d="%s" stroke="%s"><title>%s</title></path>`, d.String(), color, esc(s.Name))
		}
		lx := padL + (i%4)*legendCol
		ly := plotH + 12 + (i/4)*legendRow
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="4" fill="%s"/>`, lx, ly-6, color)
		fmt.Fprintf(&b, `<text class="legend" x="%d" y="%d">%s</text>`, lx+16, ly, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func (p plot) xv(x float64) float64 {
	if p.LogX {
		return math.Log10(math.Max(x, 1))
	}
	return x
}

func legendRows(n int) int { return (n + 3) / 4 }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so the y ticks
// (quarters) read as round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func autoTicks(lo, hi float64) []tick {
	step := niceCeil((hi - lo) / maxAutoTicks)
	var out []tick
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		out = append(out, tick{v, strconv.FormatFloat(v, 'g', 4, 64)})
	}
	return out
}

func esc(s string) string { return template.HTMLEscapeString(s) }
