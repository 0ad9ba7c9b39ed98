package topic

import (
	"strings"
	"testing"
)

// matchCases holds every example of section 4.7 (3.1.1 and 5.0 carry the
// same ones) and the edge cases around empty levels, '$' and deep topics.
// The tree tests and the fuzz seed corpus read it too.
var matchCases = []struct {
	filter, name string
	want         bool
}{
	// 4.7.1.2: "sport/tennis/player1/#".
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/tennis/player1/#", "sport/tennis/player2", false},
	{"sport/tennis/player1/#", "sport/tennis", false},
	// "sport/#" also matches the singular "sport".
	{"sport/#", "sport", true},
	{"sport/#", "sport/", true},
	{"sport/#", "sport/tennis/player1", true},
	{"sport/#", "sports", false},
	{"sport/#", "/sport", false},
	// "#" receives every application message (but see 4.7.2).
	{"#", "sport", true},
	{"#", "/", true},
	{"#", "/finance", true},
	{"#", "a/b/c", true},
	{"#", " ", true},
	{"sport/tennis/#", "sport/tennis/x", true},
	// 4.7.1.3: "sport/tennis/+".
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/tennis/+", "sport/tennis", false},
	{"sport/tennis/+", "sport/tennis/", true},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+", "sport", true},
	{"+/tennis/#", "sport/tennis", true},
	{"+/tennis/#", "sport/tennis/player1", true},
	{"+/tennis/#", "sport/golf", false},
	{"sport/+/player1", "sport/tennis/player1", true},
	{"sport/+/player1", "sport//player1", true},
	{"sport/+/player1", "sport/tennis/player2", false},
	// "/finance" matches "+/+" and "/+", but not "+".
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	// 4.7.2: topics beginning with '$'.
	{"#", "$SYS", false},
	{"#", "$SYS/x", false},
	{"#", "$", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"+", "$SYS", false},
	{"+/#", "$SYS/x", false},
	{"$SYS/#", "$SYS/", true},
	{"$SYS/#", "$SYS/x", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/+/Clients", "$SYS/monitor/Clients", true},
	{"$SYS", "$SYS", true},
	{"$+", "$SYS", false}, // not a valid filter, but must not match as '+'
	{"a/$SYS/#", "a/$SYS/x", true},
	{"+/$SYS", "a/$SYS", true}, // only the first character of the name counts
	{"#", "a$", true},
	// 4.7.3: case sensitive, spaces, leading '/', no normalisation.
	{"ACCOUNTS", "Accounts", false},
	{"Accounts", "Accounts", true},
	{"Accounts payable", "Accounts payable", true},
	{"Accounts payable", "Accounts  payable", false},
	{"/finance", "finance", false},
	{"finance", "/finance", false},
	{"/", "/", true},
	{"/", "//", false},
	{"\u00e9", "e\u0301", false}, // precomposed vs decomposed (MQTT-4.7.3-4)
	{"\ufeffa", "a", false},      // U+FEFF is not stripped (MQTT-1.5.3-3)
	{"\ufeffa", "\ufeffa", true},
	{"caf\u00e9/+", "caf\u00e9/\U0001F600", true},
	// Empty levels are levels.
	{"+/+", "/", true},
	{"+", "/", false},
	{"+/+/+", "//", true},
	{"a//b", "a//b", true},
	{"a/+/b", "a//b", true},
	{"a/b", "a//b", false},
	{"a//b", "a/b", false},
	{"a/", "a/", true},
	{"a/", "a", false},
	{"a", "a/", false},
	{"/#", "/", true},
	{"/#", "/a/b", true},
	{"/#", "a", false},
	{"a/#", "a", true},
	{"a/#", "a/", true},
	{"a/#", "a/b/c", true},
	{"a/#", "ab", false},
	{"a/#", "b/a", false},
	{"a/+/#", "a", false},
	{"a/+/#", "a/", true},
	{"a/+/#", "a/b", true},
	{"a/+/#", "a/b/c/d", true},
	{"+/+", "a", false},
	{"+/+", "a/b/c", false},
	{"a/b/c", "a/b", false},
	{"a/b", "a/b/c", false},
	{"ab", "a", false},
	{"a", "ab", false},
	// Empty strings are not topics.
	{"#", "", false},
	{"", "a", false},
	{"", "", false},
	// Deep topics.
	{deepName, deepName, true},
	{deepPlus, deepName, true},
	{"#", deepName, true},
	{strings.Repeat("+/", 9999) + "+", deepName, true},
	{strings.Repeat("+/", 9999) + "+", deepName + "/a", false},
	{strings.Repeat("+/", 9999) + "+", deepEmpty, true},
	{deepName + "/#", deepName, true},
	{deepName[:len(deepName)-1] + "b", deepName, false},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(quote(tc.filter)+"~"+quote(tc.name), func(t *testing.T) {
			if got := Match(tc.filter, tc.name); got != tc.want {
				t.Errorf("Match(%s, %s) = %v, want %v", quote(tc.filter), quote(tc.name), got, tc.want)
			}
			if got := Match([]byte(tc.filter), []byte(tc.name)); got != tc.want {
				t.Errorf("Match([]byte, []byte) = %v, want %v", got, tc.want)
			}
			if got := Match(tc.filter, []byte(tc.name)); got != tc.want {
				t.Errorf("Match(string, []byte) = %v, want %v", got, tc.want)
			}
			if ValidateFilter(tc.filter, true) == nil && ValidateName(tc.name, true) == nil {
				if ref := refMatch(tc.filter, tc.name); ref != tc.want {
					t.Errorf("refMatch = %v, the table is wrong", ref)
				}
			}
		})
	}
}

// refMatch is section 4.7 written as plainly as possible, to check Match
// against. Both arguments must be valid.
func refMatch(filter, name string) bool {
	if filter == "" || name == "" {
		return false
	}
	if name[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	f, n := strings.Split(filter, "/"), strings.Split(name, "/")
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i == len(n) || (level != "+" && level != n[i]) {
			return false
		}
	}
	return len(f) == len(n)
}

func TestMatchNoAllocs(t *testing.T) {
	filter, name := []byte("sport/+/player1/#"), []byte("sport/tennis/player1/score/wimbledon")
	n := testing.AllocsPerRun(100, func() {
		if !Match(filter, name) || !Match(string(filter[:7]), name[:6]) {
			t.Fatal("no match")
		}
		_ = ValidateName(name, true)
		_ = ValidateFilter(filter, true)
	})
	if n != 0 {
		t.Errorf("Match and Validate allocate %v times per call, want 0", n)
	}
}
