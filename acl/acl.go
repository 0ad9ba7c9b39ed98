package acl

import (
	"strconv"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// Access is what a rule grants on the topics it matches.
type Access uint8

const (
	Read      Access = 1 << iota // receive messages: PUBLISH from the broker, and subscribing
	Write                        // publish: PUBLISH from the client
	ReadWrite = Read | Write
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	case 0:
		return "deny"
	}
	return "Access(" + strconv.Itoa(int(a)) + ")"
}

// rule is one topic or pattern line. access 0 is deny.
type rule struct {
	filter string // a pattern's template still holds its %c and %u levels
	access Access
}

// ACL is a parsed acl_file. The zero value, like an empty file, denies
// everything.
type ACL struct {
	anon     []rule            // topic lines before the first user line
	users    map[string][]rule // topic lines after "user NAME"
	patterns []rule
}

// grant is a rule bound to one client.
type grant struct {
	filter string
	access Access
}

// Rules are the rules of an ACL that apply to one client, with its
// identity substituted into the patterns. Like the ACL, they are immutable
// and safe for concurrent use.
type Rules struct {
	grants []grant
	denies []string
}

// For returns the rules that apply to the client with this user name
// ("" for a client that gave none) and client identifier. A broker calls it
// once per connection, after authentication, and keeps the result.
func (a *ACL) For(user, clientID string) *Rules {
	r := &Rules{}
	section := a.anon
	if user != "" {
		section = a.users[user]
	}
	for _, ru := range section {
		r.add(ru.filter, ru.access)
	}
	for _, p := range a.patterns {
		f, safe, applies := substitute(p.filter, user, clientID)
		if !applies || !safe && p.access != 0 {
			continue // a grant never reaches past a literal identity
		}
		r.add(f, p.access)
	}
	return r
}

func (r *Rules) add(filter string, access Access) {
	if access == 0 {
		r.denies = append(r.denies, filter)
	} else {
		r.grants = append(r.grants, grant{filter, access})
	}
}

// Allowed reports whether the client may publish to (Write) or receive a
// message on (Read) the topic name; ReadWrite asks for both. An invalid
// topic name (empty, or holding a wildcard) is never allowed.
func (r *Rules) Allowed(name string, access Access) bool {
	if access == 0 || access&^ReadWrite != 0 || topic.ValidateName(name, true) != nil {
		return false
	}
	for _, d := range r.denies {
		if topic.Match(d, name) {
			return false
		}
	}
	var got Access
	for _, g := range r.grants {
		if topic.Match(g.filter, name) {
			if got |= g.access & access; got == access {
				return true
			}
		}
	}
	return false
}

// SubscribeAllowed reports whether the client may subscribe to the topic
// filter: a rule granting read covers it and no deny rule overlaps it (see
// the package documentation). A shared subscription "$share/GROUP/F" is
// judged by F; an invalid filter is never allowed.
func (r *Rules) SubscribeAllowed(filter string) bool {
	if topic.IsShared(filter) {
		_, inner, err := topic.ParseShared(filter)
		if err != nil {
			return false
		}
		filter = inner
	} else if topic.ValidateFilter(filter, true) != nil {
		return false
	}
	for _, d := range r.denies {
		if overlaps(d, filter) {
			return false
		}
	}
	for _, g := range r.grants {
		if g.access&Read != 0 && covers(g.filter, filter) {
			return true
		}
	}
	return false
}

// Allowed is For(user, clientID).Allowed(name, access), for a single check.
func (a *ACL) Allowed(user, clientID, name string, access Access) bool {
	return a.For(user, clientID).Allowed(name, access)
}

// SubscribeAllowed is For(user, clientID).SubscribeAllowed(filter), for a
// single check.
func (a *ACL) SubscribeAllowed(user, clientID, filter string) bool {
	return a.For(user, clientID).SubscribeAllowed(filter)
}

// substitute fills the %c and %u levels of a pattern. applies is false for
// a %u pattern and a client without a user name (mosquitto skips those).
// safe is false when an identity could not be put in literally (see
// safeLevel); the filter then has '+' in its place, which is what a deny
// pattern needs and what a grant must never get.
func substitute(pattern, user, clientID string) (filter string, safe, applies bool) {
	if !strings.Contains(pattern, "%") {
		return pattern, true, true
	}
	levels := strings.Split(pattern, "/")
	safe = true
	for i, lv := range levels {
		var v string
		switch lv {
		case "%c":
			v = clientID
		case "%u":
			if user == "" {
				return "", false, false
			}
			v = user
		default:
			continue
		}
		if safeLevel(v, i == 0) {
			levels[i] = v
		} else {
			levels[i], safe = "+", false
		}
	}
	filter = strings.Join(levels, "/")
	if safe && topic.ValidateFilter(filter, true) != nil {
		// Every value was a valid level, so only the length can fail.
		for i, lv := range strings.Split(pattern, "/") {
			if lv == "%c" || lv == "%u" {
				levels[i] = "+"
			}
		}
		return strings.Join(levels, "/"), false, true
	}
	return filter, safe, true
}

// safeLevel reports whether an identity may stand literally as one level of
// a filter without matching more than itself (CVE-2017-7650): not empty, no
// '+', '#' or '/', valid as a topic, and not starting with '$' at the first
// level, where it would open a $SYS-like tree.
func safeLevel(v string, first bool) bool {
	return v != "" && !strings.ContainsAny(v, "+#/") && !(first && v[0] == '$') &&
		topic.ValidateName(v, true) == nil
}
