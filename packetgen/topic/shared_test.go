package topic

import "testing"

func TestIsShared(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"$share/g/a", true},
		{"$share/", true},
		{"$share", false},
		{"$shared/g/a", false},
		{"$SHARE/g/a", false},
		{"a/$share/g", false},
		{"", false},
	}
	for _, tc := range cases {
		t.Run(quote(tc.in), func(t *testing.T) {
			if got := IsShared(tc.in); got != tc.want {
				t.Errorf("IsShared(string) = %v, want %v", got, tc.want)
			}
			if got := IsShared([]byte(tc.in)); got != tc.want {
				t.Errorf("IsShared([]byte) = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseShared(t *testing.T) {
	cases := []struct {
		desc         string
		in           string
		group, inner string
		rule         string // "" if valid
		at           string
	}{
		// Section 4.8.2 examples.
		{"spec example", "$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", "", ""},
		{"spec example, empty first level", "$share/consumer1//finance", "consumer1", "/finance", "", ""},
		{"'#' filter", "$share/g/#", "g", "#", "", ""},
		{"'$' filter", "$share/g/$SYS/#", "g", "$SYS/#", "", ""},
		{"nested $share is just a filter", "$share/g/$share/h/x", "g", "$share/h/x", "", ""},
		{"UTF-8 ShareName", "$share/gruppé/a", "gruppé", "a", "", ""},
		{"'$' in ShareName", "$share/$g/a", "$g", "a", "", ""},

		{"not shared", "a/b", "", "", "MQTT-4.8.2-1", ""},
		{"no slash after $share", "$share", "", "", "MQTT-4.8.2-1", ""},
		{"empty ShareName", "$share//a", "", "", "MQTT-4.8.2-1", ""},
		{"nothing after prefix", "$share/", "", "", "MQTT-4.8.2-1", ""},
		{"ShareName not followed by '/'", "$share/g", "", "", "MQTT-4.8.2-2", ""},
		{"no filter after '/'", "$share/g/", "", "", "MQTT-4.8.2-2", ""},
		{"'+' in ShareName", "$share/a+b/x", "", "", "MQTT-4.8.2-2", "at byte 8"},
		{"'#' in ShareName", "$share/#/x", "", "", "MQTT-4.8.2-2", "at byte 7"},
		{"'+' as ShareName", "$share/+/x", "", "", "MQTT-4.8.2-2", "at byte 7"},
		{"U+0000 in ShareName", "$share/a\x00/x", "", "", "MQTT-1.5.4-2", "at byte 8"},
		{"bad UTF-8 in ShareName", "$share/a\xff/x", "", "", "MQTT-1.5.4-1", "at byte 8"},
		{"surrogate in ShareName", "$share/\xed\xa0\x80/x", "", "", "MQTT-1.5.4-1", "at byte 7"},
		{"bad filter, '#' not last", "$share/g/a/#/b", "", "", "MQTT-4.7.1-1", "at byte 11"},
		{"bad filter, '+' glued", "$share/g/a+", "", "", "MQTT-4.7.1-2", "at byte 10"},
		{"bad filter, U+0000", "$share/g/a\x00", "", "", "MQTT-1.5.4-2", "at byte 10"},
		{"bad filter, UTF-8", "$share/g/\xc0\x80", "", "", "MQTT-1.5.4-1", "at byte 9"},
		// Encoding faults outrank the structure of the shared form.
		{"empty ShareName, then byte FF", "$share//\xff", "", "", "MQTT-1.5.4-1", "at byte 8"},
		{"'+' in ShareName, then U+0000", "$share/a+/x\x00", "", "", "MQTT-1.5.4-2", "at byte 11"},
		{"no '/' after a ShareName with byte FF", "$share/\xff", "", "", "MQTT-1.5.4-1", "at byte 7"},
		{"bad filter, '+' glued, then a surrogate", "$share/g/a+\xed\xbf\xbf", "", "", "MQTT-1.5.4-1", "at byte 11"},
		{"no filter after '/', U+0000 in ShareName", "$share/\x00/", "", "", "MQTT-1.5.4-2", "at byte 7"},
		{"65,535 bytes", "$share/g/" + maxName[9:], "g", maxName[9:], "", ""},
		{"65,536 bytes", "$share/g/" + maxName[8:], "", "", "MQTT-4.7.3-3", ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			group, inner, err := ParseShared(tc.in)
			checkErr(t, "ParseShared", err, tc.rule, tc.at)
			if group != tc.group || inner != tc.inner {
				t.Errorf("ParseShared = %q, %q, want %q, %q", group, inner, tc.group, tc.inner)
			}
			if err == nil {
				if !IsShared(tc.in) {
					t.Error("IsShared = false for a valid shared filter")
				}
				if verr := ValidateFilter(inner, true); verr != nil {
					t.Errorf("inner filter %q invalid: %v", inner, verr)
				}
			}
		})
	}
}
