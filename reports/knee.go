package reports

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Knee is the result of `mqttbench load --find-max` (knee.json): every
// step of the search, each a full run kept in its own results directory,
// and the answer, the highest offered rate the broker sustained cleanly.
type Knee struct {
	Kind        string        `json:"kind"` // "knee"
	Target      string        `json:"target"`
	Started     time.Time     `json:"started"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Interrupted bool          `json:"interrupted,omitempty"`
	// Scenario is the scenario of the first step; the steps differ in
	// rate only.
	Scenario LoadScenario `json:"scenario"`
	SLO      []string     `json:"slo,omitempty"`
	Search   KneeSearch   `json:"search"`
	Steps    []KneeStep   `json:"steps"`
	Answer   KneeAnswer   `json:"answer"`
}

// KneeSearch is how the search stepped.
type KneeSearch struct {
	Start     float64 `json:"start"`
	Factor    float64 `json:"factor"`
	Precision float64 `json:"precision"`
	MaxSteps  int     `json:"max_steps"`
}

// KneeStep is one run of the search. Rates are messages per second;
// latencies microseconds.
type KneeStep struct {
	N         int     `json:"n"`
	Dir       string  `json:"dir"` // results directory, relative to knee.json
	Offered   float64 `json:"offered_rate"`
	Achieved  float64 `json:"achieved_rate"`  // sent per second while publishing
	Delivered float64 `json:"delivered_rate"` // deliveries per second while publishing
	E2E       KneeLat `json:"e2e"`
	Ack       KneeLat `json:"publish_ack"`
	Lost      uint64  `json:"lost"`
	Missed    uint64  `json:"missed"`
	Errors    uint64  `json:"errors"`
	Saturated bool    `json:"generator_saturated"`
	Clean     bool    `json:"clean"`
	// Tolerated counts the breaches of statements the run tolerated
	// (load --tolerate).
	Tolerated uint64 `json:"tolerated,omitempty"`
	// Interrupted steps are kept but not judged.
	Interrupted bool     `json:"interrupted,omitempty"`
	Why         []string `json:"why_unclean,omitempty"`
}

// KneeLat is a metric's p50, p99 and p99.9 in one step (0: no samples).
type KneeLat struct {
	P50  int64 `json:"p50_us"`
	P99  int64 `json:"p99_us"`
	P999 int64 `json:"p99_9_us"`
}

// KneeAnswer is what the search found.
type KneeAnswer struct {
	// Rate is the highest clean offered rate (0: not even the first
	// step was clean). Step is its step number.
	Rate float64 `json:"rate"`
	Step int     `json:"step,omitempty"`
	// AtLeast says the broker was never shown to fail above Rate: the
	// generator saturated first (at SaturatedAt), or the steps ran out.
	AtLeast     bool    `json:"at_least,omitempty"`
	SaturatedAt float64 `json:"generator_saturated_at,omitempty"`
	// FirstUnclean is the lowest unclean rate above Rate, and why.
	FirstUnclean float64  `json:"first_unclean,omitempty"`
	Why          []string `json:"why_unclean,omitempty"`
	Stop         string   `json:"stop"` // precision, steps, saturated, none-clean, interrupted
	Text         string   `json:"text"` // the answer in a sentence
}

// NewKneeStep condenses one step's summary.
func NewKneeStep(n int, dir string, l *Load, clean bool, why []string) KneeStep {
	s := KneeStep{N: n, Dir: dir, Offered: l.Scenario.Rate, Achieved: l.Messages.SentRate, Delivered: l.Messages.ReceivedRate,
		Missed: l.Messages.Missed, Errors: l.TotalErrors(), Saturated: l.Generator != nil && l.Generator.Saturated,
		Clean: clean, Interrupted: l.Interrupted, Why: why}
	lat := func(metric string) KneeLat {
		if m, ok := l.latency(metric); ok {
			return KneeLat{m.P50, m.P99, m.P999}
		}
		return KneeLat{}
	}
	s.E2E, s.Ack = lat("e2e"), lat("publish_ack")
	for _, t := range l.Tolerated {
		s.Tolerated += t.Count
	}
	for _, v := range l.Verify {
		s.Lost += v.Lost
	}
	return s
}

// WriteJSON writes k to path.
func (k *Knee) WriteJSON(path string) error { return writeJSON(path, k) }

// ReadKnee reads a knee.json.
func ReadKnee(path string) (*Knee, error) {
	var k Knee
	if err := readResult(path, "knee", &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Rate prints a rate in messages per second without needless decimals.
func Rate(r float64) string {
	if r >= 100 {
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// stepVerdict is a step's verdict in a word.
func (s KneeStep) verdict() string {
	switch {
	case s.Interrupted:
		return "interrupted"
	case s.Clean:
		return "clean"
	case s.Saturated:
		return "generator saturated"
	}
	return "unclean"
}

// WriteKneeTable prints the steps, in rate order, and the answer.
func WriteKneeTable(w io.Writer, k *Knee) {
	t := newLoadTable(w)
	t.Header("Step", "Offered/s", "Sent/s", "Delivered/s", "e2e p50", "e2e p99", "e2e p99.9", "ack p99", "Lost", "Missed", "Verdict", "Why")
	for _, s := range k.Steps {
		ack := "-"
		if s.Ack.P99 > 0 {
			ack = us(s.Ack.P99)
		}
		why := strings.Join(s.Why, "; ")
		if len(why) > 100 {
			why = why[:97] + "..."
		}
		t.Append(fmt.Sprint(s.N), Rate(s.Offered), Rate(s.Achieved), Rate(s.Delivered), us(s.E2E.P50), us(s.E2E.P99), us(s.E2E.P999), //nolint:errcheck
			ack, fmt.Sprint(s.Lost), fmt.Sprint(s.Missed), s.verdict(), why)
	}
	t.Render() //nolint:errcheck
	fmt.Fprintf(w, "knee: %s\n", k.Answer.Text)
}

// kneePage is the data of the knee report.
type kneePage struct {
	K     *Knee
	Chart plot
}

// kneeChart is throughput against latency: x the achieved rate, y the p99
// end-to-end latency, a line through the steps in rate order with clean
// and unclean steps marked apart.
func kneeChart(k *Knee) plot {
	p := plot{ID: "plot-knee", Title: "p99 end-to-end latency by achieved rate", XLabel: "messages/s sent", YLabel: "p99 e2e", YFormat: usFloat}
	steps := append([]KneeStep(nil), k.Steps...)
	slices.SortStableFunc(steps, func(a, b KneeStep) int { return cmp.Compare(a.Achieved, b.Achieved) })
	all := series{Name: "steps by rate"}
	clean := series{Name: "clean", Marks: true}
	unclean := series{Name: "unclean", Marks: true}
	saturated := series{Name: "generator saturated", Marks: true}
	for _, s := range steps {
		if s.Interrupted || s.E2E.P99 == 0 {
			continue
		}
		pt := point{s.Achieved, float64(s.E2E.P99)}
		all.Points = append(all.Points, pt)
		switch {
		case s.Clean:
			clean.Points = append(clean.Points, pt)
		case s.Saturated:
			saturated.Points = append(saturated.Points, pt)
		default:
			unclean.Points = append(unclean.Points, pt)
		}
	}
	p.Series = []series{all, clean, unclean}
	if len(saturated.Points) > 0 {
		p.Series = append(p.Series, saturated)
	}
	return p
}

func init() {
	t := template.New("layout.gohtml").Funcs(funcs).Funcs(template.FuncMap{"rate": Rate})
	template.Must(t.ParseFS(templateFS, "templates/layout.gohtml", "templates/parts.gohtml", "templates/knee.gohtml"))
	pages["knee"] = t
}

// WriteKneeHTML writes the knee report: the answer, the throughput against
// latency chart and the step table, each step linked to its results.
func WriteKneeHTML(w io.Writer, k *Knee) error {
	meta := [][2]string{
		{"Target", RedactURL(k.Target)},
		{"Started", k.Started.UTC().Format(time.RFC3339)},
		{"Duration", fmtDuration(k.Elapsed)},
		{"Search", fmt.Sprintf("from %s/s, ×%g, to within %g%%, at most %d steps", Rate(k.Search.Start), k.Search.Factor, k.Search.Precision*100, k.Search.MaxSteps)},
	}
	if len(k.SLO) > 0 {
		meta = append(meta, [2]string{"SLO", strings.Join(k.SLO, ", ")})
	}
	ok := k.Answer.Rate > 0 && !k.Interrupted
	return render(w, "knee", page{Title: "Knee: " + RedactURL(k.Target), Meta: meta, OK: ok, Verdict: k.Answer.Text,
		Data: kneePage{K: k, Chart: kneeChart(k)}})
}
