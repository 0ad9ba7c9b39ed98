package loadgen

import (
	"context"
	"math"
	"time"
)

// Pacer decides when hits (messages, connection attempts) are due. Pace
// returns how long to wait, from elapsed, until hit number hits (counted
// from 0) is due, and stop once no more hits are due. Due is the intended
// time of hit n, as an offset from the start: latencies are measured from
// it, so a stall that delays sends still shows in them (wrk2's correction
// for coordinated omission).
type Pacer interface {
	Pace(elapsed time.Duration, hits uint64) (wait time.Duration, stop bool)
	Due(n uint64) time.Duration
}

// ConstantPacer offers Rate hits per second, evenly spaced, for Duration
// or until Max hits, whichever comes first. A Rate of 0 makes every hit due
// at once; it then needs Max.
type ConstantPacer struct {
	Rate     float64
	Duration time.Duration // 0: no time bound
	Max      uint64        // 0: no count bound
}

// Due is n / Rate.
func (p ConstantPacer) Due(n uint64) time.Duration {
	if p.Rate <= 0 {
		return 0
	}
	d := float64(n) * float64(time.Second) / p.Rate
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// Pace implements Pacer.
func (p ConstantPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if p.Max > 0 && hits >= p.Max {
		return 0, true
	}
	if p.Rate <= 0 && p.Max == 0 {
		return 0, true // unbounded: refuse rather than run forever
	}
	due := p.Due(hits)
	if p.Duration > 0 && due >= p.Duration {
		return 0, true
	}
	if due <= elapsed {
		return 0, false
	}
	return due - elapsed, false
}

// Hits is how many hits the pacer offers in all (for a bounded pacer).
func (p ConstantPacer) Hits() uint64 {
	n := p.Max
	if p.Rate > 0 && p.Duration > 0 {
		byTime := uint64(math.Ceil(p.Duration.Seconds() * p.Rate))
		if n == 0 || byTime < n {
			n = byTime
		}
	}
	return n
}

// Clock is the schedule's time source: real time in a run, a fake one in
// tests.
type Clock interface {
	// Elapsed is the time since the clock's start.
	Elapsed() time.Duration
	// Sleep waits for d, or until ctx is done (then it reports false).
	Sleep(ctx context.Context, d time.Duration) bool
}

type realClock struct{ start time.Time }

func (c realClock) Elapsed() time.Duration { return time.Since(c.start) }

// Sleep waits on a runtime timer. When the process is idle the runtime
// waits for timers in epoll with millisecond resolution, so at low rates a
// send goes out up to a millisecond late; send_lag measures that, and the
// latencies include it (they count from the intended time). Sleeping
// precisely with nanosleep was tried: it halved the median but held a P in
// the syscall, delaying the readers and doubling the e2e p99, which is
// worse because it hides where the time went.
func (realClock) Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// schedule drives a Pacer: every due hit is either sent (on time, or late
// within MaxLag, with its intended time) or, when it is due longer ago
// than MaxLag, missed. The generator never silently lowers the rate: a
// hit is always one or the other.
type schedule struct {
	Pacer  Pacer
	Clock  Clock
	MaxLag time.Duration // 0: never miss, however late
	// MinSleep batches hits: the loop sleeps at least this long, then
	// sends everything that has come due. Hits stay scheduled at their
	// own times; a batch only adds send lag, which is measured.
	MinSleep time.Duration
	// Batch caps the hits handled between two flushes.
	Batch int
}

// run calls send for each hit due in order, miss for each hit too late,
// and flush after each batch. It returns the number of hits handled, and
// stops early when ctx is done.
func (s schedule) run(ctx context.Context, send, miss func(n uint64, due time.Duration), flush func()) uint64 {
	batch := s.Batch
	if batch <= 0 {
		batch = 4096
	}
	var hits uint64
	for ctx.Err() == nil {
		now := s.Clock.Elapsed()
		wait, stop := s.Pacer.Pace(now, hits)
		if stop {
			break
		}
		if wait > 0 {
			if !s.Clock.Sleep(ctx, max(wait, s.MinSleep)) {
				break
			}
			continue
		}
		for i := 0; i < batch; i++ {
			due := s.Pacer.Due(hits)
			if due > now {
				break
			}
			if _, stop := s.Pacer.Pace(now, hits); stop {
				break
			}
			if s.MaxLag > 0 && now-due > s.MaxLag {
				miss(hits, due)
			} else {
				send(hits, due)
			}
			hits++
			if i%64 == 63 {
				now = s.Clock.Elapsed() // a slow send makes later hits later
			}
		}
		flush()
	}
	return hits
}
