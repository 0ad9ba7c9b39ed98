package suites

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// Ginkgo runs one spec at a time in a process, and a process runs its
// suite once. Running specs at once therefore takes several processes,
// each with a shard of the specs: mqttbench conform --concurrency N starts
// N copies of itself with --shard 1/N ... N/N and merges their results.
// Every spec keeps a world of its own, so shards never see each other's
// clients, topics or sessions; what they share is the broker, which
// answers more slowly the more of them run.

// Shard is one of Of shards of the specs (1 <= N <= Of). The zero value
// is the whole suite.
type Shard struct{ N, Of int }

// ParseShard reads "i/n".
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	var sh Shard
	var err1, err2 error
	sh.N, err1 = strconv.Atoi(i)
	sh.Of, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || sh.Of < 1 || sh.N < 1 || sh.N > sh.Of {
		return Shard{}, fmt.Errorf("--shard %q: want i/n with 1 <= i <= n", s)
	}
	return sh, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.N, s.Of) }

// takes reports whether the shard runs the spec registered k-th (from 0).
// Registration order is fixed (sections in order, specs as declared, the
// seed choosing the same cases everywhere), so the shards of one run
// split the suite exactly, round robin, which spreads slow sections.
func (s Shard) takes(k int) bool {
	return s.Of <= 1 || k%s.Of == s.N-1
}

// Merge joins the results of the shards of one run into one, as if one
// process had run them all.
func Merge(cfg Config, parts []*reports.Conformance) *reports.Conformance {
	cfg.withDefaults()
	res := &reports.Conformance{
		Kind:     "conformance",
		Broker:   cfg.Broker,
		Protocol: cfg.protocolName(),
		Seed:     cfg.Seed,
		Profile:  cfg.Profile.summary(),
		Timeout:  cfg.Timeout,
	}
	answers := map[string]*reports.AnswerTime{}
	var order []string
	for i, p := range parts {
		if p == nil {
			continue
		}
		res.Interrupted = res.Interrupted || p.Interrupted
		for _, e := range p.SuiteErrors {
			res.SuiteErrors = append(res.SuiteErrors, fmt.Sprintf("shard %d/%d: %s", i+1, len(parts), e))
		}
		res.Specs = append(res.Specs, p.Specs...)
		if p.Started.After(time.Time{}) && (res.Started.IsZero() || p.Started.Before(res.Started)) {
			res.Started = p.Started
		}
		res.Duration = max(res.Duration, p.Duration)
		for _, a := range p.Answers {
			m := answers[a.Packet]
			if m == nil {
				m = &reports.AnswerTime{Packet: a.Packet}
				answers[a.Packet] = m
				order = append(order, a.Packet)
			}
			m.Count += a.Count
			m.Slow += a.Slow
			m.Missing += a.Missing
			m.Max = max(m.Max, a.Max)
		}
	}
	sort.Strings(order)
	for _, name := range order {
		res.Answers = append(res.Answers, *answers[name])
	}
	for _, p := range parts {
		if p != nil && p.Capabilities != nil {
			res.Capabilities, res.Notes = p.Capabilities, p.Notes
			break
		}
	}
	setVerdicts(res, cfg)
	return res
}
