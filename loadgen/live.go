package loadgen

import (
	"encoding/json"
	"fmt"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/reports"
)

// Live is a run's running totals at the end of one second, for showing
// the run while it goes (Options.Live; mqttbench load --metrics-addr).
// Every count is cumulative since the run began, so a reader that misses
// a second still has correct totals, and the totals of a run's shards
// add up to the run's. The last one, taken when the run stops, holds the
// same numbers as the summary.
type Live struct {
	RunID string  `json:"run_id"`
	T     float64 `json:"t"` // seconds since the start
	Phase string  `json:"phase"`

	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Acked    uint64 `json:"acked"`
	Rejected uint64 `json:"rejected,omitempty"` // MQTT 5.0: PUBACK/PUBREC with an error reason code

	MissedLate         uint64 `json:"missed_late"`
	MissedDisconnected uint64 `json:"missed_disconnected"`
	MissedWindow       uint64 `json:"missed_window"`
	MissedTooLarge     uint64 `json:"missed_too_large"`

	Target     int    `json:"target"` // this shard's connections
	Open       int64  `json:"open"`
	Attempts   uint64 `json:"attempts"`
	Connects   uint64 `json:"connects"`
	Reconnects uint64 `json:"reconnects"`

	// Errors counts connection failures by class; every class is there,
	// 0 included, so that a reader knows them all from the start.
	Errors map[string]uint64 `json:"errors"`
	// ReasonCodes counts the reason codes other than success the broker
	// sent, as the summary does.
	ReasonCodes []reports.LoadReasonCode `json:"reason_codes,omitempty"`

	// Latency is the run's histogram of each metric that has values so
	// far. The histograms belong to the run and are valid only during the
	// callback: copy what you keep. In JSON they travel encoded, so that
	// a worker process can hand them to its parent.
	Latency map[string]*Histogram `json:"-"`
}

// live takes the running totals. It runs on the ticker's goroutine right
// after a rotation, the only time the totals may be read.
func (a *attack) live(t float64) *Live {
	c := &a.counters
	l := &Live{
		RunID: a.runHex, T: t, Phase: a.currentPhase(),
		Sent: c.Sent.Load(), Received: c.Received.Load(), Acked: c.Acked.Load(), Rejected: c.Rejected.Load(),
		MissedLate: c.MissedLate.Load(), MissedDisconnected: c.MissedDisc.Load(),
		MissedWindow: c.MissedWindow.Load(), MissedTooLarge: c.MissedTooLarge.Load(),
		Target: len(a.clients), Open: c.Open.Load(), Attempts: c.Attempts.Load(),
		Connects: c.Connects.Load(), Reconnects: c.Reconnects.Load(),
		Errors:      make(map[string]uint64, numClasses),
		ReasonCodes: a.reasons.summary(a.sc.version()),
		Latency:     map[string]*Histogram{},
	}
	for cl := range numClasses {
		l.Errors[cl.String()] = c.ByClass[cl].Load()
	}
	for _, m := range Metrics() {
		if h := a.rec.Total(m); h.TotalCount() > 0 {
			l.Latency[m.String()] = h
		}
	}
	return l
}

// liveFields is Live without its methods, for the JSON ones.
type liveFields Live

// MarshalJSON encodes the histograms in HdrHistogram's compressed form.
func (l *Live) MarshalJSON() ([]byte, error) {
	enc := make(map[string][]byte, len(l.Latency))
	for name, h := range l.Latency {
		b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("encoding the %s histogram: %w", name, err)
		}
		enc[name] = b
	}
	return json.Marshal(struct {
		*liveFields
		Latency map[string][]byte `json:"latency,omitempty"`
	}{(*liveFields)(l), enc})
}

// UnmarshalJSON decodes what MarshalJSON wrote; the histograms are the
// reader's own.
func (l *Live) UnmarshalJSON(b []byte) error {
	var v struct {
		*liveFields
		Latency map[string][]byte `json:"latency,omitempty"`
	}
	v.liveFields = (*liveFields)(l)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	l.Latency = make(map[string]*Histogram, len(v.Latency))
	for name, enc := range v.Latency {
		h, err := hdr.Decode(enc)
		if err != nil {
			return fmt.Errorf("decoding the %s histogram: %w", name, err)
		}
		l.Latency[name] = h
	}
	return nil
}
