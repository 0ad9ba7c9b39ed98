package suites

import (
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"1/1", Shard{1, 1}, true},
		{"3/4", Shard{3, 4}, true},
		{"0/4", Shard{}, false},
		{"5/4", Shard{}, false},
		{"1/0", Shard{}, false},
		{"1", Shard{}, false},
		{"a/b", Shard{}, false},
	} {
		got, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// The shards of a run split the specs exactly: every spec in one shard.
func TestShardsSplitExactly(t *testing.T) {
	const specs = 181
	for _, of := range []int{1, 2, 3, 7} {
		seen := make([]int, specs)
		for n := 1; n <= of; n++ {
			for k := range specs {
				if (Shard{n, of}).takes(k) {
					seen[k]++
				}
			}
		}
		for k, c := range seen {
			if c != 1 {
				t.Fatalf("%d shards: spec %d taken %d times", of, k, c)
			}
		}
	}
	if !(Shard{}).takes(5) {
		t.Error("no shard must mean the whole suite")
	}
}

// Merging the shards' results gives one run: specs joined, answer times
// summed (the slowest kept), an interruption of any shard the run's, and
// verdicts computed over all specs.
func TestMerge(t *testing.T) {
	a := &reports.Conformance{Specs: []reports.SpecResult{
		{Name: "[MQTT-3.1.0-1] a", Statements: []string{"MQTT-3.1.0-1"}, State: reports.Passed}},
		Answers: []reports.AnswerTime{{Packet: "SUBACK", Count: 2, Max: time.Second, Slow: 1}}}
	b := &reports.Conformance{Interrupted: true, SuiteErrors: []string{"boom"}, Specs: []reports.SpecResult{
		{Name: "[MQTT-3.1.0-1] b", Statements: []string{"MQTT-3.1.0-1"}, State: reports.Failed}},
		Answers: []reports.AnswerTime{{Packet: "SUBACK", Count: 3, Max: 2 * time.Second, Missing: 1}, {Packet: "CONNACK", Count: 1}}}
	res := Merge(Config{Broker: "tcp://127.0.0.1:1", Seed: 9}, []*reports.Conformance{a, b, nil})
	if len(res.Specs) != 2 || !res.Interrupted || len(res.SuiteErrors) != 1 || res.SuiteErrors[0] != "shard 2/3: boom" {
		t.Fatalf("merged %+v", res)
	}
	if len(res.Answers) != 2 || res.Answers[1] != (reports.AnswerTime{Packet: "SUBACK", Count: 5, Max: 2 * time.Second, Slow: 1, Missing: 1}) {
		t.Errorf("answers %+v", res.Answers)
	}
	for _, st := range res.Statements {
		if st.ID == "MQTT-3.1.0-1" && st.Verdict != reports.Failed {
			t.Errorf("MQTT-3.1.0-1: %s", st.Verdict)
		}
	}
	if res.Timeout != 5*time.Second || res.Seed != 9 {
		t.Errorf("timeout %s, seed %d", res.Timeout, res.Seed)
	}
}
