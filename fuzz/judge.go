package fuzz

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Judgement is what a conformant broker owes a byte stream a client sent.
type Judgement struct {
	// Expect is decided by the first packet that obliges the broker to
	// act: a violation (close, or refuse for a CONNECT of an unsupported
	// level or identifier and a SUBSCRIBE whose only fault is a filter).
	// A stream that breaks nothing, or ends inside a packet, is
	// ExpectWaitOrClose: only liveness is judged.
	Expect packetgen.Expect
	Rule   string
	Reason packetgen.ReasonCode
	Detail string
	// Kind names the fault that decided, without the offsets and values
	// Detail holds: the rule, the section, the packet type and the reason
	// ("MQTT-4.8.0-1 §2.2.3 PINGREQ Malformed Packet"); "incomplete" for
	// a stream that ends inside a packet with nothing decided, "" for a
	// valid one. Bytes of one kind are the same bug; a generic rule alone
	// (MQTT-4.8.0-1) covers many.
	Kind string
	// End is the offset just past the deciding packet (len of the stream
	// when nothing decided): bytes after it do not matter.
	End int
	// Pings counts valid PINGREQs before End, each owed a PINGRESP.
	Pings int
	// RefuseID is the packet identifier of a refusable SUBSCRIBE.
	RefuseID uint16
	// RefuseConnect: the refusal is owed to the CONNECT itself.
	RefuseConnect bool
	// Incomplete: the stream ends inside a packet.
	Incomplete bool
	// MustClose: a violation that obliges the broker to close is reached,
	// perhaps after refusals the broker survives (CloseAt is its offset).
	MustClose bool
	CloseAt   int
	// QoS2 bounds the QoS 2 deliveries the stream can cause, per topic and
	// payload: each QoS 2 PUBLISH with a packet identifier not awaiting
	// PUBREL is a new message (§4.3.3; a repeat before PUBREL is the same
	// one), and a QoS 2 will is one more.
	QoS2 map[Message]int
}

// Message is an application message's topic and payload.
type Message struct{ Topic, Payload string }

// Decided reports whether a packet in the stream decided the expectation.
func (j Judgement) Decided() bool { return j.Rule != "" || j.Expect != packetgen.ExpectWaitOrClose }

// Judge decodes b as a broker must, as the bytes a client sends first on a
// connection (phase PhaseFirst) or after a CONNECT of version v was
// accepted (PhaseAfterConnect), and says what the broker owes them. It
// follows §3.1 (CONNECT first and only once, MQTT-3.1.0-1 and -2) and
// every single-packet rule the codec checks; DISCONNECT ends the judgement.
func Judge(b []byte, phase packetgen.Phase, v packetgen.Version) Judgement {
	j := Judgement{Expect: packetgen.ExpectWaitOrClose, End: len(b), QoS2: map[Message]int{}}
	connected := phase == packetgen.PhaseAfterConnect
	d := packetgen.Decoder{Side: packetgen.FromClient}
	if connected {
		d.Version = v
	}
	br := bytes.NewReader(b)
	r := packetgen.NewReader(br, d)
	awaitingRel := map[uint16]bool{}
	decided := false
	decide := func(e packetgen.Expect, kind, rule string, reason packetgen.ReasonCode, detail string, end int) {
		if decided {
			return
		}
		decided = true
		j.Expect, j.Kind, j.Rule, j.Reason, j.Detail, j.End = e, kind, rule, reason, detail, end
	}
	mustClose := func(kind, rule string, reason packetgen.ReasonCode, detail string, end int) Judgement {
		decide(packetgen.ExpectClose, kind, rule, reason, detail, end)
		j.MustClose, j.CloseAt = true, end
		return j
	}
	for {
		start := len(b) - br.Len()
		p, err := r.ReadPacket()
		end := len(b) - br.Len()
		switch {
		case errors.Is(err, io.EOF):
			return j
		case errors.Is(err, io.ErrUnexpectedEOF):
			j.Incomplete = true
			if !decided {
				j.Kind = "incomplete"
			}
			return j
		}
		if vi := packetgen.AsViolation(err); vi != nil {
			end = frameEnd(b, start, end)
			kind := fmt.Sprintf("%s §%s %s %s", vi.Rule, vi.Section, vi.Packet, vi.Reason)
			switch p := p.(type) {
			case *packetgen.Connect:
				if !connected {
					// An unsupported level or a refused identifier is
					// answered with CONNACK, then the connection closes.
					decide(packetgen.ExpectRefuse, kind, vi.Rule, vi.Reason, vi.Detail, end)
					j.RefuseConnect = true
					return j
				}
			case *packetgen.Subscribe:
				if connected && r.Version != packetgen.V31 {
					if !decided {
						j.RefuseID = p.PacketID
					}
					decide(packetgen.ExpectRefuse, kind, vi.Rule, vi.Reason, vi.Detail, end)
					continue
				}
			case *packetgen.Unsubscribe:
				if connected && r.Version != packetgen.V31 {
					// Nothing to refuse: no subscription can match.
					decide(packetgen.ExpectRefuse, kind, vi.Rule, vi.Reason, vi.Detail, end)
					continue
				}
			}
			return mustClose(kind, vi.Rule, vi.Reason, vi.Detail, end)
		}
		if err != nil {
			return j // not reachable with a bytes.Reader
		}
		if !connected {
			c, ok := p.(*packetgen.Connect)
			if !ok {
				return mustClose("MQTT-3.1.0-1 "+p.Type().String(), "MQTT-3.1.0-1", packetgen.ProtocolError, p.Type().String()+" before CONNECT", end)
			}
			connected = true
			if c.Will != nil && c.Will.QoS == 2 {
				j.QoS2[Message{c.Will.Topic, string(c.Will.Payload)}]++
			}
			continue
		}
		switch p := p.(type) {
		case *packetgen.Connect:
			return mustClose("MQTT-3.1.0-2 CONNECT", "MQTT-3.1.0-2", packetgen.ProtocolError, "a second CONNECT", end)
		case *packetgen.Disconnect:
			// The broker closes; nothing after it is read.
			decide(packetgen.ExpectWaitOrClose, "", "", 0, "DISCONNECT", end)
			return j
		case *packetgen.Pingreq:
			if !decided {
				j.Pings++
			}
		case *packetgen.Publish:
			if p.QoS == 2 && !awaitingRel[p.PacketID] {
				awaitingRel[p.PacketID] = true
				j.QoS2[Message{string(p.Topic), string(p.Payload)}]++
			}
		case *packetgen.Pubrel:
			delete(awaitingRel, p.PacketID)
		}
	}
}

// frameEnd is the end of the packet starting at b[start:] by its fixed
// header, when that header parses and the whole packet is present;
// otherwise read, where the decoder stopped. A violation found in the
// header (wrong flags, a reserved type) then still cuts after the packet.
func frameEnd(b []byte, start, read int) int {
	h := b[start:]
	if len(h) < 2 {
		return read
	}
	n, mul := 0, 1
	for i := 1; i < len(h) && i <= 4; i++ {
		n += int(h[i]&0x7F) * mul
		if h[i]&0x80 == 0 {
			if e := start + 1 + i + n; e <= len(b) && e > read {
				return e
			}
			return read
		}
		mul *= 128
	}
	return read
}
