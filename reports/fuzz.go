package reports

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Fuzz is the result of one wire fuzzing run (mqttbench fuzz).
type Fuzz struct {
	Kind        string        `json:"kind"` // "fuzz"
	Broker      string        `json:"broker"`
	Protocol    string        `json:"protocol"`
	Seed        uint64        `json:"seed"`
	Workers     int           `json:"workers"`
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"duration_ns"`
	Interrupted bool          `json:"interrupted,omitempty"`
	// Stopped says why the run ended before its time or case count (the
	// broker crashed and could not be restarted, ...).
	Stopped string `json:"stopped,omitempty"`

	Cases          int64   `json:"cases"`
	CasesPerSecond float64 `json:"cases_per_second"`
	// Skipped cases could not run (the broker refused our CONNECT).
	Skipped int64 `json:"skipped,omitempty"`
	// Generators counts cases by generator: malformed, unusual, mutated.
	Generators map[string]int64 `json:"generators,omitempty"`
	// Outcomes counts what the broker did with the cases' bytes: closed,
	// answered, silent, open.
	Outcomes map[string]int64 `json:"outcomes,omitempty"`
	// RSS is the broker's memory over the run, when its PID was given.
	RSS *FuzzRSS `json:"rss,omitempty"`
	// TLS is what a handshake with the broker negotiated (tls://,
	// mqtts://, wss://).
	TLS *ConformanceTLS `json:"tls,omitempty"`

	Findings []FuzzFinding `json:"findings"`
}

// FuzzRSS tracks the broker's resident set size.
type FuzzRSS struct {
	PID   int   `json:"pid"`
	Start int64 `json:"start_bytes"`
	Peak  int64 `json:"peak_bytes"`
	End   int64 `json:"end_bytes"`
	Bound int64 `json:"bound_bytes"` // growth over Start that is a finding
}

// FuzzFinding is one distinct finding: the first case that showed it,
// minimized and saved, and how often the same kind recurred.
type FuzzFinding struct {
	Class     string `json:"class"` // crash, hang, resource-growth, spec-deviation
	Case      uint64 `json:"case"`
	Generator string `json:"generator"`
	CaseClass string `json:"case_class"`
	Rule      string `json:"rule,omitempty"`
	Observed  string `json:"observed"`
	// Reproducer is the saved reproducer file.
	Reproducer    string `json:"reproducer"`
	Bytes         int    `json:"bytes"`
	OriginalBytes int    `json:"original_bytes"`
	Minimized     bool   `json:"minimized"`
	// Verified: the case reproduced when run alone.
	Verified    bool `json:"verified"`
	Occurrences int  `json:"occurrences"`
}

// FindingClasses in the order reports list them.
var FindingClasses = []string{"crash", "hang", "resource-growth", "spec-deviation"}

// FindingsByClass groups the findings by class.
func (f *Fuzz) FindingsByClass() map[string][]FuzzFinding {
	out := map[string][]FuzzFinding{}
	for _, x := range f.Findings {
		out[x.Class] = append(out[x.Class], x)
	}
	return out
}

// OK reports a run without findings.
func (f *Fuzz) OK() bool { return len(f.Findings) == 0 }

// SummaryLine is the closing line: cases, rate, findings by class.
func (f *Fuzz) SummaryLine() string {
	line := fmt.Sprintf("%d cases in %s (%.0f cases/s), %d findings", f.Cases,
		f.Duration.Round(time.Millisecond), f.CasesPerSecond, len(f.Findings))
	by := f.FindingsByClass()
	var parts []string
	for _, c := range FindingClasses {
		if n := len(by[c]); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c))
		}
	}
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	return line
}

// SortFindings orders findings by class, then case.
func (f *Fuzz) SortFindings() {
	rank := map[string]int{}
	for i, c := range FindingClasses {
		rank[c] = i
	}
	sort.SliceStable(f.Findings, func(i, j int) bool {
		a, b := f.Findings[i], f.Findings[j]
		if rank[a.Class] != rank[b.Class] {
			return rank[a.Class] < rank[b.Class]
		}
		return a.Case < b.Case
	})
}

// WriteJSON writes the run as indented JSON.
func (f *Fuzz) WriteJSON(path string) error { return writeJSON(path, f) }

// ReadFuzz reads a run written by WriteJSON.
func ReadFuzz(path string) (*Fuzz, error) {
	var f Fuzz
	if err := readResult(path, "fuzz", &f); err != nil {
		return nil, err
	}
	return &f, nil
}
