package loadgen

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/reports"
)

// Merge combines the results of several runs, usually the shards of one
// run, into one, exactly: latency histograms are merged from their
// interval logs (never from percentiles), counters summed, delivery
// re-judged from the joined ledgers (see VerifyState), and the time series
// and interval logs aligned on wall-clock seconds counted from the
// earliest start. The result has the layout of a single run's.
func Merge(parts []*Results) (*Results, error) {
	if len(parts) == 0 {
		return nil, errors.New("nothing to merge")
	}
	slices.SortStableFunc(parts, func(a, b *Results) int {
		if c := strings.Compare(a.Summary.RunID, b.Summary.RunID); c != 0 {
			return c
		}
		return a.Shard.Index - b.Shard.Index
	})
	first := parts[0].Summary
	out := &reports.Load{
		Kind: "load", RunID: first.RunID, Started: first.Started, Scenario: first.Scenario,
		Errors: map[string]uint64{}, ErrorSample: map[string]string{},
	}
	var end time.Time
	var targets []string
	var receivedAtEnd float64
	var memWeighted float64
	var memNote string
	runs := map[string]bool{}
	var gens []*reports.LoadGenerator
	for _, p := range parts {
		gens = append(gens, p.Summary.Generator)
		s := p.Summary
		runs[s.RunID] = true
		if s.Started.Before(out.Started) {
			out.Started = s.Started
		}
		if e := s.Started.Add(s.Elapsed); e.After(end) {
			end = e
		}
		if !slices.Contains(targets, s.Target) {
			targets = append(targets, s.Target)
		}
		out.Interrupted = out.Interrupted || s.Interrupted

		c, oc := s.Connections, &out.Connections
		oc.Target += c.Target
		oc.Peak += c.Peak
		oc.Ready += c.Ready
		oc.Attempts += c.Attempts
		oc.Reconnects += c.Reconnects
		oc.ConnectSec = max(oc.ConnectSec, c.ConnectSec)
		memWeighted += c.MemPerConn * float64(c.Target)
		if c.MemNote != "" {
			memNote = c.MemNote
		}

		m, om := s.Messages, &out.Messages
		om.Offered += m.Offered
		om.Sent += m.Sent
		om.Missed += m.Missed
		om.MissedLate += m.MissedLate
		om.MissedDisconnected += m.MissedDisconnected
		om.MissedWindow += m.MissedWindow
		om.MissedTooLarge += m.MissedTooLarge
		om.Acked += m.Acked
		om.Rejected += m.Rejected
		om.TopicAliased += m.TopicAliased
		om.TopicAliasBytesSaved += m.TopicAliasBytesSaved
		om.Received += m.Received
		om.Expected += m.Expected
		om.PublishSec = max(om.PublishSec, m.PublishSec)
		receivedAtEnd += m.ReceivedRate * m.PublishSec

		for k, v := range s.Errors {
			out.Errors[k] += v
			if _, ok := out.ErrorSample[k]; !ok && s.ErrorSample[k] != "" {
				out.ErrorSample[k] = s.ErrorSample[k]
			}
		}
		out.ReasonCodes = MergeReasonCodes(out.ReasonCodes, s.ReasonCodes)
		out.Tolerated = MergeTolerated(out.Tolerated, s.Tolerated)
		out.Connack = mergeConnack(out.Connack, s.Connack)
		out.TLS = mergeTLS(out.TLS, s.TLS)
	}
	out.Target = strings.Join(targets, ",")
	out.Generator = MergeGenerators(gens) // saturated if any part was
	out.Elapsed = end.Sub(out.Started)
	if memWeighted > 0 && out.Connections.Target > 0 {
		out.Connections.MemPerConn = memWeighted / float64(out.Connections.Target)
		out.Connections.MemNote = memNote + ", averaged over processes"
	}
	if om := &out.Messages; om.PublishSec > 0 {
		om.SentRate = float64(om.Sent) / om.PublishSec
		om.ReceivedRate = math.Round(receivedAtEnd) / om.PublishSec
	}

	res := &Results{Summary: out, Histograms: map[string]*Histogram{}, Intervals: map[string][]*Histogram{}}
	t0 := out.Started
	for _, mt := range Metrics() {
		name := mt.String()
		total := NewHistogram()
		total.SetTag(name)
		byBucket := map[int]*Histogram{}
		for _, p := range parts {
			if h := p.Histograms[name]; h != nil {
				if dropped := total.Merge(h); dropped > 0 {
					return nil, fmt.Errorf("%s: %d values outside the histogram's range", name, dropped)
				}
			}
			for _, iv := range p.Intervals[name] {
				k := bucket(t0, time.UnixMilli(iv.EndTimeMs()))
				b := byBucket[k]
				if b == nil {
					b = NewHistogram()
					b.SetTag(name)
					b.SetStartTimeMs(t0.Add(time.Duration(k-1) * time.Second).UnixMilli())
					b.SetEndTimeMs(t0.Add(time.Duration(k) * time.Second).UnixMilli())
					byBucket[k] = b
				}
				b.Merge(iv)
			}
		}
		res.Histograms[name] = total
		keys := make([]int, 0, len(byBucket))
		for k := range byBucket {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			res.Intervals[name] = append(res.Intervals[name], byBucket[k])
		}
		out.Latency = append(out.Latency, Summarize(name, total))
	}
	out.Series = mergeSeries(parts, t0, res.Intervals[MetricEndToEnd.String()])
	out.Faults = mergeFaults(parts, t0)

	// Verification: the shards of one run are judged together; results of
	// different runs, or written without ledgers, as they were.
	var states []*VerifyState
	var asIs []*reports.Load
	if len(runs) == 1 {
		for _, p := range parts {
			if p.Verify != nil {
				states = append(states, p.Verify)
			} else {
				asIs = append(asIs, p.Summary)
			}
		}
	} else {
		for _, p := range parts {
			asIs = append(asIs, p.Summary)
		}
		out.RunID = ""
		out.Notes = append(out.Notes, fmt.Sprintf("merged %d different runs: each was verified on its own", len(runs)))
	}
	var rows []reports.LoadVerification
	if len(states) > 0 {
		vs, err := MergeVerify(states)
		if err != nil {
			return nil, err
		}
		var unjudged int
		rows, out.Violations, unjudged = vs.Judge()
		res.Verify = vs
		if len(vs.Shards) > 1 || vs.ShardCount > 1 {
			out.Notes = append(out.Notes, fmt.Sprintf("merged shards %s of %d of run %s", joinInts(vs.Shards), vs.ShardCount, vs.RunID))
		}
		if unjudged > 0 {
			out.Notes = append(out.Notes, fmt.Sprintf("%d streams come from publishers of shards not merged here: their losses are unknown", unjudged))
		}
	}
	for _, s := range asIs {
		rows = addRows(rows, s.Verify)
		out.Violations = append(out.Violations, s.Violations...)
	}
	out.Verify = rows
	if res.Verify != nil {
		judgeShared(out, res.Verify)
	}
	out.RequestResponse = MergeRequestResponse(summaries(parts))
	judgeRequestResponse(out)
	if out.Interrupted && len(out.Violations) > 0 {
		out.Notes = append(out.Notes, "interrupted: losses include messages still in transit; not judged")
		out.Violations = nil
		for i := range out.Verify {
			out.Verify[i].Violations = nil
		}
	}
	if slo, err := sloOf(first); err == nil {
		out.SLO = slo.Check(out) // the objectives the parts were given, on the merged histograms
	}
	if len(runs) == 1 && res.Verify != nil {
		AnalyzeHistory(out, res.Verify)
	}
	out.Notes = append(out.Notes, StandardNotes(out)...)
	// Whatever else a part noted (a broker dropping messages, say), with
	// the notes merging recomputes left out.
	for _, p := range parts {
		skip := StandardNotes(p.Summary)
		for _, n := range p.Summary.Notes {
			if slices.Contains(skip, n) || strings.HasPrefix(n, "shard ") || strings.Contains(n, "judged by mqttbench merge") ||
				strings.HasPrefix(n, "merged ") || strings.HasPrefix(n, "interrupted: ") {
				continue
			}
			if !slices.Contains(out.Notes, n) {
				out.Notes = append(out.Notes, n)
			}
		}
	}
	return res, nil
}

// mergeConnack keeps the smallest of what the parts' CONNACKs said.
func mergeConnack(a, b *reports.LoadConnack) *reports.LoadConnack {
	switch {
	case b == nil:
		return a
	case a == nil:
		c := *b
		return &c
	}
	c := *a
	c.Varied = a.Varied || b.Varied || a.ReceiveMaximum != b.ReceiveMaximum || a.MaximumPacketSize != b.MaximumPacketSize ||
		a.TopicAliasMaximum != b.TopicAliasMaximum || a.MaximumQoS != b.MaximumQoS
	c.ReceiveMaximum = min(a.ReceiveMaximum, b.ReceiveMaximum)
	if b.MaximumPacketSize > 0 && (c.MaximumPacketSize == 0 || b.MaximumPacketSize < c.MaximumPacketSize) {
		c.MaximumPacketSize = b.MaximumPacketSize
	}
	c.TopicAliasMaximum = min(a.TopicAliasMaximum, b.TopicAliasMaximum)
	c.MaximumQoS = min(a.MaximumQoS, b.MaximumQoS)
	c.InflightWindow = min(a.InflightWindow, b.InflightWindow)
	if b.ServerKeepAlive != nil && (c.ServerKeepAlive == nil || *b.ServerKeepAlive < *c.ServerKeepAlive) {
		ka := *b.ServerKeepAlive
		c.ServerKeepAlive = &ka
	}
	return &c
}

// bucket numbers the wall-clock second (t0+(k-1)s, t0+k s] that holds at.
func bucket(t0, at time.Time) int {
	d := at.Sub(t0)
	k := int((d + time.Second - 1) / time.Second)
	return max(k, 1)
}

// mergeSeries adds up the parts' time series by wall-clock second. Open
// connections at the end of a second are each part's latest count; the
// p99 comes from the merged end-to-end histogram of that second.
func mergeSeries(parts []*Results, t0 time.Time, e2e []*Histogram) []reports.LoadSecond {
	type entry struct {
		k int
		s reports.LoadSecond
	}
	perPart := make([][]entry, len(parts))
	last := 0
	for i, p := range parts {
		for _, s := range p.Summary.Series {
			at := p.Summary.Started.Add(time.Duration(s.T * float64(time.Second)))
			k := bucket(t0, at)
			perPart[i] = append(perPart[i], entry{k, s})
			last = max(last, k)
		}
	}
	p99 := map[int]int64{}
	for _, h := range e2e {
		p99[bucket(t0, time.UnixMilli(h.EndTimeMs()))] = h.ValueAtQuantile(99)
	}
	var out []reports.LoadSecond
	next := make([]int, len(parts))
	open := make([]int64, len(parts))
	for k := 1; k <= last; k++ {
		sec := reports.LoadSecond{T: float64(k), P99E2E: p99[k]}
		any := false
		for i := range parts {
			for next[i] < len(perPart[i]) && perPart[i][next[i]].k <= k {
				s := perPart[i][next[i]].s
				next[i]++
				any = true
				if sec.Phase == "" {
					sec.Phase = s.Phase
				}
				sec.Sent += s.Sent
				sec.Received += s.Received
				sec.Acked += s.Acked
				sec.Missed += s.Missed
				sec.Connects += s.Connects
				sec.Errors += s.Errors
				open[i] = s.Connections
			}
			sec.Connections += open[i]
		}
		if any {
			out = append(out, sec)
		}
	}
	return out
}

// addRows sums verification rows by QoS.
func addRows(rows, more []reports.LoadVerification) []reports.LoadVerification {
	for _, m := range more {
		i := slices.IndexFunc(rows, func(r reports.LoadVerification) bool { return r.QoS == m.QoS })
		if i < 0 {
			rows = append(rows, m)
			continue
		}
		r := &rows[i]
		r.Streams += m.Streams
		r.Sent += m.Sent
		r.Confirmed += m.Confirmed
		r.Received += m.Received
		r.Lost += m.Lost
		r.LostExcused += m.LostExcused
		r.Duplicates += m.Duplicates
		r.Reordered += m.Reordered
		r.Downgraded += m.Downgraded
		r.Foreign += m.Foreign
		r.Violations = append(r.Violations, m.Violations...)
	}
	slices.SortFunc(rows, func(a, b reports.LoadVerification) int { return a.QoS - b.QoS })
	return rows
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// Write writes the results to dir in the layout of a run: summary.json,
// one interval log per metric and verify.json.
func (r *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	startMs := r.Summary.Started.UnixMilli()
	baseMs := startMs - startMs%1000
	for _, m := range Metrics() {
		name := m.String()
		f, err := os.Create(filepath.Join(dir, LogFile(m)))
		if err != nil {
			return err
		}
		lw := hdr.NewHistogramLogWriter(f)
		lw.SetBaseTime(baseMs)
		for _, err = range []error{
			lw.OutputLogFormatVersion(),
			lw.OutputComment(fmt.Sprintf("[mqttbench %s latency in microseconds; interval max column in seconds; merged]", name)),
			lw.OutputStartTime(startMs),
			lw.OutputBaseTime(baseMs),
			lw.OutputLegend(),
		} {
			if err != nil {
				break
			}
		}
		for _, h := range r.Intervals[name] {
			if err != nil {
				break
			}
			err = lw.OutputIntervalHistogram(h)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	r.Dir = dir
	return r.writeSummary()
}
