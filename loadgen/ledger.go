package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/mqttbench/mqttbench/reports"
)

// VerifyFile holds a run's delivery ledgers in its results directory.
const VerifyFile = "verify.json"

// Deliveries are judged per stream, one publisher's messages at one
// subscriber, against the publisher's ledger (what it sent, what the broker
// never acknowledged). In a sharded run a subscriber often hears
// publishers of other shards, whose ledgers only those shards have. So
// every run saves, in verify.json, its publishers' ledgers and its
// subscribers' streams, and `mqttbench merge` joins the shards of one run
// (same run id, disjoint shards) and judges every stream exactly as a
// single process would. The rule for what cannot be joined:
//
//   - A stream whose publisher's shard is not among the merged results is
//     unjudged: its deliveries count, its losses are unknown and never a
//     violation; the summary says how many streams that was. A shard's own
//     summary is such a partial merge (losses of streams from publishers
//     of other shards are left to merge).
//   - Duplicates and downgrades need no ledger and are judged everywhere.
//   - Results of different runs (different run ids) are not shards of one
//     run: each was judged on its own and their verification rows add up.

// PublisherLedger is one publisher's ledger as saved.
type PublisherLedger struct {
	Publisher   uint32   `json:"p"`
	QoS         uint8    `json:"qos"`
	Sent        uint64   `json:"sent"`
	Unconfirmed []uint64 `json:"unconfirmed,omitempty"`
	// Failed and Sends are as in Ledger.
	Failed []uint64    `json:"failed,omitempty"`
	Sends  []SendPoint `json:"sends,omitempty"`
}

// Receipt is the state of Streams subscriber streams of one publisher
// that ended alike (same QoS due, next sequence number and gaps), with
// their counts summed: a run of many subscribers with no loss saves one
// receipt per publisher.
type Receipt struct {
	Publisher   uint32      `json:"p"`
	QoS         uint8       `json:"qos"` // due: min(published, granted)
	SessionLost bool        `json:"session_lost,omitempty"`
	Streams     int         `json:"streams"`
	Next        uint64      `json:"next"`
	Gaps        [][2]uint64 `json:"gaps,omitempty"`
	Settled     uint64      `json:"settled,omitempty"`
	Received    uint64      `json:"received"`
	Duplicates  uint64      `json:"duplicates,omitempty"`
	Reordered   uint64      `json:"reordered,omitempty"`
	Downgraded  uint64      `json:"downgraded,omitempty"`
	// QueueExcuse is how many of the stream's losses the broker's queue
	// limit allowed (an offline subscriber's; never grouped).
	QueueExcuse uint64 `json:"queue_excuse,omitempty"`
}

// VerifyState is everything delivery verification needs, for one run or
// for shards of one run merged.
type VerifyState struct {
	RunID      string            `json:"run_id"`
	ShardCount int               `json:"shard_count"`
	Shards     []int             `json:"shards"` // the shard indexes covered
	Ledgers    []PublisherLedger `json:"ledgers"`
	Receipts   []Receipt         `json:"receipts"`
	Foreign    [3]uint64         `json:"foreign"`    // by the subscriber's QoS
	Unexpected uint64            `json:"unexpected"` // deliveries to a subscriber whose filter does not match
	// UnexpectedByQoS splits Unexpected by the subscriber's QoS, as
	// Foreign is (zero in files from before it).
	UnexpectedByQoS [3]uint64 `json:"unexpected_by_qos"`
	// Sessions is what became of sessions when connections came back,
	// for the history checker.
	Sessions []SessionTally `json:"sessions,omitempty"`
	// Faults counts, by kind, MQTT 5.0 deliveries whose properties the
	// broker altered (subscription_identifier, user_properties, ...).
	Faults map[string]uint64 `json:"property_faults,omitempty"`
	// Shared is what shared groups' members received (shared.go).
	Shared *SharedState `json:"shared,omitempty"`
}

// NewVerifyState gathers publishers' ledgers (keyed by publisher index)
// and subscribers' logs.
func NewVerifyState(ledgers map[uint32]Ledger, subs []SubscriberLog) *VerifyState {
	v := &VerifyState{}
	for p, l := range ledgers {
		v.Ledgers = append(v.Ledgers, PublisherLedger{Publisher: p, QoS: uint8(l.QoS), Sent: l.Sent, Unconfirmed: l.Unconfirmed,
			Failed: l.Failed, Sends: l.Sends})
	}
	slices.SortFunc(v.Ledgers, func(a, b PublisherLedger) int { return int(a.Publisher) - int(b.Publisher) })
	type key struct {
		pub           uint32
		qos           uint8
		lost          bool
		next, settled uint64
	}
	group := map[key]int{}
	for _, sub := range subs {
		seen := make(map[uint32]bool, len(sub.Expected))
		for _, e := range sub.Expected {
			seen[e.Publisher] = true
			st := sub.Streams[e.Publisher]
			if st == nil {
				st = &Stream{}
			}
			r := Receipt{Publisher: e.Publisher, QoS: uint8(e.QoS), SessionLost: sub.SessionLost, Streams: 1,
				Next: st.next, Settled: st.settled, Received: st.Received, Duplicates: st.Duplicates,
				Reordered: st.Reordered, Downgraded: st.Downgraded, QueueExcuse: sub.QueueExcuse[e.Publisher]}
			if len(st.gaps) > 0 || r.QueueExcuse > 0 {
				for _, g := range st.gaps {
					r.Gaps = append(r.Gaps, [2]uint64{g.lo, g.hi})
				}
				v.Receipts = append(v.Receipts, r)
				continue
			}
			k := key{r.Publisher, r.QoS, r.SessionLost, r.Next, r.Settled}
			if i, ok := group[k]; ok {
				g := &v.Receipts[i]
				g.Streams++
				g.Received += r.Received
				g.Duplicates += r.Duplicates
				g.Reordered += r.Reordered
				g.Downgraded += r.Downgraded
				continue
			}
			group[k] = len(v.Receipts)
			v.Receipts = append(v.Receipts, r)
		}
		fq := 0
		if len(sub.Expected) > 0 {
			fq = int(sub.Expected[0].QoS)
		}
		for p, st := range sub.Streams {
			if !seen[p] {
				v.Unexpected += st.Received + st.Duplicates
				v.UnexpectedByQoS[fq] += st.Received + st.Duplicates
			}
		}
		v.Foreign[fq] += sub.Foreign
		for k, n := range sub.Faults {
			v.addFault(faultNames[k], n)
		}
	}
	return v
}

func (v *VerifyState) addFault(name string, n uint64) {
	if n == 0 {
		return
	}
	if v.Faults == nil {
		v.Faults = map[string]uint64{}
	}
	v.Faults[name] += n
}

// Judge sums the streams per QoS and names the violations: loss at QoS 1
// and 2, duplicates at QoS 2, a delivery below the QoS due, and a message
// delivered to a subscriber whose filter does not match its topic.
// Unjudged counts streams whose publisher's ledger is not here.
func (v *VerifyState) Judge() (rows []reports.LoadVerification, violations []string, unjudged int) {
	ledgers := make(map[uint32]*PublisherLedger, len(v.Ledgers))
	for i := range v.Ledgers {
		ledgers[v.Ledgers[i].Publisher] = &v.Ledgers[i]
	}
	var all [3]reports.LoadVerification
	for q := range all {
		all[q].QoS = q
		all[q].Foreign = v.Foreign[q]
	}
	for _, rc := range v.Receipts {
		r := &all[rc.QoS]
		n := uint64(rc.Streams)
		r.Streams += rc.Streams
		r.Received += rc.Received
		r.Duplicates += rc.Duplicates
		r.Reordered += rc.Reordered
		r.Downgraded += rc.Downgraded
		l := ledgers[rc.Publisher]
		if l == nil {
			unjudged += rc.Streams
			continue
		}
		r.Sent += n * l.Sent
		st := Stream{next: rc.Next, settled: rc.Settled}
		for _, g := range rc.Gaps {
			st.gaps = append(st.gaps, span{g[0], g[1]})
		}
		var lost uint64
		if rc.QoS > 0 {
			r.Confirmed += n * (l.Sent - uint64(len(l.Unconfirmed)))
			lost = st.Lost(l.Sent, l.Unconfirmed)
		} else {
			r.Confirmed += n * l.Sent
			lost = st.Lost(l.Sent, nil)
		}
		if x := min(lost, rc.QueueExcuse); x > 0 { // the broker kept what it promised
			r.LostQueueLimit += n * x
			lost -= x
		}
		if rc.SessionLost {
			r.LostExcused += n * lost
		} else {
			r.Lost += n * lost
		}
	}
	for q := range all {
		r := &all[q]
		if r.Streams == 0 && r.Foreign == 0 {
			continue
		}
		if q > 0 && r.Lost > 0 {
			r.Violations = append(r.Violations, plural(r.Lost, "message")+" acknowledged to the publisher never delivered (QoS "+itoa(q)+" is at least once)")
		}
		if q == 2 && r.Duplicates > 0 {
			r.Violations = append(r.Violations, plural(r.Duplicates, "message")+" delivered twice (QoS 2 is exactly once)")
		}
		if r.Downgraded > 0 {
			r.Violations = append(r.Violations, plural(r.Downgraded, "message")+" delivered below QoS "+itoa(q)+" (min of published and granted)")
		}
		violations = append(violations, r.Violations...)
		rows = append(rows, *r)
	}
	if v.Unexpected > 0 {
		violations = append(violations, plural(v.Unexpected, "message")+" delivered to a subscriber whose filter does not match the topic")
	}
	for _, name := range faultNames {
		if n := v.Faults[name]; n > 0 {
			violations = append(violations, plural(n, "message")+" delivered "+faultRules[name])
		}
	}
	return rows, violations, unjudged
}

// MergeVerify joins the states of shards of one run. Shards must be
// disjoint, and so must their publishers.
func MergeVerify(states []*VerifyState) (*VerifyState, error) {
	out := &VerifyState{}
	shards := map[int]bool{}
	pubs := map[uint32]bool{}
	for i, s := range states {
		if i == 0 {
			out.RunID, out.ShardCount = s.RunID, s.ShardCount
		} else if s.RunID != out.RunID || s.ShardCount != out.ShardCount {
			return nil, fmt.Errorf("run %s (%d shards) and run %s (%d shards) are not shards of one run", out.RunID, out.ShardCount, s.RunID, s.ShardCount)
		}
		for _, x := range s.Shards {
			if shards[x] {
				return nil, fmt.Errorf("run %s: shard %d/%d appears twice", s.RunID, x, s.ShardCount)
			}
			shards[x] = true
			out.Shards = append(out.Shards, x)
		}
		for _, l := range s.Ledgers {
			if pubs[l.Publisher] {
				return nil, fmt.Errorf("run %s: publisher %d appears in two shards", s.RunID, l.Publisher)
			}
			pubs[l.Publisher] = true
			out.Ledgers = append(out.Ledgers, l)
		}
		out.Receipts = append(out.Receipts, s.Receipts...)
		for q := range out.Foreign {
			out.Foreign[q] += s.Foreign[q]
		}
		out.Unexpected += s.Unexpected
		for q := range out.UnexpectedByQoS {
			out.UnexpectedByQoS[q] += s.UnexpectedByQoS[q]
		}
		out.Sessions = mergeTallies(out.Sessions, s.Sessions)
		for k, n := range s.Faults {
			out.addFault(k, n)
		}
		out.Shared = mergeShared(out.Shared, s.Shared)
	}
	slices.Sort(out.Shards)
	slices.SortFunc(out.Ledgers, func(a, b PublisherLedger) int { return int(a.Publisher) - int(b.Publisher) })
	return out, nil
}

// WriteVerify writes v to path.
func (v *VerifyState) Write(path string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadVerify reads a state written by Write.
func ReadVerify(path string) (*VerifyState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := &VerifyState{}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for _, r := range v.Receipts {
		if r.QoS > 2 || r.Streams < 1 {
			return nil, fmt.Errorf("%s: a receipt with QoS %d and %d streams", path, r.QoS, r.Streams)
		}
	}
	return v, nil
}

// Verify judges publishers' ledgers (indexed by publisher) and
// subscribers' logs of one whole run.
func Verify(pubs []Ledger, subs []SubscriberLog) ([]reports.LoadVerification, []string) {
	m := make(map[uint32]Ledger, len(pubs))
	for i, l := range pubs {
		m[uint32(i)] = l
	}
	rows, v, _ := NewVerifyState(m, subs).Judge()
	return rows, v
}
