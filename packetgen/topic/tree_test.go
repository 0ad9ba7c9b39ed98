package topic

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sub is one (filter, value) pair as Tree.Match reports it.
type sub struct {
	filter string
	v      int
}

func collect(tr *Tree[int], name string, bytes bool) []sub {
	var got []sub
	fn := func(f string, v int) { got = append(got, sub{f, v}) }
	if bytes {
		tr.MatchBytes([]byte(name), fn)
	} else {
		tr.Match(name, fn)
	}
	slices.SortFunc(got, cmpSub)
	return got
}

// brute is what Tree.Match must report: every stored pair whose filter
// matches by Match.
func brute(subs []sub, name string) []sub {
	var want []sub
	for _, s := range subs {
		if Match(s.filter, name) {
			want = append(want, s)
		}
	}
	slices.SortFunc(want, cmpSub)
	return want
}

func cmpSub(a, b sub) int {
	if c := strings.Compare(a.filter, b.filter); c != 0 {
		return c
	}
	return a.v - b.v
}

func TestTreeMatchCases(t *testing.T) {
	for _, tc := range matchCases {
		if ValidateFilter(tc.filter, true) != nil {
			continue // a Tree holds only valid filters
		}
		t.Run(quote(tc.filter)+"~"+quote(tc.name), func(t *testing.T) {
			var tr Tree[int]
			if !tr.Add(tc.filter, 1) {
				t.Fatalf("Add(%s) = false", quote(tc.filter))
			}
			var want []sub
			if tc.want {
				want = []sub{{tc.filter, 1}}
			}
			for _, b := range []bool{false, true} {
				if got := collect(&tr, tc.name, b); !slices.Equal(got, want) {
					t.Errorf("Tree.Match (bytes %v) = %v, want %v", b, got, want)
				}
			}
		})
	}
}

func TestTreeAddRemove(t *testing.T) {
	var tr Tree[string]
	steps := []struct {
		op     string // "add" or "remove"
		filter string
		v      string
		want   bool
		len    int
	}{
		{"add", "a/b", "s1", true, 1},
		{"add", "a/b", "s1", false, 1}, // already there
		{"add", "a/b", "s2", true, 2},
		{"add", "a/+", "s1", true, 3},
		{"add", "#", "s1", true, 4},
		{"add", "a/#", "s3", true, 5},
		{"add", "a/#/b", "s1", false, 5}, // invalid filter
		{"add", "", "s1", false, 5},
		{"add", "a+", "s1", false, 5},
		{"remove", "a/b", "s9", false, 5}, // no such value
		{"remove", "a/c", "s1", false, 5}, // no such filter
		{"remove", "a", "s1", false, 5},   // interior node, no values
		{"remove", "a/b", "s1", true, 4},
		{"remove", "a/b", "s1", false, 4},
		{"remove", "a/#/b", "s1", false, 4},
		{"remove", "", "s1", false, 4},
		{"remove", "#", "s1", true, 3},
		{"remove", "a/+", "s1", true, 2},
		{"remove", "a/#", "s3", true, 1},
		{"remove", "a/b", "s2", true, 0},
	}
	for i, s := range steps {
		var got bool
		if s.op == "add" {
			got = tr.Add(s.filter, s.v)
		} else {
			got = tr.Remove(s.filter, s.v)
		}
		if got != s.want || tr.Len() != s.len {
			t.Fatalf("step %d: %s(%q, %q) = %v, Len %d; want %v, Len %d", i, s.op, s.filter, s.v, got, tr.Len(), s.want, s.len)
		}
	}
	// Every node must have been pruned.
	if !tr.root.empty() {
		t.Errorf("root not empty after removing everything: %+v", tr.root)
	}
}

func TestTreeMatchOnce(t *testing.T) {
	// Overlapping filters each report their values once.
	var tr Tree[int]
	filters := []string{"#", "+/+", "a/#", "a/+", "a/b", "a/b/#", "+/b", "+/#", "a/b/+"}
	for i, f := range filters {
		tr.Add(f, i)
		tr.Add(f, 100+i)
	}
	got := collect(&tr, "a/b", true)
	want := []sub{
		{"#", 0}, {"#", 100}, {"+/#", 7}, {"+/#", 107}, {"+/+", 1}, {"+/+", 101},
		{"+/b", 6}, {"+/b", 106}, {"a/#", 2}, {"a/#", 102}, {"a/+", 3}, {"a/+", 103},
		{"a/b", 4}, {"a/b", 104}, {"a/b/#", 5}, {"a/b/#", 105},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Tree.Match(a/b) =\n%v\nwant\n%v", got, want)
	}
}

func TestTreeManyValues(t *testing.T) {
	// Past indexAt values a node keeps an index; removal must keep it
	// consistent whatever the order.
	var tr Tree[int]
	const n = 3 * indexAt
	for i := range n {
		if !tr.Add("x/+", i) {
			t.Fatalf("Add(%d) = false", i)
		}
	}
	if tr.Add("x/+", 7) {
		t.Fatal("Add of a duplicate = true")
	}
	r := rand.New(rand.NewPCG(1, 2))
	order := r.Perm(n)
	for k, i := range order {
		if !tr.Remove("x/+", i) {
			t.Fatalf("Remove(%d) = false", i)
		}
		if tr.Remove("x/+", i) {
			t.Fatalf("second Remove(%d) = true", i)
		}
		var want []sub
		for _, j := range order[k+1:] {
			want = append(want, sub{"x/+", j})
		}
		slices.SortFunc(want, cmpSub)
		if got := collect(&tr, "x/y", false); !slices.Equal(got, want) {
			t.Fatalf("after removing %d values: got %d matches, want %d", k+1, len(got), len(want))
		}
	}
	if tr.Len() != 0 || !tr.root.empty() {
		t.Errorf("Len = %d, root empty = %v", tr.Len(), tr.root.empty())
	}
}

func TestTreeDeep(t *testing.T) {
	var tr Tree[int]
	for i, f := range []string{deepName, deepPlus, deepName + "/#", strings.Repeat("+/", 9999) + "+"} {
		if !tr.Add(f, i) {
			t.Fatalf("Add(filter %d) = false", i)
		}
	}
	if got := collect(&tr, deepName, true); len(got) != 4 {
		t.Errorf("Tree.Match(10,000 levels) found %d subscriptions, want 4", len(got))
	}
	if got := collect(&tr, deepEmpty, true); len(got) != 2 {
		t.Errorf("Tree.Match(10,000 empty levels) found %d subscriptions, want 2", len(got))
	}
}

func TestTreeMatchNoAllocs(t *testing.T) {
	tr, names := benchTree(1000)
	name := []byte(names[0])
	count := 0
	fn := func(string, int) { count++ }
	n := testing.AllocsPerRun(100, func() {
		for _, nm := range names[:50] {
			name = append(name[:0], nm...)
			tr.MatchBytes(name, fn)
		}
	})
	if n != 0 {
		t.Errorf("Tree.MatchBytes allocates %v times per 50 calls, want 0", n)
	}
	if count == 0 {
		t.Error("no matches at all; the test proves nothing")
	}
}

// seed returns the seed of a property test: MQTTBENCH_TOPIC_SEED if set,
// to replay a failure, or a fresh one. It is logged either way.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if env := os.Getenv("MQTTBENCH_TOPIC_SEED"); env != "" {
		var err error
		if s, err = strconv.ParseUint(env, 10, 64); err != nil {
			t.Fatalf("MQTTBENCH_TOPIC_SEED=%q: %v", env, err)
		}
	}
	t.Logf("seed %d (replay: MQTTBENCH_TOPIC_SEED=%d go test -run '%s' ./packetgen/topic/)", s, s, t.Name())
	return s
}

// Levels are drawn from a small alphabet so that random filters and names
// collide often; it has empty levels, '$' and multi-byte UTF-8.
var randLevels = []string{"", "a", "b", "ab", "A", "$", "$SYS", "é", " "}

func randName(r *rand.Rand) string {
	n := 1 + r.IntN(5)
	levels := make([]string, n)
	for i := range levels {
		levels[i] = randLevels[r.IntN(len(randLevels))]
	}
	return strings.Join(levels, "/")
}

func randFilter(r *rand.Rand) string {
	n := 1 + r.IntN(5)
	levels := make([]string, n)
	for i := range levels {
		switch x := r.IntN(10); {
		case x < 3:
			levels[i] = "+"
		case x < 4 && i == n-1:
			levels[i] = "#"
		default:
			levels[i] = randLevels[r.IntN(len(randLevels))]
		}
	}
	return strings.Join(levels, "/")
}

// TestTreeProperty checks Tree.Match against Match, and Match against
// refMatch, over random filters and names, adding and removing
// subscriptions as it goes.
func TestTreeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 0x6d717474))
	for round := range 40 {
		var tr Tree[int]
		var subs []sub
		check := func(stage string) {
			t.Helper()
			if tr.Len() != len(subs) {
				t.Fatalf("round %d %s: Len = %d, want %d", round, stage, tr.Len(), len(subs))
			}
			for range 300 {
				name := randName(r)
				if r.IntN(4) == 0 && len(subs) > 0 {
					// A wildcard-free filter is a name too: make
					// sure exact hits are common.
					if f := subs[r.IntN(len(subs))].filter; ValidateName(f, false) == nil {
						name = f
					}
				}
				want := brute(subs, name)
				for _, b := range []bool{false, true} {
					if got := collect(&tr, name, b); !slices.Equal(got, want) {
						t.Fatalf("round %d %s: Tree.Match(%q) (bytes %v) =\n%v\nwant\n%v", round, stage, name, b, got, want)
					}
				}
				for _, s := range subs {
					if m, ref := Match(s.filter, name), refMatch(s.filter, name); m != ref {
						t.Fatalf("Match(%q, %q) = %v, refMatch = %v", s.filter, name, m, ref)
					}
				}
			}
		}
		for range 60 {
			s := sub{randFilter(r), r.IntN(3)}
			added := tr.Add(s.filter, s.v)
			// "" is the one invalid filter randFilter makes.
			want := s.filter != "" && !slices.Contains(subs, s)
			if added != want {
				t.Fatalf("Add(%q, %d) = %v, want %v", s.filter, s.v, added, want)
			}
			if added {
				subs = append(subs, s)
			}
		}
		check("after adding")
		r.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
		for _, s := range subs[:len(subs)/2] {
			if !tr.Remove(s.filter, s.v) {
				t.Fatalf("Remove(%q, %d) = false", s.filter, s.v)
			}
		}
		subs = subs[len(subs)/2:]
		check("after removing half")
		for _, s := range subs {
			tr.Remove(s.filter, s.v)
		}
		subs = nil
		if !tr.root.empty() {
			t.Fatalf("round %d: tree not pruned after removing everything", round)
		}
	}
}

// benchTree builds a tree of n subscriptions shaped like a broker's: device
// topics with a few wildcard filters per device group, plus some global
// ones, and returns it with names to publish to.
func benchTree(n int) (*Tree[int], []string) {
	var tr Tree[int]
	r := rand.New(rand.NewPCG(42, 42))
	var names []string
	for i := 0; tr.Len() < n; i++ {
		site, dev := r.IntN(20), r.IntN(n)
		name := fmt.Sprintf("site%d/device%d/telemetry/temp", site, dev)
		names = append(names, name)
		switch i % 4 {
		case 0:
			tr.Add(name, i)
		case 1:
			tr.Add(fmt.Sprintf("site%d/+/telemetry/#", site), i)
		case 2:
			tr.Add(fmt.Sprintf("site%d/device%d/#", site, dev), i)
		default:
			tr.Add(fmt.Sprintf("+/device%d/+/temp", dev), i)
		}
	}
	tr.Add("#", -1)
	tr.Add("$SYS/#", -2)
	return &tr, names
}
