package fuzz

import (
	"fmt"
	"slices"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Generators of cases, as Case.Generator names them.
const (
	GenMalformed = "malformed" // one packetgen malformed class
	GenUnusual   = "unusual"   // valid but unusual: limits, deep topics, odd orders
	GenMutated   = "mutated"   // a valid session with bit flips, splices, cuts
)

// Case is one input: bytes written on a fresh connection, after a valid
// CONNECT when Phase is packetgen.PhaseAfterConnect, and what a conformant
// broker does with them.
type Case struct {
	Seed      uint64 // the run's seed
	Index     uint64 // the case's number in the run
	Version   packetgen.Version
	Generator string
	// Class is the malformed class, the unusual case's name, or
	// "mutated:" and the mutations applied.
	Class string
	// Rule is the statement the bytes break (or exercise); empty when the
	// bytes are valid.
	Rule   string
	Reason packetgen.ReasonCode
	Expect packetgen.Expect
	Phase  packetgen.Phase
	// Pings counts the valid PINGREQ packets in Bytes: the broker may
	// answer that many before the PINGREQ the fuzzer sends after them.
	Pings int
	// RefuseID is the packet identifier of the SUBSCRIBE a refusal
	// answers (ExpectRefuse after CONNECT).
	RefuseID uint16
	// RefuseConnect: the refusal is owed to a CONNECT in Bytes.
	RefuseConnect bool
	Bytes         []byte
	// Splits are offsets in Bytes where a write ends and, after Delay,
	// the next begins: brokers must reassemble packets from any split.
	Splits []int
	Delay  time.Duration
	Detail string
}

// String describes the case in one line.
func (c Case) String() string {
	b, more := c.Bytes, ""
	if len(b) > 32 {
		b, more = b[:32], fmt.Sprintf(" ...(%d bytes)", len(c.Bytes))
	}
	s := fmt.Sprintf("case %d %s %s, %s, expect %s", c.Index, c.Class, c.Phase, c.Detail, c.Expect)
	if c.Rule != "" {
		s += " [" + c.Rule + "]"
	}
	if len(c.Splits) > 0 {
		s += fmt.Sprintf(", %d writes %s apart", len(c.Splits)+1, c.Delay)
	}
	return s + fmt.Sprintf(": % X%s", b, more)
}

// Chunks returns Bytes cut at Splits: the writes to make.
func (c Case) Chunks() [][]byte {
	var out [][]byte
	prev := 0
	for _, s := range c.Splits {
		if s <= prev || s >= len(c.Bytes) {
			continue
		}
		out = append(out, c.Bytes[prev:s])
		prev = s
	}
	return append(out, c.Bytes[prev:])
}

// caseSeed mixes the run's seed and a case number (splitmix64), so case i
// has a generator of its own whatever ran before it.
func caseSeed(seed, i uint64) uint64 {
	z := seed ^ (i+1)*0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// Generate returns case i of seed for version v: the same bytes on every
// call and every machine. About half the cases are malformed packets of a
// random class, a fifth valid but unusual packets, the rest mutated valid
// sessions; one in six is written in several pieces with small delays.
func Generate(seed, i uint64, v packetgen.Version) Case {
	g := packetgen.NewGen(caseSeed(seed, i), v)
	r := g.Rand()
	var c Case
	switch x := r.IntN(20); {
	case x < 2:
		c = cutBody(g)
	case x < 10:
		k := g.AnyMalformed()
		c = Case{Generator: GenMalformed, Class: k.Class, Rule: k.Rule, Reason: k.Reason, Expect: k.Expect,
			Phase: k.Phase, Bytes: k.Bytes, Detail: k.Detail}
		// The class's own expectation decides; the judge adds what it
		// needs to check a refusal.
		j := Judge(c.Bytes, c.Phase, v)
		c.RefuseID, c.RefuseConnect = j.RefuseID, j.RefuseConnect
	case x < 14:
		c = unusual(g, i)
	default:
		c = mutated(g, i)
	}
	c.Seed, c.Index, c.Version = seed, i, v
	if r.IntN(6) == 0 && len(c.Bytes) > 1 {
		n := 1 + r.IntN(min(4, len(c.Bytes)-1))
		for range n {
			c.Splits = append(c.Splits, 1+r.IntN(len(c.Bytes)-1))
		}
		slices.Sort(c.Splits)
		c.Splits = slices.Compact(c.Splits)
		c.Delay = time.Duration(1+r.IntN(10)) * time.Millisecond
	}
	return c
}

// cutBody is a valid client packet whose body is cut short while its
// remaining length tells the truth: the fields inside run past the end.
// Half the time the cut takes only the last one to three bytes, which
// leaves a packet ending right after a complete field.
func cutBody(g *packetgen.Gen) Case {
	r := g.Rand()
	var p packetgen.Packet
	for p == nil {
		switch q := g.From(packetgen.FromClient).(type) {
		case *packetgen.Connect, *packetgen.Pingreq:
		case *packetgen.Disconnect:
			if g.Version == packetgen.V5 {
				p = q
			}
		default:
			p = q
		}
	}
	phase := packetgen.PhaseAfterConnect
	f := packetgen.FrameOf(p, g.Version)
	if len(f.Body) == 0 {
		f = packetgen.FrameOf(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a"}}}, g.Version)
	}
	n := r.IntN(len(f.Body))
	if r.IntN(2) == 0 {
		n = max(0, len(f.Body)-1-r.IntN(3))
	}
	c := Case{Version: g.Version, Generator: GenMalformed, Class: "cut-body", Phase: phase, Bytes: f.Cut(n).Bytes()}
	c = judged(c)
	c.Detail = fmt.Sprintf("%s body cut to %d of %d bytes: %s", p.Type(), n, len(f.Body), c.Detail)
	return c
}

// judged sets c's expectation from the judge's verdict on its bytes and
// cuts the bytes after the packet that decides.
func judged(c Case) Case {
	j := Judge(c.Bytes, c.Phase, c.Version)
	c.Expect, c.Rule, c.Reason, c.Pings, c.RefuseID, c.RefuseConnect = j.Expect, j.Rule, j.Reason, j.Pings, j.RefuseID, j.RefuseConnect
	if j.Decided() {
		c.Bytes = c.Bytes[:j.End:j.End]
		c.Splits = cutSplits(c.Splits, j.End)
		if c.Detail == "" {
			c.Detail = j.Detail
		}
	}
	return c
}

// cutSplits drops split points at or past n.
func cutSplits(s []int, n int) []int {
	var out []int
	for _, x := range s {
		if x > 0 && x < n {
			out = append(out, x)
		}
	}
	return out
}
