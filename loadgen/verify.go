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
// The rest of the payload is filler. A payload marked as UTF-8 (MQTT 5.0
// Payload Format Indicator 1) must be valid UTF-8, so it starts with the
// same fields in text instead, TextHeaderSize bytes of ASCII:
//
//	0  'M' 'B' 't'      magic and text version
//	3  QoS digit        '0', '1' or '2'
//	4  run id           8 lower-case hex digits
//	12 publisher index  8 hex digits
//	20 sequence number  16 hex digits
//	36 send time        16 hex digits
const (
	HeaderSize     = 28
	TextHeaderSize = 52
)

const (
	headerVersion     = 1
	textHeaderVersion = 't'
)

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

// PutTextHeader writes h in text at the front of b (len(b) >=
// TextHeaderSize).
func PutTextHeader(b []byte, h Header) {
	_ = b[TextHeaderSize-1]
	b[0], b[1], b[2], b[3] = 'M', 'B', textHeaderVersion, '0'+byte(h.QoS)
	putHex(b[4:12], uint64(h.Run))
	putHex(b[12:20], uint64(h.Publisher))
	putHex(b[20:36], h.Seq)
	putHex(b[36:52], uint64(h.Due))
}

const hexDigits = "0123456789abcdef"

// putHex writes x as len(b) hex digits, most significant first.
func putHex(b []byte, x uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[x&15]
		x >>= 4
	}
}

// hexValue reads lower-case hex digits; ok is false for any other byte.
func hexValue(b []byte) (x uint64, ok bool) {
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			x = x<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			x = x<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return x, true
}

// ParseHeader reads the header, binary or text, at the front of a payload.
func ParseHeader(b []byte) (Header, bool) {
	if len(b) >= TextHeaderSize && b[0] == 'M' && b[1] == 'B' && b[2] == textHeaderVersion {
		return parseTextHeader(b)
	}
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

func parseTextHeader(b []byte) (Header, bool) {
	if b[3] < '0' || b[3] > '2' {
		return Header{}, false
	}
	run, ok1 := hexValue(b[4:12])
	pub, ok2 := hexValue(b[12:20])
	seq, ok3 := hexValue(b[20:36])
	due, ok4 := hexValue(b[36:52])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Header{}, false
	}
	return Header{QoS: packetgen.QoS(b[3] - '0'), Run: uint32(run), Publisher: uint32(pub), Seq: seq, Due: int64(due)}, true
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
	// Failed holds, sorted, those of Unconfirmed the broker refused with
	// a reason code of 0x80 or more (MQTT 5.0); the rest of Unconfirmed
	// had their connection lost before the acknowledgement, or were in
	// flight at the end: their outcome is unknown.
	Failed []uint64
	// Sends are the corners of sequence number against due time (see
	// SendIndex), for the history checker.
	Sends []SendPoint
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
	// Faults counts, by kind, the run's MQTT 5.0 deliveries whose
	// properties the broker altered (see faultNames).
	Faults [numFaults]uint64
	// QueueExcuse, by publisher, is how many of a stream's losses the
	// broker's queue limit allowed while the subscriber was offline
	// (backlog.go).
	QueueExcuse map[uint32]uint64
}

func itoa(n int) string { return strconv.Itoa(n) }

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatUint(n, 10) + " " + what + "s"
}
