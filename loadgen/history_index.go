package loadgen

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The history checker needs to know when each lost message was sent, but
// a run of millions of messages cannot keep one time per message. A
// publisher's messages are due on a fixed schedule, so its sequence
// numbers against their due times form a line that bends only where the
// publisher paused (disconnected, window full): SendIndex keeps just the
// corners of that line, found by swinging-door compression (as process
// historians store sensor readings), so that interpolating between them
// gives every message's due time within sendTolerance. A steady publisher
// keeps two points however long the run; each pause adds about two.

// sendTolerance is how far, in milliseconds, an interpolated due time may
// be from the real one.
const sendTolerance = 100

// maxSendPoints bounds one publisher's index. A publisher that changes
// pace more often than that (a window filling and emptying all run long)
// has every other point dropped: a time is then interpolated between
// corners further apart, and is still always between the due times of
// the kept points either side, since time never goes back.
const maxSendPoints = 4096

// SendPoint is one kept corner: sequence number Seq was due at Ms (Unix
// milliseconds). It is saved as [seq, ms].
type SendPoint struct {
	Seq uint64
	Ms  int64
}

func (p SendPoint) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d]", p.Seq, p.Ms), nil
}

func (p *SendPoint) UnmarshalJSON(b []byte) error {
	var a [2]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if a[0] < 0 {
		return fmt.Errorf("send point: negative sequence number %d", a[0])
	}
	p.Seq, p.Ms = uint64(a[0]), a[1]
	return nil
}

// SendIndex maps one publisher's sequence numbers to due times.
type SendIndex struct {
	points []SendPoint // kept corners, Seq increasing
	tol    float64     // ms
	// The open door: pending is the latest point, not kept yet; every
	// point dropped since the last kept one (pending included) lies
	// within tol of any line from that point whose slope is in [lo, hi].
	pending SendPoint
	open    bool
	lo, hi  float64
}

// Add records that seq was due at ms; seq only grows.
func (x *SendIndex) Add(seq uint64, ms int64) {
	if x.tol == 0 {
		x.tol = sendTolerance
	}
	p := SendPoint{seq, ms}
	if len(x.points) == 0 {
		x.points = append(x.points, p)
		return
	}
	a := x.points[len(x.points)-1]
	if seq <= a.Seq || (x.open && seq <= x.pending.Seq) {
		return
	}
	bounds := func(a, p SendPoint) (lo, hi float64) {
		dx := float64(p.Seq - a.Seq)
		dy := float64(p.Ms - a.Ms)
		return (dy - x.tol) / dx, (dy + x.tol) / dx
	}
	if !x.open {
		x.pending, x.open = p, true
		x.lo, x.hi = bounds(a, p)
		return
	}
	slope := float64(p.Ms-a.Ms) / float64(p.Seq-a.Seq)
	if slope >= x.lo && slope <= x.hi {
		// The line to p passes every dropped point: drop pending too.
		lo, hi := bounds(a, p)
		x.lo, x.hi = max(x.lo, lo), min(x.hi, hi)
		x.pending = p
		return
	}
	x.keep(x.pending)
	x.pending = p
	x.lo, x.hi = bounds(x.points[len(x.points)-1], p)
}

func (x *SendIndex) keep(p SendPoint) {
	x.points = append(x.points, p)
	if len(x.points) < maxSendPoints {
		return
	}
	thin := x.points[:0]
	for i, q := range x.points {
		if i%2 == 0 || i == len(x.points)-1 {
			thin = append(thin, q)
		}
	}
	x.points = thin
	x.tol *= 2
}

// Points returns the corners, the open door's end included.
func (x *SendIndex) Points() []SendPoint {
	out := slices.Clone(x.points)
	if x.open {
		out = append(out, x.pending)
	}
	return out
}

// sendTimes answers questions about saved points.
type sendTimes []SendPoint

// at is the due time of seq, in Unix ms, interpolated; ok is false with
// no points at all.
func (t sendTimes) at(seq uint64) (ms float64, ok bool) {
	if len(t) == 0 {
		return 0, false
	}
	i, found := slices.BinarySearchFunc(t, seq, func(p SendPoint, s uint64) int {
		switch {
		case p.Seq < s:
			return -1
		case p.Seq > s:
			return 1
		}
		return 0
	})
	switch {
	case found:
		return float64(t[i].Ms), true
	case i == 0:
		return float64(t[0].Ms), true
	case i == len(t):
		return float64(t[len(t)-1].Ms), true
	}
	a, b := t[i-1], t[i]
	return float64(a.Ms) + float64(b.Ms-a.Ms)*float64(seq-a.Seq)/float64(b.Seq-a.Seq), true
}

// seqAt is the first sequence number below sent due at ms or later
// (sent when none is): the sequence numbers due in [from, to) are
// [seqAt(from), seqAt(to)). Due times never decrease with the sequence
// number, so a binary search finds it.
func (t sendTimes) seqAt(ms float64, sent uint64) uint64 {
	if len(t) == 0 {
		return 0
	}
	lo, hi := uint64(0), sent
	for lo < hi {
		mid := lo + (hi-lo)/2
		if v, _ := t.at(mid); v < ms {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
