package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("3.9", "SUBACK", func(s *S) {
		// The return codes in SUBACK are in the order of the topic
		// filters in the SUBSCRIBE. Requesting a different QoS per filter
		// and publishing at QoS 2 on each shows which code belongs to
		// which filter: each message must arrive at the QoS its code says.
		s.Spec("MQTT-3.9.3-1", "orders the return codes as the topic filters were ordered",
			func(w *World) {
				req := []packetgen.QoS{2, 0, 1}
				var subs []packetgen.Subscription
				for i, q := range req {
					subs = append(subs, packetgen.Subscription{Filter: w.Topic(fmt.Sprintf("f%d", i)), QoS: q})
				}
				sub := w.Connect("sub")
				codes := sub.SubscribeMany(subs)
				for i, rc := range codes {
					w.Expectf(rc <= 2 && packetgen.QoS(rc) <= req[i],
						fmt.Sprintf("codes in filter order, each granting at most the requested QoS %v", req), "codes %v", codes)
				}
				pub := w.Connect("pub")
				q := packetgen.QoS(*w.cfg.Profile.MaxQoS)
				for _, sb := range subs {
					pub.Publish(sb.Filter, "ordered", q, false)
				}
				got := drainPublishes(w, sub)[0]
				for i, sb := range subs {
					var on []*packetgen.Publish
					for _, p := range got {
						if string(p.Topic) == sb.Filter {
							on = append(on, p)
						}
					}
					want := min(q, packetgen.QoS(codes[i]))
					w.Expectf(len(on) == 1 && on[0].QoS == want,
						fmt.Sprintf("the message on filter %d (%q) at QoS %d, as code %d of SUBACK %v says", i, sb.Filter, want, i, codes),
						"%v", formatAll(on))
				}
			})

		// The failure code of a refused filter sits at that filter's place.
		// A server may close the connection on an invalid filter instead
		// of answering 0x80; then there is no order to check.
		s.Spec("MQTT-3.9.3-1", "puts the failure code at the position of the refused filter",
			Label("wildcard"), func(w *World) {
				c := w.Connect("sub")
				id := c.ID()
				sendUnchecked(c, &packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{
					{Filter: w.Topic("ok1"), QoS: 1}, {Filter: w.Topic("bad#"), QoS: 0}, {Filter: w.Topic("ok2"), QoS: 2}}})
				codes, closed := subackOrClosed(c, id, 3)
				if closed {
					return
				}
				w.Expectf(codes[0] <= 1 && codes[1] == packetgen.SubackFailure && codes[2] <= 2,
					"SUBACK codes [<=1, 0x80, <=2] for the filters [ok1, bad#, ok2]", "codes %v", codes)
			})

		// SUBACK return codes are 0x00, 0x01, 0x02 or 0x80; the others
		// are reserved. (The wire decoder also rejects a SUBACK with a
		// reserved code as malformed, naming this statement.)
		s.Spec("MQTT-3.9.3-2", "uses only the return codes 0x00, 0x01, 0x02 and 0x80",
			func(w *World) {
				ok := func(rc packetgen.ReasonCode) bool { return rc <= 2 || rc == packetgen.SubackFailure }
				c := w.Connect("valid")
				codes := c.SubscribeMany([]packetgen.Subscription{{Filter: w.Topic("q0"), QoS: 0},
					{Filter: w.Topic("q1"), QoS: 1}, {Filter: w.Topic("q2"), QoS: 2}, {Filter: w.Topic("w/+/#"), QoS: 2}})
				for _, rc := range codes {
					w.Expectf(ok(rc), "return codes 0x00, 0x01, 0x02 or 0x80", "codes %v", codes)
				}
				bad := w.Connect("invalid")
				id := bad.ID()
				sendUnchecked(bad, &packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{
					{Filter: w.Topic("a+"), QoS: 1}}})
				codes, closed := subackOrClosed(bad, id, 1)
				if !closed {
					w.Expectf(ok(codes[0]), "return code 0x80 (or 0x00-0x02) for the invalid filter", "codes %v", codes)
				}
			})
	})
}
