package suites

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// usUnsubscribe sends UNSUBSCRIBE for filters and returns the UNSUBACK's
// reason codes, one per filter (MQTT-3.11.3-1 asks for the count).
func usUnsubscribe(c *Client, props *packetgen.Properties, filters ...string) *packetgen.Unsuback {
	id := c.ID()
	p := &packetgen.Unsubscribe{PacketID: id, Filters: filters}
	if props != nil {
		p.Properties = *props
	}
	c.MustSend(p)
	want := fmt.Sprintf("UNSUBACK id=%d", id)
	ack := expectAnswer[*packetgen.Unsuback](c, c.lastSent, ruleUnsuback, want)
	if ack.PacketID != id {
		c.w.stepFailed(ruleUnsubackID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(ack))
	}
	return ack
}

func init() {
	addSection5("3.10", "UNSUBSCRIBE", func(s *S) {
		s.Reuse("3.10", "MQTT-3.10.1-1", "MQTT-3.10.1-1")
		s.Reuse("3.10", "MQTT-3.10.3-1", "MQTT-3.10.3-1")
		s.Reuse("3.10", "MQTT-3.10.3-2", "MQTT-3.10.3-2")
		s.Reuse("3.10", "MQTT-3.10.4-1", "MQTT-3.10.4-1")
		s.Reuse("3.10", "MQTT-3.10.4-2", "MQTT-3.10.4-2")
		s.Reuse("3.10", "MQTT-3.10.4-3", "MQTT-3.10.4-3")
		s.Reuse("3.10", "MQTT-3.10.4-4", "MQTT-3.10.4-4")
		s.Reuse("3.10", "MQTT-3.10.4-5", "MQTT-3.10.4-5")
		s.Reuse("3.10", "MQTT-3.10.4-6", "MQTT-3.10.4-6")
	})
	addSection5("3.11", "UNSUBACK", func(s *S) {
		// One Unsubscribe Reason Code per filter, in the filters' order:
		// 0x00 where a subscription was deleted, 0x11 where none existed
		// (0x00 there is a misleading answer: a warning).
		s.Spec("MQTT-3.11.3-1 MQTT-3.11.3-2", "answers each filter with an Unsubscribe Reason Code in the filters' order: 0x00 deleted, 0x11 none existed",
			Label("unsubscribe"), func(w *World) {
				c := w.Connect("c")
				a, b := w.Topic("a"), w.Topic("b")
				c.Granted(a, 1)
				c.Granted(b, 0)
				filters := []string{w.Topic("none1"), a, w.Topic("none2"), b}
				ack := usUnsubscribe(c, nil, filters...)
				codes := ack.ReasonCodes
				if len(codes) != len(filters) {
					w.Failf("expected %d reason codes, one per filter; got %s", len(filters), packetgen.Format(ack))
				}
				valid := map[packetgen.ReasonCode]bool{0x00: true, 0x11: true, 0x80: true, 0x83: true, 0x87: true, 0x8F: true, 0x91: true}
				for i, rc := range codes {
					w.Expectf(valid[rc], "Unsubscribe Reason Codes only", "code 0x%02X for %q", byte(rc), filters[i])
				}
				w.Expectf(codes[1] == 0 && codes[3] == 0, "0x00 at the places of the two filters subscribed to (2nd and 4th)", "%s", packetgen.Format(ack))
				w.Shouldf(codes[0] == packetgen.NoSubscriptionExisted && codes[2] == packetgen.NoSubscriptionExisted,
					"0x11 (No subscription existed) at the places of the filters never subscribed to (1st and 3rd)", "%s", packetgen.Format(ack))
			})

		// Reason String and User Properties stay out of an UNSUBACK they
		// would make larger than the client's Maximum Packet Size.
		s.Spec("MQTT-3.11.2-1 MQTT-3.11.2-2", "keeps UNSUBACK within the client's Maximum Packet Size",
			Label("unsubscribe", "packet-size"), func(w *World) {
				limit := caLimit(w, 16)
				c := w.Connect("c", WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) }))
				c.Granted(w.Topic("a"), 1)
				caCheckSize(w, usUnsubscribe(c, nil, w.Topic("a"), w.Topic("never")), limit)
			})
	})
}
