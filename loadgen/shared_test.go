package loadgen

import (
	"context"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// sharedScenario: 4 publishers on bench/{p}, 9 subscribers of bench/+ in
// groups a, b and c (subscriber j in group j mod 3), MQTT 5.0.
func sharedScenario(qos packetgen.QoS) Scenario {
	sc := quick(4, 9, qos, "bench/{p}")
	sc.Protocol = packetgen.V5
	sc.Filter = "bench/+"
	sc.SharedGroups = []string{"a", "b", "c"}
	return sc
}

// Every group takes every message once, spread over its members: the
// union of the members' deliveries is each publisher's whole stream.
func TestSharedGroups(t *testing.T) {
	for _, qos := range []packetgen.QoS{0, 1, 2} {
		t.Run("qos"+itoa(int(qos)), func(t *testing.T) {
			l := run(t, sharedScenario(qos), Options{})
			m := l.Messages
			if m.Sent == 0 || m.Expected != 3*m.Sent || m.Received != m.Expected {
				t.Fatalf("sent %d, expected %d, received %d: want expected = 3 groups × sent = received", m.Sent, m.Expected, m.Received)
			}
			if len(l.Violations) != 0 || l.Shared == nil || len(l.Shared.Groups) != 3 {
				t.Fatalf("violations %v, shared %+v", l.Violations, l.Shared)
			}
			for _, g := range l.Shared.Groups {
				var sum uint64
				for _, n := range g.PerMember {
					sum += n
				}
				if g.Members != 3 || len(g.PerMember) != 3 || g.Received != m.Sent || sum != g.Received || g.Lost != 0 ||
					g.Duplicates != 0 || g.QoS != int(qos) || g.Streams != 4 || g.Filters[0] != "$share/"+g.Name+"/bench/+" {
					t.Errorf("group %+v; want 3 members, 4 streams, %d received once", g, m.Sent)
				}
				if g.Min == 0 || g.MaxOverMean < 1 || g.CV < 0 {
					t.Errorf("group %s spread: min %d, max/mean %g, cv %g", g.Name, g.Min, g.MaxOverMean, g.CV)
				}
			}
		})
	}
}

// A broker that gives every member of a group every message (the
// BroadcastShared fault) is caught: at QoS 2 as a message delivered twice,
// at QoS 1 as duplicates no lost connection explains.
func TestSharedBroadcastFault(t *testing.T) {
	for _, tc := range []struct {
		qos  packetgen.QoS
		want string
	}{
		{1, "delivered more than once across the group although no member lost its connection"},
		{2, "delivered twice across the group (QoS 2 is exactly once"},
	} {
		t.Run("qos"+itoa(int(tc.qos)), func(t *testing.T) {
			l := run(t, sharedScenario(tc.qos), Options{Broker: broker.Options{Faults: broker.Faults{BroadcastShared: true}}})
			sent := l.Messages.Sent
			if len(l.Shared.Groups) != 3 || sent == 0 {
				t.Fatalf("shared %+v, sent %d", l.Shared, sent)
			}
			for _, g := range l.Shared.Groups {
				// Each member got each message: two copies too many.
				if g.Duplicates != 2*sent || g.Lost != 0 || len(g.Violations) != 1 || !strings.Contains(g.Violations[0], tc.want) {
					t.Errorf("group %s: duplicates %d (want %d), lost %d, violations %q", g.Name, g.Duplicates, 2*sent, g.Lost, g.Violations)
				}
			}
			if !strings.Contains(strings.Join(l.Violations, "\n"), tc.want) {
				t.Errorf("summary violations %q lack %q", l.Violations, tc.want)
			}
		})
	}
}

// Members of one group in different shards: each shard leaves the
// group's losses to merge (its members heard a part), and the shards
// merged judge every message received exactly once.
func TestSharedShardsMerge(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	sc := sharedScenario(1)
	sc.Subscribers, sc.SharedGroups = 6, []string{"a", "b"}
	sc.Rate, sc.RatePerPublisher = 0, 100 // 30 messages each in 300ms
	// 3 shards: subscribers 0-5 are connections 4-9, so every group has
	// members in at least two shards.
	parts := runShards(t, srv, sc, 3)
	for i, p := range parts {
		s := p.Summary
		if len(s.Violations) != 0 || !strings.Contains(strings.Join(s.Notes, "\n"), "losses are judged by mqttbench merge") {
			t.Errorf("shard %d: violations %q, notes %q", i, s.Violations, s.Notes)
		}
	}
	merged, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	l := merged.Summary
	sent := l.Messages.Sent
	if sent != 120 || len(l.Violations) != 0 || l.Shared == nil || len(l.Shared.Groups) != 2 {
		t.Fatalf("sent %d, violations %q, shared %+v", sent, l.Violations, l.Shared)
	}
	for _, g := range l.Shared.Groups {
		if g.Members != 3 || g.Unjudged != 0 || g.Received != sent || g.Lost != 0 || g.Duplicates != 0 || g.Confirmed != sent {
			t.Errorf("merged group %+v: want 3 members, %d received once, none lost", g, sent)
		}
	}
}

// bitmap serialises a set of sequence numbers as a SharedReceipt holds it.
func bitmap(t *testing.T, seqs ...uint64) []byte {
	t.Helper()
	bm := roaring64.BitmapOf(seqs...)
	b, err := bm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Judging after merge, on receipts built by hand: two shards' halves make
// one whole stream; a message in both is a duplicate across shards; a
// confirmed message in neither is lost; an unconfirmed one is not.
func TestJudgeSharedAcrossShards(t *testing.T) {
	ledger := []PublisherLedger{{Publisher: 0, QoS: 2, Sent: 6, Unconfirmed: []uint64{5}}}
	member := func(sub int) SharedMember {
		return SharedMember{Group: "g", Filter: "$share/g/t", Subscriber: sub, Received: 3}
	}
	receipt := func(seen []byte, n uint64) SharedReceipt {
		return SharedReceipt{Group: "g", Filter: "$share/g/t", Publisher: 0, QoS: 2, Seen: seen, Count: n}
	}
	for _, tc := range []struct {
		name            string
		a, b            []uint64
		lost, dups      uint64
		violations      int
		wantViolationIn string
	}{
		{"halves", []uint64{0, 2, 4}, []uint64{1, 3}, 0, 0, 0, ""},
		{"overlap", []uint64{0, 1, 2, 4}, []uint64{1, 3}, 0, 1, 1, "delivered twice across the group"},
		{"missing", []uint64{0, 2}, []uint64{1, 3}, 1, 0, 1, "reached no member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &VerifyState{RunID: "r", ShardCount: 2, Shards: []int{0}, Ledgers: ledger,
				Shared: &SharedState{Receipts: []SharedReceipt{receipt(bitmap(t, tc.a...), uint64(len(tc.a)))}, Members: []SharedMember{member(0)}}}
			b := &VerifyState{RunID: "r", ShardCount: 2, Shards: []int{1},
				Shared: &SharedState{Receipts: []SharedReceipt{receipt(bitmap(t, tc.b...), uint64(len(tc.b)))}, Members: []SharedMember{member(1)}}}
			alone, err := a.JudgeShared()
			if err != nil || alone.Groups[0].Unjudged != 1 || alone.Groups[0].Lost != 0 {
				t.Errorf("shard 0 alone: %+v, %v; want its loss unjudged", alone, err)
			}
			v, err := MergeVerify([]*VerifyState{a, b})
			if err != nil {
				t.Fatal(err)
			}
			sh, err := v.JudgeShared()
			if err != nil {
				t.Fatal(err)
			}
			g := sh.Groups[0]
			if g.Lost != tc.lost || g.Duplicates != tc.dups || len(g.Violations) != tc.violations || g.Members != 2 || g.Confirmed != 5 {
				t.Fatalf("group %+v: want lost %d, duplicates %d, %d violations", g, tc.lost, tc.dups, tc.violations)
			}
			if tc.wantViolationIn != "" && !strings.Contains(g.Violations[0], tc.wantViolationIn) {
				t.Errorf("violation %q lacks %q", g.Violations[0], tc.wantViolationIn)
			}
		})
	}
}

// Duplicates at QoS 1 are excused when a member lost its connection (the
// broker may hand its unacknowledged messages to another member), not
// otherwise; at QoS 2 never.
func TestSharedDuplicatesExcused(t *testing.T) {
	for _, tc := range []struct {
		qos     uint8
		dropped bool
		want    int
	}{{1, false, 1}, {1, true, 0}, {2, true, 1}, {0, false, 1}} {
		v := &VerifyState{Ledgers: []PublisherLedger{{Publisher: 0, QoS: tc.qos, Sent: 2}},
			Shared: &SharedState{
				Receipts: []SharedReceipt{{Group: "g", Filter: "$share/g/t", QoS: tc.qos, Seen: bitmap(t, 0, 1), Count: 2, Duplicates: 1}},
				Members:  []SharedMember{{Group: "g", Filter: "$share/g/t", Received: 3, Dropped: tc.dropped}},
			}}
		sh, err := v.JudgeShared()
		if err != nil {
			t.Fatal(err)
		}
		if g := sh.Groups[0]; len(g.Violations) != tc.want || g.Duplicates != 1 {
			t.Errorf("QoS %d, dropped %v: violations %q, want %d", tc.qos, tc.dropped, g.Violations, tc.want)
		}
	}
}

func TestSharedSpread(t *testing.T) {
	g := &reports.LoadSharedGroup{PerMember: []uint64{10, 20, 30}}
	spread(g)
	if g.Min != 10 || g.Max != 30 || g.Mean != 20 || g.MaxOverMean != 1.5 || g.CV < 0.408 || g.CV > 0.409 {
		t.Errorf("spread %+v", g)
	}
}

func TestSharedScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups []string
		subs   int
		filter string
		want   string
	}{
		{"empty name", []string{""}, 2, "", "MQTT-4.8.2-1"},
		{"slash", []string{"a/b"}, 2, "", "MQTT-4.8.2-2"},
		{"wildcard", []string{"a+"}, 2, "", "MQTT-4.8.2-2"},
		{"twice", []string{"a", "a"}, 2, "", "named twice"},
		{"too few subscribers", []string{"a", "b", "c"}, 2, "", "3 groups need at least as many subscribers"},
		{"already shared", []string{"a"}, 2, "$share/x/bench/+", "already shared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := sharedScenario(1)
			sc.SharedGroups, sc.Subscribers, sc.Filter = tc.groups, tc.subs, tc.filter
			if err := sc.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	sc := sharedScenario(1)
	sc.Protocol = packetgen.V311
	if _, err := Run(context.Background(), sc, Options{}); err == nil || !strings.Contains(err.Error(), "5.0 only") {
		t.Errorf("3.1.1 shared groups on the in-process broker: %v", err)
	}
	y := []byte("publishers: 2\nsubscribers: 4\nprotocol: 5\nfilter: bench/+\ntopic: bench/{p}\nshared_groups: [x, y]\n")
	got, err := ParseScenario("s.yaml", y, DefaultScenario())
	if err != nil || len(got.SharedGroups) != 2 || got.subscribeFilter(1) != "$share/y/bench/+" {
		t.Errorf("scenario file: %v, %+v", err, got.SharedGroups)
	}
}
