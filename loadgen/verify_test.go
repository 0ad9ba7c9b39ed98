package loadgen

import (
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 40)
	h := Header{QoS: 2, Run: 0xdeadbeef, Publisher: 7, Seq: 1<<40 + 3, Due: 1_700_000_000_123_456_789}
	PutHeader(b, h)
	got, ok := ParseHeader(b)
	if !ok || got != h {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", got, ok, h)
	}
	for _, bad := range [][]byte{b[:HeaderSize-1], append([]byte("XB"), b[2:]...)} {
		if _, ok := ParseHeader(bad); ok {
			t.Errorf("ParseHeader(% x...) accepted a foreign payload", bad[:4])
		}
	}
}

// feed runs seqs through a fresh stream.
func feed(seqs ...uint64) (*Stream, []Outcome) {
	s := &Stream{}
	var out []Outcome
	for _, q := range seqs {
		out = append(out, s.Receive(q))
	}
	return s, out
}

func TestStream(t *testing.T) {
	cases := []struct {
		name        string
		seqs        []uint64
		sent        uint64
		unconfirmed []uint64
		received    uint64
		dups        uint64
		reordered   uint64
		lost        uint64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 4, nil, 4, 0, 0, 0},
		{"tail lost", []uint64{0, 1}, 4, nil, 2, 0, 0, 2},
		{"hole lost", []uint64{0, 1, 4, 5}, 6, nil, 4, 0, 0, 2},
		{"first lost", []uint64{1, 2}, 3, nil, 2, 0, 0, 1},
		{"duplicate", []uint64{0, 1, 1, 2}, 3, nil, 3, 1, 0, 0},
		{"reordered fills the hole", []uint64{0, 2, 1, 3}, 4, nil, 4, 0, 1, 0},
		{"reordered then duplicated", []uint64{0, 3, 1, 1, 2}, 4, nil, 4, 1, 2, 0},
		{"middle of a wide hole", []uint64{0, 10, 5, 6, 2}, 11, nil, 5, 0, 3, 6},
		{"unconfirmed are not lost", []uint64{0, 1, 3}, 6, []uint64{2, 4}, 3, 0, 0, 1},
		{"late arrival past the end", []uint64{0, 1, 2, 3, 4}, 3, nil, 5, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := feed(tc.seqs...)
			lost := s.Lost(tc.sent, tc.unconfirmed)
			if s.Received != tc.received || s.Duplicates != tc.dups || s.Reordered != tc.reordered || lost != tc.lost {
				t.Errorf("received %d dups %d reordered %d lost %d; want %d %d %d %d",
					s.Received, s.Duplicates, s.Reordered, lost, tc.received, tc.dups, tc.reordered, tc.lost)
			}
		})
	}
	if _, out := feed(0, 2, 1, 1); out[2] != Reordered || out[3] != Duplicate {
		t.Errorf("outcomes %v", out)
	}
}

// log builds a subscriber that expects publisher 0 at qos and received seqs.
func log(qos packetgen.QoS, seqs ...uint64) SubscriberLog {
	s, _ := feed(seqs...)
	return SubscriberLog{Expected: []Expectation{{0, qos}}, Streams: map[uint32]*Stream{0: s}}
}

func TestVerifyViolations(t *testing.T) {
	cases := []struct {
		name      string
		ledger    Ledger
		sub       SubscriberLog
		violation string // substring; "" for none
	}{
		{"QoS 0 loss is allowed", Ledger{QoS: 0, Sent: 5}, log(0, 0, 1, 3), ""},
		{"QoS 1 loss is a violation", Ledger{QoS: 1, Sent: 5}, log(1, 0, 1, 3), "2 messages acknowledged to the publisher never delivered (QoS 1"},
		{"QoS 1 loss of unacknowledged messages is not", Ledger{QoS: 1, Sent: 5, Unconfirmed: []uint64{2, 4}}, log(1, 0, 1, 3), ""},
		{"QoS 1 duplicates are allowed", Ledger{QoS: 1, Sent: 3}, log(1, 0, 1, 1, 2), ""},
		{"QoS 2 duplicates are a violation", Ledger{QoS: 2, Sent: 3}, log(2, 0, 1, 1, 2), "1 message delivered twice (QoS 2"},
		{"QoS 2 loss is a violation", Ledger{QoS: 2, Sent: 3}, log(2, 0, 2), "1 message acknowledged"},
		{"a subscriber that lost its session is excused", Ledger{QoS: 1, Sent: 5}, func() SubscriberLog {
			l := log(1, 0, 1)
			l.SessionLost = true
			return l
		}(), ""},
		{"a downgraded delivery is a violation", Ledger{QoS: 1, Sent: 2}, func() SubscriberLog {
			l := log(1, 0, 1)
			l.Streams[0].Downgraded = 2
			return l
		}(), "2 messages delivered below QoS 1"},
		{"a message for a filter that does not match", Ledger{QoS: 0, Sent: 2}, func() SubscriberLog {
			l := log(0, 0, 1)
			l.Streams[9], _ = feed(0)
			return l
		}(), "1 message delivered to a subscriber whose filter does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, v := Verify([]Ledger{tc.ledger}, []SubscriberLog{tc.sub})
			got := strings.Join(v, "; ")
			if (tc.violation == "") != (got == "") || !strings.Contains(got, tc.violation) {
				t.Errorf("violations %q; want %q", got, tc.violation)
			}
			if len(rows) != 1 {
				t.Fatalf("rows %+v", rows)
			}
		})
	}
	rows, _ := Verify([]Ledger{{QoS: 1, Sent: 5}}, []SubscriberLog{func() SubscriberLog {
		l := log(1, 0, 1)
		l.SessionLost = true
		return l
	}()})
	if rows[0].Lost != 0 || rows[0].LostExcused != 3 {
		t.Errorf("excused loss: lost %d excused %d; want 0 and 3", rows[0].Lost, rows[0].LostExcused)
	}
}
