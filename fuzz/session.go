package fuzz

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen"
)

// session is a valid client session as bytes, with packet boundaries.
type session struct {
	b     []byte
	marks []int // offset where each packet starts
}

func (s *session) add(p packetgen.Packet, v packetgen.Version) {
	s.marks = append(s.marks, len(s.b))
	s.b = packetgen.AppendUnchecked(s.b, p, v)
}

// validSession builds CONNECT, SUBSCRIBE, PUBLISH (with PUBREL at QoS 2)
// and PINGREQ, now and then UNSUBSCRIBE and DISCONNECT, on topics under
// the case's own prefix.
func validSession(r *rand.Rand, v packetgen.Version, tag string) session {
	var s session
	c := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60, ClientID: "fz" + tag}
	if v == packetgen.V31 && len(c.ClientID) > 23 {
		c.ClientID = c.ClientID[:23]
	}
	if r.IntN(3) == 0 {
		c.Will = &packetgen.Will{QoS: packetgen.QoS(r.IntN(3)), Topic: topicOf(tag, "will"), Payload: randBytes(r, 16)}
	}
	if r.IntN(3) == 0 {
		c.UsernameFlag, c.Username = true, "user"
		c.PasswordFlag, c.Password = r.IntN(2) == 0, []byte("secret")
	}
	if v == packetgen.V5 && r.IntN(2) == 0 {
		c.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(0))
		c.Properties.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "v"})
	}
	s.add(c, v)
	sub := &packetgen.Subscribe{PacketID: uint16(1 + r.IntN(65535))}
	for n := 1 + r.IntN(3); n > 0; n-- {
		f := []string{topicOf(tag, "+"), topicOf(tag, "#"), topicOf(tag, "t"), topicOf(tag, "+", "x")}[r.IntN(4)]
		sub.Subscriptions = append(sub.Subscriptions, packetgen.Subscription{Filter: f, QoS: packetgen.QoS(r.IntN(3))})
	}
	s.add(sub, v)
	qos := packetgen.QoS(r.IntN(3))
	pub := &packetgen.Publish{QoS: qos, Topic: []byte(topicOf(tag, "t")), Payload: randBytes(r, 48)}
	if qos > 0 {
		pub.PacketID = uint16(1 + r.IntN(65535))
	}
	if v == packetgen.V5 && r.IntN(2) == 0 {
		pub.Properties.Set(packetgen.PropContentType, "text/plain")
		pub.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(60))
	}
	s.add(pub, v)
	if qos == 2 {
		s.add(&packetgen.Pubrel{PacketID: pub.PacketID}, v)
	}
	s.add(&packetgen.Pingreq{}, v)
	if r.IntN(3) == 0 {
		s.add(&packetgen.Unsubscribe{PacketID: uint16(1 + r.IntN(65535)), Filters: []string{sub.Subscriptions[0].Filter}}, v)
	}
	if r.IntN(4) == 0 {
		s.add(&packetgen.Disconnect{}, v)
	}
	return s
}

func randBytes(r *rand.Rand, max int) []byte {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mutation changes a session's bytes; it returns false when it did not
// apply.
type mutation struct {
	name  string
	apply func(r *rand.Rand, s *session, other func() session) bool
}

var interesting = []byte{0x00, 0x01, 0x02, 0x7F, 0x80, 0xC0, 0xFE, 0xFF}

var mutations = []mutation{
	{"bitflip", func(r *rand.Rand, s *session, _ func() session) bool {
		for n := 1 + r.IntN(4); n > 0; n-- {
			s.b[r.IntN(len(s.b))] ^= 1 << r.IntN(8)
		}
		return true
	}},
	{"byte", func(r *rand.Rand, s *session, _ func() session) bool {
		s.b[r.IntN(len(s.b))] = interesting[r.IntN(len(interesting))]
		return true
	}},
	{"splice", func(r *rand.Rand, s *session, other func() session) bool {
		// A prefix of this session, then a suffix of another: at packet
		// boundaries half the time, anywhere else otherwise.
		o := other()
		a, b := r.IntN(len(s.b)+1), r.IntN(len(o.b))
		if r.IntN(2) == 0 && len(s.marks) > 0 {
			a, b = s.marks[r.IntN(len(s.marks))], o.marks[r.IntN(len(o.marks))]
		}
		s.b = append(s.b[:a:a], o.b[b:]...)
		s.marks = nil
		return true
	}},
	{"truncate", func(r *rand.Rand, s *session, _ func() session) bool {
		s.b = s.b[:1+r.IntN(len(s.b))]
		s.marks = nil
		return true
	}},
	{"shrink-length", func(r *rand.Rand, s *session, _ func() session) bool {
		// A packet's remaining length made smaller, its body cut to match:
		// the fields inside run past its end (the inner-length overruns
		// that crashed NanoMQ and mochi-mqtt).
		if len(s.marks) == 0 {
			return false
		}
		k := r.IntN(len(s.marks))
		start, end := s.marks[k], len(s.b)
		if k+1 < len(s.marks) {
			end = s.marks[k+1]
		}
		h, err := (&packetgen.Decoder{Version: packetgen.V5}).ParseHeader(s.b[start:end])
		if err != nil || h.Remaining == 0 || start+h.Size+h.Remaining > end {
			return false // an earlier mutation broke this header
		}
		// Half the time only the last few bytes go: a packet cut right
		// after a complete field (mochi-mqtt's issue #501: a SUBSCRIBE
		// without its options byte).
		n := r.IntN(h.Remaining)
		if r.IntN(2) == 0 {
			n = max(0, h.Remaining-1-r.IntN(3))
		}
		f := packetgen.Frame{Header: s.b[start], Body: s.b[start+h.Size : start+h.Size+n], Length: packetgen.LengthAuto}
		s.b = append(f.Append(append([]byte(nil), s.b[:start]...)), s.b[end:]...)
		s.marks = nil
		return true
	}},
	{"duplicate-packet", func(r *rand.Rand, s *session, _ func() session) bool {
		if len(s.marks) < 2 {
			return false
		}
		k := 1 + r.IntN(len(s.marks)-1)
		start, end := s.marks[k], len(s.b)
		if k+1 < len(s.marks) {
			end = s.marks[k+1]
		}
		p := append([]byte(nil), s.b[start:end]...)
		s.b = append(s.b[:end:end], append(p, s.b[end:]...)...)
		s.marks = nil
		return true
	}},
	{"drop-packet", func(r *rand.Rand, s *session, _ func() session) bool {
		if len(s.marks) < 2 {
			return false
		}
		k := r.IntN(len(s.marks))
		start, end := s.marks[k], len(s.b)
		if k+1 < len(s.marks) {
			end = s.marks[k+1]
		}
		s.b = append(s.b[:start:start], s.b[end:]...)
		s.marks = nil
		return true
	}},
	{"insert", func(r *rand.Rand, s *session, _ func() session) bool {
		at := r.IntN(len(s.b) + 1)
		ins := randBytes(r, 8)
		if len(ins) == 0 {
			ins = []byte{interesting[r.IntN(len(interesting))]}
		}
		s.b = append(s.b[:at:at], append(ins, s.b[at:]...)...)
		s.marks = nil
		return true
	}},
}

// mutated returns a valid session with one to three mutations applied,
// judged: the bytes after the packet that decides are cut.
func mutated(g *packetgen.Gen, i uint64) Case {
	r := g.Rand()
	tag := fmt.Sprintf("%x-%x", g.Seed()&0xFFFFFF, i)
	s := validSession(r, g.Version, tag)
	other := func() session { return validSession(r, g.Version, tag+"b") }
	var ops []string
	for n := 1 + r.IntN(3); n > 0 && len(s.b) > 0; n-- {
		m := mutations[r.IntN(len(mutations))]
		if m.apply(r, &s, other) {
			ops = append(ops, m.name)
		}
	}
	c := Case{Version: g.Version, Generator: GenMutated, Class: "mutated:" + strings.Join(ops, "+"),
		Phase: packetgen.PhaseFirst, Bytes: s.b}
	return judged(c)
}
