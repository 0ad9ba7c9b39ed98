package packetgen

import (
	"math/rand/v2"
	"strings"
)

// Gen produces packets from a seed: the same seed, version and calls give
// the same packets, byte for byte, on every machine.
type Gen struct {
	Version Version
	seed    uint64
	rng     *rand.Rand
}

// NewGen returns a generator for version v seeded with seed.
func NewGen(seed uint64, v Version) *Gen {
	return &Gen{Version: v, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))}
}

// Seed is the seed the generator was made with.
func (g *Gen) Seed() uint64 { return g.seed }

// Rand exposes the generator's source, for callers that need more
// decisions from the same seed.
func (g *Gen) Rand() *rand.Rand { return g.rng }

func (g *Gen) intn(n int) int    { return g.rng.IntN(n) }
func (g *Gen) chance(n int) bool { return g.rng.IntN(n) == 0 }

// Types lists the packet types version v defines.
func Types(v Version) []Type {
	ts := []Type{TypeConnect, TypeConnack, TypePublish, TypePuback, TypePubrec, TypePubrel, TypePubcomp,
		TypeSubscribe, TypeSuback, TypeUnsubscribe, TypeUnsuback, TypePingreq, TypePingresp, TypeDisconnect}
	if v == V5 {
		ts = append(ts, TypeAuth)
	}
	return ts
}

// Packet returns a valid packet of a random type.
func (g *Gen) Packet() Packet {
	ts := Types(g.Version)
	return g.Valid(ts[g.intn(len(ts))])
}

// From returns a valid packet of a random type that side may send.
func (g *Gen) From(side Side) Packet {
	for {
		ts := Types(g.Version)
		t := ts[g.intn(len(ts))]
		if s := sentBy(t, g.Version); s == AnySide || s == side || side == AnySide {
			return g.valid(t, side)
		}
	}
}

// Valid returns a valid packet of type t: Append accepts it and Decode of
// its bytes gives it back. Packets a server and a client may both send are
// made as a server would (so PUBLISH may carry subscription identifiers).
func (g *Gen) Valid(t Type) Packet { return g.valid(t, sentBySide(t, g.Version)) }

func sentBySide(t Type, v Version) Side {
	if s := sentBy(t, v); s != AnySide {
		return s
	}
	return FromServer
}

func (g *Gen) valid(t Type, side Side) Packet {
	v := g.Version
	switch t {
	case TypeConnect:
		return g.connect()
	case TypeConnack:
		p := &Connack{}
		if v == V5 {
			codes := []ReasonCode{0, 0, 0x80, 0x84, 0x85, 0x86, 0x87, 0x95, 0x9C}
			p.ReasonCode = codes[g.intn(len(codes))]
			g.props(&p.Properties, TypeConnack, side)
		} else {
			p.ReasonCode = ReasonCode(g.intn(6))
			if g.chance(3) {
				p.ReasonCode = 0
			}
		}
		p.SessionPresent = v != V31 && p.ReasonCode == 0 && g.chance(2)
		return p
	case TypePublish:
		return g.publish(side)
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		a := Puback{PacketID: g.packetID()}
		if v == V5 && g.chance(2) {
			set := pubackReasons
			if t == TypePubrel || t == TypePubcomp {
				set = pubrelReasons
			}
			a.ReasonCode = g.codeFrom(&set)
			if g.chance(2) {
				g.props(&a.Properties, t, side)
			}
		}
		switch t {
		case TypePuback:
			return &a
		case TypePubrec:
			return (*Pubrec)(&a)
		case TypePubrel:
			return (*Pubrel)(&a)
		}
		return (*Pubcomp)(&a)
	case TypeSubscribe:
		p := &Subscribe{PacketID: g.packetID()}
		if v == V5 {
			g.props(&p.Properties, TypeSubscribe, side)
		}
		for n := 1 + g.intn(4); n > 0; n-- {
			s := Subscription{Filter: g.Filter(), QoS: QoS(g.intn(3))}
			if v == V5 {
				s.NoLocal = g.chance(3)
				s.RetainAsPublished = g.chance(3)
				s.RetainHandling = byte(g.intn(3))
				if g.chance(8) && !s.NoLocal {
					s.Filter = "$share/" + g.level(false) + "/" + s.Filter
				}
			}
			p.Subscriptions = append(p.Subscriptions, s)
		}
		return p
	case TypeSuback:
		p := &Suback{PacketID: g.packetID()}
		if v == V5 {
			g.props(&p.Properties, TypeSuback, side)
		}
		for n := 1 + g.intn(4); n > 0; n-- {
			var rc ReasonCode
			switch {
			case v == V5:
				rc = g.codeFrom(&subackReasons)
			case v == V311 && g.chance(4):
				rc = SubackFailure
			default:
				rc = ReasonCode(g.intn(3))
			}
			p.ReasonCodes = append(p.ReasonCodes, rc)
		}
		return p
	case TypeUnsubscribe:
		p := &Unsubscribe{PacketID: g.packetID()}
		if v == V5 {
			g.props(&p.Properties, TypeUnsubscribe, side)
		}
		for n := 1 + g.intn(4); n > 0; n-- {
			p.Filters = append(p.Filters, g.Filter())
		}
		return p
	case TypeUnsuback:
		p := &Unsuback{PacketID: g.packetID()}
		if v == V5 {
			g.props(&p.Properties, TypeUnsuback, side)
			for n := 1 + g.intn(4); n > 0; n-- {
				p.ReasonCodes = append(p.ReasonCodes, g.codeFrom(&unsubackReason))
			}
		}
		return p
	case TypePingreq:
		return &Pingreq{}
	case TypePingresp:
		return &Pingresp{}
	case TypeDisconnect:
		p := &Disconnect{}
		if v == V5 && g.chance(2) {
			set := disconnectFrom[side]
			p.ReasonCode = g.codeFrom(&set)
			g.props(&p.Properties, TypeDisconnect, side)
		}
		return p
	case TypeAuth:
		p := &Auth{}
		if g.chance(4) {
			return p
		}
		p.ReasonCode = g.codeFrom(&authReasons)
		g.props(&p.Properties, TypeAuth, side)
		p.Properties.Set(PropAuthenticationMethod, "SCRAM-SHA-1")
		return p
	}
	return nil
}

func (g *Gen) codeFrom(set *[256]bool) ReasonCode {
	var codes []ReasonCode
	for i, ok := range set {
		if ok {
			codes = append(codes, ReasonCode(i))
		}
	}
	return codes[g.intn(len(codes))]
}

func (g *Gen) packetID() uint16 { return uint16(1 + g.intn(65535)) }

func (g *Gen) connect() *Connect {
	v := g.Version
	p := &Connect{ProtocolName: v.ProtocolName(), ProtocolLevel: v, CleanStart: g.chance(2),
		KeepAlive: uint16(g.intn(3) * 30)}
	switch {
	case v == V31:
		p.ClientID = g.clientID(1 + g.intn(23))
	case g.chance(5) && (p.CleanStart || v == V5):
		p.ClientID = "" // the server assigns one
	default:
		p.ClientID = g.clientID(1 + g.intn(40))
	}
	if v == V5 {
		g.props(&p.Properties, TypeConnect, FromClient)
	}
	if g.chance(2) {
		w := &Will{QoS: QoS(g.intn(3)), Retain: g.chance(2), Topic: g.TopicName(), Payload: g.payload(64)}
		if v == V5 {
			g.props(&w.Properties, propWill, FromClient)
		}
		p.Will = w
	}
	if g.chance(2) {
		p.UsernameFlag, p.Username = true, g.utf8(g.intn(12))
		if g.chance(2) {
			p.PasswordFlag, p.Password = true, g.payload(16)
		}
	} else if v == V5 && g.chance(3) {
		p.PasswordFlag, p.Password = true, g.payload(16)
	}
	return p
}

func (g *Gen) publish(side Side) *Publish {
	p := &Publish{QoS: QoS(g.intn(3)), Retain: g.chance(3), Topic: []byte(g.TopicName())}
	if p.QoS > 0 {
		p.PacketID = g.packetID()
		p.Dup = g.chance(4)
	}
	if g.Version == V5 {
		g.props(&p.Properties, TypePublish, side)
		if p.Properties.Present.Has(PropTopicAlias) && g.chance(2) {
			p.Topic = nil // the alias stands in for the topic
		}
	}
	max := 256
	if g.chance(20) {
		max = 70000
	}
	p.Payload = g.payload(max)
	return p
}

// props fills p with a random valid subset of the properties packet type t
// may carry.
func (g *Gen) props(p *Properties, t Type, side Side) {
	if g.chance(3) {
		return
	}
	for _, id := range PropIDs() {
		in := propTable[id]
		if in.allowed&(1<<t) == 0 || !g.chance(3) {
			continue
		}
		switch id {
		case PropUserProperty:
			for n := 1 + g.intn(3); n > 0; n-- {
				p.Set(id, UserProperty{g.utf8(g.intn(10)), g.utf8(g.intn(20))})
			}
			continue
		case PropSubscriptionIdentifier:
			if t == TypePublish && side == FromClient {
				continue // MQTT-3.3.4-6
			}
			n := 1
			if t == TypePublish {
				n += g.intn(3)
			}
			for ; n > 0; n-- {
				p.Set(id, uint32(1+g.intn(MaxRemainingLength)))
			}
			continue
		case PropSessionExpiryInterval:
			if t == TypeDisconnect && side == FromServer {
				continue // MQTT-3.14.2-2
			}
		case PropResponseTopic:
			p.Set(id, g.TopicName())
			continue
		}
		switch in.typ {
		case PropByte:
			if in.bool01 {
				p.Set(id, byte(g.intn(2)))
			} else {
				p.Set(id, byte(g.intn(256)))
			}
		case PropUint16:
			p.Set(id, uint16(1+g.intn(65535)))
		case PropUint32:
			p.Set(id, uint32(1+g.rng.Uint32N(1<<32-1)))
		case PropString:
			p.Set(id, g.utf8(g.intn(24)))
		case PropBinary:
			p.Set(id, g.payload(32))
		}
	}
	if p.Present.Has(PropAuthenticationData) && !p.Present.Has(PropAuthenticationMethod) {
		p.Set(PropAuthenticationMethod, "SCRAM-SHA-256") // data needs its method
	}
}

// payload returns up to max random bytes, often none.
func (g *Gen) payload(max int) []byte {
	if g.chance(6) {
		return []byte{}
	}
	b := make([]byte, g.intn(max+1))
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return b
}

const idChars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func (g *Gen) clientID(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idChars[g.intn(len(idChars))]
	}
	return string(b)
}

// utf8 returns a valid MQTT string of about n runes: ASCII mostly, with
// multi-byte characters, spaces and the byte order mark, never U+0000,
// surrogates or wildcards.
func (g *Gen) utf8(n int) string {
	var b strings.Builder
	extra := []rune{' ', 'é', 'ß', '中', '𝄞', '\uFEFF', '\u00A0', '~'}
	for i := 0; i < n; i++ {
		if g.chance(6) {
			b.WriteRune(extra[g.intn(len(extra))])
		} else {
			b.WriteByte(idChars[g.intn(len(idChars))])
		}
	}
	return b.String()
}

// level returns one topic level without wildcards or separators.
func (g *Gen) level(allowEmpty bool) string {
	if allowEmpty && g.chance(8) {
		return ""
	}
	s := g.utf8(1 + g.intn(8))
	return strings.NewReplacer("/", "", "+", "", "#", "").Replace(s)
}

// TopicName returns a random valid topic name: one to six levels, now and
// then an empty level, a leading '/' or a leading '$'.
func (g *Gen) TopicName() string {
	n := 1 + g.intn(6)
	levels := make([]string, n)
	for i := range levels {
		levels[i] = g.level(n > 1)
	}
	if g.chance(10) {
		levels[0] = "$" + levels[0]
	}
	s := strings.Join(levels, "/")
	if s == "" {
		s = "t"
	}
	return s
}

// Filter returns a random valid topic filter, wildcards included.
func (g *Gen) Filter() string {
	n := 1 + g.intn(6)
	levels := make([]string, n)
	for i := range levels {
		switch {
		case g.chance(4):
			levels[i] = "+"
		default:
			levels[i] = g.level(n > 1)
		}
	}
	if g.chance(4) {
		levels[n-1] = "#"
	}
	s := strings.Join(levels, "/")
	if s == "" {
		s = "#"
	}
	return s
}
