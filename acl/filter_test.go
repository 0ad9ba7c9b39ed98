package acl

import (
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

func TestCoversAndOverlaps(t *testing.T) {
	for _, c := range []struct {
		g, f             string
		covers, overlaps bool
	}{
		{"#", "a/b", true, true},
		{"#", "#", true, true},
		{"#", "$SYS/x", false, false},
		{"$SYS/#", "$SYS/x/+", true, true},
		{"$SYS/#", "+/x", false, false},
		{"+/#", "$SYS", false, false},
		{"a/#", "a", true, true},
		{"a/#", "a/+/#", true, true},
		{"a/+", "a/#", false, true}, // mosquitto_sub_matches_acl: + does not match #
		{"a/+", "a/b", true, true},
		{"a/+", "a/+", true, true},
		{"a/b", "a/+", false, true},
		{"a/b", "a/c", false, false},
		{"a/+", "a", false, false},
		{"a/+/#", "a", false, false},
		{"a/+/#", "a/b", true, true},
		{"a", "a/#", false, true},
		{"a//b", "a/+/b", false, true},
		{"a/+/b", "a//b", true, true},
		{"+", "/", false, false},
		{"+/+", "/", true, true},
	} {
		if got := covers(c.g, c.f); got != c.covers {
			t.Errorf("covers(%q, %q) = %v, want %v", c.g, c.f, got, c.covers)
		}
		if got := overlaps(c.g, c.f); got != c.overlaps {
			t.Errorf("overlaps(%q, %q) = %v, want %v", c.g, c.f, got, c.overlaps)
		}
		if got := overlaps(c.f, c.g); got != c.overlaps {
			t.Errorf("overlaps(%q, %q) = %v, want %v (swapped)", c.f, c.g, got, c.overlaps)
		}
	}
}

// TestFilterAlgebraByEnumeration checks covers and overlaps against their
// definitions, by topic.Match over every name of a small universe. The
// universe is complete for the filters used: names have one level more
// than the longest filter (for '#'), and a level ("c") and a '$' level that
// some filters do not name (for '+' and MQTT-4.7.2-1).
func TestFilterAlgebraByEnumeration(t *testing.T) {
	filters := enumerate([]string{"a", "$s", "", "+", "#"}, 3, func(s string) bool {
		return topic.ValidateFilter(s, true) == nil
	})
	names := enumerate([]string{"a", "c", "$s", ""}, 4, func(s string) bool {
		return topic.ValidateName(s, true) == nil
	})
	for _, g := range filters {
		for _, f := range filters {
			cov, ovl := true, false
			for _, n := range names {
				mf, mg := topic.Match(f, n), topic.Match(g, n)
				cov = cov && (!mf || mg)
				ovl = ovl || mf && mg
			}
			if got := covers(g, f); got != cov {
				t.Fatalf("covers(%q, %q) = %v, by enumeration %v", g, f, got, cov)
			}
			if got := overlaps(g, f); got != ovl {
				t.Fatalf("overlaps(%q, %q) = %v, by enumeration %v", g, f, got, ovl)
			}
		}
	}
}

// enumerate joins up to max levels from alphabet, keeping what ok admits.
func enumerate(alphabet []string, max int, ok func(string) bool) []string {
	var out []string
	level := [][]string{{}}
	for n := 1; n <= max; n++ {
		var next [][]string
		for _, prefix := range level {
			for _, l := range alphabet {
				p := append(append([]string(nil), prefix...), l)
				next = append(next, p)
				if s := strings.Join(p, "/"); ok(s) {
					out = append(out, s)
				}
			}
		}
		level = next
	}
	return out
}
