package suites

import (
	"sort"
	"sync"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// answerTimes gathers, over a run, how long the broker took over each kind
// of answer it owed (CONNACK, SUBACK, PUBACK, ...) and how many never came
// in time, so that a report can say a broker was slow instead of leaving
// readers to guess from inconclusive specs. Ginkgo runs one suite per
// process, so one clock per process is one per run.
var answerTimes answerClock

type answerClock struct {
	mu sync.Mutex
	by map[string]*reports.AnswerTime
}

func (a *answerClock) entry(packet string) *reports.AnswerTime {
	if a.by == nil {
		a.by = map[string]*reports.AnswerTime{}
	}
	e := a.by[packet]
	if e == nil {
		e = &reports.AnswerTime{Packet: packet}
		a.by[packet] = e
	}
	return e
}

// took records an answer that came after d; over half the timeout is slow.
func (a *answerClock) took(packet string, d, timeout time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entry(packet)
	e.Count++
	e.Max = max(e.Max, d)
	if d > timeout/2 {
		e.Slow++
	}
}

// missed records an answer that did not come within the timeout.
func (a *answerClock) missed(packet string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entry(packet).Missing++
}

func (a *answerClock) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.by = nil
}

// snapshot returns the answer times by packet name.
func (a *answerClock) snapshot() []reports.AnswerTime {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]reports.AnswerTime, 0, len(a.by))
	for _, e := range a.by {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Packet < out[j].Packet })
	return out
}
