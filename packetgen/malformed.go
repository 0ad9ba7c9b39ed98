package packetgen

import (
	"fmt"
	"slices"
	"strings"
)

// Expect is what a conformant receiver does with a malformed case.
type Expect byte

const (
	// ExpectClose: the receiver closes the connection. A 5.0 server may
	// send DISCONNECT with a reason code of 0x80 or more first.
	ExpectClose Expect = iota
	// ExpectRefuse: the receiver answers with a refusal (a CONNACK return
	// code, a SUBACK failure code) or closes the connection.
	ExpectRefuse
	// ExpectWaitOrClose: the bytes so far are not wrong yet (a length that
	// promises more); the receiver waits, or closes when its limits say so.
	// It must not allocate what the length declares.
	ExpectWaitOrClose
	// ExpectAccept: unusual but valid; the receiver goes on serving.
	ExpectAccept
)

func (e Expect) String() string {
	return [...]string{"close", "refuse-or-close", "wait-or-close", "accept"}[e]
}

// Phase says where in a session a case's bytes go.
type Phase byte

const (
	// PhaseFirst: the bytes are the first thing sent on a new connection.
	PhaseFirst Phase = iota
	// PhaseAfterConnect: a valid CONNECT is sent and answered first.
	PhaseAfterConnect
)

func (p Phase) String() string { return [...]string{"first", "after-connect"}[p] }

// Case is one malformed (or deliberately unusual) input.
type Case struct {
	Class  string
	Rule   string     // the statement the bytes break (or, for ExpectAccept, exercise)
	Reason ReasonCode // what a 5.0 receiver reports
	Expect Expect
	Phase  Phase
	// Stateful cases are wrong only because of what came before (a packet
	// before CONNECT, a second CONNECT); decoding them alone succeeds.
	Stateful bool
	Bytes    []byte
	Detail   string
}

// String describes the case in one line; long inputs are cut.
func (c Case) String() string {
	b := c.Bytes
	more := ""
	if len(b) > 48 {
		b, more = b[:48], fmt.Sprintf(" ...(%d bytes)", len(c.Bytes))
	}
	return fmt.Sprintf("%s [%s] %s, expect %s: % X%s", c.Class, c.Rule, c.Detail, c.Expect, b, more)
}

// MalformedClass describes one named class of malformed input.
type MalformedClass struct {
	Name string
	Desc string
	v5   bool // only in 5.0
	pre5 bool // only before 5.0
	gen  func(g *Gen) Case
}

// MalformedClasses lists the classes that apply to version v.
func MalformedClasses(v Version) []MalformedClass {
	var out []MalformedClass
	for _, c := range malformedClasses {
		if (c.v5 && v != V5) || (c.pre5 && v == V5) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// MalformedClassNames lists the class names for version v.
func MalformedClassNames(v Version) []string {
	var names []string
	for _, c := range MalformedClasses(v) {
		names = append(names, c.Name)
	}
	return names
}

// Malformed returns a case of the named class, or an error naming the
// classes when the name is unknown or does not apply to the version.
func (g *Gen) Malformed(class string) (Case, error) {
	for _, c := range MalformedClasses(g.Version) {
		if c.Name == class {
			k := c.gen(g)
			k.Class = c.Name
			return k, nil
		}
	}
	return Case{}, fmt.Errorf("unknown malformed class %q for MQTT %s (known: %s)",
		class, g.Version, strings.Join(MalformedClassNames(g.Version), ", "))
}

// AnyMalformed returns a case of a random class.
func (g *Gen) AnyMalformed() Case {
	cs := MalformedClasses(g.Version)
	c := cs[g.intn(len(cs))]
	k := c.gen(g)
	k.Class = c.Name
	return k
}

// generic is the closing rule for violations the specification does not
// number (see Violation.Rule).
func (g *Gen) generic() string { return ruleProtocolViolation.of(g.Version) }

func (g *Gen) malformed() ReasonCode { return MalformedPacket }

// simplePublish is a valid client PUBLISH with a short ASCII topic.
func (g *Gen) simplePublish(qos QoS) *Publish {
	p := &Publish{QoS: qos, Topic: []byte("mqttbench/" + g.clientID(1+g.intn(8))), Payload: g.payload(32)}
	if qos > 0 {
		p.PacketID = g.packetID()
	}
	return p
}

func (g *Gen) simpleConnect() *Connect {
	return &Connect{ProtocolName: g.Version.ProtocolName(), ProtocolLevel: g.Version, CleanStart: true,
		KeepAlive: 60, ClientID: "mqttbench" + g.clientID(6)}
}

// badUTF8 returns a byte sequence that is not well-formed UTF-8, as MQTT
// defines it: stray continuation bytes, over-long forms, encoded
// surrogates, code points past U+10FFFF, cut sequences.
func (g *Gen) badUTF8() (string, string) {
	bad := []struct{ b, what string }{
		{"\xFF", "byte 0xFF"},
		{"\x80", "a lone continuation byte"},
		{"\xC0\xAF", "an over-long '/'"},
		{"\xED\xA0\x80", "the surrogate U+D800"},
		{"\xED\xBF\xBF", "the surrogate U+DFFF"},
		{"\xF4\x90\x80\x80", "a code point past U+10FFFF"},
		{"\xE2\x82", "a cut three-byte sequence"},
	}
	x := bad[g.intn(len(bad))]
	return "a" + x.b + "b", x.what
}

var malformedClasses = []MalformedClass{
	{Name: "oversized-length", Desc: "a PUBLISH declares the largest remaining length and sends a few bytes", gen: func(g *Gen) Case {
		f := FrameOf(g.simplePublish(0), g.Version).WithLength(MaxRemainingLength)
		// A client's packet over the server's size limit: in 5.0 it breaks
		// MQTT-3.2.2-15 (§3.2.2.3.6), which a receiver that bounds packet
		// size reports; 3.1.1 has no statement but the generic one.
		rule, _ := packetTooLarge(FromClient)
		return Case{Rule: rule.of(g.Version), Reason: PacketTooLarge, Expect: ExpectWaitOrClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("remaining length %d with %d bytes sent", MaxRemainingLength, len(f.Body))}
	}},
	{Name: "varint-too-long", Desc: "the remaining length takes five bytes", gen: func(g *Gen) Case {
		f := FrameOf(g.simplePublish(0), g.Version).WithLengthBytes(5 + g.intn(2))
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("a %d-byte remaining length", f.LengthBytes)}
	}},
	{Name: "varint-not-minimal", Desc: "the remaining length uses more bytes than it needs (5.0 forbids it)", v5: true, gen: func(g *Gen) Case {
		f := FrameOf(g.simplePublish(0), g.Version).WithLengthBytes(2 + g.intn(3))
		return Case{Rule: "MQTT-1.5.5-1", Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("remaining length %d in %d bytes", len(f.Body), f.LengthBytes)}
	}},
	{Name: "truncated", Desc: "a packet stops before its declared length", gen: func(g *Gen) Case {
		p := g.simplePublish(QoS(g.intn(3)))
		f := FrameOf(p, g.Version)
		f = f.Truncated(g.intn(len(f.Body)))
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectWaitOrClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("%d of %d body bytes sent", len(f.Body), f.Length)}
	}},
	{Name: "topic-overrun", Desc: "the topic length runs past the end of the PUBLISH", gen: func(g *Gen) Case {
		p := g.simplePublish(0)
		p.Payload = nil
		f := FrameOf(p, g.Version)
		n := len(p.Topic) + 1 + g.intn(60000)
		f = f.Patch(0, byte(n>>8), byte(n))
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("topic length %d in a %d-byte body", n, len(f.Body))}
	}},
	{Name: "string-overrun", Desc: "a string length runs past the end of the packet (client identifier or topic filter)", gen: func(g *Gen) Case {
		if g.chance(2) {
			c := g.simpleConnect()
			f := FrameOf(c, g.Version)
			off := 10 // protocol name, level, flags, keep alive
			if g.Version == V5 {
				off++ // empty property block
			} else if g.Version == V31 {
				off += 2 // "MQIsdp"
			}
			n := len(f.Body) - off + g.intn(1000)
			f = f.Patch(off, byte(n>>8), byte(n))
			return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseFirst,
				Bytes: f.Bytes(), Detail: fmt.Sprintf("client identifier length %d past the end", n)}
		}
		s := &Subscribe{PacketID: g.packetID(), Subscriptions: []Subscription{{Filter: "mqttbench/+"}}}
		f := FrameOf(s, g.Version)
		off := 2
		if g.Version == V5 {
			off++
		}
		n := len(f.Body) - off + g.intn(1000)
		f = f.Patch(off, byte(n>>8), byte(n))
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("topic filter length %d past the end", n)}
	}},
	{Name: "property-overrun", Desc: "a property length, or a string inside the properties, runs past its end", v5: true, gen: func(g *Gen) Case {
		p := g.simplePublish(0)
		p.Payload = nil
		if g.chance(2) {
			// The property length claims more than the packet holds.
			n := 5 + g.intn(100)
			p.Properties.Raw = AppendRawProperty(nil, byte(PropPayloadFormatIndicator), 1)
			f := FrameOf(p, g.Version)
			f = f.Patch(2+len(p.Topic), byte(n)) // one-byte property length
			return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
				Bytes: f.Bytes(), Detail: fmt.Sprintf("property length %d with 2 property bytes", n)}
		}
		// A Content Type string longer than the property block.
		p.Properties.Raw = AppendRawProperty(nil, byte(PropContentType), 0, byte(10+g.intn(100)), 'x')
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: "Content Type string runs past the property length"}
	}},
	{Name: "reserved-flags", Desc: "fixed header flags differ from the value the packet type requires", gen: func(g *Gen) Case {
		ps := []Packet{&Puback{PacketID: 1}, &Pubrec{PacketID: 1}, &Pubrel{PacketID: 1}, &Pubcomp{PacketID: 1},
			&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}}},
			&Unsubscribe{PacketID: 1, Filters: []string{"a"}}, &Pingreq{}, &Disconnect{}}
		p := ps[g.intn(len(ps))]
		want := p.flags()
		flags := byte(g.intn(16))
		for flags == want || (g.Version == V31 && want == 2 && flags == 0xA) {
			flags = byte(g.intn(16))
		}
		f := FrameOf(p, g.Version).WithFlags(flags)
		d := Decoder{Version: g.Version}
		err := d.checkTypeAndFlags(Header{Type: p.Type(), Flags: flags}, g.Version)
		return Case{Rule: ruleOf(err), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("%s with flags 0x%X instead of 0x%X", p.Type(), flags, want)}
	}},
	{Name: "qos3", Desc: "a PUBLISH with both QoS bits set", gen: func(g *Gen) Case {
		p := g.simplePublish(1)
		f := FrameOf(p, g.Version).WithFlags(6 | byte(g.intn(2)) | byte(g.intn(2))<<3)
		return Case{Rule: ruleQoS3.of(g.Version), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("PUBLISH flags 0x%X", f.Header&0xF)}
	}},
	{Name: "subscribe-options", Desc: "SUBSCRIBE requests QoS 3 or sets reserved option bits", gen: func(g *Gen) Case {
		s := &Subscribe{PacketID: g.packetID(), Subscriptions: []Subscription{{Filter: "mqttbench/" + g.clientID(4)}}}
		f := FrameOf(s, g.Version)
		o := byte(3)
		if g.chance(2) {
			if g.Version == V5 {
				o = 0x40 << g.intn(2)
			} else {
				o = 0x04 << g.intn(6)
			}
		}
		f = f.Patch(len(f.Body)-1, o)
		rule, reason := ruleSubscribeOptions.of(g.Version), MalformedPacket
		if o == 3 && g.Version == V5 {
			rule, reason = g.generic(), ProtocolError // §3.8.3.1
		}
		return Case{Rule: rule, Reason: reason, Expect: ExpectClose,
			Phase: PhaseAfterConnect, Bytes: f.Bytes(), Detail: fmt.Sprintf("subscription options 0x%02X", o)}
	}},
	{Name: "packet-id-zero", Desc: "a QoS > 0 PUBLISH, SUBSCRIBE or UNSUBSCRIBE with packet identifier 0", gen: func(g *Gen) Case {
		var p Packet
		switch g.intn(3) {
		case 0:
			pub := g.simplePublish(QoS(1 + g.intn(2)))
			pub.PacketID = 0
			p = pub
		case 1:
			p = &Subscribe{Subscriptions: []Subscription{{Filter: "mqttbench/#"}}}
		default:
			p = &Unsubscribe{Filters: []string{"mqttbench/#"}}
		}
		return Case{Rule: rulePacketIDZero.of(g.Version), Reason: ProtocolError, Expect: ExpectClose,
			Phase: PhaseAfterConnect, Bytes: AppendUnchecked(nil, p, g.Version), Detail: p.Type().String() + " with packet identifier 0"}
	}},
	{Name: "invalid-utf8", Desc: "ill-formed UTF-8 in a topic name, topic filter or client identifier", gen: func(g *Gen) Case {
		s, what := g.badUTF8()
		k := Case{Rule: ruleUTF8Wellformed.of(g.Version), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect}
		switch g.intn(3) {
		case 0:
			p := g.simplePublish(0)
			p.Topic = []byte("mqttbench/" + s)
			k.Bytes, k.Detail = AppendUnchecked(nil, p, g.Version), "topic name holds "+what
		case 1:
			p := &Subscribe{PacketID: g.packetID(), Subscriptions: []Subscription{{Filter: "mqttbench/" + s}}}
			k.Bytes, k.Detail = AppendUnchecked(nil, p, g.Version), "topic filter holds "+what
		default:
			c := g.simpleConnect()
			c.ClientID = s
			k.Phase = PhaseFirst
			k.Bytes, k.Detail = AppendUnchecked(nil, c, g.Version), "client identifier holds "+what
		}
		return k
	}},
	{Name: "null-character", Desc: "U+0000 in a topic name, topic filter or user name", gen: func(g *Gen) Case {
		k := Case{Rule: ruleUTF8Null.of(g.Version), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect}
		switch g.intn(3) {
		case 0:
			p := g.simplePublish(0)
			p.Topic = append(p.Topic, 0, 'x')
			k.Bytes, k.Detail = AppendUnchecked(nil, p, g.Version), "topic name holds U+0000"
		case 1:
			p := &Subscribe{PacketID: g.packetID(), Subscriptions: []Subscription{{Filter: "mqttbench/\x00/#"}}}
			k.Bytes, k.Detail = AppendUnchecked(nil, p, g.Version), "topic filter holds U+0000"
		default:
			c := g.simpleConnect()
			c.UsernameFlag, c.Username = true, "user\x00name"
			k.Phase = PhaseFirst
			k.Bytes, k.Detail = AppendUnchecked(nil, c, g.Version), "user name holds U+0000"
		}
		return k
	}},
	{Name: "wildcard-topic", Desc: "a PUBLISH topic name with '+' or '#'", gen: func(g *Gen) Case {
		p := g.simplePublish(QoS(g.intn(2)))
		w := []string{"+", "#", "a+", "#/x", "+/+"}[g.intn(5)]
		p.Topic = append(p.Topic, "/"+w...)
		var d Decoder
		d.Version = g.Version
		b := AppendUnchecked(nil, p, g.Version)
		_, _, err := d.Decode(b)
		return Case{Rule: ruleOf(err), Reason: TopicNameInvalid, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: b, Detail: fmt.Sprintf("topic name %q", p.Topic)}
	}},
	{Name: "empty-topic", Desc: "a PUBLISH with a zero-length topic name (and no topic alias)", gen: func(g *Gen) Case {
		p := g.simplePublish(QoS(g.intn(3)))
		p.Topic = nil
		return Case{Rule: ruleEmptyTopic.of(g.Version), Reason: ProtocolError, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: "zero-length topic name"}
	}},
	{Name: "deep-topic", Desc: "valid but extreme: a topic of thousands of levels, up to 65,535 bytes", gen: func(g *Gen) Case {
		n := 1000 + g.intn(31000)
		p := g.simplePublish(QoS(g.intn(2)))
		p.Topic = []byte(strings.Repeat("a/", n) + "z")
		return Case{Rule: "MQTT-4.7.3-3", Expect: ExpectAccept, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: fmt.Sprintf("topic of %d levels, %d bytes", n+1, len(p.Topic))}
	}},
	{Name: "duplicate-property", Desc: "a property that may appear once appears twice", v5: true, gen: func(g *Gen) Case {
		p := g.simplePublish(0)
		raw := AppendRawProperty(nil, byte(PropMessageExpiryInterval), 0, 0, 0, 10)
		if g.chance(2) {
			raw = AppendRawProperty(nil, byte(PropPayloadFormatIndicator), 0)
		}
		p.Properties.Raw = append(raw, raw...)
		return Case{Rule: g.generic(), Reason: ProtocolError, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: fmt.Sprintf("property 0x%02X twice", raw[0])}
	}},
	{Name: "unknown-property", Desc: "a property identifier the specification does not define", v5: true, gen: func(g *Gen) Case {
		p := g.simplePublish(0)
		unknown := []byte{0x00, 0x04, 0x0A, 0x10, 0x14, 0x1B, 0x2B, 0x7F}
		id := unknown[g.intn(len(unknown))]
		p.Properties.Raw = AppendRawProperty(nil, id, 0)
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: fmt.Sprintf("property identifier 0x%02X", id)}
	}},
	{Name: "wrong-type-property", Desc: "a property value of the wrong size or out of its range", v5: true, gen: func(g *Gen) Case {
		p := g.simplePublish(0)
		switch g.intn(3) {
		case 0: // a four-byte integer given two bytes
			p.Properties.Raw = AppendRawProperty(nil, byte(PropMessageExpiryInterval), 0, 10)
			return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
				Bytes: AppendUnchecked(nil, p, g.Version), Detail: "Message Expiry Interval with 2 of 4 bytes"}
		case 1: // a byte property outside 0..1
			p.Properties.Raw = AppendRawProperty(nil, byte(PropPayloadFormatIndicator), byte(2+g.intn(254)))
			return Case{Rule: g.generic(), Reason: ProtocolError, Expect: ExpectClose, Phase: PhaseAfterConnect,
				Bytes: AppendUnchecked(nil, p, g.Version), Detail: "Payload Format Indicator outside 0..1"}
		}
		p.Properties.Raw = AppendRawProperty(nil, byte(PropTopicAlias), 0, 0)
		return Case{Rule: "MQTT-3.3.2-8", Reason: TopicAliasInvalid, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: "Topic Alias 0"}
	}},
	{Name: "property-not-allowed", Desc: "a property in a packet that may not carry it", v5: true, gen: func(g *Gen) Case {
		p := g.simplePublish(0)
		ids := []PropID{PropSessionExpiryInterval, PropReceiveMaximum, PropMaximumQoS, PropServerKeepAlive, PropWillDelayInterval}
		id := ids[g.intn(len(ids))]
		var props Properties
		switch id.Type() {
		case PropByte:
			props.Set(id, byte(1))
		case PropUint16:
			props.Set(id, uint16(5))
		default:
			props.Set(id, uint32(5))
		}
		p.Properties = props
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: id.String() + " in PUBLISH"}
	}},
	{Name: "server-packet", Desc: "a client sends a packet only a server may send", gen: func(g *Gen) Case {
		ps := []Packet{&Connack{}, &Suback{PacketID: 1, ReasonCodes: []ReasonCode{0}}, &Unsuback{PacketID: 1}, &Pingresp{}}
		if g.Version == V5 {
			ps[2] = &Unsuback{PacketID: 1, ReasonCodes: []ReasonCode{0}}
		}
		p := ps[g.intn(len(ps))]
		return Case{Rule: g.generic(), Reason: ProtocolError, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: p.Type().String() + " from a client"}
	}},
	{Name: "reserved-type", Desc: "a packet of a reserved type (0, or 15 before 5.0)", gen: func(g *Gen) Case {
		t := byte(0)
		if g.Version != V5 && g.chance(2) {
			t = 15
		}
		body := g.payload(8)
		f := Frame{Header: t << 4, Body: body, Length: LengthAuto}
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("packet type %d", t)}
	}},
	{Name: "trailing-bytes", Desc: "bytes after a packet's last field, counted in its length", gen: func(g *Gen) Case {
		ps := []Packet{&Pingreq{}, &Puback{PacketID: 7}, &Disconnect{}}
		if g.Version == V5 {
			ps = []Packet{&Pingreq{}}
		}
		p := ps[g.intn(len(ps))]
		f := FrameOf(p, g.Version).WithTrailing(g.payload(8)...)
		if len(f.Body) == len(FrameOf(p, g.Version).Body) {
			f = f.WithTrailing(0)
		}
		return Case{Rule: g.generic(), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseAfterConnect,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("%s with %d body bytes", p.Type(), len(f.Body))}
	}},
	{Name: "no-filters", Desc: "a SUBSCRIBE or UNSUBSCRIBE without any topic filter", gen: func(g *Gen) Case {
		if g.chance(2) {
			return Case{Rule: ruleSubscribeEmpty.of(g.Version), Reason: ProtocolError, Expect: ExpectClose,
				Phase: PhaseAfterConnect, Bytes: AppendUnchecked(nil, &Subscribe{PacketID: g.packetID()}, g.Version),
				Detail: "SUBSCRIBE with no filter"}
		}
		return Case{Rule: ruleUnsubscribeEmpty.of(g.Version), Reason: ProtocolError, Expect: ExpectClose,
			Phase: PhaseAfterConnect, Bytes: AppendUnchecked(nil, &Unsubscribe{PacketID: g.packetID()}, g.Version),
			Detail: "UNSUBSCRIBE with no filter"}
	}},
	{Name: "invalid-filter", Desc: "a topic filter with a misplaced wildcard", gen: func(g *Gen) Case {
		bad := []string{"a/b#", "a/#/b", "a+", "#/a", "a/+b/c", "++", "##"}
		f := "mqttbench/" + bad[g.intn(len(bad))]
		b := AppendUnchecked(nil, &Subscribe{PacketID: g.packetID(), Subscriptions: []Subscription{{Filter: f, QoS: QoS(g.intn(3))}}}, g.Version)
		d := Decoder{Version: g.Version}
		_, _, err := d.Decode(b)
		return Case{Rule: ruleOf(err), Reason: TopicFilterInvalid, Expect: ExpectRefuse, Phase: PhaseAfterConnect,
			Bytes: b, Detail: fmt.Sprintf("topic filter %q", f)}
	}},
	{Name: "before-connect", Desc: "a valid packet other than CONNECT opens the connection", gen: func(g *Gen) Case {
		ps := []Packet{g.simplePublish(QoS(g.intn(3))), &Pingreq{},
			&Subscribe{PacketID: g.packetID(), Subscriptions: []Subscription{{Filter: "#"}}}}
		p := ps[g.intn(len(ps))]
		return Case{Rule: "MQTT-3.1.0-1", Reason: ProtocolError, Expect: ExpectClose, Phase: PhaseFirst, Stateful: true,
			Bytes: AppendUnchecked(nil, p, g.Version), Detail: p.Type().String() + " before CONNECT"}
	}},
	{Name: "second-connect", Desc: "a second CONNECT on a connected session", gen: func(g *Gen) Case {
		return Case{Rule: "MQTT-3.1.0-2", Reason: ProtocolError, Expect: ExpectClose, Phase: PhaseAfterConnect, Stateful: true,
			Bytes: AppendUnchecked(nil, g.simpleConnect(), g.Version), Detail: "CONNECT after CONNECT"}
	}},
	{Name: "connect-flags", Desc: "CONNECT with the reserved flag, or will QoS / will retain without the will flag, or will QoS 3", gen: func(g *Gen) Case {
		c := g.simpleConnect()
		f := FrameOf(c, g.Version)
		off := 2 + len(c.ProtocolName) + 1
		flags := f.Body[off]
		var r rules
		var what string
		switch g.intn(4) {
		case 0:
			flags |= connectReserved
			r, what = ruleConnectReserve, "reserved flag set"
		case 1:
			flags |= byte(1+g.intn(2)) << connectWillQoSShift
			r, what = ruleWillQoSNoFlag, "will QoS without the will flag"
		case 2:
			flags |= connectWillRetain
			r, what = ruleWillRetainFlag, "will retain without the will flag"
		default:
			c.Will = &Will{Topic: "mqttbench/will", Payload: []byte("x")}
			f = FrameOf(c, g.Version)
			flags = f.Body[off] | 3<<connectWillQoSShift
			r, what = ruleWillQoS3, "will QoS 3"
		}
		f = f.Patch(off, flags)
		return Case{Rule: r.of(g.Version), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseFirst,
			Bytes: f.Bytes(), Detail: fmt.Sprintf("connect flags 0x%02X: %s", flags, what)}
	}},
	{Name: "password-without-username", Desc: "CONNECT with the password flag but not the user name flag (3.x)", pre5: true, gen: func(g *Gen) Case {
		c := g.simpleConnect()
		c.PasswordFlag, c.Password = true, g.payload(8)
		return Case{Rule: rulePasswordNoUser.of(g.Version), Reason: MalformedPacket, Expect: ExpectClose, Phase: PhaseFirst,
			Bytes: AppendUnchecked(nil, c, g.Version), Detail: "password flag without user name flag"}
	}},
	{Name: "bad-protocol", Desc: "CONNECT with an unknown protocol name or level", gen: func(g *Gen) Case {
		c := g.simpleConnect()
		if g.chance(2) {
			c.ProtocolName = []string{"MQTX", "mqtt", "MQIsdp", "MQ", "MQTTT"}[g.intn(5)]
			if c.ProtocolName == "MQIsdp" && c.ProtocolLevel == V31 {
				c.ProtocolName = "MQTTT"
			}
		} else {
			c.ProtocolLevel = Version([]byte{1, 2, 6, 7, 0x83, 0xFF}[g.intn(6)])
		}
		b := AppendUnchecked(nil, c, g.Version)
		d := Decoder{Version: g.Version}
		_, _, err := d.Decode(b)
		return Case{Rule: ruleOf(err), Reason: UnsupportedProtocolVersion, Expect: ExpectRefuse, Phase: PhaseFirst,
			Bytes: b, Detail: fmt.Sprintf("protocol %q level %d", c.ProtocolName, byte(c.ProtocolLevel))}
	}},
}

// ruleOf is the Rule of err's violation, "" when there is none.
func ruleOf(err error) string {
	if v := AsViolation(err); v != nil {
		return v.Rule
	}
	return ""
}

// ClassNamesAll lists every class name across versions, sorted.
func ClassNamesAll() []string {
	var names []string
	for _, c := range malformedClasses {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}
