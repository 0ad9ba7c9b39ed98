package fuzz

import (
	"fmt"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen"
)

// unusualCase builds the packets of one valid but unusual case.
type unusualCase struct {
	name string
	// accept: a conformant broker goes on serving (ExpectAccept);
	// otherwise the case presses on limits a broker may enforce by
	// closing, and only liveness is judged.
	accept func(v packetgen.Version) bool
	phase  packetgen.Phase
	gen    func(g *packetgen.Gen, tag string) []packetgen.Packet
}

func always(packetgen.Version) bool    { return true }
func never(packetgen.Version) bool     { return false }
func before5(v packetgen.Version) bool { return v != packetgen.V5 }

// topicOf is a topic no other case uses, so cases do not deliver to each
// other and retained messages do not pile up.
func topicOf(tag string, rest ...string) string {
	return strings.Join(append([]string{"mqttbench", "fz", tag}, rest...), "/")
}

var unusualCases = []unusualCase{
	{"client-packets", before5, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// Valid packets a client may send, in random order: acknowledgements
		// of nothing, subscriptions with wildcards, PUBLISH of any size.
		var ps []packetgen.Packet
		for n := 1 + g.Rand().IntN(8); len(ps) < n; {
			p := g.From(packetgen.FromClient)
			switch q := p.(type) {
			case *packetgen.Connect, *packetgen.Disconnect, *packetgen.Auth:
				continue
			case *packetgen.Publish:
				q.Retain = false // keep the broker's retained store flat
				q.Properties = packetgen.Properties{}
				if len(q.Topic) == 0 {
					q.Topic = []byte(topicOf(tag))
				}
			case *packetgen.Subscribe:
				q.Properties = packetgen.Properties{} // no subscription identifier the broker may not support
			}
			ps = append(ps, p)
		}
		return ps
	}},
	{"ping-burst", always, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		ps := make([]packetgen.Packet, 2+g.Rand().IntN(199))
		for i := range ps {
			ps[i] = &packetgen.Pingreq{}
		}
		return ps
	}},
	{"qos2-odd-order", before5, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// A QoS 2 PUBLISH repeated before PUBREL, PUBREL twice, and
		// acknowledgements of identifiers never used.
		id := uint16(1 + g.Rand().IntN(65535))
		p := &packetgen.Publish{QoS: 2, PacketID: id, Topic: []byte(topicOf(tag, "q2")), Payload: []byte("x")}
		dup := *p
		dup.Dup = true
		other := id ^ 0x5A5A
		if other == 0 {
			other = 1
		}
		return []packetgen.Packet{p, &dup, &packetgen.Pubrel{PacketID: id}, &packetgen.Pubrel{PacketID: id},
			&packetgen.Puback{PacketID: other}, &packetgen.Pubrec{PacketID: other}, &packetgen.Pubcomp{PacketID: other}}
	}},
	{"unsubscribe-unknown", always, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		return []packetgen.Packet{&packetgen.Unsubscribe{PacketID: 1 + uint16(g.Rand().IntN(65535)),
			Filters: []string{topicOf(tag, "never"), topicOf(tag, "+", "#"), "#"}}}
	}},
	{"empty-fields", before5, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// Zero-length payloads, one-character and empty-level topics.
		return []packetgen.Packet{
			&packetgen.Publish{Topic: []byte("/"), Payload: []byte{}},
			&packetgen.Publish{Topic: []byte(topicOf(tag) + "//"), QoS: 1, PacketID: 1},
			&packetgen.Subscribe{PacketID: 2, Subscriptions: []packetgen.Subscription{{Filter: "/"}, {Filter: topicOf(tag, "", "+", "")}}},
			&packetgen.Unsubscribe{PacketID: 3, Filters: []string{"/", topicOf(tag, "", "+", "")}},
		}
	}},
	{"retained-cycle", before5, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// Store a retained message, receive it by subscribing, delete it.
		t := topicOf(tag, "r")
		return []packetgen.Packet{
			&packetgen.Publish{Topic: []byte(t), Retain: true, QoS: 1, PacketID: 9, Payload: []byte("retained")},
			&packetgen.Subscribe{PacketID: 10, Subscriptions: []packetgen.Subscription{{Filter: topicOf(tag, "#"), QoS: 2}}},
			&packetgen.Publish{Topic: []byte(t), Retain: true, Payload: []byte{}},
		}
	}},
	{"pipelined", before5, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// Hundreds of QoS 1 and 2 messages without waiting for any answer.
		n := 50 + g.Rand().IntN(950)
		ps := make([]packetgen.Packet, 0, n)
		for i := range n {
			qos := packetgen.QoS(1 + i%2)
			ps = append(ps, &packetgen.Publish{QoS: qos, PacketID: uint16(1 + i), Topic: []byte(topicOf(tag, "p")), Payload: []byte(fmt.Sprint(i))})
		}
		return ps
	}},
	{"many-filters", never, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		n := 100 + g.Rand().IntN(1900)
		s := &packetgen.Subscribe{PacketID: 77}
		u := &packetgen.Unsubscribe{PacketID: 78}
		for i := range n {
			f := topicOf(tag, fmt.Sprint(i), "+")
			s.Subscriptions = append(s.Subscriptions, packetgen.Subscription{Filter: f, QoS: packetgen.QoS(i % 3)})
			u.Filters = append(u.Filters, f)
		}
		return []packetgen.Packet{s, u}
	}},
	{"deep-filter", never, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		n := 100 + g.Rand().IntN(20000)
		f := topicOf(tag) + strings.Repeat("/+", n) + "/#"
		return []packetgen.Packet{
			&packetgen.Subscribe{PacketID: 5, Subscriptions: []packetgen.Subscription{{Filter: f, QoS: 1}}},
			&packetgen.Publish{Topic: []byte(topicOf(tag) + strings.Repeat("/a", n+1)), Payload: []byte("deep")},
			&packetgen.Unsubscribe{PacketID: 6, Filters: []string{f}},
		}
	}},
	{"big-payload", never, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		n := 64<<10 + g.Rand().IntN(1<<20)
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		qos := packetgen.QoS(g.Rand().IntN(3))
		p := &packetgen.Publish{QoS: qos, Topic: []byte(topicOf(tag, "big")), Payload: payload}
		if qos > 0 {
			p.PacketID = 4
		}
		return []packetgen.Packet{p}
	}},
	{"long-strings", never, packetgen.PhaseFirst, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// The longest client identifier, user name, password, will topic
		// and will payload a string can hold.
		r := g.Rand()
		long := func(n int) string { return strings.Repeat("x", n) }
		c := &packetgen.Connect{ProtocolLevel: g.Version, CleanStart: true, KeepAlive: 60,
			ClientID: "fz" + tag + long(r.IntN(65534-len(tag)))}
		if g.Version == packetgen.V31 {
			c.ClientID = c.ClientID[:min(len(c.ClientID), 23)]
		}
		if r.IntN(2) == 0 {
			c.UsernameFlag, c.Username = true, long(r.IntN(65536))
			c.PasswordFlag, c.Password = true, []byte(long(r.IntN(65536)))
		}
		if r.IntN(2) == 0 {
			c.Will = &packetgen.Will{QoS: packetgen.QoS(r.IntN(3)), Topic: topicOf(tag) + "/" + long(r.IntN(60000)),
				Payload: []byte(long(r.IntN(65536)))}
		}
		return []packetgen.Packet{c, &packetgen.Pingreq{}}
	}},
	{"keepalive-extremes", never, packetgen.PhaseFirst, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		ka := []uint16{0, 1, 65535}[g.Rand().IntN(3)]
		c := &packetgen.Connect{ProtocolLevel: g.Version, CleanStart: true, KeepAlive: ka, ClientID: "fz" + tag}
		return []packetgen.Packet{c, &packetgen.Pingreq{}}
	}},
	{"will-then-drop", never, packetgen.PhaseFirst, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		// A QoS 2 will published when the fuzzer drops the connection.
		c := &packetgen.Connect{ProtocolLevel: g.Version, CleanStart: true, KeepAlive: 60, ClientID: "fz" + tag,
			Will: &packetgen.Will{QoS: 2, Topic: topicOf(tag, "will"), Payload: []byte("gone")}}
		return []packetgen.Packet{c, &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: topicOf(tag, "#"), QoS: 2}}}}
	}},
	{"disconnect-then-data", never, packetgen.PhaseAfterConnect, func(g *packetgen.Gen, tag string) []packetgen.Packet {
		return []packetgen.Packet{&packetgen.Disconnect{}, &packetgen.Pingreq{},
			&packetgen.Publish{Topic: []byte(topicOf(tag)), Payload: []byte("after")}}
	}},
}

// unusual returns a valid but unusual case.
func unusual(g *packetgen.Gen, i uint64) Case {
	u := unusualCases[g.Rand().IntN(len(unusualCases))]
	tag := fmt.Sprintf("%x-%x", g.Seed()&0xFFFFFF, i)
	var b []byte
	for _, p := range u.gen(g, tag) {
		b = packetgen.AppendUnchecked(b, p, g.Version)
	}
	c := judged(Case{Version: g.Version, Generator: GenUnusual, Class: u.name, Phase: u.phase, Bytes: b})
	if !c.expectDecided() && u.accept(g.Version) && !Judge(b, u.phase, g.Version).Incomplete {
		c.Expect = packetgen.ExpectAccept
	}
	if c.Detail == "" {
		c.Detail = fmt.Sprintf("%d bytes", len(b))
	}
	return c
}

func (c Case) expectDecided() bool { return c.Rule != "" }
