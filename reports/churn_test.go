package reports

import (
	"bytes"
	"strings"
	"testing"
)

func TestChurnTableAndHTML(t *testing.T) {
	run := fixtureLoad("a", 0)
	run.Summary.Churn = &LoadChurn{
		Flap:      &LoadFlap{Group: "subscribers", Connections: 4, Rate: 5, Drops: 50, DropsPerSec: 5, Reconnected: 49},
		Backlog:   &LoadBacklog{Subscribers: 2, AwaySec: 3, Returned: 2, Due: 3000, Delivered: 2000, DrainSec: 0.25, DrainRate: 8000, QueueLimit: 1000, LostByQoS: [3]uint64{0, 1000, 0}, LostQueueLimit: 1000},
		WillStorm: &LoadWillStorm{Connections: 100, Connected: 100, Expected: 100, Received: 99},
		Retained:  &LoadRetained{Topics: 1000, Subscribers: 10, Complete: 10, RetainAvailable: true, SetSec: 0.1, FetchMaxSec: 0.5},
		Template:  &LoadTemplate{File: "t.tmpl", HeaderField: true, Messages: 10, MinBytes: 90, MaxBytes: 110, MeanBytes: 100},
	}
	var b bytes.Buffer
	WriteLoadTable(&b, run.Summary)
	for _, want := range []string{"flap: drops (per second), skipped", "50 (5.00/s of 5), 0", "2000 / 3000", "250.0ms, 8000/s",
		"0/1000/0, 1000 (1000 beyond it)", "99 / 100 of 100 connected", "10 of 10 subscribers got all, 0 missing, slowest 500.0ms",
		"90/100/110 over 10 messages (header {{header}})"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WriteLoadHTML(&b, []LoadRun{run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<h3>Churn</h3>`) || !strings.Contains(b.String(), "99 / 100 of 100 connected") {
		t.Error("the HTML report has no churn section")
	}
	b.Reset()
	WriteLoadTable(&b, fixtureLoad("a", 0).Summary)
	if strings.Contains(b.String(), "Churn") {
		t.Error("a run without churn shows a churn table")
	}
}
