package loadgen

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// The history checker reads what verification keeps (publishers'
// ledgers, subscribers' receipts, session tallies) and the run's series
// and faults, and classes every message as Jepsen's checkers class
// operations: a publish is invoked, then acknowledged, failed (refused
// with a reason code) or unknown (its connection was lost first); a
// delivery is known by its sequence number. Nothing is kept per message:
// the receipts hold gaps, the ledgers the few unconfirmed numbers, and
// SendIndex the due time of any number, so a class can be counted for
// the messages due in any span of time.
//
// Attribution: fault i answers for the messages due from the recovery
// of fault i-1 (the run's start for the first fault) to its own recovery
// (the start of fault i+1 when it never recovered; the run's end for the
// last). A message in flight when a fault struck was sent before it, and
// one lost while clients came back was sent after its end; both are the
// fault's. Losses that no fault explains are counted in the run's
// classes, and a run with faults hands them to the nearest fault after.

// Recovery and latency: a fault has recovered at the end of the first
// whole second after its end in which sends and deliveries both reached
// recoveryThreshold of the offered rate (deliveries alone could be a
// backlog flushing while publishers are still away). Latency either side
// is the highest per-second p99 within latencyWindow seconds.
const (
	recoveryThreshold = 0.9
	latencyWindow     = 5.0
)

// AnalyzeHistory sets l.History from v and l's faults and series, and
// adds the faults' violations (sessions not kept, acknowledged messages
// lost) to l.Violations. Run and Merge call it; whoever fills l.Faults
// after a run calls it again. An interrupted run is classed but not
// judged.
func AnalyzeHistory(l *reports.Load, v *VerifyState) {
	if v == nil {
		l.History = nil
		return
	}
	h := v.History(l)
	l.History = h
	if l.Interrupted {
		return
	}
	for _, f := range h.Faults {
		for _, s := range f.Violations {
			if !slices.Contains(l.Violations, s) {
				l.Violations = append(l.Violations, s)
			}
		}
	}
}

// History classes the messages of the run l summarises (its start,
// scenario, series and faults) with what v holds.
func (v *VerifyState) History(l *reports.Load) *reports.LoadHistory {
	h := &reports.LoadHistory{RecoveryThreshold: recoveryThreshold, LatencyWindow: latencyWindow}
	ck := newChecker(v, l)
	all := ck.classify(math.Inf(-1), math.Inf(1), true)
	h.Classes = all.rows
	for i := range h.Classes {
		r := &h.Classes[i]
		if r.QoS > 0 && r.AckedLost > 0 {
			r.Violations = append(r.Violations, fmt.Sprintf("%s acknowledged to the publisher and never delivered (QoS %d is at least once)", plural(r.AckedLost, "message"), r.QoS))
		}
		if r.QoS == 2 && r.Duplicated > 0 {
			r.Violations = append(r.Violations, plural(r.Duplicated, "message")+" delivered twice (QoS 2 is exactly once)")
		}
		if r.Unexpected > 0 {
			r.Violations = append(r.Violations, plural(r.Unexpected, "message")+" delivered to a subscriber whose filter does not match")
		}
		h.Violations = append(h.Violations, r.Violations...)
	}
	h.Faults = ck.faults()
	for _, f := range h.Faults {
		h.Violations = append(h.Violations, f.Violations...)
	}
	if ck.unindexed > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("%d publishers saved no send times (results from before the history checker): their messages are in the run's classes but in no fault's", ck.unindexed))
	}
	if all.settled > 0 && len(l.Faults) > 0 {
		h.Notes = append(h.Notes, fmt.Sprintf("%s lost in streams with more than %d gaps have no sequence numbers left: in the run's classes, in no fault's", plural(all.settled, "message"), maxGaps))
	}
	if l.Interrupted {
		h.Notes = append(h.Notes, "interrupted: losses include messages still in transit; not judged")
		h.Violations = nil
		for i := range h.Classes {
			h.Classes[i].Violations = nil
		}
		for i := range h.Faults {
			h.Faults[i].Violations = nil
		}
	}
	return h
}

// checker holds what classifying needs.
type checker struct {
	v       *VerifyState
	l       *reports.Load
	ledgers map[uint32]*PublisherLedger
	startMs float64 // the run's start, Unix ms
	// unindexed counts publishers with messages but no send index.
	unindexed int
}

func newChecker(v *VerifyState, l *reports.Load) *checker {
	ck := &checker{v: v, l: l, ledgers: make(map[uint32]*PublisherLedger, len(v.Ledgers)),
		startMs: float64(l.Started.UnixNano()) / 1e6}
	for i := range v.Ledgers {
		p := &v.Ledgers[i]
		ck.ledgers[p.Publisher] = p
		if p.Sent > 0 && len(p.Sends) == 0 {
			ck.unindexed++
		}
	}
	return ck
}

// sec turns Unix ms into seconds since the run's start, and ms back.
func (ck *checker) sec(ms float64) float64 { return (ms - ck.startMs) / 1000 }
func (ck *checker) ms(sec float64) float64 { return ck.startMs + sec*1000 }

// classified is one span's classes and its acknowledged losses.
type classified struct {
	rows     []reports.LoadHistoryClass
	lossFrom float64 // due times of acknowledged losses, Unix ms
	lossTo   float64
	lost     uint64 // acknowledged deliveries lost
	settled  uint64 // lost in settled gaps (whole run only)
}

// classify counts the messages due in [fromMs, toMs); whole adds what
// only the whole run has (settled gaps, duplicates, reorders, unexpected
// and unjudged deliveries).
func (ck *checker) classify(fromMs, toMs float64, whole bool) classified {
	v := ck.v
	var rows [3]reports.LoadHistoryClass
	present := [3]bool{}
	out := classified{lossFrom: math.Inf(1), lossTo: math.Inf(-1)}
	for _, rc := range v.Receipts {
		q := int(rc.QoS)
		r := &rows[q]
		present[q] = true
		r.QoS = q
		r.Streams += rc.Streams
		n := uint64(rc.Streams)
		if whole {
			r.Duplicated += rc.Duplicates
			r.Reordered += rc.Reordered
		}
		l := ck.ledgers[rc.Publisher]
		if l == nil {
			if whole {
				r.Unjudged += rc.Received
			}
			continue
		}
		times := sendTimes(l.Sends)
		lo, hi := uint64(0), l.Sent
		if !whole {
			if len(times) == 0 {
				continue
			}
			lo, hi = times.seqAt(fromMs, l.Sent), times.seqAt(toMs, l.Sent)
		}
		if lo >= hi {
			continue
		}
		r.Due += n * (hi - lo)
		var missing uint64
		undelivered := func(a, b uint64) {
			a, b = max(a, lo), min(b, hi)
			if a >= b {
				return
			}
			missing += b - a
			unconf := countIn(l.Unconfirmed, a, b)
			failed := min(countIn(l.Failed, a, b), unconf)
			acked := b - a - unconf
			r.Failed += n * failed
			if q == 0 {
				r.UnackedLost += n * (b - a - failed)
				return
			}
			r.Unknown += n * (unconf - failed)
			if acked == 0 {
				return
			}
			if rc.SessionLost {
				r.SessionLost += n * acked
			} else {
				r.AckedLost += n * acked
			}
			out.lost += n * acked
			if len(times) > 0 {
				first, last := firstOutside(l.Unconfirmed, a, b)
				t0, _ := times.at(first)
				t1, _ := times.at(last)
				out.lossFrom, out.lossTo = min(out.lossFrom, t0), max(out.lossTo, t1)
			}
		}
		for _, g := range rc.Gaps {
			undelivered(g[0], g[1])
		}
		undelivered(rc.Next, l.Sent)
		if whole && rc.Settled > 0 {
			s := rc.Settled
			missing += s
			out.settled += n * s
			switch {
			case q == 0:
				r.UnackedLost += n * s
			case rc.SessionLost:
				r.SessionLost += n * s
			default:
				r.AckedLost += n * s
			}
		}
		delivered := hi - lo - min(missing, hi-lo)
		r.Delivered += n * delivered
	}
	if whole {
		var byQoS uint64
		for q := range rows {
			byQoS += v.UnexpectedByQoS[q]
			if u := v.UnexpectedByQoS[q]; u > 0 {
				rows[q].QoS, rows[q].Unexpected, present[q] = q, u, true
			}
		}
		if rest := v.Unexpected - min(byQoS, v.Unexpected); rest > 0 {
			// Saved before the split by QoS: the scenario's QoS.
			q := min(max(ck.l.Scenario.QoS, 0), 2)
			rows[q].QoS, present[q] = q, true
			rows[q].Unexpected += rest
		}
	}
	for q := range rows {
		if present[q] {
			out.rows = append(out.rows, rows[q])
		}
	}
	return out
}

// firstOutside is the first and last numbers in [a, b) not in sorted xs;
// the caller knows there is one.
func firstOutside(xs []uint64, a, b uint64) (first, last uint64) {
	i, _ := slices.BinarySearch(xs, a)
	first = a
	for ; i < len(xs) && xs[i] == first; i++ {
		first++
	}
	j, _ := slices.BinarySearch(xs, b)
	last = b - 1
	for j--; j >= 0 && xs[j] == last; j-- {
		last--
	}
	return first, last
}

// faults reads every fault of the run.
func (ck *checker) faults() []reports.LoadFaultHistory {
	l := ck.l
	if len(l.Faults) == 0 {
		return nil
	}
	fs := slices.Clone(l.Faults)
	slices.SortStableFunc(fs, func(a, b reports.LoadFault) int { return cmp.Compare(a.Start, b.Start) })
	out := make([]reports.LoadFaultHistory, len(fs))
	// Recovery first: it draws the windows' edges.
	for i, f := range fs {
		fh := &out[i]
		fh.Name, fh.Kind, fh.Target = f.Name, f.Kind, f.Target
		fh.Start, fh.End, fh.Recovered = f.Start, max(f.End, f.Start), f.Recovered
		fh.RecoverySec = ck.recovery(fh.End)
		fh.P99Before, fh.P99After = ck.p99(fh.Start-latencyWindow, fh.Start), ck.p99(fh.End, fh.End+latencyWindow)
		fh.Retained = "n/a: not probed (the survival probes run around process faults)"
		fh.Wills = fh.Retained
		if sv := f.Survival; sv != nil {
			fh.Retained, fh.Wills = sv.Retained, sv.Wills
		}
	}
	for i := range out {
		fh := &out[i]
		from, to := math.Inf(-1), math.Inf(1)
		if i > 0 {
			from = out[i-1].WindowTo
		}
		if i+1 < len(out) {
			to = out[i+1].Start
			if fh.RecoverySec != nil {
				to = min(to, fh.End+*fh.RecoverySec)
			}
		}
		fh.WindowFrom, fh.WindowTo = max(from, 0), to
		if math.IsInf(to, 1) {
			fh.WindowTo = l.Elapsed.Seconds()
		}
		c := ck.classify(ck.ms(from), ck.ms(to), false)
		fh.Classes = c.rows
		if c.lost > 0 {
			fh.LossWindow = &reports.LoadLossWindow{From: ck.sec(c.lossFrom), To: ck.sec(c.lossTo), Messages: c.lost}
		}
		sessTo := math.Inf(1)
		if i+1 < len(out) {
			sessTo = out[i+1].Start
		}
		fh.Sessions = ck.sessions(fh.Start, sessTo)
		fh.Violations = ck.faultViolations(fh)
		if sv := fs[i].Survival; sv != nil {
			fh.Violations = append(fh.Violations, sv.Violations...)
		}
	}
	return out
}

// faultViolations names what a fault broke: acknowledged messages lost
// by subscribers that kept their sessions, and sessions a persistent
// scenario did not get back.
func (ck *checker) faultViolations(fh *reports.LoadFaultHistory) []string {
	var out []string
	var acked, sessLost uint64
	for _, r := range fh.Classes {
		if r.QoS > 0 {
			acked += r.AckedLost
			sessLost += r.SessionLost
		}
	}
	span := ""
	if w := fh.LossWindow; w != nil {
		span = fmt.Sprintf(", due %.1fs to %.1fs", w.From, w.To)
	}
	if acked > 0 {
		out = append(out, fmt.Sprintf("fault %s: %s acknowledged to the publisher never delivered%s", fh.Name, plural(acked, "message"), span))
	}
	if s := fh.Sessions; s.Persistent && s.Fresh > 0 {
		msg := fmt.Sprintf("fault %s: %d of %d reconnections found no session (Session Present 0) though the scenario keeps sessions", fh.Name, s.Fresh, s.Resumed+s.Fresh)
		if sessLost > 0 {
			msg += fmt.Sprintf("; %s acknowledged to the publisher were lost with them%s", plural(sessLost, "message"), span)
		}
		out = append(out, msg)
	}
	return out
}

// recovery is the time from end to the end of the first whole
// publishing second after it that carried recoveryThreshold of the
// offered rate, sends and deliveries; nil if none did.
func (ck *checker) recovery(end float64) *float64 {
	l := ck.l
	rate := l.Scenario.Rate
	m := l.Messages
	if rate <= 0 || m.Sent <= m.Rejected {
		return nil
	}
	fan := float64(m.Expected) / float64(m.Sent-m.Rejected)
	prev := 0.0
	for _, s := range l.Series {
		from := prev
		prev = s.T
		if s.Phase != "publish" || from < end-1e-9 {
			continue
		}
		width := s.T - from
		if float64(s.Sent) >= recoveryThreshold*rate*width && float64(s.Received) >= recoveryThreshold*rate*fan*width {
			d := s.T - end
			return &d
		}
	}
	return nil
}

// p99 is the highest per-second p99 of the seconds ending in (from, to].
func (ck *checker) p99(from, to float64) int64 {
	var out int64
	for _, s := range ck.l.Series {
		if s.T > from && s.T <= to+1e-9 {
			out = max(out, s.P99E2E)
		}
	}
	return out
}

// sessions sums the session tallies from fromSec to toSec.
func (ck *checker) sessions(fromSec, toSec float64) reports.LoadFaultSessions {
	s := reports.LoadFaultSessions{Persistent: !ck.l.Scenario.CleanSession}
	// A fault's start may fall inside a slot: the slot it falls in is
	// the fault's.
	slot := func(sec float64) float64 { return math.Floor(ck.ms(sec)/sessionSlotMs) * sessionSlotMs }
	from, to := slot(fromSec), slot(toSec)
	for _, t := range ck.v.Sessions {
		if at := float64(t.At); at < from || at >= to {
			continue
		}
		s.Dropped += t.Dropped
		s.Resumed += t.Resumed
		s.Fresh += t.Fresh
		s.SubscribersResumed += t.SubscribersResumed
		s.SubscriptionsKept += t.SubscriptionsKept
	}
	return s
}

// mergeFaults puts the parts' faults on the merged run's clock (t0, the
// earliest start). A fault every shard saw (the broker killed under all
// of them) is one fault: the same name, kind and target starting within
// a second.
func mergeFaults(parts []*Results, t0 time.Time) []reports.LoadFault {
	var out []reports.LoadFault
	for _, p := range parts {
		shift := p.Summary.Started.Sub(t0).Seconds()
		for _, f := range p.Summary.Faults {
			f.Start += shift
			f.End += shift
			if f.Recovered > 0 {
				f.Recovered += shift
			}
			if slices.ContainsFunc(out, func(g reports.LoadFault) bool {
				return g.Name == f.Name && g.Kind == f.Kind && g.Target == f.Target && math.Abs(g.Start-f.Start) < 1
			}) {
				continue
			}
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b reports.LoadFault) int { return cmp.Compare(a.Start, b.Start) })
	return out
}
