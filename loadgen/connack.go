package loadgen

import (
	"fmt"
	"sync"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// connLimits is what one CONNACK allows the client (MQTT 5.0 §3.2.2.3);
// a 3.1.1 CONNACK, or an absent property, gives the specification's
// default.
type connLimits struct {
	receiveMax uint16 // QoS 1 and 2 PUBLISH packets unacknowledged at once
	maxPacket  uint32 // 0: no limit beyond the protocol's
	aliasMax   uint16 // highest Topic Alias the client may send
	maxQoS     packetgen.QoS
	keepAlive  int32 // Server Keep Alive in seconds; -1 when absent
	subIDs     bool  // Subscription Identifier Available
}

func limitsOf(p *packetgen.Properties) connLimits {
	l := connLimits{receiveMax: 65535, maxQoS: 2, keepAlive: -1, subIDs: true}
	if p.Has(packetgen.PropReceiveMaximum) {
		l.receiveMax = p.ReceiveMaximum
	}
	if p.Has(packetgen.PropMaximumPacketSize) {
		l.maxPacket = p.MaximumPacketSize
	}
	if p.Has(packetgen.PropTopicAliasMaximum) {
		l.aliasMax = p.TopicAliasMaximum
	}
	if p.Has(packetgen.PropMaximumQoS) {
		l.maxQoS = packetgen.QoS(p.MaximumQoS)
	}
	if p.Has(packetgen.PropServerKeepAlive) {
		l.keepAlive = int32(p.ServerKeepAlive)
	}
	if p.Has(packetgen.PropSubscriptionIdentifierAvailable) {
		l.subIDs = p.SubscriptionIdentifierAvailable == 1
	}
	return l
}

// check refuses a CONNACK that rules out what client c would do next.
func (l connLimits) check(c *client) error {
	sc := &c.a.sc
	if c.pub != nil && l.maxQoS < sc.QoS {
		// MQTT-3.2.2-11: no PUBLISH above the broker's Maximum QoS.
		return &UnsupportedError{Detail: fmt.Sprintf("the broker's CONNACK says Maximum QoS %d, below the scenario's QoS %d (MQTT-3.2.2-11)", l.maxQoS, sc.QoS)}
	}
	if c.sub != nil && sc.SubscriptionID && !l.subIDs {
		return &UnsupportedError{Detail: "the broker's CONNACK says Subscription Identifier Available 0: run without subscription identifiers"}
	}
	return nil
}

// brokerLimits gathers what every CONNACK of the run said, for the
// summary: the smallest value of each, and whether they differed.
type brokerLimits struct {
	mu     sync.Mutex
	seen   bool
	varied bool
	l      connLimits
}

func (b *brokerLimits) observe(l connLimits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.seen {
		b.seen, b.l = true, l
		return
	}
	if l != b.l {
		b.varied = true
	}
	o := &b.l
	o.receiveMax = min(o.receiveMax, l.receiveMax)
	if l.maxPacket > 0 && (o.maxPacket == 0 || l.maxPacket < o.maxPacket) {
		o.maxPacket = l.maxPacket
	}
	o.aliasMax = min(o.aliasMax, l.aliasMax)
	o.maxQoS = min(o.maxQoS, l.maxQoS)
	if l.keepAlive >= 0 && (o.keepAlive < 0 || l.keepAlive < o.keepAlive) {
		o.keepAlive = l.keepAlive
	}
	o.subIDs = o.subIDs && l.subIDs
}

// summary is the CONNACK section of a 5.0 run's summary; nil before any
// CONNACK.
func (b *brokerLimits) summary(inflight int) *reports.LoadConnack {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.seen {
		return nil
	}
	l := b.l
	s := &reports.LoadConnack{
		ReceiveMaximum: int(l.receiveMax), MaximumPacketSize: int64(l.maxPacket), TopicAliasMaximum: int(l.aliasMax),
		MaximumQoS: int(l.maxQoS), InflightWindow: min(inflight, int(l.receiveMax)), Varied: b.varied,
	}
	if l.keepAlive >= 0 {
		ka := int(l.keepAlive)
		s.ServerKeepAlive = &ka
	}
	return s
}
