package fuzz

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// A planted finding (the bytes DE AD anywhere) shrinks to exactly those
// bytes, written at once.
func TestMinimizePlanted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 700)
	for i := range b {
		b[i] = byte(r.IntN(200))
	}
	copy(b[333:], []byte{0xDE, 0xAD})
	c := Case{Version: packetgen.V311, Bytes: b, Splits: []int{10, 400, 600}, Delay: time.Millisecond}
	still := func(n Case) (Case, bool) { return n, bytes.Contains(n.Bytes, []byte{0xDE, 0xAD}) }
	m, tries := Minimize(context.Background(), c, still, Budget{Tries: 2000})
	if !bytes.Equal(m.Bytes, []byte{0xDE, 0xAD}) || len(m.Splits) != 0 || m.Delay != 0 {
		t.Fatalf("minimized to % X splits %v delay %s after %d tries", m.Bytes, m.Splits, m.Delay, tries)
	}
}

// When the split writes are what matter, they stay.
func TestMinimizeKeepsNeededSplits(t *testing.T) {
	c := Case{Version: packetgen.V311, Bytes: []byte("0123456789"), Splits: []int{3, 7}, Delay: time.Millisecond}
	still := func(n Case) (Case, bool) { return n, len(n.Splits) > 0 && bytes.Contains(n.Bytes, []byte("4")) }
	m, _ := Minimize(context.Background(), c, still, Budget{Tries: 500})
	if len(m.Splits) == 0 || len(m.Bytes) > 2 {
		t.Fatalf("minimized to %q splits %v", m.Bytes, m.Splits)
	}
	for _, s := range m.Splits {
		if s <= 0 || s >= len(m.Bytes) {
			t.Fatalf("split %d outside %q", s, m.Bytes)
		}
	}
}

// The budget bounds the tries.
func TestMinimizeBudget(t *testing.T) {
	c := Case{Version: packetgen.V311, Bytes: bytes.Repeat([]byte{1}, 4096)}
	calls := 0
	still := func(n Case) (Case, bool) { calls++; return n, false }
	if _, tries := Minimize(context.Background(), c, still, Budget{Tries: 25}); tries != 25 || calls != 25 {
		t.Fatalf("tries %d, calls %d", tries, calls)
	}
}

// A spec deviation candidate must still be owed a close: cutting the
// malformed packet away makes the broker's answer right.
func TestJudgeCandidate(t *testing.T) {
	orig := v311Case(&packetgen.Pingreq{})
	orig.Bytes = append(orig.Bytes, 0x60, 0x02, 0x00, 0x01) // PUBREL with flags 0, not 2
	orig = judged(orig)
	if orig.Expect != packetgen.ExpectClose {
		t.Fatalf("original judged %s", orig.Expect)
	}
	if _, ok := candidateJudge(orig, SpecDeviation)(orig.prefix(2)); ok {
		t.Fatal("a valid prefix kept as a deviation")
	}
	if n, ok := candidateJudge(orig, SpecDeviation)(orig.without(0, 2)); !ok || n.Pings != 0 {
		t.Fatalf("the malformed packet alone: ok %v pings %d", ok, n.Pings)
	}
}

// A candidate keeps the kind of fault, not just the statement: under the
// generic MQTT-4.8.0-1 a PINGREQ with trailing bytes must not become a
// packet of reserved type 0, for any finding.
func TestJudgeCandidateKeepsKind(t *testing.T) {
	orig := judged(Case{Version: packetgen.V311, Generator: GenMalformed, Class: "trailing-bytes",
		Phase: packetgen.PhaseAfterConnect, Bytes: []byte{0xC0, 0x02, 0x07, 0x00}})
	if orig.Expect != packetgen.ExpectClose || orig.Rule != "MQTT-4.8.0-1" {
		t.Fatalf("original judged %s [%s]", orig.Expect, orig.Rule)
	}
	for _, finding := range []string{SpecDeviation, Crash, Hang} {
		for _, tc := range []struct {
			b    []byte
			want bool
		}{
			{[]byte{0xC0, 0x01, 0x00}, true},  // still a PINGREQ with a body
			{[]byte{0x02, 0x07, 0x00}, false}, // reserved type 0, same rule
			{[]byte{0x00, 0x00}, false},
			{[]byte{0xE0, 0x01, 0x00}, false}, // trailing bytes, but on DISCONNECT
		} {
			n := orig.withBytes(tc.b, nil)
			if _, ok := candidateJudge(orig, finding)(n); ok != tc.want {
				t.Errorf("%s: candidate % X kept %v, want %v", finding, tc.b, ok, tc.want)
			}
		}
	}
}
