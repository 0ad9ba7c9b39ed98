package loadgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fullScenario = `
brokers: [tcp://127.0.0.1:1883, tcp://127.0.0.1:1884]
source_ips: 127.0.0.2-127.0.0.4
connections: 300
publishers: 100
subscribers: 100
qos: 2
payload: 128
topic: bench/{p}
keepalive: 20s
clean_session: false
username: alice
password: s3cret
inflight: 500
seed: 42
phases:
  connect: {ramp: 250, timeout: 3s}
  publish: {duration: 30s, rate_per_publisher: 50, max_lag: 500ms}
  drain: {duration: 4s}
`

func TestParseScenario(t *testing.T) {
	s, err := ParseScenario("full.yaml", []byte(fullScenario), DefaultScenario())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Brokers) != 2 || len(s.SourceIPs) != 3 || s.SourceIPs[2].String() != "127.0.0.4" ||
		s.TotalConnections() != 300 || s.QoS != 2 || s.Payload != 128 || s.Keepalive != 20*time.Second ||
		s.CleanSession || s.Username != "alice" || s.Inflight != 500 || s.Seed != 42 ||
		s.Ramp != 250 || s.ConnectTimeout != 3*time.Second || s.Duration != 30*time.Second ||
		s.TotalRate() != 5000 || s.MaxLag != 500*time.Millisecond || s.Drain != 4*time.Second {
		t.Errorf("parsed %+v", s)
	}
	// Point-to-point: subscriber j hears publisher j.
	if s.PublisherTopic(7) != "bench/7" || s.SubscriberFilter(7) != "bench/7" {
		t.Errorf("topic %q filter %q", s.PublisherTopic(7), s.SubscriberFilter(7))
	}

	// What a file leaves out keeps the base's value; an empty file is fine.
	s, err = ParseScenario("small.yaml", []byte("qos: 1\n"), DefaultScenario())
	if err != nil || s.QoS != 1 || s.Rate != DefaultScenario().Rate || !s.CleanSession {
		t.Errorf("partial file: %+v, %v", s, err)
	}
	if _, err := ParseScenario("empty.yaml", nil, DefaultScenario()); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

// A broken scenario file is one line that names the file, the line and the
// field.
func TestScenarioErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown top-level field", "qos: 1\nrampp: 5\n", `bad.yaml: line 2: unknown field "rampp"`},
		{"unknown phase field", "phases:\n  publish:\n    duraton: 5s\n", `bad.yaml: line 3: unknown field "duraton"`},
		{"wrong type", "publishers: many\n", `bad.yaml: line 1: cannot unmarshal !!str`},
		{"bad duration", "phases:\n  drain: {duration: soon}\n", `bad.yaml: line 2:`},
		{"bad qos", "qos: 3\n", `bad.yaml: qos: 3 is not 0, 1 or 2`},
		{"payload below the header", "payload: 8\n", `bad.yaml: payload: 8 bytes is less than the 28-byte header`},
		{"wildcard in a topic", "topic: a/+/b\n", `bad.yaml: topic: "a/+/b" expands to "a/+/b"`},
		{"bad source range", "brokers: [tcp://h:1]\nsource_ips: 127.0.0.9-127.0.0.2\n", `source_ips`},
		{"unknown scheme", "brokers: [http://h:1]\n", `bad.yaml: broker "http://h:1": unknown scheme "http"`},
		{"inproc broker", "brokers: [inproc]\n", `bad.yaml: broker inproc: leave the broker URL out`},
		{"credentials in a broker URL", "brokers: [tcp://u:pw@h:1]\n", `bad.yaml: broker "tcp://u:xxxxx@h:1": credentials in the URL`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario("bad.yaml", []byte(tc.yaml), DefaultScenario())
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) && !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q; want one line with %q", msg, tc.want)
			}
		})
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "s.yaml")
	os.WriteFile(p, []byte("publishers: 2\nsubscriber: 2\n"), 0o644)
	if _, err := LoadScenario(p, DefaultScenario()); err == nil || !strings.Contains(err.Error(), `unknown field "subscriber"`) {
		t.Errorf("LoadScenario: %v", err)
	}
}

func TestScenarioPatterns(t *testing.T) {
	s := DefaultScenario()
	s.Publishers, s.Subscribers, s.Topic = 100, 1, "bench/all" // fan-in
	if s.PublisherTopic(42) != "bench/all" || s.SubscriberFilter(0) != "bench/all" {
		t.Error("fan-in: one shared topic")
	}
	s.Publishers, s.Subscribers, s.Topic, s.Filter = 4, 1, "bench/{p}", "bench/+" // fan-in by wildcard
	if s.PublisherTopic(3) != "bench/3" || s.SubscriberFilter(0) != "bench/+" {
		t.Error("wildcard filter")
	}
	s.Filter = ""
	s.Publishers, s.Subscribers = 3, 9 // more subscribers than publishers wrap around
	if s.SubscriberFilter(7) != "bench/1" {
		t.Errorf("subscriber 7 of 3 publishers: %q", s.SubscriberFilter(7))
	}
	s.Connections = 5
	if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), "connections:") {
		t.Errorf("5 connections for 12 clients: %v", err)
	}
}

func TestParseSourceIPs(t *testing.T) {
	ips, err := ParseSourceIPs("127.0.0.2-127.0.0.40, 127.0.1.1")
	if err != nil || len(ips) != 40 || ips[0].String() != "127.0.0.2" || ips[39].String() != "127.0.1.1" {
		t.Fatalf("%v %v", ips, err)
	}
	for _, bad := range []string{"", "127.0.0.5-127.0.0.1", "nope", "127.0.0.1-::1"} {
		if _, err := ParseSourceIPs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The example scenarios in testdata load and validate.
func TestExampleScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 4 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		if _, err := LoadScenario(f, DefaultScenario()); err != nil {
			t.Errorf("%v", err)
		}
	}
}
