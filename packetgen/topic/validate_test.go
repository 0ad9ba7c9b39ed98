package topic

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// ids is the statement a case must break in each protocol version; the zero
// value means the input is valid. The IDs are spelled out here rather than
// taken from the package so that a renumbering there fails these tests.
type ids struct{ v311, v5 string }

var (
	valid    = ids{}
	errEmpty = ids{"MQTT-4.7.3-1", "MQTT-4.7.3-1"}
	// U+0000 in a topic breaks MQTT-4.7.3-2 and the UTF-8 rule it restates;
	// the package reports the latter, which obliges the receiver to close.
	errNull     = ids{"MQTT-1.5.3-2", "MQTT-1.5.4-2"}
	errLength   = ids{"MQTT-4.7.3-3", "MQTT-4.7.3-3"}
	errUTF8     = ids{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}
	errUTF8Null = ids{"MQTT-1.5.3-2", "MQTT-1.5.4-2"}
	errWildName = ids{"MQTT-4.7.1-1", "MQTT-4.7.0-1"}
	errHash     = ids{"MQTT-4.7.1-2", "MQTT-4.7.1-1"}
	errPlus     = ids{"MQTT-4.7.1-3", "MQTT-4.7.1-2"}
)

func version(v5 bool) string {
	if v5 {
		return "v5"
	}
	return "v3.1.1"
}

func (w ids) of(v5 bool) string {
	if v5 {
		return w.v5
	}
	return w.v311
}

var (
	maxName   = strings.Repeat("a", 65535)
	deepName  = strings.Repeat("a/", 9999) + "a"  // 10,000 levels
	deepPlus  = strings.Repeat("+/", 9999) + "#"  // 10,000 levels
	deepEmpty = strings.Repeat("/", 9999)         // 10,000 empty levels
	deepBad   = strings.Repeat("a/", 5000) + "#/" // '#' not last, deep down
)

// topicCases is shared by the validation tests and the fuzz seed corpus.
var topicCases = []struct {
	desc   string
	in     string
	name   ids    // ValidateName
	filter ids    // ValidateFilter
	at     string // expected in Detail, if set
}{
	// 4.7.3: length and characters.
	{"empty", "", errEmpty, errEmpty, ""},
	{"one character", "a", valid, valid, ""},
	{"only a separator", "/", valid, valid, ""},
	{"leading separator", "/finance", valid, valid, ""},
	{"trailing separator", "finance/", valid, valid, ""},
	{"empty levels", "a//b", valid, valid, ""},
	{"space", "Accounts payable", valid, valid, ""},
	{"only a space", " ", valid, valid, ""},
	{"case", "ACCOUNTS/Accounts", valid, valid, ""},
	{"dollar", "$SYS/broker/uptime", valid, valid, ""},
	{"U+0000", "a\x00b", errNull, errNull, "at byte 1"},
	{"only U+0000", "\x00", errNull, errNull, "at byte 0"},
	{"U+0000 last", "a/\x00", errNull, errNull, "at byte 2"},
	{"control character U+0001 is only discouraged", "a\x01b", valid, valid, ""},
	{"U+007F is only discouraged", "a\x7fb", valid, valid, ""},
	{"U+0080 is only discouraged", "a\u0080b", valid, valid, ""},
	{"non-character U+FFFF is only discouraged", "a\uffff", valid, valid, ""},
	{"U+FEFF is an ordinary character", "\ufeffa", valid, valid, ""},
	{"U+FFFD is an ordinary character", "\ufffd", valid, valid, ""},
	{"spec example A U+2A6D4", "A\U0002A6D4", valid, valid, ""},
	{"65,535 bytes", maxName, valid, valid, ""},
	{"65,536 bytes", maxName + "a", errLength, errLength, "65536 bytes"},
	{"65,536 bytes of wildcards", strings.Repeat("#", 65536), errLength, errLength, ""},
	{"65,535 bytes ending in U+0000", maxName[1:] + "\x00", errNull, errNull, "at byte 65534"},
	{"10,000 levels", deepName, valid, valid, ""},
	{"10,000 empty levels", deepEmpty, valid, valid, ""},
	{"10,000 wildcard levels", deepPlus, errWildName, valid, "at byte 0"},
	{"deep '#' not last", deepBad, errWildName, errHash, "at byte 10000"},

	// 1.5.3 / 1.5.4: UTF-8.
	{"invalid byte FF", "a\xffb", errUTF8, errUTF8, "at byte 1"},
	{"stray continuation byte", "\x80", errUTF8, errUTF8, "at byte 0"},
	{"truncated sequence", "a/\xc3", errUTF8, errUTF8, "at byte 2"},
	{"truncated 3-byte sequence", "\xe2\x82", errUTF8, errUTF8, "at byte 0"},
	{"over-long '/'", "a\xc0\xafb", errUTF8, errUTF8, "at byte 1"},
	{"over-long U+0000", "a\xc0\x80", errUTF8, errUTF8, "at byte 1"},
	{"over-long 3-byte", "\xe0\x80\xaf", errUTF8, errUTF8, ""},
	{"over-long 4-byte", "\xf0\x8f\xbf\xbf", errUTF8, errUTF8, ""},
	{"surrogate U+D800", "a/\xed\xa0\x80", errUTF8, errUTF8, "surrogate (U+D800..U+DFFF) at byte 2"},
	{"surrogate U+DFFF", "\xed\xbf\xbf", errUTF8, errUTF8, "surrogate"},
	{"surrogate pair (CESU-8)", "\xed\xa0\xbd\xed\xb8\x80", errUTF8, errUTF8, "at byte 0"},
	{"U+D7FF below the surrogates", "\xed\x9f\xbf", valid, valid, ""},
	{"U+E000 above the surrogates", "\xee\x80\x80", valid, valid, ""},
	{"U+10FFFF", "\xf4\x8f\xbf\xbf", valid, valid, ""},
	{"above U+10FFFF", "\xf4\x90\x80\x80", errUTF8, errUTF8, ""},
	{"F5 lead byte", "\xf5\x80\x80\x80", errUTF8, errUTF8, ""},

	// 4.7.1: wildcards.
	{"'#' alone", "#", errWildName, valid, "at byte 0"},
	{"'+' alone", "+", errWildName, valid, "at byte 0"},
	{"'#' after a level", "sport/tennis/#", errWildName, valid, "at byte 13"},
	{"'#' glued to a level", "sport/tennis#", errWildName, errHash, "at byte 12"},
	{"'#' glued, short", "a/b#", errWildName, errHash, "at byte 3"},
	{"'#' not last", "sport/tennis/#/ranking", errWildName, errHash, "at byte 13"},
	{"'#' not last, short", "a/#/b", errWildName, errHash, "at byte 2"},
	{"'#' first of two levels", "#/a", errWildName, errHash, "at byte 0"},
	{"'#' before a trailing '/'", "a/#/", errWildName, errHash, "at byte 2"},
	{"'##'", "##", errWildName, errHash, "at byte 0"},
	{"'#' after an empty level", "/#", errWildName, valid, ""},
	{"'#' after '+'", "+/#", errWildName, valid, ""},
	{"'+' glued to a level", "sport+", errWildName, errPlus, "at byte 5"},
	{"'+' glued, short", "a+", errWildName, errPlus, "at byte 1"},
	{"'+' before a level", "+a", errWildName, errPlus, "at byte 0"},
	{"'+' inside a level", "a/b+c/d", errWildName, errPlus, "at byte 3"},
	{"'++'", "++", errWildName, errPlus, "at byte 0"},
	{"'+#'", "+#", errWildName, errPlus, "at byte 0"},
	{"'#+'", "#+", errWildName, errHash, "at byte 0"},
	{"'+' first and last", "+/a/+", errWildName, valid, "at byte 0"},
	{"'+' in the middle", "sport/+/player1", errWildName, valid, "at byte 6"},
	{"'+' with '#'", "+/tennis/#", errWildName, valid, ""},
	{"'+' on empty levels", "+/+", errWildName, valid, ""},
	{"'+' after a trailing '/'", "a/+", errWildName, valid, ""},
	{"'$' then wildcard", "$SYS/#", errWildName, valid, "at byte 5"},
	{"wildcard after bad UTF-8 reports the first fault", "\xff/#", errUTF8, errUTF8, "at byte 0"},
	{"U+0000 before a wildcard", "\x00+", errNull, errNull, "at byte 0"},

	// An encoding fault (1.5.3 / 1.5.4) outranks a wildcard or topic name
	// fault wherever each sits: ill-formed UTF-8 and U+0000 oblige the
	// receiver to close the connection, while a misplaced wildcard in a
	// filter may be refused in SUBACK and the connection kept.
	{"'+' before U+0000", "+\x00", errNull, errNull, "at byte 1"},
	{"'+' glued, then byte FF", "a+\xff", errUTF8, errUTF8, "at byte 2"},
	{"'#' not last, then U+0000", "#a\x00", errNull, errNull, "at byte 2"},
	{"'+' then byte FF in a name", "+\xffa", errUTF8, errUTF8, "at byte 1"},
	{"'#' not last, then a surrogate", "a/#/\xed\xa0\x80", errUTF8, errUTF8, "surrogate (U+D800..U+DFFF) at byte 4"},
	{"'##' then U+0000", "##\x00", errNull, errNull, "at byte 2"},
	{"deep '#' not last, then a cut sequence", deepBad + "\xe2\x82", errUTF8, errUTF8, "at byte 10002"},
	{"valid wildcards, then byte FF", "+/a/#\xff", errUTF8, errUTF8, "at byte 5"},
	{"shared form is literal here", "$share/g/a/#", errWildName, valid, ""},
}

func TestValidate(t *testing.T) {
	for _, tc := range topicCases {
		for _, v5 := range []bool{false, true} {
			t.Run(tc.desc+"/"+version(v5), func(t *testing.T) {
				checkErr(t, "ValidateName(string)", ValidateName(tc.in, v5), tc.name.of(v5), tc.at)
				checkErr(t, "ValidateName([]byte)", ValidateName([]byte(tc.in), v5), tc.name.of(v5), tc.at)
				checkErr(t, "ValidateFilter(string)", ValidateFilter(tc.in, v5), tc.filter.of(v5), tc.at)
				checkErr(t, "ValidateFilter([]byte)", ValidateFilter([]byte(tc.in), v5), tc.filter.of(v5), tc.at)
			})
		}
	}
}

// checkErr asserts that err breaks rule (nil if rule is ""), and that its
// Detail mentions at. Only a Detail of the expected rule is checked for at:
// a name and a filter may fail the same input at different bytes.
func checkErr(t *testing.T, call string, err error, rule, at string) {
	t.Helper()
	if rule == "" {
		if err != nil {
			t.Errorf("%s = %v, want nil", call, err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s = %v (%T), want *Error with Rule %s", call, err, err, rule)
	}
	if e.Rule != rule {
		t.Errorf("%s: Rule = %s, want %s (%v)", call, e.Rule, rule, err)
	}
	if want := rule + ": " + e.Detail; err.Error() != want {
		t.Errorf("%s: Error() = %q, want %q", call, err.Error(), want)
	}
	if e.Detail == "" || strings.ContainsAny(e.Detail, "\n\r") {
		t.Errorf("%s: Detail %q is not one line", call, e.Detail)
	}
	if len(e.Detail) > 200 {
		t.Errorf("%s: Detail is %d bytes long, want the input shortened", call, len(e.Detail))
	}
	if at != "" && !strings.Contains(e.Detail, at) {
		t.Errorf("%s: Detail %q does not say %q", call, e.Detail, at)
	}
}

func TestDetailExample(t *testing.T) {
	err := ValidateFilter("a/#/b", false)
	const want = `MQTT-4.7.1-2: "#" must be the last character of the filter, found at byte 2 of "a/#/b"`
	if err == nil || err.Error() != want {
		t.Errorf("ValidateFilter(%q) = %v, want %s", "a/#/b", err, want)
	}
}

func TestValidUTF8(t *testing.T) {
	cases := []struct {
		desc string
		in   string
		want ids
	}{
		{"empty", "", valid},
		{"ASCII", "hello/world", valid},
		{"wildcards are not its business", "+/#", valid},
		{"U+0000", "a\x00", errUTF8Null},
		{"over-long U+0000", "\xc0\x80", errUTF8},
		{"surrogate ED A0 80", "\xed\xa0\x80", errUTF8},
		{"U+FEFF kept", "\ufeff", valid},
		{"4-byte", "\U0001F600", valid},
		{"longer than a topic may be", maxName + "a", valid},
	}
	for _, tc := range cases {
		for _, v5 := range []bool{false, true} {
			t.Run(tc.desc+"/"+version(v5), func(t *testing.T) {
				checkErr(t, "ValidUTF8(string)", ValidUTF8(tc.in, v5), tc.want.of(v5), "")
				checkErr(t, "ValidUTF8([]byte)", ValidUTF8([]byte(tc.in), v5), tc.want.of(v5), "")
			})
		}
	}
}

// TestValidUTF8Exhaustive checks every 1- and 2-byte string, every 3-byte
// string that starts with a 3-byte lead, and the 4-byte strings with every
// second and third byte (and every fourth) against the standard library,
// which implements the same Unicode table.
func TestValidUTF8Exhaustive(t *testing.T) {
	b := make([]byte, 0, 4)
	check := func(b []byte) {
		t.Helper()
		want := utf8.Valid(b) && !strings.ContainsRune(string(b), 0)
		if got := ValidUTF8(b, false) == nil; got != want {
			t.Fatalf("ValidUTF8(% X) valid = %v, want %v", b, got, want)
		}
	}
	for x := 0; x < 1<<16; x++ {
		b = append(b[:0], byte(x>>8), byte(x))
		check(b)
		check(b[1:])
	}
	for lead := 0xE0; lead <= 0xEF; lead++ {
		for x := 0; x < 1<<16; x++ {
			check(append(b[:0], byte(lead), byte(x>>8), byte(x)))
		}
	}
	for lead := 0xF0; lead <= 0xF7; lead++ {
		for x := 0; x < 1<<16; x++ {
			check(append(b[:0], byte(lead), byte(x>>8), byte(x), 0x80))
		}
		for x := 0; x < 1<<8; x++ {
			check(append(b[:0], byte(lead), 0x90, 0x80, byte(x)))
		}
	}
}

func TestLevels(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"/", 2},
		{"/finance", 2},
		{"a//b", 3},
		{"a/b/", 3},
		{"#", 1},
		{deepName, 10000},
		{deepEmpty, 10000},
	}
	for _, tc := range cases {
		t.Run(quote(tc.in), func(t *testing.T) {
			if got := Levels(tc.in); got != tc.want {
				t.Errorf("Levels(string) = %d, want %d", got, tc.want)
			}
			if got := Levels([]byte(tc.in)); got != tc.want {
				t.Errorf("Levels([]byte) = %d, want %d", got, tc.want)
			}
		})
	}
}

// Text accepts types defined on string and []byte, not only the two
// predeclared ones.
type (
	myString string
	myBytes  []byte
)

func TestDefinedTypes(t *testing.T) {
	if err := ValidateFilter(myString("a/+"), true); err != nil {
		t.Errorf("ValidateFilter(myString) = %v", err)
	}
	if err := ValidateName(myBytes("a/+"), true); err == nil {
		t.Error("ValidateName(myBytes(\"a/+\")) = nil, want an error")
	}
	if !Match(myString("a/+"), myBytes("a/b")) {
		t.Error("Match(myString, myBytes) = false")
	}
}
