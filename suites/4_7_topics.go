package suites

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("4.7", "Topic Names and Topic Filters", func(s *S) {
		// Wildcards may appear in topic filters but not in topic names: a
		// PUBLISH whose topic name holds '+' or '#' is a protocol
		// violation, so the server closes the connection and forwards
		// nothing.
		s.Spec("MQTT-4.7.1-1", "closes the network connection on a PUBLISH whose topic name holds a wildcard, forwarding nothing",
			Label("topics", "malformed"), func(w *World) {
				sub := w.Connect("sub")
				if *w.cfg.Profile.Wildcards {
					sub.Granted(w.Topic("#"), 0)
				}
				names := []string{w.Topic("+"), w.Topic("#"), w.Topic("a+/b"), w.Topic("a/#b")}
				cs := make([]*Client, len(names))
				for i, n := range names {
					cs[i] = w.Connect(fmt.Sprintf("pub%d", i))
					sendUnchecked(cs[i], &packetgen.Publish{Topic: []byte(n), Payload: []byte("wild")})
				}
				for i, c := range cs {
					c.ExpectClosed(fmt.Sprintf("PUBLISH to the topic name %q", names[i]))
				}
				sub.ExpectNothing("a PUBLISH with a wildcard in its topic name is not forwarded")
			})

		// '#' matches the parent level and any number of child levels;
		// it stands alone or after a '/', as the last character.
		s.Spec("MQTT-4.7.1-2", "matches the parent and any number of child levels with a trailing '#'",
			Label("topics", "wildcard"), func(w *World) {
				w.Require(*w.cfg.Profile.Wildcards, "wildcard subscriptions")
				t := w.Topic("sport")
				p1 := t + "/tennis/player1"
				topics := []string{t, t + "/", t + "/tennis", p1, p1 + "/ranking", p1 + "/score/wimbledon", t + "//x", t + "x", w.Topic("other")}
				checkMatching(w, topics, []matchCase{
					{t + "/#", []string{t, t + "/", t + "/tennis", p1, p1 + "/ranking", p1 + "/score/wimbledon", t + "//x"}},
					{p1 + "/#", []string{p1, p1 + "/ranking", p1 + "/score/wimbledon"}},
					{t + "/tennis/#", []string{t + "/tennis", p1, p1 + "/ranking", p1 + "/score/wimbledon"}},
					{t + "/+/player1/#", []string{p1, p1 + "/ranking", p1 + "/score/wimbledon"}},
				})
			})

		// '#' on its own is a valid filter that matches every topic name
		// (not starting with '$').
		s.Spec("MQTT-4.7.1-2", "matches every topic with the filter '#' alone",
			Label("topics", "wildcard"), func(w *World) {
				w.Require(*w.cfg.Profile.Wildcards, "wildcard subscriptions")
				u := w.ClientID("lone")
				topics := []string{w.Topic("a"), w.Topic("a/b/c"), "/" + u, u, u + "/"}
				checkMatching(w, topics, []matchCase{{"#", topics}})
			})

		// '#' anywhere but alone as the last level makes the filter
		// invalid: the server refuses it (SUBACK 0x80) or closes.
		s.Spec("MQTT-4.7.1-2", "refuses a filter with '#' other than as the whole last level",
			Label("topics", "wildcard", "malformed"), func(w *World) {
				bad := []string{w.Topic("sport/tennis#"), w.Topic("sport/tennis/#/ranking"), "#/" + w.Topic("a"), w.Topic("##")}
				for i, f := range bad {
					expectFilterRefused(w.Connect(fmt.Sprintf("bad%d", i)), f, "'#' must be the whole last level")
				}
			})

		// '+' matches exactly one level, which may be empty, at any level.
		s.Spec("MQTT-4.7.1-3", "matches exactly one level, empty ones included, with '+'",
			Label("topics", "wildcard"), func(w *World) {
				w.Require(*w.cfg.Profile.Wildcards, "wildcard subscriptions")
				t := w.Topic("sport")
				p1, p2 := t+"/tennis/player1", t+"/tennis/player2"
				topics := []string{t, t + "/", t + "/tennis", p1, p2, p1 + "/ranking", t + "//x", t + "/a/x", t + "/a/b/x"}
				checkMatching(w, topics, []matchCase{
					{t + "/tennis/+", []string{p1, p2}},
					{t + "/+", []string{t + "/", t + "/tennis"}},
					{t + "/+/x", []string{t + "//x", t + "/a/x"}},
					{t + "/+/player1", []string{p1}},
					{t + "/+/+", []string{p1, p2, t + "//x", t + "/a/x"}},
				})
			})

		// '/finance' matches '+/+' and '/+' but not '+': the leading '/'
		// makes an empty first level.
		s.Spec("MQTT-4.7.1-3", "matches a leading empty level with '+' ('/finance' matches '+/+' and '/+', not '+')",
			Label("topics", "wildcard"), func(w *World) {
				w.Require(*w.cfg.Profile.Wildcards, "wildcard subscriptions")
				u := w.ClientID("fin")
				topics := []string{"/" + u, u}
				checkMatching(w, topics, []matchCase{
					{"+/+", []string{"/" + u}},
					{"/+", []string{"/" + u}},
					{"+", []string{u}},
				})
			})

		// '+' must occupy a whole level: a filter with '+' next to other
		// characters in a level is invalid and the server refuses it
		// (SUBACK 0x80) or closes.
		s.Spec("MQTT-4.7.1-3", "refuses a filter in which '+' does not occupy a whole level",
			Label("topics", "wildcard", "malformed"), func(w *World) {
				bad := []string{w.Topic("sport+"), w.Topic("sport/+tennis/x"), w.Topic("++"), w.Topic("a/b+")}
				for i, f := range bad {
					expectFilterRefused(w.Connect(fmt.Sprintf("bad%d", i)), f, "'+' must occupy a whole level")
				}
			})

		// Filters starting with a wildcard do not match topic names
		// starting with '$'. The broker's own $SYS topics, often retained,
		// must not reach '#' or '+/...' subscribers, while '$SYS/#', which
		// starts with no wildcard, matches them as any filter does. Whether
		// a broker publishes on $SYS, and to whom, is its choice, so a
		// second subscriber, to '$SYS/+/#', is the witness: every $SYS topic
		// it receives the broker published, and '$SYS/#' must have it too.
		// A broker that publishes nothing on $SYS, or refuses both
		// subscriptions, leaves only the first half to check.
		s.Spec("MQTT-4.7.2-1", "sends no '$' topic, such as $SYS, to subscribers of '#' and '+/#', and its $SYS topics to '$SYS/#'",
			Label("topics", "wildcard"), func(w *World) {
				w.Require(*w.cfg.Profile.Wildcards, "wildcard subscriptions")
				all := w.Connect("hash")
				all.Granted("#", 0)
				plus := w.Connect("plus")
				plus.Granted("+/#", 0)
				// '$SYS/#' before its witness: whatever the witness gets,
				// retained or live, was there for '$SYS/#' already.
				sys, sysOK := subscribeAllowed(w, "sys", "$SYS/#")
				witness, witnessOK := subscribeAllowed(w, "witness", "$SYS/+/#")
				// The witness is read before '$SYS/#', so that a message
				// arriving while they are read is more likely at both.
				got := drainPublishes(w, all, plus, witness, sys)
				for i, filter := range []string{"#", "+/#"} {
					for _, p := range got[i] {
						w.Expectf(!strings.HasPrefix(string(p.Topic), "$"),
							fmt.Sprintf("no topic starting with '$' for the filter %q", filter), "%s", packetgen.Format(p))
					}
				}
				if !sysOK || !witnessOK || len(got[2]) == 0 {
					AddReportEntry("note", "no $SYS message reached a '$SYS/+/#' subscriber during the spec "+
						"(the broker may publish none, or refuse $SYS subscriptions), "+
						"so only the absence of '$' topics at '#' and '+/#' was checked")
					return
				}
				missing := missingTopics(got[2], got[3])
				if len(missing) > 0 { // give stragglers one more Quiet period
					for _, p := range collect(sys) {
						if pub, ok := p.(*packetgen.Publish); ok {
							got[3] = append(got[3], pub)
						}
					}
					missing = missingTopics(got[2], got[3])
				}
				w.Expectf(len(missing) == 0,
					fmt.Sprintf("every $SYS topic the broker sent to '$SYS/+/#' (%d messages) also at '$SYS/#'", len(got[2])),
					"%d messages at '$SYS/#', none on %s", len(got[3]), quoteAll(missing))
			})

		// The same for '$' topics a client publishes to, under '$SYS' and
		// elsewhere. A broker may keep clients off '$' topics (refuse the
		// PUBLISH by closing, or drop it), but a message it routes reaches
		// every subscriber whose filter starts with no wildcard and
		// matches ('$X/#', '$X/.../+', the name itself), and never '#' or
		// '+/...'.
		s.Spec("MQTT-4.7.2-1", "does not match filters starting with a wildcard against a '$' topic a client publishes, and matches the others",
			Label("topics", "wildcard"), func(w *World) {
				w.Require(*w.cfg.Profile.Wildcards, "wildcard subscriptions")
				names := []string{"$" + w.Topic("x"), "$SYS/" + w.Topic("x")} // $mqttbench/<prefix>/x, $SYS/mqttbench/<prefix>/x
				type sub struct {
					c      *Client
					filter string
					name   string // the '$' topic it must get, or "" for none
				}
				var subs []sub
				for i, f := range []string{"#", "+/#"} {
					c := w.Connect(fmt.Sprintf("wrong%d", i))
					c.Granted(f, 0)
					subs = append(subs, sub{c, f, ""})
				}
				for i, name := range names {
					wrong, right := dollarFilters(name)
					for j, f := range wrong {
						c := w.Connect(fmt.Sprintf("wrong%d-%d", i, j))
						c.Granted(f, 0)
						subs = append(subs, sub{c, f, ""})
					}
					for j, f := range right {
						// The broker may refuse a '$' filter.
						if c, ok := subscribeAllowed(w, fmt.Sprintf("right%d-%d", i, j), f); ok {
							subs = append(subs, sub{c, f, name})
						}
					}
				}
				for i, name := range names { // one publisher each: the broker may close on the first
					sendUnchecked(w.Connect(fmt.Sprintf("pub%d", i)), &packetgen.Publish{Topic: []byte(name), Payload: []byte("dollar")})
				}
				clients := make([]*Client, len(subs))
				for i, sb := range subs {
					clients[i] = sb.c
				}
				got := drainPublishes(w, clients...)
				routed := map[string]bool{}
				for i, sb := range subs {
					if sb.name != "" && hasTopic(got[i], sb.name) {
						routed[sb.name] = true
					}
				}
				for i, sb := range subs {
					if sb.name != "" && routed[sb.name] && !hasTopic(got[i], sb.name) {
						// Routed elsewhere but not here yet: one more Quiet
						// period for a slow fan-out.
						for _, p := range collect(sb.c) {
							if pub, ok := p.(*packetgen.Publish); ok {
								got[i] = append(got[i], pub)
							}
						}
					}
					n := map[string]int{}
					for _, p := range got[i] {
						n[string(p.Topic)]++
					}
					for _, name := range names {
						switch {
						case sb.name == name && routed[name]:
							w.Expectf(n[name] > 0, fmt.Sprintf("%q, which the broker routed to another matching filter, for the filter %q", name, sb.filter),
								"nothing on %q", name)
						case sb.name != name:
							w.Expectf(n[name] == 0, fmt.Sprintf("nothing on %q for the filter %q", name, sb.filter),
								"%d messages on %q", n[name], name)
						}
					}
				}
				for _, name := range names {
					if !routed[name] {
						AddReportEntry("note", fmt.Sprintf("the broker did not route %q to any filter starting with '$' "+
							"(it may keep clients off '$' topics), so only the absence of a wrong match was checked", name))
					}
				}
			})

		// Topic names and filters are at least one character long: an
		// empty filter is refused (SUBACK 0x80, or closing), and a PUBLISH
		// with an empty topic name closes the connection.
		s.Spec("MQTT-4.7.3-1", "refuses an empty topic filter and closes the connection on an empty topic name",
			Label("topics", "malformed"), func(w *World) {
				expectFilterRefused(w.Connect("filter"), "", "a zero-length topic filter")
				c := w.Connect("name")
				sendUnchecked(c, &packetgen.Publish{Payload: []byte("nameless")})
				c.ExpectClosed("PUBLISH with a zero-length topic name")
			})

		// Topic names and filters must not include U+0000; a packet that
		// does is malformed and the server closes the connection.
		s.Spec("MQTT-4.7.3-2", "closes the network connection on U+0000 in a topic name or topic filter",
			Label("topics", "malformed", "utf8"), func(w *World) {
				pub := w.Connect("publish")
				sendUnchecked(pub, &packetgen.Publish{Topic: []byte(w.Topic("a\x00b")), Payload: []byte("nul")})
				sub := w.Connect("subscribe")
				sendUnchecked(sub, &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: w.Topic("a\x00b")}}})
				unsub := w.Connect("unsubscribe")
				sendUnchecked(unsub, &packetgen.Unsubscribe{PacketID: 1, Filters: []string{w.Topic("a\x00b")}})
				pub.ExpectClosed("U+0000 in a PUBLISH topic name")
				sub.ExpectClosed("U+0000 in a SUBSCRIBE topic filter")
				unsub.ExpectClosed("U+0000 in an UNSUBSCRIBE topic filter")
			})

		// A topic may take up to 65,535 bytes, the most its length field
		// can say: a topic name of exactly that size is routed to the
		// identical filter, and to a '#' filter above it.
		s.Spec("MQTT-4.7.3-3", "routes a topic name of 65,535 bytes to an identical filter of 65,535 bytes",
			Label("topics"), func(w *World) {
				base := w.Topic("long") + "/"
				name := base + strings.Repeat("x", 65535-len(base))
				cases := []matchCase{{name, []string{name}}}
				if *w.cfg.Profile.Wildcards {
					cases = append(cases, matchCase{w.Topic("#"), []string{name}})
				}
				checkMatching(w, []string{name}, cases)
			})

		// Only the 65,535-byte length limits the number of levels: a
		// topic of over 30,000 levels is routed like any other, however
		// long the broker takes (checkMatchingSlow).
		s.Spec("MQTT-4.7.3-3", "routes a topic of over 30,000 levels, within the 65,535-byte limit",
			Label("topics"), func(w *World) {
				base := w.Topic("deep")
				levels := (65535 - len(base)) / 2
				name := base + strings.Repeat("/a", levels)
				filters := []matchCase{{name, []string{name}}}
				if *w.cfg.Profile.Wildcards {
					filters = append(filters, matchCase{w.Topic("#"), []string{name}},
						matchCase{base + strings.Repeat("/+", levels), []string{name}})
				}
				checkMatchingSlow(w, []string{name}, filters)
			})

		// Matching does no normalisation: topics differing in case, in
		// spaces, in a trailing '/', or in Unicode normal form (composed
		// U+00E9 against 'e' + U+0301, the ligature U+FB01 against "fi")
		// are different topics, and names are delivered byte for byte.
		s.Spec("MQTT-4.7.3-4", "matches character for character, without normalising case, spaces, slashes or Unicode",
			Label("topics", "utf8"), func(w *World) {
				t := func(s string) string { return w.Topic(s) }
				u := w.ClientID("norm")
				topics := []string{t("ACCOUNTS"), t("Accounts"), t("Accounts payable"), t("Accounts  payable"), t("Accountspayable"),
					t("a"), t("a/"), t("\u00e9"), t("e\u0301"), t("\ufb01"), t("fi"), t("\ue000"), "/" + u, u}
				cases := make([]matchCase, len(topics))
				for i, n := range topics {
					cases[i] = matchCase{n, []string{n}}
				}
				checkMatching(w, topics, cases)
			})

		// The same for the characters other protocols read as separators,
		// wildcards or escapes: '.', '*' and '#' in AMQP routing keys,
		// '.', '*' and '>' in NATS subjects, '\' as an escape, '$' inside
		// a level, and spaces at either end of one. In MQTT they are
		// ordinary characters: a broker that maps topics onto such a
		// protocol must not let "a.b" reach a subscriber of "a/b" (or of
		// "+/b"), nor "x" one of "*", nor rewrite a name it delivers.
		s.Spec("MQTT-4.7.3-4", "matches '.', '*', '>', '\\', '$' and spaces as ordinary characters and delivers the topic name byte for byte",
			Label("topics"), func(w *World) {
				t := w.Topic
				topics := []string{t("a.b"), t("a/b"), t("a*b"), t("*"), t(">"), t("a>b"), t(`a\b`), t(`\`),
					t("a$b"), t("$"), t("a b"), t(" a"), t("a "), t("x")}
				cases := make([]matchCase, 0, len(topics)+3)
				for _, n := range topics {
					cases = append(cases, matchCase{n, []string{n}})
				}
				if *w.cfg.Profile.Wildcards {
					var oneLevel []string
					for _, n := range topics {
						if n != t("a/b") {
							oneLevel = append(oneLevel, n)
						}
					}
					cases = append(cases,
						matchCase{t("+"), oneLevel},
						matchCase{t("a/+"), []string{t("a/b")}},
						matchCase{t("+/b"), []string{t("a/b")}})
				}
				checkMatching(w, topics, cases)
			})
	})
}

// subscribeAllowed connects a client and subscribes it to filter at QoS 0,
// which the broker may refuse (SUBACK 0x80 or closing, as for '$' topics
// a broker keeps to itself); ok reports a granted subscription.
func subscribeAllowed(w *World, name, filter string) (c *Client, ok bool) {
	c = w.Connect(name)
	id := rawSubscribe(c, filter, 0)
	codes, closed := subackOrClosed(c, id, 1)
	return c, !closed && codes[0] <= 2
}

// dollarFilters returns, for a topic name starting with '$', filters that
// must not match it because they start with a wildcard ('+/<rest>' and
// '+/.../+/<last>'; '#' and '+/#' are the caller's), and filters that must
// ('<first>/#', '<parent>/+' and the name itself).
func dollarFilters(name string) (wrong, right []string) {
	levels := strings.Split(name, "/")
	last := len(levels) - 1
	wrong = []string{
		"+/" + strings.Join(levels[1:], "/"),
		strings.Repeat("+/", last) + levels[last],
	}
	right = []string{
		levels[0] + "/#",
		strings.Join(levels[:last], "/") + "/+",
		name,
	}
	return wrong, right
}

// hasTopic reports a message on topic among ps.
func hasTopic(ps []*packetgen.Publish, topic string) bool {
	for _, p := range ps {
		if string(p.Topic) == topic {
			return true
		}
	}
	return false
}

// missingTopics lists the topics in want that got lacks, once each.
func missingTopics(want, got []*packetgen.Publish) []string {
	have := map[string]bool{}
	for _, p := range got {
		have[string(p.Topic)] = true
	}
	var out []string
	for _, p := range want {
		if t := string(p.Topic); !have[t] {
			have[t] = true
			out = append(out, t)
		}
	}
	return out
}
