package acl

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// Load reads an acl_file.
func Load(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads an acl_file from r (format in the package documentation).
// name labels errors, which read "name:line: what is wrong".
func Parse(r io.Reader, name string) (*ACL, error) {
	a := &ACL{users: map[string][]rule{}}
	sc := bufio.NewScanner(r)
	// A topic may be 65,535 bytes; leave room for the keyword and access.
	sc.Buffer(nil, topic.MaxLength+1024)
	user, inUser := "", false
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		keyword, rest, _ := cutBlank(line)
		switch keyword {
		case "user":
			if rest == "" {
				return nil, fmt.Errorf("%s:%d: user needs a user name", name, n)
			}
			user, inUser = rest, true
		case "topic", "pattern":
			ru, err := parseRule(keyword, rest)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, n, err)
			}
			switch {
			case keyword == "pattern":
				a.patterns = append(a.patterns, ru)
			case inUser:
				a.users[user] = append(a.users[user], ru)
			default:
				a.anon = append(a.anon, ru)
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown keyword %q (want topic, pattern or user)", name, n, keyword)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, n+1, err)
	}
	return a, nil
}

var accessWords = map[string]Access{"read": Read, "write": Write, "readwrite": ReadWrite, "deny": 0}

// parseRule reads "[ACCESS] TOPIC", the rest of a topic or pattern line.
func parseRule(keyword, rest string) (rule, error) {
	if rest == "" {
		return rule{}, fmt.Errorf("%s needs a topic", keyword)
	}
	access, filter := ReadWrite, rest
	if word, t, ok := cutBlank(rest); ok {
		a, known := accessWords[word]
		if !known {
			return rule{}, fmt.Errorf("unknown access %q (want read, write, readwrite or deny)", word)
		}
		access, filter = a, t
	} else if _, known := accessWords[rest]; known {
		// mosquitto reads this as readwrite on the topic named rest.
		return rule{}, fmt.Errorf("%s %s: missing topic (for a topic named %q write \"%s readwrite %s\")", keyword, rest, rest, keyword, rest)
	}
	if err := topic.ValidateFilter(filter, true); err != nil {
		return rule{}, fmt.Errorf("invalid topic %q: %v", filter, err)
	}
	if keyword == "pattern" {
		for lv := range strings.SplitSeq(filter, "/") {
			if lv != "%c" && lv != "%u" && (strings.Contains(lv, "%c") || strings.Contains(lv, "%u")) {
				return rule{}, fmt.Errorf("pattern %q: %%c and %%u must fill a whole level, not part of %q", filter, lv)
			}
		}
	}
	return rule{filter: filter, access: access}, nil
}

// cutBlank splits s at its first space or tab; after trims the blanks that
// follow, so that words may be separated by several.
func cutBlank(s string) (before, after string, found bool) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", false
	}
	return s[:i], strings.TrimLeft(s[i+1:], " \t"), true
}
