package faults

import (
	"strings"
	"testing"
	"time"
)

func TestParseGroup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		role string
		div  int
		err  string
	}{
		{"subscribers", "subscribers", 1, ""},
		{"subscribers/2", "subscribers", 2, ""},
		{"idle/10", "idle", 10, ""},
		{"subscribers/0", "", 0, `"subscribers/0": want ROLE/N with N a whole number above 0`},
		{"subscribers/half", "", 0, "want ROLE/N"},
		{"lefties/2", "", 0, `"lefties/2" is not one of all, publishers, subscribers, idle (or ROLE/N`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			role, div, err := ParseGroup(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil || role != tc.role || div != tc.div {
				t.Fatalf("%q %d %v; want %q %d", role, div, err, tc.role, tc.div)
			}
		})
	}
}

// A part's spelling is canonical (it names a proxy); /1 is the role.
func TestParseGroupSpelling(t *testing.T) {
	for in, want := range map[string]string{
		"blackhole@3s+5s:group=subscribers/2":  "subscribers/2",
		"blackhole@3s+5s:group=subscribers/02": "subscribers/2",
		"blackhole@3s+5s:group=subscribers/1":  "subscribers",
	} {
		sp, err := Parse(in)
		if err != nil || sp.Group != want {
			t.Errorf("%s: group %q, %v; want %q", in, sp.Group, err, want)
		}
	}
}

// Each connection's cell is the smallest named part that holds it, and a
// fault on a group reaches exactly the cells inside it.
func TestCells(t *testing.T) {
	groups := []string{"publishers", "subscribers", "subscribers/2", "subscribers/4"}
	var got []string
	for k := range 9 {
		got = append(got, CellOf("subscribers", k, 9, groups))
	}
	// 9 subscribers: the first quarter is 3 (rounded up), the first half 5.
	want := "subscribers/4 subscribers/4 subscribers/4 subscribers/2 subscribers/2 subscribers subscribers subscribers subscribers"
	if strings.Join(got, " ") != want {
		t.Errorf("cells %v; want %s", got, want)
	}
	if c := CellOf("publishers", 0, 4, groups); c != "publishers" {
		t.Errorf("publisher 0's cell %q", c)
	}
	if n := PartSize(1, 2); n != 1 {
		t.Errorf("half of one connection is %d; want 1 (a named part is never empty)", n)
	}
	for _, tc := range []struct {
		group, cell string
		want        bool
	}{
		{"subscribers", "subscribers", true},
		{"subscribers", "subscribers/2", true},
		{"subscribers/2", "subscribers/2", true},
		{"subscribers/2", "subscribers/4", true},
		{"subscribers/2", "subscribers", false},
		{"subscribers/4", "subscribers/2", false},
		{"publishers", "subscribers/2", false},
		{"subscribers/2", "publishers", false},
	} {
		if got := Covers(tc.group, tc.cell); got != tc.want {
			t.Errorf("Covers(%s, %s) = %v; want %v", tc.group, tc.cell, got, tc.want)
		}
	}
}

// A fault on half the subscribers reaches their proxy only; one on every
// subscriber reaches both halves.
func TestProxyGroupPart(t *testing.T) {
	e := startEcho(t)
	p := newProxies(t, e.addr(), []string{"publishers", "subscribers", "subscribers/2"}, "")
	half, rest := p.Addr(e.addr(), "subscribers/2"), p.Addr(e.addr(), "subscribers")
	if half == "" || rest == "" || half == rest {
		t.Fatalf("listeners %q and %q", half, rest)
	}
	hc, rc := dialT(t, half), dialT(t, rest)
	inject(t, p, "latency=150ms@0s:group=subscribers/2", "half")
	if d := roundTrip(t, rc); d >= 100*time.Millisecond {
		t.Errorf("the other half's round trip took %s; the fault was on the first half", d)
	}
	if d := roundTrip(t, hc); d < 300*time.Millisecond {
		t.Errorf("the first half's round trip took %s; want 150ms each way", d)
	}
	heal(t, p, "half")
	inject(t, p, "latency=150ms@0s:group=subscribers", "all")
	if d := roundTrip(t, hc); d < 300*time.Millisecond {
		t.Errorf("a fault on every subscriber: the first half's round trip took %s", d)
	}
	if d := roundTrip(t, rc); d < 300*time.Millisecond {
		t.Errorf("a fault on every subscriber: the other half's round trip took %s", d)
	}
}
