package suites

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// lcBadUTF8 are byte sequences that are not well-formed UTF-8 as RFC 3629
// defines it, each between two ASCII letters.
var lcBadUTF8 = []struct{ bytes, what string }{
	{"\xED\xA0\x80", "the surrogate U+D800"},
	{"\xFF", "the byte 0xFF"},
	{"\xC0\xAF", "an over-long '/'"},
	{"\xE2\x82", "a cut three-byte sequence"},
}

// lcStringCase is one place a UTF-8 string can hold bad bytes.
type lcStringCase struct {
	where  string
	packet string
	// connect cases put the bytes in CONNECT; the others send them after
	// a CONNECT that was accepted.
	connect bool
	bytes   func(w *World, name, bad string) []byte
}

// lcStringCases are the strings a client sends: the client identifier,
// will topic and user name of CONNECT, the topic name of PUBLISH and the
// topic filters of SUBSCRIBE and UNSUBSCRIBE.
var lcStringCases = []lcStringCase{
	{"the client identifier", "CONNECT", true, func(w *World, name, bad string) []byte {
		cp := w.ConnectPacket(name)
		cp.ClientID = w.ClientID(name) + bad
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
	{"the will topic", "CONNECT", true, func(w *World, name, bad string) []byte {
		cp := w.ConnectPacket(name, WithWill(w.Topic("will"+bad), "w", 0, false))
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
	{"the user name", "CONNECT", true, func(w *World, name, bad string) []byte {
		cp := w.ConnectPacket(name)
		user, pass, _ := lcCredentials(w)
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user+bad, true, pass
		return packetgen.AppendUnchecked(nil, cp, w.Cfg().Version)
	}},
	{"the topic name", "PUBLISH", false, func(w *World, name, bad string) []byte {
		p := &packetgen.Publish{Topic: []byte(w.Topic("pub" + bad)), Payload: []byte("x")}
		return packetgen.AppendUnchecked(nil, p, w.Cfg().Version)
	}},
	{"the topic filter", "SUBSCRIBE", false, func(w *World, name, bad string) []byte {
		p := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: w.Topic("sub" + bad)}}}
		return packetgen.AppendUnchecked(nil, p, w.Cfg().Version)
	}},
	{"the topic filter", "UNSUBSCRIBE", false, func(w *World, name, bad string) []byte {
		p := &packetgen.Unsubscribe{PacketID: 1, Filters: []string{w.Topic("uns" + bad)}}
		return packetgen.AppendUnchecked(nil, p, w.Cfg().Version)
	}},
}

// lcExpectStringsClosed sends every case with each bad sequence, each on
// its own connection (all sent first, then all judged, so the spec takes
// one round trip, not one per case), and requires every connection to be
// closed. A CONNECT may be refused with a non-zero CONNACK before the
// close (MQTT-3.1.4-1 is judged on its own); after CONNECT nothing may
// come before the close.
func lcExpectStringsClosed(w *World, bad []struct{ bytes, what string }) {
	var pending []lcPending
	for i, k := range lcStringCases {
		for j, b := range bad {
			name := fmt.Sprintf("s%dx%d", i, j)
			what := fmt.Sprintf("%s with %s in %s", k.packet, b.what, k.where)
			bytes := k.bytes(w, name, "a"+b.bytes+"b")
			var c *Client
			if k.connect {
				c = lcSendConnect(w, name, bytes, what)
			} else {
				c = w.Connect(name)
				c.MustSendRaw(bytes, what)
			}
			pending = append(pending, lcPending{c, what, k.connect})
		}
	}
	lcExpectAllClosed(w, pending)
}

func init() {
	addSection("1.5", "UTF-8 encoded strings", func(s *S) {
		// A receiver of a packet holding ill-formed UTF-8 (surrogates,
		// over-long forms, stray or missing continuation bytes, bytes that
		// never occur in UTF-8) must close the network connection.
		s.Spec("MQTT-1.5.3-1", "closes the connection on ill-formed UTF-8 in a client identifier, will topic, user name, topic name or topic filter",
			Label("utf8", "malformed"), func(w *World) {
				lcExpectStringsClosed(w, lcBadUTF8)
			})

		// A UTF-8 string must not encode U+0000; a receiver of one must
		// close the network connection.
		s.Spec("MQTT-1.5.3-2", "closes the connection on U+0000 in a client identifier, will topic, user name, topic name or topic filter",
			Label("utf8", "malformed"), func(w *World) {
				lcExpectStringsClosed(w, []struct{ bytes, what string }{{"\x00", "U+0000"}})
			})

		// 0xEF 0xBB 0xBF is U+FEFF wherever it appears in a string and a
		// receiver must neither skip nor strip it: a topic holding it is
		// a topic different from the one without it.
		s.Spec("MQTT-1.5.3-3", "keeps U+FEFF in topic names and filters: it matches only itself and is delivered byte for byte",
			Label("utf8", "topics"), func(w *World) {
				const bom = "\uFEFF"
				withBOM := []string{bom + w.Topic("lead"), w.Topic("mid" + bom + "dle"), w.Topic("end") + bom}
				without := []string{w.Topic("lead"), w.Topic("middle"), w.Topic("end")}
				bomSub := w.Connect("bom")
				plainSub := w.Connect("plain")
				for i := range withBOM {
					// A server may refuse any subscription (SUBACK 0x80);
					// then there is nothing to judge.
					w.Require(bomSub.Subscribe(withBOM[i], 1) <= 2, fmt.Sprintf("the broker refused the filter %+q", withBOM[i]))
					plainSub.Granted(without[i], 1)
				}
				pub := w.Connect("pub")
				for i, t := range withBOM {
					pub.Publish(t, fmt.Sprintf("bom%d", i), 1, false)
				}
				// The other way round too: messages to the topics without
				// U+FEFF reach only the subscriber to those, which also
				// shows that its subscriptions work.
				for i, t := range without {
					pub.Publish(t, fmt.Sprintf("plain%d", i), 1, false)
				}
				for _, k := range []struct {
					c      *Client
					topics []string
				}{{bomSub, withBOM}, {plainSub, without}} {
					got := map[string]bool{}
					for range k.topics {
						p := k.c.Receive()
						if !got[string(p.Topic)] && lcContains(k.topics, string(p.Topic)) {
							got[string(p.Topic)] = true
							continue
						}
						w.Failf("expected at %s one message on each of %s (U+FEFF is EF BB BF, kept byte for byte); got %s (topic bytes % X)",
							k.c.Name, lcQuoteAll(k.topics), packetgen.Format(p), p.Topic)
					}
				}
				lcExpectNothingAll(w, "a topic with U+FEFF and the same topic without it are different topics", bomSub, plainSub)
			})
	})
}

func lcContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lcQuoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%+q", s)
	}
	return strings.Join(q, ", ")
}
