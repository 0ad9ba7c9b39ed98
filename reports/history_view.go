package reports

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// historyTemplate is the history section of a load run's page: the
// timeline, the classes per QoS and the per-fault table.
var historyTemplate = template.Must(template.New("history.gohtml").Funcs(funcs).Funcs(template.FuncMap{
	"pct":      pct,
	"secs":     secs,
	"recovery": recoveryText,
	"sessions": sessionsText,
}).ParseFS(templateFS, "templates/history.gohtml"))

// HistoryHTML is the history section of l's page: empty when l has no
// history (results from before the checker).
func (l *Load) HistoryHTML() (template.HTML, error) {
	if l.History == nil {
		return "", nil
	}
	var b strings.Builder
	err := historyTemplate.Execute(&b, struct {
		H        *LoadHistory
		Timeline template.HTML
	}{l.History, historyTimeline(l)})
	return template.HTML(b.String()), err
}

// WriteHistoryTable prints the history as terminal tables: the classes
// per QoS with their verdict, then one row per fault.
func WriteHistoryTable(w io.Writer, h *LoadHistory) {
	if h == nil {
		return
	}
	if len(h.Classes) > 0 {
		t := newLoadTable(w)
		t.Header("History QoS", "Due", "Delivered", "Acked lost", "Lost with session", "Unacked lost", "Failed", "Unknown", "Duplicated", "Reordered", "Unexpected", "Verdict")
		for _, r := range h.Classes {
			verdict := "ok"
			if len(r.Violations) > 0 {
				verdict = "VIOLATION"
			}
			c := func(n uint64) string { return countPct(n, r) }
			t.Append(fmt.Sprint(r.QoS), fmt.Sprint(r.Due), c(r.Delivered), c(r.AckedLost), c(r.SessionLost), c(r.UnackedLost), //nolint:errcheck
				c(r.Failed), c(r.Unknown), c(r.Duplicated), c(r.Reordered), fmt.Sprint(r.Unexpected), verdict)
		}
		t.Render() //nolint:errcheck
	}
	if len(h.Faults) > 0 {
		t := newLoadTable(w)
		t.Header("Fault", "At", "Messages (window)", "Acked lost", "Lost with session", "Loss window", "Sessions", "Recovery", "p99 before / after", "Verdict")
		for _, f := range h.Faults {
			var due, lost, sessionLost uint64
			for _, r := range f.Classes {
				due += r.Due
				lost += r.AckedLost
				sessionLost += r.SessionLost
			}
			loss := "-"
			if lw := f.LossWindow; lw != nil {
				loss = secs(lw.From) + " to " + secs(lw.To)
			}
			verdict := "ok"
			if len(f.Violations) > 0 {
				verdict = "VIOLATION"
			}
			t.Append(f.Name, faultSpan(f), fmt.Sprintf("%d (%s to %s)", due, secs(f.WindowFrom), secs(f.WindowTo)), fmt.Sprint(lost), fmt.Sprint(sessionLost), //nolint:errcheck
				loss, sessionsText(f.Sessions), recoveryText(f.RecoverySec), us(f.P99Before)+" / "+us(f.P99After), verdict)
		}
		t.Render() //nolint:errcheck
		// The survival probes' findings are sentences: a line each.
		for _, f := range h.Faults {
			if f.Kind == "kill" || f.Kind == "restart" || f.Kind == "pause" {
				fmt.Fprintf(w, "fault %s: retained: %s; wills: %s\n", f.Name, f.Retained, f.Wills)
			}
		}
	}
	for _, v := range h.Violations {
		fmt.Fprintln(w, "history: "+v)
	}
}

// countPct is "n (x.xx%)" of the messages due, or "n" when none was.
func countPct(n uint64, r LoadHistoryClass) string {
	if n == 0 || r.Due == 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%s)", n, pct(r.Fraction(n)))
}

// pct prints a fraction as a percentage with the digits a small one
// needs: a single lost message in a million still shows.
func pct(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f >= 0.01:
		return strconv.FormatFloat(100*f, 'f', 2, 64) + "%"
	}
	return strconv.FormatFloat(100*f, 'g', 2, 64) + "%"
}

func secs(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) + "s" }

func faultSpan(f LoadFaultHistory) string {
	if f.End > f.Start {
		return secs(f.Start) + " to " + secs(f.End)
	}
	return secs(f.Start)
}

func recoveryText(r *float64) string {
	if r == nil {
		return "not recovered"
	}
	return secs(*r)
}

func sessionsText(s LoadFaultSessions) string {
	if !s.Persistent {
		return fmt.Sprintf("n/a: clean sessions (%d reconnected)", s.Resumed+s.Fresh)
	}
	if s.Dropped == 0 && s.Resumed+s.Fresh == 0 {
		return "no connection dropped"
	}
	out := fmt.Sprintf("%d of %d resumed", s.Resumed, s.Resumed+s.Fresh)
	if back := s.Resumed + s.Fresh; back < s.Dropped {
		out += fmt.Sprintf(", %d not back", s.Dropped-back)
	}
	if s.SubscribersResumed > 0 {
		out += fmt.Sprintf("; subscriptions kept %d of %d", s.SubscriptionsKept, s.SubscribersResumed)
	}
	return out
}

// The timeline is three panels over one time axis (throughput, p99
// end-to-end latency, open connections) with every fault drawn across
// all three: a red span from its start to its end (a line for an
// instant one) and a lighter one until it recovered.
const (
	tlPanelH = 110
	tlGap    = 36
	tlTop    = 80 // the title, then two rows of fault names
)

func historyTimeline(l *Load) template.HTML {
	type panel struct {
		title  string
		yf     func(float64) string
		series []series
	}
	sent, recv := series{Name: "sent/s"}, series{Name: "delivered/s"}
	p99, conns := series{Name: "p99 e2e"}, series{Name: "connections"}
	xmax := 0.0
	for _, s := range l.Series {
		sent.Points = append(sent.Points, point{s.T, float64(s.Sent)})
		recv.Points = append(recv.Points, point{s.T, float64(s.Received)})
		if s.P99E2E > 0 {
			p99.Points = append(p99.Points, point{s.T, float64(s.P99E2E)})
		}
		conns.Points = append(conns.Points, point{s.T, float64(s.Connections)})
		xmax = math.Max(xmax, s.T)
	}
	var faults []LoadFaultHistory
	if l.History != nil {
		faults = l.History.Faults
	}
	for _, f := range faults {
		xmax = math.Max(xmax, f.End)
	}
	panels := []panel{
		{"Throughput (messages/s)", nil, []series{sent, recv}},
		{"End-to-end p99", usFloat, []series{p99}},
		{"Open connections", nil, []series{conns}},
	}
	height := tlTop + len(panels)*(tlPanelH+tlGap) - tlGap + 36
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot timeline" id="timeline" viewBox="0 0 %d %d" role="img" aria-label="Timeline with faults" xmlns="http://www.w3.org/2000/svg">`, plotW, height)
	fmt.Fprintf(&b, `<text class="title" x="%d" y="18">Timeline: faults over throughput, latency and connections</text>`, padL)
	if xmax <= 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d">no data</text></svg>`, plotW/2, height/2)
		return template.HTML(b.String())
	}
	sx := func(x float64) float64 { return padL + math.Max(0, math.Min(x, xmax))/xmax*innerW }
	bottom := tlTop + len(panels)*(tlPanelH+tlGap) - tlGap
	// Faults first, under the lines; names alternate between two rows
	// so neighbours do not overlap.
	spanTop := tlTop - 28
	for i, f := range faults {
		x0, x1 := sx(f.Start), sx(f.End)
		w := math.Max(x1-x0, 2)
		fmt.Fprintf(&b, `<rect class="fault" data-fault="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="#d62728" fill-opacity="0.25"><title>%s</title></rect>`,
			esc(f.Name), x0, spanTop, w, bottom-spanTop, esc(f.Name+" "+faultSpan(f)))
		if f.RecoverySec != nil && *f.RecoverySec > 0 {
			r1 := sx(f.End + *f.RecoverySec)
			fmt.Fprintf(&b, `<rect class="recovery" data-fault="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="#ff7f0e" fill-opacity="0.15"><title>%s</title></rect>`,
				esc(f.Name), x0+w, spanTop, math.Max(r1-x0-w, 0), bottom-spanTop, esc(f.Name+" recovered after "+secs(*f.RecoverySec)))
		}
		fmt.Fprintf(&b, `<text class="fault-label" x="%.1f" y="%d" style="fill:#d62728">%s</text>`, x0, 36+(i%2)*13, esc(f.Name))
	}
	colour := 0
	for i, p := range panels {
		top := tlTop + i*(tlPanelH+tlGap)
		ymax := 0.0
		for _, s := range p.series {
			for _, pt := range s.Points {
				ymax = math.Max(ymax, pt.Y)
			}
		}
		ymax = niceCeil(ymax)
		if ymax == 0 {
			ymax = 1
		}
		yf := p.yf
		if yf == nil {
			yf = func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
		}
		sy := func(y float64) float64 { return float64(top+tlPanelH) - y/ymax*tlPanelH }
		fmt.Fprintf(&b, `<text class="legend" x="%d" y="%d">%s</text>`, padL, top-10, esc(p.title))
		for k := 0; k <= 2; k++ {
			v := ymax * float64(k) / 2
			fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, padL, sy(v), padL+innerW, sy(v))
			fmt.Fprintf(&b, `<text class="ytick" x="%d" y="%.1f">%s</text>`, padL-6, sy(v)+4, esc(yf(v)))
		}
		fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>`, padL, top, innerW, tlPanelH)
		for j, s := range p.series {
			c := palette[colour%len(palette)]
			colour++
			var d strings.Builder
			for n, pt := range s.Points {
				cmd := 'L'
				if n == 0 {
					cmd = 'M'
				}
				fmt.Fprintf(&d, "%c%.1f %.1f", cmd, sx(pt.X), sy(pt.Y))
			}
			if d.Len() > 0 {
				fmt.Fprintf(&b, `<path class="line" d="%s" stroke="%s"><title>%s</title></path>`, d.String(), c, esc(s.Name))
			}
			lx := padL + innerW - 110*(len(p.series)-j)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text class="legend" x="%d" y="%d">%s</text>`, lx, top-16, c, lx+16, top-10, esc(s.Name))
		}
	}
	for _, t := range autoTicks(0, xmax) {
		x := sx(t.V)
		fmt.Fprintf(&b, `<text class="xtick" x="%.1f" y="%d">%s</text>`, x, bottom+14, esc(t.Label))
	}
	fmt.Fprintf(&b, `<text class="xlabel" x="%d" y="%d">seconds</text>`, padL+innerW/2, bottom+28)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
