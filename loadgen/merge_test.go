package loadgen

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// crossShard is a scenario whose subscribers mostly hear publishers of
// other shards: with 3 shards, subscriber j (connection 4+j) hears
// publisher j mod 4, which sits in shard (j mod 4) mod 3. Every publisher
// sends exactly 50 messages, so a whole run and its shards offer the same.
func crossShard(qos int) Scenario {
	sc := quick(4, 6, 0, "bench/{p}")
	sc.QoS = packetgen.QoS(qos)
	sc.Connections = 12
	sc.Rate, sc.RatePerPublisher, sc.Duration = 0, 100, 500*time.Millisecond
	return sc
}

// runShards runs sc as n shards in goroutines against srv and returns
// their results as read back from disk.
func runShards(t *testing.T, srv *broker.Server, sc Scenario, n int) []*Results {
	t.Helper()
	g := NewGroup(n, 20*time.Millisecond)
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Run(context.Background(), sc, Options{Dial: PipeDialer(srv), Out: dirs[i],
				Shard: Shard{Index: i, Count: n}, RunID: 0xfeed, Coordinator: g.Member(i)})
		}()
	}
	wg.Wait()
	var parts []*Results
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("shard %d: %v", i, errs[i])
		}
		r, err := ReadResults(dirs[i])
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
	}
	return parts
}

// Three shards merged give the totals of one whole run of the same
// scenario: counts exactly, verification stream by stream, and latency
// percentiles from the merged histograms.
func TestShardsMergeLikeOneRun(t *testing.T) {
	for _, qos := range []int{1, 2} {
		t.Run("qos"+itoa(qos), func(t *testing.T) {
			srv := broker.New(broker.Options{})
			defer srv.Close()
			sc := crossShard(qos)
			wholeDir := t.TempDir()
			if _, err := Run(context.Background(), sc, Options{Dial: PipeDialer(srv), Out: wholeDir}); err != nil {
				t.Fatal(err)
			}
			whole, err := ReadResults(wholeDir)
			if err != nil {
				t.Fatal(err)
			}
			parts := runShards(t, srv, sc, 3)
			if !strings.Contains(strings.Join(parts[1].Summary.Notes, "\n"), "judged by mqttbench merge") {
				t.Errorf("shard 1 hears publishers of other shards, but its notes say nothing: %q", parts[1].Summary.Notes)
			}
			merged, err := Merge(parts)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if err := merged.Write(out); err != nil {
				t.Fatal(err)
			}
			back, err := ReadResults(out)
			if err != nil {
				t.Fatal(err)
			}
			w, m := whole.Summary, back.Summary
			if w.Messages.Sent != 200 || w.Messages.Expected != 300 {
				t.Fatalf("whole run: sent %d, expected %d; want 200, 300", w.Messages.Sent, w.Messages.Expected)
			}
			wm, mm := w.Messages, m.Messages
			for _, c := range []struct {
				name      string
				got, want uint64
			}{
				{"offered", mm.Offered, wm.Offered}, {"sent", mm.Sent, wm.Sent}, {"acked", mm.Acked, wm.Acked},
				{"received", mm.Received, wm.Received}, {"expected", mm.Expected, wm.Expected}, {"missed", mm.Missed, wm.Missed},
				{"target", uint64(m.Connections.Target), uint64(w.Connections.Target)},
				{"ready", uint64(m.Connections.Ready), uint64(w.Connections.Ready)},
			} {
				if c.got != c.want {
					t.Errorf("%s: merged %d, whole run %d", c.name, c.got, c.want)
				}
			}
			if len(m.Verify) != 1 || len(w.Verify) != 1 {
				t.Fatalf("verification rows: merged %+v, whole %+v", m.Verify, w.Verify)
			}
			mv, wv := m.Verify[0], w.Verify[0]
			if mv.Streams != 6 || mv.Streams != wv.Streams || mv.Sent != wv.Sent || mv.Confirmed != wv.Confirmed ||
				mv.Received != wv.Received || mv.Lost != 0 || wv.Lost != 0 || mv.Duplicates != wv.Duplicates {
				t.Errorf("verification: merged %+v, whole %+v", mv, wv)
			}
			if len(m.Violations) != 0 || strings.Contains(strings.Join(m.Notes, "\n"), "streams come from") {
				t.Errorf("merged violations %q notes %q", m.Violations, m.Notes)
			}
			// Percentiles of the merged summary are those of the shards'
			// histograms merged (and of the merged logs read back).
			for _, name := range []string{"connect", "e2e", "publish_ack", "send_lag"} {
				h := NewHistogram()
				for _, p := range parts {
					h.Merge(p.Histograms[name])
				}
				want := Summarize(name, h)
				got := latency(m, name)
				if got != want || back.Histograms[name].TotalCount() != want.Count {
					t.Errorf("%s: merged summary %+v, shards' histograms merged %+v, merged log %d values", name, got, want, back.Histograms[name].TotalCount())
				}
				if wc := latency(w, name).Count; wc != want.Count {
					t.Errorf("%s: %d values merged, %d in the whole run", name, want.Count, wc)
				}
			}
			var sent uint64
			for _, s := range m.Series {
				sent += s.Sent
			}
			if sent != mm.Sent {
				t.Errorf("merged series sends %d, total %d", sent, mm.Sent)
			}
		})
	}
}

func latency(l *reports.Load, name string) reports.LoadLatency {
	for _, x := range l.Latency {
		if x.Metric == name {
			return x
		}
	}
	return reports.LoadLatency{}
}

// A merge without the shard holding a subscriber's publisher judges what
// it can and says how many streams it could not.
func TestMergeMissingShard(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	parts := runShards(t, srv, crossShard(1), 3)
	merged, err := Merge(parts[:2])
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(merged.Summary.Notes, "\n")
	if !strings.Contains(notes, "streams come from publishers of shards not merged here") || len(merged.Summary.Violations) != 0 {
		t.Errorf("notes %q violations %q", notes, merged.Summary.Violations)
	}
	if _, err := Merge([]*Results{parts[0], parts[0]}); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("merging a shard with itself: %v", err)
	}
}

// Shards get disjoint source addresses and a share of the connections.
func TestShardParts(t *testing.T) {
	ips, _ := ParseSourceIPs("127.0.0.2-127.0.0.8")
	seen := map[string]int{}
	total := 0
	for i := range 3 {
		sh := Shard{Index: i, Count: 3}
		for _, a := range sh.Sources(ips) {
			seen[a.String()]++
		}
		total += sh.Size(10)
	}
	if len(seen) != 7 || total != 10 {
		t.Errorf("sources %v, connections %d", seen, total)
	}
	for a, n := range seen {
		if n != 1 {
			t.Errorf("%s in %d shards", a, n)
		}
	}
	for _, bad := range []string{"3/3", "-1/2", "1", "a/b", "0/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
	sc := crossShard(1)
	sc.Brokers, sc.SourceIPs = []string{"tcp://127.0.0.1:1"}, ips[:2]
	if err := (Shard{Index: 0, Count: 3}).Validate(&sc); err == nil || !strings.Contains(err.Error(), "cannot be split") {
		t.Errorf("2 addresses for 3 shards: %v", err)
	}
	if _, err := Run(context.Background(), crossShard(1), Options{Shard: Shard{Index: 0, Count: 2}, RunID: 1, Coordinator: NewGroup(2, 0).Member(0)}); err == nil ||
		!strings.Contains(err.Error(), "TCP broker") {
		t.Errorf("shards of an in-process broker: %v", err)
	}
}

// Series of parts that started half a second apart add up by wall-clock
// second from the earliest start; open connections are each part's
// latest count.
func TestMergeSeriesWallClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	a := &Results{Summary: &reports.Load{Started: t0, Series: []reports.LoadSecond{
		{T: 1, Phase: "connect", Sent: 10, Connections: 5}, {T: 2, Phase: "publish", Sent: 20, Connections: 5},
	}}}
	b := &Results{Summary: &reports.Load{Started: t0.Add(500 * time.Millisecond), Series: []reports.LoadSecond{
		{T: 1, Phase: "connect", Sent: 1, Connections: 3}, {T: 2, Phase: "publish", Sent: 2, Connections: 4},
	}}}
	got := mergeSeries([]*Results{a, b}, t0, nil)
	// b's seconds end at 1.5 s and 2.5 s: buckets 2 and 3.
	want := []struct {
		sent uint64
		open int64
	}{{10, 5}, {21, 8}, {2, 9}}
	if len(got) != len(want) {
		t.Fatalf("series %+v", got)
	}
	for i, w := range want {
		if got[i].T != float64(i+1) || got[i].Sent != w.sent || got[i].Connections != w.open {
			t.Errorf("second %d: %+v, want sent %d open %d", i+1, got[i], w.sent, w.open)
		}
	}
}

// A loss across shards: publisher 0 in shard 0 confirmed 10 messages at
// QoS 1; its subscriber in shard 1 got 8, and one duplicate. Shard 1
// alone cannot judge the loss; merged, it is a violation.
func TestMergeVerifyCrossShardLoss(t *testing.T) {
	a := &VerifyState{RunID: "r", ShardCount: 2, Shards: []int{0},
		Ledgers: []PublisherLedger{{Publisher: 0, QoS: 1, Sent: 10}}}
	var st Stream
	for _, seq := range []uint64{0, 1, 2, 3, 3, 4, 5, 6, 7} {
		st.Receive(seq)
	}
	b := NewVerifyState(nil, []SubscriberLog{{Expected: []Expectation{{Publisher: 0, QoS: 1}}, Streams: map[uint32]*Stream{0: &st}}})
	b.RunID, b.ShardCount, b.Shards = "r", 2, []int{1}

	rows, violations, unjudged := b.Judge()
	if unjudged != 1 || len(violations) != 0 || rows[0].Lost != 0 || rows[0].Received != 8 || rows[0].Duplicates != 1 {
		t.Errorf("shard 1 alone: rows %+v violations %q unjudged %d", rows, violations, unjudged)
	}
	m, err := MergeVerify([]*VerifyState{b, a})
	if err != nil {
		t.Fatal(err)
	}
	rows, violations, unjudged = m.Judge()
	if unjudged != 0 || len(rows) != 1 || rows[0].Lost != 2 || rows[0].Sent != 10 || rows[0].Confirmed != 10 ||
		len(violations) != 1 || !strings.Contains(violations[0], "2 messages acknowledged to the publisher never delivered") {
		t.Errorf("merged: rows %+v violations %q unjudged %d", rows, violations, unjudged)
	}
	other := *a
	other.RunID = "s"
	if _, err := MergeVerify([]*VerifyState{a, &other}); err == nil || !strings.Contains(err.Error(), "not shards of one run") {
		t.Errorf("states of two runs merged: %v", err)
	}
}
