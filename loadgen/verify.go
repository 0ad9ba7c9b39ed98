package loadgen

import (
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Every message starts with a header that lets subscribers check it:
//
//	0  'M' 'B'          magic
//	2  version (1)
//	3  QoS it was published at
//	4  run id           uint32, so messages of another run are told apart
//	8  publisher index  uint32
//	12 sequence number  uint64, from 0 for each publisher
//	20 send time        int64 Unix nanoseconds: when the message was due
//
// The rest of the payload is filler.
const HeaderSize = 28

const headerVersion = 1

// Header is the decoded message header.
type Header struct {
	QoS       packetgen.QoS
	Run       uint32
	Publisher uint32
	Seq       uint64
	Due       int64 // Unix nanoseconds
}

// PutHeader writes h at the front of b (len(b) >= HeaderSize).
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	b[0], b[1], b[2], b[3] = 'M', 'B', headerVersion, byte(h.QoS)
	binary.BigEndian.PutUint32(b[4:], h.Run)
	binary.BigEndian.PutUint32(b[8:], h.Publisher)
	binary.BigEndian.PutUint64(b[12:], h.Seq)
	binary.BigEndian.PutUint64(b[20:], uint64(h.Due))
}

// ParseHeader reads the header at the front of a payload.
func ParseHeader(b []byte) (Header, bool) {
	if len(b) < HeaderSize || b[0] != 'M' || b[1] != 'B' || b[2] != headerVersion || b[3] > 2 {
		return Header{}, false
	}
	return Header{
		QoS:       packetgen.QoS(b[3]),
		Run:       binary.BigEndian.Uint32(b[4:]),
		Publisher: binary.BigEndian.Uint32(b[8:]),
		Seq:       binary.BigEndian.Uint64(b[12:]),
		Due:       int64(binary.BigEndian.Uint64(b[20:])),
	}, true
}

// Outcome is what a received sequence number turned out to be.
type Outcome uint8

const (
	InOrder   Outcome = iota // the next expected, or beyond it (a gap opens)
	Reordered                // fills an earlier gap
	Duplicate                // already received
)

// span is the half-open range [lo, hi) of sequence numbers.
type span struct{ lo, hi uint64 }

// maxGaps bounds the gaps a stream remembers; past it the oldest are
// settled as lost, and a late arrival from them counts as a duplicate.
const maxGaps = 1 << 16

// Stream follows one publisher's messages at one subscriber. It keeps the
// next sequence number expected and the gaps below it, so the common
// in-order case costs nothing and memory grows only with disorder.
type Stream struct {
	next       uint64 // every number below is received or in gaps
	gaps       []span // sorted, disjoint, all below next
	settled    uint64 // gaps dropped past maxGaps, counted lost
	Received   uint64 // distinct messages
	Duplicates uint64
	Reordered  uint64
	Downgraded uint64 // delivered at a lower QoS than was due
}

// Receive records the arrival of sequence number seq.
func (s *Stream) Receive(seq uint64) Outcome {
	switch {
	case seq == s.next:
		s.next++
	case seq > s.next:
		s.gaps = append(s.gaps, span{s.next, seq})
		s.next = seq + 1
		if len(s.gaps) > maxGaps {
			g := s.gaps[0]
			s.settled += g.hi - g.lo
			s.gaps = s.gaps[1:]
		}
	default:
		i, ok := slices.BinarySearchFunc(s.gaps, seq, func(g span, x uint64) int {
			switch {
			case g.hi <= x:
				return -1
			case g.lo > x:
				return 1
			}
			return 0
		})
		if !ok {
			s.Duplicates++
			return Duplicate
		}
		g := s.gaps[i]
		switch {
		case g.lo == seq && g.hi == seq+1:
			s.gaps = slices.Delete(s.gaps, i, i+1)
		case g.lo == seq:
			s.gaps[i].lo++
		case g.hi == seq+1:
			s.gaps[i].hi--
		default:
			s.gaps[i].hi = seq
			s.gaps = slices.Insert(s.gaps, i+1, span{seq + 1, g.hi})
		}
		s.Received++
		s.Reordered++
		return Reordered
	}
	s.Received++
	return InOrder
}

// Lost counts the confirmed messages this stream never received. The
// publisher sent sequence numbers 0 to sent-1; unconfirmed (sorted) are
// those the broker never acknowledged, which a subscriber may or may not
// see. At QoS 0 nothing is acknowledged: every sent message counts.
func (s *Stream) Lost(sent uint64, unconfirmed []uint64) uint64 {
	var lost uint64
	count := func(lo, hi uint64) {
		hi = min(hi, sent)
		if lo >= hi {
			return
		}
		lost += hi - lo - countIn(unconfirmed, lo, hi)
	}
	for _, g := range s.gaps {
		count(g.lo, g.hi)
	}
	count(s.next, sent)
	return lost + s.settled
}

// countIn counts the members of sorted xs in [lo, hi).
func countIn(xs []uint64, lo, hi uint64) uint64 {
	i, _ := slices.BinarySearch(xs, lo)
	j, _ := slices.BinarySearch(xs, hi)
	return uint64(j - i)
}

// Ledger is what one publisher sent, for the loss count.
type Ledger struct {
	QoS  packetgen.QoS
	Sent uint64 // sequence numbers 0 to Sent-1 were written
	// Unconfirmed holds, sorted, the QoS 1/2 sequence numbers never
	// acknowledged (abandoned with a lost session, or in flight at the
	// end): the broker never took responsibility for them.
	Unconfirmed []uint64
}

// Confirmed is the number of messages the broker took responsibility for.
func (l *Ledger) Confirmed() uint64 { return l.Sent - uint64(len(l.Unconfirmed)) }

// Expectation is one stream a subscriber should see: a publisher whose
// topic its filter matches, and the QoS the messages are due at
// (min(published, granted)).
type Expectation struct {
	Publisher uint32
	QoS       packetgen.QoS
}

// SubscriberLog is what one subscriber saw.
type SubscriberLog struct {
	Expected []Expectation
	Streams  map[uint32]*Stream
	// SessionLost says the subscriber lost its session during the run (a
	// clean-session reconnect, or a broker that kept nothing): its losses
	// are reported but are not violations.
	SessionLost bool
	Foreign     uint64 // messages without a header of this run
}

func itoa(n int) string { return strconv.Itoa(n) }

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatUint(n, 10) + " " + what + "s"
}
