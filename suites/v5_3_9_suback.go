package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// sbSubackCodes are the Subscribe Reason Codes (§3.9.3).
var sbSubackCodes = []packetgen.ReasonCode{0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}

func init() {
	addSection5("3.9", "SUBACK", func(s *S) {
		s.Reuse("3.9", "MQTT-3.9.3-1: orders", "MQTT-3.9.3-1", "return codes", "reason codes")

		// A refused filter's code (0x80 or more) sits at its place among
		// granted ones. A server may instead close on an invalid filter.
		s.Spec("MQTT-3.9.3-1", "puts the refusing reason code at the position of the refused filter",
			Label("wildcard"), func(w *World) {
				c := w.Connect("sub")
				id := c.ID()
				sendUnchecked(c, &packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{
					{Filter: w.Topic("ok1"), QoS: 1}, {Filter: w.Topic("bad#"), QoS: 0}, {Filter: w.Topic("ok2"), QoS: 2}}})
				codes, closed := subackOrClosed(c, id, 3)
				if closed {
					return
				}
				w.Expectf(codes[0] <= 1 && codes[1].IsError() && codes[2] <= 2,
					"SUBACK codes [<=1, 0x80 or more, <=2] for the filters [ok1, bad#, ok2]", "codes %v", codes)
			})

		// Every code is one of the Subscribe Reason Codes, granted ones no
		// higher than requested. (The wire decoder also rejects a SUBACK
		// with another code as malformed, naming this statement.)
		s.Spec("MQTT-3.9.3-2", "uses only Subscribe Reason Codes, granting no more than the requested QoS",
			Label("subscribe"), func(w *World) {
				c := w.Connect("valid")
				req := []packetgen.Subscription{{Filter: w.Topic("q0"), QoS: 0}, {Filter: w.Topic("q1"), QoS: 1},
					{Filter: w.Topic("q2"), QoS: 2}, {Filter: w.Topic("w/+/#"), QoS: 2}, {Filter: "$share/g/" + w.Topic("s"), QoS: 1}}
				codes := c.SubscribeMany(req)
				for i, rc := range codes {
					ok := false
					for _, k := range sbSubackCodes {
						ok = ok || rc == k
					}
					w.Expectf(ok && (rc.IsError() || packetgen.QoS(rc) <= req[i].QoS),
						fmt.Sprintf("a Subscribe Reason Code for %q, granting at most QoS %d", req[i].Filter, req[i].QoS), "codes %v", codes)
				}
			})

		// Reason String and User Properties stay out of a SUBACK they
		// would make larger than the client's Maximum Packet Size.
		s.Spec("MQTT-3.9.2-1 MQTT-3.9.2-2", "keeps SUBACK within the client's Maximum Packet Size, refusals included",
			Label("subscribe", "packet-size"), func(w *World) {
				limit := caLimit(w, 12)
				c := w.Connect("c", WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) }))
				for _, f := range []string{w.Topic("ok"), w.Topic("bad#"), "$share//" + w.Topic("x")} {
					id := c.ID()
					sendUnchecked(c, &packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{{Filter: f, QoS: 1}}})
					p, err := c.Recv(w.Cfg().Timeout)
					if err != nil {
						w.ifNoAnswer(err, fmt.Sprintf("SUBACK id=%d", id), c.Name)
						return // closed on the invalid filter: nothing too large came
					}
					caCheckSize(w, p, limit)
					if _, ok := p.(*packetgen.Disconnect); ok {
						return
					}
				}
			})
	})
}
