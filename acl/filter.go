package acl

import "strings"

// Filter algebra for SubscribeAllowed: comparing two topic filters as the
// sets of topic names they match (section 4.7), without listing any name.
// Both arguments must be valid filters (topic.ValidateFilter).

// levelIter yields the levels of a topic filter without allocating.
type levelIter struct {
	s    string
	i    int
	done bool
}

func (l *levelIter) next() (string, bool) {
	if l.done {
		return "", false
	}
	j := strings.IndexByte(l.s[l.i:], '/')
	if j < 0 {
		l.done = true
		return l.s[l.i:], true
	}
	lv := l.s[l.i : l.i+j]
	l.i += j + 1
	return lv, true
}

// normal rewrites the two filters whose '#' would match a parent that is
// the empty string, which is not a topic name (MQTT-4.7.3-1), as the
// filter that matches the same names: "+/#" as "#" (every name not
// starting with '$') and "/#" as "/+/#" (every name with an empty first
// level).
func normal(f string) string {
	switch f {
	case "+/#":
		return "#"
	case "/#":
		return "/+/#"
	}
	return f
}

// wildFirst reports whether f starts with a wildcard, which keeps it off
// every topic name that starts with '$' (MQTT-4.7.2-1).
func wildFirst(f string) bool { return f[0] == '+' || f[0] == '#' }

// covers reports whether every topic name that filter f matches is also
// matched by filter g.
func covers(g, f string) bool {
	g, f = normal(g), normal(f)
	// f's names start with '$' only if its first level is such a literal;
	// a g that starts with a wildcard matches none of them.
	if f[0] == '$' && wildFirst(g) {
		return false
	}
	gi, fi := levelIter{s: g}, levelIter{s: f}
	for {
		gl, gok := gi.next()
		fl, fok := fi.next()
		switch {
		case gok && gl == "#":
			return true // this level and everything below, the parent too
		case !gok || !fok:
			return gok == fok // g stopped first: f reaches deeper names
		case fl == "#":
			return false // f reaches deeper than any non-'#' level of g
		case fl == "+":
			if gl != "+" {
				return false
			}
		case gl != "+" && gl != fl:
			return false
		}
	}
}

// overlaps reports whether some topic name is matched by both filters.
func overlaps(a, b string) bool {
	a, b = normal(a), normal(b)
	if a[0] == '$' && wildFirst(b) || b[0] == '$' && wildFirst(a) {
		return false
	}
	ai, bi := levelIter{s: a}, levelIter{s: b}
	for {
		al, aok := ai.next()
		bl, bok := bi.next()
		switch {
		case aok && al == "#", bok && bl == "#":
			return true // '#' absorbs whatever the other still has, or matches the parent
		case !aok || !bok:
			return aok == bok
		case al == "+", bl == "+":
			// any level the other allows
		case al != bl:
			return false
		}
	}
}
