package fuzz

import (
	"context"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Budget bounds a minimization.
type Budget struct {
	Tries int           // runs of the candidate; 0 means 200
	Time  time.Duration // 0 means one minute
}

// Minimize shrinks c while still(candidate) holds, and returns the
// smallest case found and the number of tries. c itself must hold. still
// returns the candidate as it ran (judged afresh: see candidateJudge),
// which is what is kept. It
// writes everything at once if that still holds, then cuts trailing bytes
// (a binary search on the length), removes chunks of halving size, and
// simplifies what is left by zeroing runs of bytes. Every candidate is
// judged afresh (candidateJudge), since cutting bytes changes what the
// broker owes them.
func Minimize(ctx context.Context, c Case, still func(Case) (Case, bool), b Budget) (Case, int) {
	if b.Tries <= 0 {
		b.Tries = 200
	}
	if b.Time <= 0 {
		b.Time = time.Minute
	}
	deadline := time.Now().Add(b.Time)
	tries := 0
	var ran Case
	spent := func() bool { return tries >= b.Tries || time.Now().After(deadline) || ctx.Err() != nil }
	try := func(n Case) bool {
		if spent() || len(n.Bytes) == 0 {
			return false
		}
		tries++
		var ok bool
		ran, ok = still(n)
		return ok
	}
	if len(c.Splits) > 0 {
		if n := c.withBytes(c.Bytes, nil); try(n) {
			c = ran
		}
	}
	// Trailing bytes: the shortest prefix that holds (searched as if
	// holding were monotonic; each step is checked, so the result holds).
	lo, hi := 1, len(c.Bytes)
	for lo < hi {
		mid := (lo + hi) / 2
		if n := c.prefix(mid); try(n) {
			c, hi = ran, mid
		} else {
			lo = mid + 1
		}
	}
	// Whole packets, last first: what a mutated session needs least.
	for {
		bounds := packetBounds(c.Bytes)
		removed := false
		for k := len(bounds) - 2; k >= 0; k-- {
			if n := c.without(bounds[k], bounds[k+1]); try(n) {
				c, removed = ran, true
				break
			}
		}
		if !removed {
			break
		}
	}
	// The last packet's body cut short with its length made true: the
	// shortest body that still holds ends right after the field that
	// matters (a filter without its options byte, say).
	if bounds := packetBounds(c.Bytes); len(bounds) >= 2 {
		start := bounds[len(bounds)-2]
		for _, k := range cutPoints(c.bodyLen(start)) {
			if n, ok := c.withBodyCut(start, k); ok && try(n) {
				c = ran
				break
			}
		}
	}
	// Chunks, from half the input down to single bytes: cut as they are,
	// and cut from inside a packet with its remaining length made to
	// match, which keeps the packets after it in step.
	for size := len(c.Bytes) / 2; size >= 1 && !spent(); size /= 2 {
		for i := 0; i+size <= len(c.Bytes) && !spent(); {
			if n := c.without(i, i+size); try(n) {
				c = ran
			} else if n, ok := c.withoutInPacket(i, i+size); ok && try(n) {
				c = ran
			} else {
				i += size
			}
		}
	}
	// Simplify: runs of bytes set to zero.
	for size := max(len(c.Bytes)/4, 1); size >= 1 && !spent(); size /= 2 {
		for i := 0; i < len(c.Bytes) && !spent(); i += size {
			n := c.zeroed(i, min(i+size, len(c.Bytes)))
			if n.sameBytes(c) {
				continue
			}
			// Simpler bytes only if they break the same rule: zeroing a
			// packet identifier would add a second fault to the story.
			if try(n) && ran.Rule == c.Rule {
				c = ran
			}
		}
	}
	return c, tries
}

// packetBounds returns the offsets where packets start in b, by their
// fixed headers, and the end of the last whole packet.
func packetBounds(b []byte) []int {
	bounds := []int{0}
	for off := 0; off < len(b); {
		e := frameEnd(b, off, -1)
		if e <= off {
			break
		}
		bounds = append(bounds, e)
		off = e
	}
	return bounds
}

func (c Case) withBytes(b []byte, splits []int) Case {
	c.Bytes, c.Splits = b, splits
	if len(splits) == 0 {
		c.Delay = 0
	}
	return c
}

func (c Case) prefix(n int) Case {
	return c.withBytes(c.Bytes[:n:n], cutSplits(c.Splits, n))
}

// without removes Bytes[i:j], moving split points after it back.
func (c Case) without(i, j int) Case {
	b := append(append([]byte(nil), c.Bytes[:i]...), c.Bytes[j:]...)
	var s []int
	for _, x := range c.Splits {
		switch {
		case x >= j:
			x -= j - i
		case x > i:
			x = i
		}
		if x > 0 && x < len(b) && (len(s) == 0 || s[len(s)-1] < x) {
			s = append(s, x)
		}
	}
	return c.withBytes(b, s)
}

// headerLen is the fixed header size of the packet at start.
func (c Case) headerLen(start int) int {
	h := 2
	for h < 5 && start+h-1 < len(c.Bytes) && c.Bytes[start+h-1]&0x80 != 0 {
		h++
	}
	return h
}

// bodyLen is the body size of the whole packet at start.
func (c Case) bodyLen(start int) int {
	return frameEnd(c.Bytes, start, start) - start - c.headerLen(start)
}

// withBodyCut keeps k bytes of the body of the packet at start, its
// remaining length made to match, and drops everything after it.
func (c Case) withBodyCut(start, k int) (Case, bool) {
	h := c.headerLen(start)
	if k < 0 || start+h+k > len(c.Bytes) {
		return c, false
	}
	b := append([]byte(nil), c.Bytes[:start+1]...)
	b = packetgen.AppendVarint(b, uint32(k))
	b = append(b, c.Bytes[start+h:start+h+k]...)
	return c.withBytes(b, cutSplits(c.Splits, start)), true
}

// cutPoints lists body lengths to try, shortest first: all of them for a
// short body, else about 64 spread out.
func cutPoints(n int) []int {
	var out []int
	step := max(1, n/64)
	for k := 0; k < n; k += step {
		out = append(out, k)
	}
	return out
}

// withoutInPacket removes Bytes[i:j] from the body of the packet that
// holds it and rewrites that packet's remaining length; false when the
// range is not inside one packet's body.
func (c Case) withoutInPacket(i, j int) (Case, bool) {
	bounds := packetBounds(c.Bytes)
	for k := 0; k+1 < len(bounds); k++ {
		start, end := bounds[k], bounds[k+1]
		if i < start || j > end {
			continue
		}
		hdr := 2
		for hdr < 5 && c.Bytes[start+hdr-1]&0x80 != 0 {
			hdr++
		}
		if i < start+hdr {
			return c, false
		}
		body := append(append([]byte(nil), c.Bytes[start+hdr:i]...), c.Bytes[j:end]...)
		b := append([]byte(nil), c.Bytes[:start]...)
		b = append(b, c.Bytes[start])
		b = packetgen.AppendVarint(b, uint32(len(body)))
		b = append(append(b, body...), c.Bytes[end:]...)
		return c.withBytes(b, cutSplits(c.Splits, start)), true
	}
	return c, false
}

func (c Case) zeroed(i, j int) Case {
	b := append([]byte(nil), c.Bytes...)
	clear(b[i:j])
	return c.withBytes(b, c.Splits)
}

func (c Case) sameBytes(d Case) bool { return string(c.Bytes) == string(d.Bytes) }

// candidateJudge returns the judge of original's shrunk candidates: it
// re-judges each one. The candidate
// must keep the kind of fault the judge finds in the original (rule,
// section, packet type and reason: see Judgement.Kind), whatever the
// finding: under a generic rule such as MQTT-4.8.0-1 a PINGREQ with
// trailing bytes would otherwise shrink to 00 00, a reserved packet type,
// which is another bug. For a spec deviation the candidate must also still
// be owed what the original was owed (a close or a refusal for malformed
// input, or service for valid input), else the broker's answer would be
// right. For crashes and hangs the expectation only decides whether a
// PINGREQ follows the bytes, so the candidate's is kept. The original is
// judged once, here.
func candidateJudge(original Case, finding string) func(n Case) (Case, bool) {
	kind := Judge(original.Bytes, original.Phase, original.Version).Kind
	return func(n Case) (Case, bool) {
		j := Judge(n.Bytes, n.Phase, n.Version)
		n.Rule, n.Reason, n.Detail, n.Pings, n.RefuseID, n.RefuseConnect = j.Rule, j.Reason, j.Detail, j.Pings, j.RefuseID, j.RefuseConnect
		if j.Kind != kind {
			return n, false
		}
		if finding != SpecDeviation {
			return n, true
		}
		if original.Expect == packetgen.ExpectAccept {
			n.Expect = packetgen.ExpectAccept
			return n, !j.Decided() && !j.Incomplete
		}
		n.Expect = j.Expect
		if j.End < len(n.Bytes) {
			return n, false // bytes past the deciding packet: cut them first
		}
		return n, j.Expect == original.Expect
	}
}
