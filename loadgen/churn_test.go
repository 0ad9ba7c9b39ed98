package loadgen

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// churnScenario publishes long enough for churn to happen, with
// persistent sessions so that nothing may be lost.
func churnScenario(pubs, subs int, d time.Duration) Scenario {
	sc := quick(pubs, subs, 1, "churn/{p}")
	sc.Rate, sc.Duration, sc.Drain = 500, d, 5*time.Second
	sc.CleanSession = false
	return sc
}

func churnLatency(l *reports.Load, metric string) reports.LoadLatency {
	for _, m := range l.Latency {
		if m.Metric == metric {
			return m
		}
	}
	return reports.LoadLatency{}
}

func lost(l *reports.Load) (lost, excused, queue uint64) {
	for _, v := range l.Verify {
		lost += v.Lost
		excused += v.LostExcused
		queue += v.LostQueueLimit
	}
	return
}

// Flapping with persistent sessions: connections drop and come back, the
// reconnections are timed, and no QoS 1 message is lost.
func TestChurnFlapPersistent(t *testing.T) {
	sc := churnScenario(2, 2, 2*time.Second)
	sc.Churn.Flap = Flap{Rate: 10}
	l := run(t, sc, Options{})
	f := l.Churn.Flap
	if f == nil || f.Drops < 10 || f.Connections != 4 {
		t.Fatalf("flap %+v", f)
	}
	if r := churnLatency(l, "reconnect"); r.Count == 0 || r.P50 < int64(backoffMin*3/4/time.Microsecond) {
		t.Errorf("reconnect histogram %+v: want counts of at least the backoff", r)
	}
	if lo, ex, _ := lost(l); lo != 0 || ex != 0 || len(l.Violations) > 0 {
		t.Errorf("lost %d, excused %d, violations %v", lo, ex, l.Violations)
	}
	if l.Messages.Received == 0 || l.Errors["other"] > 0 {
		t.Errorf("received %d, errors %v (drops of ours are not errors)", l.Messages.Received, l.Errors)
	}
}

// Flapping subscribers with a clean start lose what was sent while they
// were away: losses excused as lost sessions, not violations.
func TestChurnFlapCleanStart(t *testing.T) {
	sc := churnScenario(1, 2, 2*time.Second)
	sc.Churn.Flap = Flap{Rate: 5, Group: "subscribers", CleanStart: true}
	l := run(t, sc, Options{})
	lo, ex, _ := lost(l)
	if ex == 0 || lo != 0 || len(l.Violations) > 0 {
		t.Fatalf("lost %d, excused %d, violations %v: want losses, all excused", lo, ex, l.Violations)
	}
	if !l.Churn.Flap.CleanStart || l.Churn.Flap.Connections != 2 {
		t.Errorf("flap %+v", l.Churn.Flap)
	}
}

// Subscribers offline with persistent sessions get their backlog when
// they come back, and nothing is lost.
func TestChurnOfflineBacklog(t *testing.T) {
	sc := churnScenario(1, 2, 2*time.Second)
	sc.Churn.Offline = Offline{Subscribers: 1, At: 300 * time.Millisecond, For: time.Second}
	l := run(t, sc, Options{})
	b := l.Churn.Backlog
	if b == nil || b.Subscribers != 1 || b.Returned != 1 || b.AwaySec < 0.9 {
		t.Fatalf("backlog %+v", b)
	}
	// 500/s for a second: hundreds of messages waited for it.
	if b.Due < 300 || b.Delivered < b.Due*9/10 || b.DrainSec <= 0 || b.DrainRate <= 0 {
		t.Errorf("backlog %+v: want the backlog delivered, a drain time and rate", b)
	}
	if lo, ex, _ := lost(l); lo != 0 || ex != 0 || len(l.Violations) > 0 {
		t.Errorf("lost %d, excused %d, violations %v", lo, ex, l.Violations)
	}
	if r := churnLatency(l, "reconnect"); r.Count != 0 {
		t.Errorf("reconnect histogram %+v: an offline subscriber's return is not a reconnection", r)
	}
}

// A broker that keeps 50 messages per offline session drops the rest:
// losses beyond the limit the run was told of are the broker keeping its
// word; without the limit they are violations.
func TestChurnOfflineQueueLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     int
		violation bool
	}{
		{"limit given", 50, false},
		{"limit unknown", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := churnScenario(1, 1, 2*time.Second)
			sc.Churn.Offline = Offline{Subscribers: 1, At: 300 * time.Millisecond, For: time.Second}
			sc.Churn.BrokerQueueLimit = tc.limit
			l := run(t, sc, Options{Broker: broker.Options{MaxQueued: 50}})
			lo, _, queue := lost(l)
			b := l.Churn.Backlog
			if b.LostByQoS[1] == 0 || b.Delivered == 0 {
				t.Fatalf("backlog %+v: want losses beyond the broker's queue", b)
			}
			if got := len(l.Violations) > 0; got != tc.violation {
				t.Fatalf("violations %v, want some: %v", l.Violations, tc.violation)
			}
			if tc.violation {
				if lo != b.LostByQoS[1] || queue != 0 {
					t.Errorf("lost %d (queue limit %d), backlog lost %d", lo, queue, b.LostByQoS[1])
				}
				return
			}
			if lo != 0 || queue != b.LostByQoS[1] || b.LostQueueLimit != queue {
				t.Errorf("lost %d, queue limit %d, backlog %+v", lo, queue, b)
			}
			if !strings.Contains(strings.Join(l.Notes, "\n"), "dropped by the broker's queue limit (50 per session)") {
				t.Errorf("notes %q", l.Notes)
			}
		})
	}
}

// A will storm: every will arrives and is timed; a broker that drops
// wills breaks MQTT-3.1.2-8.
func TestChurnWillStorm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults broker.Faults
		proto  packetgen.Version
		want   uint64
	}{
		{"3.1.1", broker.Faults{}, packetgen.V311, 30},
		{"5.0", broker.Faults{}, packetgen.V5, 30},
		{"drop-will", broker.Faults{DropWill: true}, packetgen.V311, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := churnScenario(1, 1, time.Second)
			sc.Protocol = tc.proto
			sc.Churn.WillStorm = WillStorm{Connections: 30, At: 200 * time.Millisecond}
			l := run(t, sc, Options{Broker: broker.Options{Faults: tc.faults}})
			w := l.Churn.WillStorm
			if w == nil || w.Connected != 30 || w.Expected != 30 || w.Received != tc.want || w.Error != "" {
				t.Fatalf("will storm %+v", w)
			}
			if n := churnLatency(l, "will").Count; n != int64(tc.want) {
				t.Errorf("will histogram count %d, want %d", n, tc.want)
			}
			v := strings.Join(l.Violations, "\n")
			if tc.want < 30 != strings.Contains(v, "[MQTT-3.1.2-8] 30 of 30 wills") {
				t.Errorf("violations %q", v)
			}
		})
	}
}

// A retained fleet: every subscriber gets every topic and is timed; a
// broker that forgets retained messages is caught, unless it said (5.0)
// retain is not available.
func TestChurnRetainedFleet(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      broker.Options
		proto     packetgen.Version
		complete  int
		violation string
	}{
		{"3.1.1", broker.Options{}, packetgen.V311, 3, ""},
		{"5.0", broker.Options{}, packetgen.V5, 3, ""},
		{"forget-retained", broker.Options{Faults: broker.Faults{ForgetRetained: true}}, packetgen.V311, 0, "[MQTT-3.3.1-6] 600 retained messages"},
		{"retain not available", broker.Options{DisableRetain: true}, packetgen.V5, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := churnScenario(1, 1, 300*time.Millisecond)
			sc.Protocol, sc.ConnectTimeout = tc.proto, time.Second
			sc.Churn.Retained = RetainedFleet{Topics: 200, Subscribers: 3}
			l := run(t, sc, Options{Broker: tc.opts})
			r := l.Churn.Retained
			set := 200
			if tc.opts.DisableRetain {
				set = 0
			}
			if r == nil || r.Set != set || r.Complete != tc.complete || r.Missing != uint64(200*(3-tc.complete)) {
				t.Fatalf("retained %+v", r)
			}
			if n := churnLatency(l, "retained_fetch").Count; n != int64(tc.complete) {
				t.Errorf("retained_fetch count %d, want %d", n, tc.complete)
			}
			v := strings.Join(l.Violations, "\n")
			if tc.violation == "" && v != "" || !strings.Contains(v, tc.violation) {
				t.Errorf("violations %q, want %q", v, tc.violation)
			}
		})
	}
}

// A broker that keeps 50 messages queued per session beyond its 64 in
// flight hands a new subscriber 114 of 200 retained messages: within the
// queue limit the run was told of, a note; without it, a violation.
func TestChurnRetainedFleetQueueLimit(t *testing.T) {
	for _, limit := range []int{50, 0} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			sc := churnScenario(1, 1, 300*time.Millisecond)
			sc.ConnectTimeout = time.Second
			sc.Churn.Retained = RetainedFleet{Topics: 200, Subscribers: 2}
			sc.Churn.BrokerQueueLimit = limit
			l := run(t, sc, Options{Broker: broker.Options{MaxQueued: 50, InflightWindow: 64}})
			r := l.Churn.Retained
			if r == nil || r.Complete != 0 || r.Missing+r.DroppedQueueLimit != 2*(200-114) {
				t.Fatalf("retained %+v: want 114 of 200 to each subscriber", r)
			}
			v := strings.Join(l.Violations, "\n")
			if limit == 0 {
				if r.Missing != 2*86 || !strings.Contains(v, "[MQTT-3.3.1-6] 172 retained messages not sent") {
					t.Errorf("retained %+v, violations %q", r, v)
				}
				return
			}
			if r.DroppedQueueLimit != 2*86 || r.QueueLimit != 50 || v != "" ||
				!strings.Contains(strings.Join(l.Notes, "\n"), "172 retained messages not fetched by subscribers that got the broker's queue limit (50 per session)") {
				t.Errorf("retained %+v, violations %q, notes %q", r, v, l.Notes)
			}
		})
	}
}

func TestChurnValidate(t *testing.T) {
	base := churnScenario(2, 2, time.Second)
	for _, tc := range []struct {
		name string
		set  func(*Scenario)
		want string
	}{
		{"bad group", func(s *Scenario) { s.Churn.Flap = Flap{Rate: 1, Group: "pubs"} }, `churn.flap.group: "pubs"`},
		{"no idle", func(s *Scenario) { s.Churn.Flap = Flap{Rate: 1, Group: "idle"} }, "group idle has no connections"},
		{"count too big", func(s *Scenario) { s.Churn.Flap = Flap{Rate: 1, Group: "publishers", Count: 3} }, "3 is more than the 2 connections"},
		{"negative rate", func(s *Scenario) { s.Churn.Flap.Rate = -1 }, "churn.flap.rate"},
		{"offline clean", func(s *Scenario) { s.CleanSession = true; s.Churn.Offline = Offline{Subscribers: 1, For: time.Second} }, "need clean_session false"},
		{"offline no for", func(s *Scenario) { s.Churn.Offline = Offline{Subscribers: 1} }, "churn.offline.for"},
		{"offline too many", func(s *Scenario) { s.Churn.Offline = Offline{Subscribers: 3, For: time.Second} }, "makes 3 of 2 subscribers"},
		{"offline late", func(s *Scenario) { s.Churn.Offline = Offline{Subscribers: 1, At: 2 * time.Second, For: time.Second} }, "not within the publish phase"},
		{"will prefix", func(s *Scenario) { s.Churn.WillStorm = WillStorm{Connections: 1, Prefix: "a/#"} }, "churn.will_storm.prefix"},
		{"retained topics", func(s *Scenario) { s.Churn.Retained = RetainedFleet{Subscribers: 2} }, "churn.retained.topics"},
		{"template missing", func(s *Scenario) { s.PayloadTemplate = "/nonexistent/t.tmpl" }, "payload template: open /nonexistent/t.tmpl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := base
			tc.set(&sc)
			err := sc.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
	if err := base.Validate(); err != nil {
		t.Errorf("the base scenario: %v", err)
	}
}

// The scenario file's churn section sets every field.
func TestChurnScenarioFile(t *testing.T) {
	yml := `publishers: 2
subscribers: 4
qos: 1
clean_session: false
churn:
  flap: {rate: 5, group: subscribers, count: 2, clean_start: true}
  offline: {subscribers: 0.5, at: 1s, for: 3s}
  will_storm: {connections: 10, at: 2s, prefix: w}
  retained: {topics: 100, subscribers: 4}
  broker_queue_limit: 1000
`
	sc, err := ParseScenario("s.yaml", []byte(yml), DefaultScenario())
	if err != nil {
		t.Fatal(err)
	}
	want := Churn{
		Flap:             Flap{Rate: 5, Group: "subscribers", Count: 2, CleanStart: true},
		Offline:          Offline{Subscribers: 0.5, At: time.Second, For: 3 * time.Second},
		WillStorm:        WillStorm{Connections: 10, At: 2 * time.Second, Prefix: "w"},
		Retained:         RetainedFleet{Topics: 100, Subscribers: 4},
		BrokerQueueLimit: 1000,
	}
	if sc.Churn != want {
		t.Errorf("churn %+v, want %+v", sc.Churn, want)
	}
	if n := sc.offlineCount(); n != 2 {
		t.Errorf("offline count %d, want 2", n)
	}
	_, err = ParseScenario("s.yaml", []byte("churn:\n  flap: {rat: 5}\n"), DefaultScenario())
	if err == nil || !strings.Contains(err.Error(), `line 2: unknown field "rat"`) {
		t.Errorf("unknown field: %v", err)
	}
}
