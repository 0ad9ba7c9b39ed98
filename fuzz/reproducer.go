package fuzz

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// ReproducerKind marks a reproducer file.
const ReproducerKind = "mqttbench-fuzz-reproducer"

// Reproducer is a finding saved to replay: the (minimized) case, where it
// came from and what the broker did.
type Reproducer struct {
	Kind      string `json:"kind"`
	Finding   string `json:"finding"` // crash, hang, resource-growth, spec-deviation
	Observed  string `json:"observed"`
	Broker    string `json:"broker"`
	Protocol  string `json:"protocol"`
	Seed      uint64 `json:"seed"`
	Case      uint64 `json:"case"`
	Generator string `json:"generator"`
	Class     string `json:"class"`
	// Rule is the statement the bytes break, as the judge reads them.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	Expect string `json:"expect"`
	Phase  string `json:"phase"`
	Pings  int    `json:"pings,omitempty"`
	// RefuseID is the packet identifier of a refusable SUBSCRIBE.
	RefuseID uint16 `json:"refuse_id,omitempty"`
	// RefuseConnect: the refusal is owed to the CONNECT in the bytes.
	RefuseConnect bool          `json:"refuse_connect,omitempty"`
	Hex           string        `json:"hex"`
	Splits        []int         `json:"splits,omitempty"`
	Delay         time.Duration `json:"delay_ns,omitempty"`
	Detail        string        `json:"detail,omitempty"`
	// OriginalHex is the case as generated, before minimization.
	OriginalHex string    `json:"original_hex,omitempty"`
	Minimized   bool      `json:"minimized"`
	Tries       int       `json:"minimize_tries,omitempty"`
	Found       time.Time `json:"found"`
	Note        string    `json:"note,omitempty"`
	// Trace is the last run of the saved bytes, packet by packet.
	Trace []wire.Entry `json:"trace,omitempty"`
}

// NewReproducer describes finding for case c (minimized from original).
func NewReproducer(finding, observed, broker string, c, original Case) *Reproducer {
	r := &Reproducer{Kind: ReproducerKind, Finding: finding, Observed: observed, Broker: broker,
		Protocol: c.Version.String(), Seed: c.Seed, Case: c.Index, Generator: c.Generator, Class: c.Class,
		Rule: c.Rule, Expect: c.Expect.String(), Phase: c.Phase.String(), Pings: c.Pings, RefuseID: c.RefuseID,
		RefuseConnect: c.RefuseConnect, Hex: hex.EncodeToString(c.Bytes), Splits: c.Splits, Delay: c.Delay, Detail: c.Detail, Found: time.Now().UTC()}
	if c.Rule != "" {
		r.Reason = fmt.Sprintf("0x%02X %s", byte(c.Reason), c.Reason)
	}
	if !c.sameBytes(original) || len(c.Splits) != len(original.Splits) {
		r.OriginalHex, r.Minimized = hex.EncodeToString(original.Bytes), true
	}
	return r
}

// Case rebuilds the case to run.
func (r *Reproducer) ToCase() (Case, error) {
	v, err := packetgen.ParseVersion(strings.TrimSuffix(r.Protocol, ".0"))
	if err != nil {
		return Case{}, err
	}
	b, err := hex.DecodeString(strings.ReplaceAll(r.Hex, " ", ""))
	if err != nil {
		return Case{}, fmt.Errorf("hex: %v", err)
	}
	c := Case{Seed: r.Seed, Index: r.Case, Version: v, Generator: r.Generator, Class: r.Class, Rule: r.Rule,
		Pings: r.Pings, RefuseID: r.RefuseID, RefuseConnect: r.RefuseConnect, Bytes: b, Splits: r.Splits, Delay: r.Delay, Detail: r.Detail}
	if c.Expect, err = parseExpect(r.Expect); err != nil {
		return Case{}, err
	}
	switch r.Phase {
	case packetgen.PhaseFirst.String():
		c.Phase = packetgen.PhaseFirst
	case packetgen.PhaseAfterConnect.String():
		c.Phase = packetgen.PhaseAfterConnect
	default:
		return Case{}, fmt.Errorf("unknown phase %q", r.Phase)
	}
	return c, nil
}

func parseExpect(s string) (packetgen.Expect, error) {
	for e := packetgen.ExpectClose; e <= packetgen.ExpectAccept; e++ {
		if e.String() == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown expectation %q", s)
}

// Write saves the reproducer as indented JSON.
func (r *Reproducer) Write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// FileName is a file name for the reproducer: finding, class, case.
func (r *Reproducer) FileName() string {
	class := strings.NewReplacer(":", "-", "+", "-", "/", "-").Replace(r.Class)
	return fmt.Sprintf("%s-%s-%d.json", r.Finding, class, r.Case)
}

// ReadReproducer reads a file written by Write.
func ReadReproducer(path string) (*Reproducer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Reproducer
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if r.Kind != ReproducerKind {
		return nil, fmt.Errorf("%s: not a fuzz reproducer (kind %q)", path, r.Kind)
	}
	if _, err := r.ToCase(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &r, nil
}

// Replayed is the outcome of a replay.
type Replayed struct {
	// Finding is the class the run showed ("" for none) and Why says why.
	Finding, Why string
	// Reproduces: the same class as the reproducer's.
	Reproduces  bool
	Observation Observation
	// Skipped: the case could not run (our CONNECT refused).
	Skipped string
}

// Replay runs a reproducer's case once against t.
func Replay(ctx context.Context, t *Target, r *Reproducer, tm Timing) (Replayed, error) {
	c, err := r.ToCase()
	if err != nil {
		return Replayed{}, err
	}
	o := t.Exec(ctx, c, tm)
	class, why := Classify(c, o)
	if r.Finding == ResourceGrowth {
		class, why = "", "" // judged by the caller, which knows the bound
	}
	return Replayed{Finding: class, Why: why, Reproduces: class != "" && class == r.Finding, Observation: o, Skipped: o.Skipped}, nil
}
