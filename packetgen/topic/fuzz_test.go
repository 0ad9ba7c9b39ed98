package topic

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// refValid is section 4.7.3, 4.7.1 and 1.5.3 written as plainly as
// possible, built on the standard library's UTF-8 decoder, to check
// ValidateName and ValidateFilter against.
func refValid(s string, filter bool) bool {
	if s == "" || len(s) > 65535 || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return false
	}
	if !filter {
		return !strings.ContainsAny(s, "+#")
	}
	levels := strings.Split(s, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i == len(levels)-1, l == "+":
		case strings.ContainsAny(l, "+#"):
			return false
		}
	}
	return true
}

// v5IDs maps each 3.1.1 statement the validators report to its 5.0 number.
var v5IDs = map[string]string{
	"MQTT-1.5.3-1": "MQTT-1.5.4-1",
	"MQTT-1.5.3-2": "MQTT-1.5.4-2",
	"MQTT-4.7.1-1": "MQTT-4.7.0-1",
	"MQTT-4.7.1-2": "MQTT-4.7.1-1",
	"MQTT-4.7.1-3": "MQTT-4.7.1-2",
	"MQTT-4.7.3-1": "MQTT-4.7.3-1",
	"MQTT-4.7.3-3": "MQTT-4.7.3-3",
}

// checkVersions asserts that the 3.1.1 and 5.0 answers for one input are
// the same fault under each version's number, and that the string and
// []byte forms agree.
func checkVersions(t *testing.T, call string, v3, v5, v3b error) {
	t.Helper()
	if (v3 == nil) != (v5 == nil) {
		t.Fatalf("%s: 3.1.1 says %v, 5.0 says %v", call, v3, v5)
	}
	if (v3 == nil) != (v3b == nil) || (v3 != nil && v3.Error() != v3b.Error()) {
		t.Fatalf("%s: string says %v, []byte says %v", call, v3, v3b)
	}
	if v3 == nil {
		return
	}
	var e3, e5 *Error
	if !errors.As(v3, &e3) || !errors.As(v5, &e5) {
		t.Fatalf("%s: errors %T, %T are not *Error", call, v3, v5)
	}
	if want, ok := v5IDs[e3.Rule]; !ok || e5.Rule != want {
		t.Fatalf("%s: 3.1.1 rule %s, 5.0 rule %s", call, e3.Rule, e5.Rule)
	}
	if e3.Detail != e5.Detail || e3.Detail == "" || strings.ContainsAny(e3.Detail, "\r\n") {
		t.Fatalf("%s: Details %q / %q", call, e3.Detail, e5.Detail)
	}
}

func addTopicSeeds(f *testing.F) {
	for _, tc := range topicCases {
		if len(tc.in) < 256 {
			f.Add(tc.in)
		}
	}
	for _, s := range []string{"$share/g/a/#", "$share//a", "$share/g", "$share/a+/b", "$share/g/", "$share/\xed\xa0\x80/a"} {
		f.Add(s)
	}
}

func FuzzValidateFilter(f *testing.F) {
	addTopicSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		ferr := ValidateFilter(s, false)
		checkVersions(t, "ValidateFilter", ferr, ValidateFilter(s, true), ValidateFilter(b, false))
		nerr := ValidateName(s, false)
		checkVersions(t, "ValidateName", nerr, ValidateName(s, true), ValidateName(b, false))
		if got, want := ferr == nil, refValid(s, true); got != want {
			t.Fatalf("ValidateFilter(%q) = %v, reference says valid=%v", s, ferr, want)
		}
		if got, want := nerr == nil, refValid(s, false); got != want {
			t.Fatalf("ValidateName(%q) = %v, reference says valid=%v", s, nerr, want)
		}
		if nerr == nil && ferr != nil {
			t.Fatalf("valid name %q is an invalid filter: %v", s, ferr)
		}

		uerr := ValidUTF8(s, false)
		checkVersions(t, "ValidUTF8", uerr, ValidUTF8(s, true), ValidUTF8(b, false))
		if got, want := uerr == nil, utf8.ValidString(s) && strings.IndexByte(s, 0) < 0; got != want {
			t.Fatalf("ValidUTF8(%q) = %v, want valid=%v", s, uerr, want)
		}
		// Wherever an encoding fault sits, it is the one reported: it
		// closes the connection, a misplaced wildcard need not.
		if uerr != nil && len(s) <= MaxLength {
			for call, err := range map[string]error{"ValidateFilter": ferr, "ValidateName": nerr} {
				if !isEncodingError(err) {
					t.Fatalf("%s(%q) = %v, but the string's encoding is at fault: %v", call, s, err, uerr)
				}
			}
		}

		if n := Levels(s); s != "" && n != strings.Count(s, "/")+1 {
			t.Fatalf("Levels(%q) = %d", s, n)
		}

		if IsShared(s) != strings.HasPrefix(s, "$share/") {
			t.Fatalf("IsShared(%q) = %v", s, IsShared(s))
		}
		group, inner, err := ParseShared(s)
		if (err == nil) != refShared(s) {
			t.Fatalf("ParseShared(%q) = %v, reference says valid=%v", s, err, refShared(s))
		}
		if uerr != nil && len(s) <= MaxLength && !isEncodingError(err) {
			t.Fatalf("ParseShared(%q) = %v, but the string's encoding is at fault: %v", s, err, uerr)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Rule, "MQTT-") || strings.HasPrefix(e.Rule, "MQTT-1.5.3") {
				t.Fatalf("ParseShared(%q) error %v", s, err)
			}
			return
		}
		if "$share/"+group+"/"+inner != s {
			t.Fatalf("ParseShared(%q) = %q, %q", s, group, inner)
		}
	})
}

// isEncodingError reports whether err breaks one of the UTF-8 string rules
// (1.5.3 in 3.1.1, 1.5.4 in 5.0) rather than a topic rule.
func isEncodingError(err error) bool {
	var e *Error
	return errors.As(err, &e) && (strings.HasPrefix(e.Rule, "MQTT-1.5.3-") || strings.HasPrefix(e.Rule, "MQTT-1.5.4-"))
}

// refShared is section 4.8.2 written plainly, to check ParseShared against.
func refShared(s string) bool {
	rest, ok := strings.CutPrefix(s, "$share/")
	if !ok || len(s) > 65535 || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return false
	}
	group, inner, ok := strings.Cut(rest, "/")
	return ok && group != "" && !strings.ContainsAny(group, "+#") && refValid(inner, true)
}

func FuzzMatch(f *testing.F) {
	for _, tc := range matchCases {
		if len(tc.filter) < 256 && len(tc.name) < 256 {
			f.Add(tc.filter, tc.name)
		}
	}
	f.Add("a/#/b", "a/x")
	f.Add("+a", "$x")
	f.Add("a/", "a")
	f.Add("\xff/+", "\xff/a")
	f.Fuzz(func(t *testing.T, filter, name string) {
		// Match never panics, whatever it is given, and the four
		// string/[]byte combinations agree.
		m := Match(filter, name)
		if Match([]byte(filter), []byte(name)) != m || Match(filter, []byte(name)) != m || Match([]byte(filter), name) != m {
			t.Fatalf("Match(%q, %q): string and []byte forms disagree", filter, name)
		}
		validFilter := ValidateFilter(filter, true) == nil
		validName := ValidateName(name, true) == nil

		if validName {
			if ValidateFilter(name, true) != nil {
				t.Fatalf("valid name %q is an invalid filter", name)
			}
			if !Match(name, name) {
				t.Fatalf("Match(%q, itself) = false", name)
			}
		}
		if !validFilter {
			return
		}
		if !strings.ContainsAny(filter, "+#") && m != (filter == name) {
			t.Fatalf("Match(%q, %q) = %v for a filter without wildcards", filter, name, m)
		}
		if validName {
			if ref := refMatch(filter, name); m != ref {
				t.Fatalf("Match(%q, %q) = %v, refMatch = %v", filter, name, m, ref)
			}
			if filter == "#" && m != (name[0] != '$') {
				t.Fatalf(`Match("#", %q) = %v`, name, m)
			}
		}

		// Tree.Match equals Match, with the fuzzed filter among others
		// that overlap it.
		var tr Tree[int]
		subs := []sub{{filter, 0}, {"#", 1}, {"+", 2}, {"+/#", 3}}
		if validName {
			subs = append(subs, sub{name, 4})
		}
		if i := strings.LastIndexByte(filter, '/'); i > 0 {
			subs = append(subs, sub{filter[:i] + "/#", 5})
		}
		var added []sub
		for _, s := range subs {
			if tr.Add(s.filter, s.v) {
				added = append(added, s)
			}
		}
		want := brute(added, name)
		for _, b := range []bool{false, true} {
			if got := collect(&tr, name, b); !slices.Equal(got, want) {
				t.Fatalf("Tree.Match(%q) (bytes %v) = %v, Match says %v", name, b, got, want)
			}
		}
		if !tr.Remove(filter, 0) {
			t.Fatalf("Remove(%q) = false", filter)
		}
	})
}
