package loadgen

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/reports"
)

// Shared subscriptions (MQTT 5.0 §4.8.2; many 3.1.1 brokers, mosquitto
// among them, take "$share/" too). Subscriber j joins group
// SharedGroups[j mod len] and subscribes "$share/NAME/<its filter>". The
// broker hands each message of a shared subscription to one member, so a
// member's own stream is full of gaps by design: what is judged is, per
// (shared subscription, publisher), the union of every member's
// deliveries, which must hold each confirmed message at QoS 1/2 and
// none twice at QoS 2.
//
// A member's deliveries go into one set per (subscription, publisher) in
// each process, a roaring bitmap: a bit per sequence number at worst,
// runs when one process holds the whole group. verify.json keeps the sets
// (SharedReceipt) and each member's count (SharedMember), and the group
// is judged after merging: the union of the shards' sets, duplicates
// across shards being what the sets' sizes add up to beyond the union's.
//
// Duplicates: at QoS 2 any copy beyond the first is a violation
// (exactly once; MQTT-4.8.2-5 forbids handing a QoS 2 message in flight
// to another member). At QoS 0 and 1 a duplicate is a violation only when
// no member of the subscription lost its connection: §4.8.2 lets the
// broker send a QoS 1 message a member never acknowledged to another
// member once that member's connection breaks, and a broker resends
// nothing otherwise (MQTT-4.4.0-1); the duplicates are then counted and
// marked excused. Losses of a subscription one of whose members lost its
// session are excused as a plain subscriber's are.

// validateShared checks the shared groups' names (MQTT-4.8.2-1,
// MQTT-4.8.2-2) and that every group can have a member.
func (s *Scenario) validateShared() error {
	if len(s.SharedGroups) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, g := range s.SharedGroups {
		switch {
		case g == "":
			return errors.New("shared_groups: an empty group name (a share name has at least one character, MQTT-4.8.2-1)")
		case strings.ContainsAny(g, "/+#"):
			return fmt.Errorf("shared_groups: %q: a share name has no '/', '+' or '#' (MQTT-4.8.2-2)", g)
		case seen[g]:
			return fmt.Errorf("shared_groups: %q is named twice", g)
		}
		if err := topic.ValidUTF8(g, true); err != nil {
			return fmt.Errorf("shared_groups: %q: %v", g, err)
		}
		seen[g] = true
	}
	switch {
	case s.Subscribers < len(s.SharedGroups):
		return fmt.Errorf("shared_groups: %d groups need at least as many subscribers, not %d", len(s.SharedGroups), s.Subscribers)
	case topic.IsShared(s.filterTemplate()):
		return fmt.Errorf("filter: %q is already shared; give the plain filter with shared groups", s.filterTemplate())
	}
	if s.Subscribers > 0 {
		f := s.subscribeFilter(0)
		if _, _, err := topic.ParseShared(f); err != nil {
			return fmt.Errorf("shared_groups: %q: %v", f, err)
		}
	}
	return nil
}

// CheckSharedTarget refuses shared groups at 3.1.1 on the in-process
// broker, which takes "$share/" as a shared subscription at 5.0 only: at
// 3.1.1 it is a plain filter nothing publishes to.
func (s *Scenario) CheckSharedTarget(inproc bool) error {
	if len(s.SharedGroups) > 0 && inproc && !s.V5() {
		return errors.New("shared groups at MQTT 3.1.1 need a broker that takes $share/ at 3.1.1 (mosquitto does): the in-process reference broker shares subscriptions at 5.0 only; add --protocol 5 or give --broker")
	}
	return nil
}

// SharedGroup is the shared group subscriber j belongs to; "" without
// shared groups.
func (s *Scenario) SharedGroup(j int) string {
	if len(s.SharedGroups) == 0 {
		return ""
	}
	return s.SharedGroups[j%len(s.SharedGroups)]
}

// subscribeFilter is the filter subscriber j's SUBSCRIBE carries: its
// filter, behind "$share/NAME/" when it belongs to a shared group.
func (s *Scenario) subscribeFilter(j int) string {
	if g := s.SharedGroup(j); g != "" {
		return "$share/" + g + "/" + s.SubscriberFilter(j)
	}
	return s.SubscriberFilter(j)
}

// sharedSub is one shared subscription as this process sees it: a set
// per publisher its filter matches, which every member here adds to.
type sharedSub struct {
	group, filter string // filter is the whole "$share/NAME/..."
	streams       map[uint32]*sharedStream
	members       []*subscriber
}

// sharedStream is one publisher's messages as the members of a shared
// subscription in this process received them. Members read on their own
// goroutines, so it has a lock.
type sharedStream struct {
	mu         sync.Mutex
	seen       *roaring64.Bitmap
	duplicates uint64
	downgraded uint64
}

// sharedMember is a subscriber's part in a shared subscription; only its
// reader goroutine touches it while the run goes.
type sharedMember struct {
	sub        *sharedSub
	index      int    // the subscriber's index j
	received   uint64 // deliveries of the run's messages, repeats included
	unexpected uint64 // from publishers its filter does not match
	dropped    bool   // its connection dropped during the run
}

// buildShared makes this shard's shared subscribers members of their
// groups, and corrects the fan: a shared subscription takes a message once
// whatever the number of its members, over every shard.
func (a *attack) buildShared() {
	sc := &a.sc
	if len(sc.SharedGroups) == 0 || sc.Subscribers == 0 {
		return
	}
	if sc.Publishers > 0 {
		matches := map[string][]uint32{}
		match := func(f string) []uint32 {
			if m, ok := matches[f]; ok {
				return m
			}
			var m []uint32
			for p := 0; p < sc.Publishers; p++ {
				if topic.Match(f, []byte(sc.PublisherTopic(p))) {
					m = append(m, uint32(p))
				}
			}
			matches[f] = m
			return m
		}
		counted := map[string]bool{}
		for j := 0; j < sc.Subscribers; j++ {
			pubs := match(sc.SubscriberFilter(j))
			key := sc.subscribeFilter(j)
			for _, p := range pubs {
				a.fan[p]-- // buildClients counted every member
				if !counted[key] {
					a.fan[p]++
				}
			}
			counted[key] = true
		}
	}
	a.shared = map[string]*sharedSub{}
	for _, c := range a.clients {
		s := c.sub
		if s == nil || s.resp != nil {
			continue
		}
		j := int(c.idx) - sc.Publishers
		key := sc.subscribeFilter(j)
		ss := a.shared[key]
		if ss == nil {
			ss = &sharedSub{group: sc.SharedGroup(j), filter: key, streams: map[uint32]*sharedStream{}}
			for _, e := range s.log.Expected {
				ss.streams[e.Publisher] = &sharedStream{seen: roaring64.New()}
			}
			a.shared[key] = ss
		}
		s.filter = key
		s.share = &sharedMember{sub: ss, index: j}
		s.log.Expected = nil // judged as the group's, not on its own
		ss.members = append(ss.members, s)
	}
}

// sharedReceived records a delivery of the run's message hd to a member
// of a shared subscription.
func (c *client) sharedReceived(s *subscriber, hd Header, qos packetgen.QoS, now int64) {
	m := s.share
	st := m.sub.streams[hd.Publisher]
	if st == nil {
		m.unexpected++
		return
	}
	m.received++
	st.mu.Lock()
	fresh := st.seen.CheckedAdd(hd.Seq)
	if !fresh {
		st.duplicates++
	}
	if qos < min(hd.QoS, s.granted) {
		st.downgraded++
	}
	st.mu.Unlock()
	if fresh {
		c.a.counters.Received.Add(1)
		c.a.rec.Record(MetricEndToEnd, time.Duration(c.a.unixNs(now)-hd.Due))
	}
}

// SharedState is what the shared subscriptions of one run, or of shards
// of one run merged, received.
type SharedState struct {
	Receipts []SharedReceipt `json:"receipts,omitempty"`
	Members  []SharedMember  `json:"members,omitempty"`
}

// SharedReceipt is one publisher's messages as the members of one shared
// subscription in one process received them.
type SharedReceipt struct {
	Group     string `json:"group"`
	Filter    string `json:"filter"`
	Publisher uint32 `json:"p"`
	QoS       uint8  `json:"qos"` // due: min(published, granted)
	// Seen is the set of sequence numbers received, a portable roaring
	// bitmap (64-bit); Count its size.
	Seen       []byte `json:"seen"`
	Count      uint64 `json:"count"`
	Duplicates uint64 `json:"duplicates,omitempty"` // within the process
	Downgraded uint64 `json:"downgraded,omitempty"`
}

// SharedMember is one member of a shared subscription.
type SharedMember struct {
	Group       string `json:"group"`
	Filter      string `json:"filter"`
	Subscriber  int    `json:"sub"`
	Received    uint64 `json:"received"` // deliveries, repeats included
	Unexpected  uint64 `json:"unexpected,omitempty"`
	Dropped     bool   `json:"dropped,omitempty"`
	SessionLost bool   `json:"session_lost,omitempty"`
}

// sharedState saves the shard's shared subscriptions for verify.json.
func (a *attack) sharedState() *SharedState {
	if len(a.shared) == 0 {
		return nil
	}
	st := &SharedState{}
	for _, ss := range a.shared {
		due := a.sc.QoS
		for _, s := range ss.members {
			if s.subscribed {
				due = min(due, s.granted)
			}
			st.Members = append(st.Members, SharedMember{Group: ss.group, Filter: ss.filter, Subscriber: s.share.index,
				Received: s.share.received, Unexpected: s.share.unexpected, Dropped: s.share.dropped,
				SessionLost: s.log.SessionLost || s.down})
		}
		for p, str := range ss.streams {
			str.seen.RunOptimize()
			b, err := str.seen.MarshalBinary()
			if err != nil {
				panic(err) // writing to memory does not fail
			}
			st.Receipts = append(st.Receipts, SharedReceipt{Group: ss.group, Filter: ss.filter, Publisher: p, QoS: uint8(due),
				Seen: b, Count: str.seen.GetCardinality(), Duplicates: str.duplicates, Downgraded: str.downgraded})
		}
	}
	st.sort()
	return st
}

func (st *SharedState) sort() {
	slices.SortFunc(st.Receipts, func(x, y SharedReceipt) int {
		if c := strings.Compare(x.Filter, y.Filter); c != 0 {
			return c
		}
		return int(x.Publisher) - int(y.Publisher)
	})
	slices.SortFunc(st.Members, func(x, y SharedMember) int { return x.Subscriber - y.Subscriber })
}

// mergeShared joins the shared states of shards of one run.
func mergeShared(a, b *SharedState) *SharedState {
	switch {
	case b == nil:
		return a
	case a == nil:
		a = &SharedState{}
	}
	a.Receipts = append(a.Receipts, b.Receipts...)
	a.Members = append(a.Members, b.Members...)
	a.sort()
	return a
}

// JudgeShared judges every shared subscription of v, grouped by share
// name, against the publishers' ledgers (see the rules above). Losses
// need every member's set: in a state that lacks shards of its run they
// are unjudged. It returns nil without shared subscriptions.
func (v *VerifyState) JudgeShared() (*reports.LoadShared, error) {
	st := v.Shared
	if st == nil || len(st.Members) == 0 {
		return nil, nil
	}
	ledgers := make(map[uint32]*PublisherLedger, len(v.Ledgers))
	for i := range v.Ledgers {
		ledgers[v.Ledgers[i].Publisher] = &v.Ledgers[i]
	}
	complete := v.ShardCount <= 1 || len(v.Shards) >= v.ShardCount
	type subFlags struct{ dropped, sessionLost bool }
	flags := map[string]*subFlags{}
	groups := map[string]*reports.LoadSharedGroup{}
	var order []string
	group := func(name string) *reports.LoadSharedGroup {
		g := groups[name]
		if g == nil {
			g = &reports.LoadSharedGroup{Name: name, QoS: 2}
			groups[name] = g
			order = append(order, name)
		}
		return g
	}
	for _, m := range st.Members {
		g := group(m.Group)
		g.Members++
		g.PerMember = append(g.PerMember, m.Received)
		g.Unexpected += m.Unexpected
		if !slices.Contains(g.Filters, m.Filter) {
			g.Filters = append(g.Filters, m.Filter)
		}
		f := flags[m.Filter]
		if f == nil {
			f = &subFlags{}
			flags[m.Filter] = f
		}
		f.dropped = f.dropped || m.Dropped
		f.sessionLost = f.sessionLost || m.SessionLost
	}
	// One stream per (subscription, publisher): the union of the
	// processes' sets.
	type streamKey struct {
		filter string
		pub    uint32
	}
	type stream struct {
		group      string
		qos        uint8
		union      *roaring64.Bitmap
		sum, dups  uint64
		downgraded uint64
	}
	streams := map[streamKey]*stream{}
	var keys []streamKey
	for _, r := range st.Receipts {
		bm := roaring64.New()
		if err := bm.UnmarshalBinary(r.Seen); err != nil {
			return nil, fmt.Errorf("shared subscription %s, publisher %d: %v", r.Filter, r.Publisher, err)
		}
		k := streamKey{r.Filter, r.Publisher}
		s := streams[k]
		if s == nil {
			s = &stream{group: r.Group, qos: r.QoS, union: roaring64.New()}
			streams[k] = s
			keys = append(keys, k)
		}
		s.qos = min(s.qos, r.QoS)
		s.union.Or(bm)
		s.sum += bm.GetCardinality()
		s.dups += r.Duplicates
		s.downgraded += r.Downgraded
	}
	for _, k := range keys {
		s := streams[k]
		g := group(s.group)
		f := flags[k.filter]
		if f == nil {
			f = &subFlags{}
		}
		g.QoS = min(g.QoS, int(s.qos))
		g.Streams++
		g.Received += s.union.GetCardinality()
		g.Duplicates += s.dups + s.sum - s.union.GetCardinality()
		g.Downgraded += s.downgraded
		g.DuplicatesExcused = g.DuplicatesExcused || f.dropped
		l := ledgers[k.pub]
		if l == nil || !complete {
			g.Unjudged++
			continue
		}
		g.Sent += l.Sent
		got := s.union.Clone()
		got.RemoveRange(l.Sent, math.MaxUint64)
		missing := l.Sent - got.GetCardinality()
		var lost uint64
		if s.qos > 0 {
			var unconfirmedMissing uint64
			for _, u := range l.Unconfirmed {
				if u < l.Sent && !got.Contains(u) {
					unconfirmedMissing++
				}
			}
			g.Confirmed += l.Sent - uint64(len(l.Unconfirmed))
			lost = missing - unconfirmedMissing
		} else {
			g.Confirmed += l.Sent
			lost = missing
		}
		if f.sessionLost {
			g.LostExcused += lost
		} else {
			g.Lost += lost
		}
	}
	out := &reports.LoadShared{}
	for _, name := range order {
		g := groups[name]
		if g.Streams == 0 {
			g.QoS = 0
		}
		spread(g)
		g.Violations = sharedViolations(g)
		out.Groups = append(out.Groups, *g)
	}
	return out, nil
}

// spread fills the group's spread statistics from its per-member counts.
func spread(g *reports.LoadSharedGroup) {
	n := len(g.PerMember)
	if n == 0 {
		return
	}
	g.Min, g.Max = slices.Min(g.PerMember), slices.Max(g.PerMember)
	var sum float64
	for _, x := range g.PerMember {
		sum += float64(x)
	}
	g.Mean = sum / float64(n)
	if g.Mean == 0 {
		return
	}
	var sq float64
	for _, x := range g.PerMember {
		d := float64(x) - g.Mean
		sq += d * d
	}
	g.CV = math.Sqrt(sq/float64(n)) / g.Mean
	g.MaxOverMean = float64(g.Max) / g.Mean
}

// sharedViolations names what a group's counts break.
func sharedViolations(g *reports.LoadSharedGroup) []string {
	var out []string
	name := "shared group " + g.Name + ": "
	if g.QoS > 0 && g.Lost > 0 {
		out = append(out, name+plural(g.Lost, "message")+" acknowledged to the publisher reached no member (QoS "+itoa(g.QoS)+" is at least once)")
	}
	switch {
	case g.Duplicates == 0:
	case g.QoS == 2:
		out = append(out, name+plural(g.Duplicates, "message")+" delivered twice across the group (QoS 2 is exactly once; no other member may get a QoS 2 message, MQTT-4.8.2-5)")
	case !g.DuplicatesExcused:
		out = append(out, name+plural(g.Duplicates, "message")+" delivered more than once across the group although no member lost its connection (a shared subscription gives each message to one member, §4.8.2)")
	}
	if g.Downgraded > 0 {
		out = append(out, name+plural(g.Downgraded, "message")+" delivered below QoS "+itoa(g.QoS)+" (min of published and granted)")
	}
	if g.Unexpected > 0 {
		out = append(out, name+plural(g.Unexpected, "message")+" delivered to a member whose filter does not match the topic")
	}
	return out
}

// judgeShared sets l.Shared from v and adds its violations to l's; an
// interrupted run is counted, not judged.
func judgeShared(l *reports.Load, v *VerifyState) {
	l.Shared = nil
	if v == nil {
		return
	}
	sh, err := v.JudgeShared()
	if err != nil {
		l.Notes = append(l.Notes, "shared subscriptions not judged: "+err.Error())
		return
	}
	l.Shared = sh
	if sh == nil {
		return
	}
	for i := range sh.Groups {
		g := &sh.Groups[i]
		if l.Interrupted {
			g.Violations = nil
		}
		l.Violations = append(l.Violations, g.Violations...)
		if g.Unjudged > 0 {
			l.Notes = append(l.Notes, fmt.Sprintf("shared group %s: %d streams have members or publishers in other shards: their losses are judged by mqttbench merge", g.Name, g.Unjudged))
		}
	}
}
