package reports

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fixtureHistory is fixtureLoad's run with a history: QoS 1 lost 7
// acknowledged messages to a kill at 3 s that took 2.5 s to recover
// from; a latency fault from 6 s to 8 s never recovered.
func fixtureHistory() LoadRun {
	run := fixtureLoad("a", 0)
	l := run.Summary
	l.Series = nil
	for s := 1; s <= 10; s++ {
		l.Series = append(l.Series, LoadSecond{T: float64(s), Phase: "publish", Sent: 1000, Received: 990, Connections: 20, P99E2E: int64(900 + 100*s)})
	}
	rec := 2.5
	l.History = &LoadHistory{
		RecoveryThreshold: 0.9, LatencyWindow: 5,
		Classes: []LoadHistoryClass{
			{QoS: 1, Streams: 4, Due: 4000, Delivered: 3990, AckedLost: 7, Unknown: 3, Duplicated: 2,
				Violations: []string{"7 messages acknowledged to the publisher and never delivered (QoS 1 is at least once)"}},
		},
		Faults: []LoadFaultHistory{
			{Name: "kill@3s", Kind: "kill", Start: 3, End: 3, Recovered: 4, WindowFrom: 0, WindowTo: 5.5,
				Classes:     []LoadHistoryClass{{QoS: 1, Streams: 4, Due: 2200, Delivered: 2190, AckedLost: 7, Unknown: 3}},
				LossWindow:  &LoadLossWindow{From: 2.9, To: 3.4, Messages: 7},
				Sessions:    LoadFaultSessions{Persistent: true, Dropped: 8, Resumed: 6, Fresh: 2, SubscribersResumed: 3, SubscriptionsKept: 3},
				RecoverySec: &rec, P99Before: 1200, P99After: 45000,
				Retained: "n/a: none", Wills: "n/a: none",
				Violations: []string{"fault kill@3s: 7 messages acknowledged to the publisher never delivered, due 2.9s to 3.4s"}},
			{Name: "latency=200ms@6s+2s", Kind: "latency", Start: 6, End: 8, WindowFrom: 5.5, WindowTo: 10,
				Classes:  []LoadHistoryClass{{QoS: 1, Streams: 4, Due: 1800, Delivered: 1800}},
				Sessions: LoadFaultSessions{Persistent: true}, Retained: "n/a: none", Wills: "n/a: none"},
		},
	}
	l.History.Violations = append(l.History.Classes[0].Violations, l.History.Faults[0].Violations...)
	return run
}

// The HTML report draws every fault over the timeline where it happened
// (x of a span: padL + t/tmax × innerW) and shows the classes' counts and
// each fault's loss window, sessions and recovery.
func TestHistoryHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLoadHTML(&b, []LoadRun{fixtureHistory()}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	svg := regexp.MustCompile(`(?s)<svg class="plot timeline".*?</svg>`).FindString(page)
	if svg == "" {
		t.Fatal("no timeline in the page")
	}
	x := func(sec float64) float64 { return padL + sec/10*innerW }
	for _, want := range []string{
		// kill: an instant, drawn 2 px wide, then its recovery to 5.5 s.
		`<rect class="fault" data-fault="kill@3s" x="` + f1(x(3)) + `" y="52" width="2.0"`,
		`<rect class="recovery" data-fault="kill@3s" x="` + f1(x(3)+2) + `"`,
		`width="` + f1(x(5.5)-x(3)-2) + `"`,
		// latency: a span from 6 s to 8 s, no recovery.
		`<rect class="fault" data-fault="latency=200ms@6s+2s" x="` + f1(x(6)) + `" y="52" width="` + f1(x(8)-x(6)) + `"`,
		">Throughput (messages/s)<", ">End-to-end p99<", ">Open connections<",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("timeline lacks %s", want)
		}
	}
	if n := strings.Count(svg, `class="line"`); n != 4 {
		t.Errorf("%d lines drawn, want sent, delivered, p99 and connections", n)
	}
	if strings.Contains(svg, `class="recovery" data-fault="latency`) {
		t.Error("a fault that never recovered has a recovery span")
	}
	for _, want := range []string{
		`<table class="list history-classes">`,
		`<td>3990 (99.75%)</td><td class="acked-lost">7 (0.18%)</td>`,
		`<td class="loss-window">2.9s to 3.4s (7)</td>`,
		`6 of 8 resumed; subscriptions kept 3 of 3`,
		`<td>2.5s</td><td>1.20ms / 45.0ms</td>`,
		`<td>not recovered</td>`,
		`fault kill@3s: 7 messages acknowledged to the publisher never delivered, due 2.9s to 3.4s`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// f1 prints a coordinate as the SVG has it.
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// A run without a history (an old summary) shows none, and the page
// still renders.
func TestHistoryHTMLAbsent(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLoadHTML(&b, []LoadRun{fixtureLoad("a", 0)}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "history-classes") || strings.Contains(b.String(), `id="timeline"`) {
		t.Error("a run without history shows one")
	}
}

func TestHistoryTable(t *testing.T) {
	var b bytes.Buffer
	WriteLoadTable(&b, fixtureHistory().Summary)
	out := b.String()
	for _, want := range []string{
		"3990 (99.75%)", "7 (0.18%)", "VIOLATION",
		"kill@3s", "2.9s to 3.4s", "6 of 8 resumed", "2.5s", "1.20ms / 45.0ms",
		"latency=200ms@6s+2s", "6.0s to 8.0s", "not recovered",
		"history: fault kill@3s: 7 messages",
		"fault kill@3s: retained: n/a: none; wills: n/a: none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Network faults are not probed: no line for them.
	if strings.Contains(out, "fault latency=200ms@6s+2s: retained") {
		t.Errorf("a survival line for a network fault:\n%s", out)
	}
}

// The history goes through summary.json unchanged.
func TestHistoryJSON(t *testing.T) {
	l := fixtureHistory().Summary
	path := filepath.Join(t.TempDir(), "summary.json")
	if err := l.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLoad(path)
	if err != nil {
		t.Fatal(err)
	}
	h := back.History
	if h == nil || len(h.Faults) != 2 || h.Faults[0].LossWindow == nil || h.Faults[0].LossWindow.Messages != 7 ||
		h.Faults[0].RecoverySec == nil || *h.Faults[0].RecoverySec != 2.5 || h.Faults[1].RecoverySec != nil ||
		h.Classes[0].AckedLost != 7 || h.Faults[0].Sessions.Fresh != 2 {
		t.Errorf("read back %+v", h)
	}
}
