package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/reports"
)

// Request/response (MQTT 5.0 §4.10), with Responders set: every PUBLISH is
// a request carrying a Response Topic, one per publisher, which the
// publisher subscribes to, and Correlation Data naming the run, the
// publisher, the sequence number and when the request was due. Responders
// are connections after the subscribers; they share one subscription,
// $share/mqttbench-responders/<topic with each placeholder level made
// '+'>, so each request is answered once, and publish an empty response
// to the Response Topic with the request's Correlation Data. The
// publisher times the round trip from when the request was due
// (request_response), and counts requests answered, unanswered, answered
// twice and responses whose Correlation Data names no request of its own.
//
// Responses go at QoS 1 when requests are QoS 1 or 2 (QoS 0 otherwise):
// a responder keeps within the broker's Receive Maximum by holding back
// responses until acknowledgements make room. So at QoS 1/2 every
// request the broker acknowledged is answered unless a connection
// dropped: an unanswered one is then a violation, as is any wrong
// Correlation Data (the broker forwards it unaltered, MQTT-3.3.2-16).

// ResponderGroup is the share name responders subscribe with.
const ResponderGroup = "mqttbench-responders"

// corrSize is the Correlation Data of a request: run id, publisher,
// sequence number, due time (Unix ns).
const corrSize = 24

// validateResponders checks a request/response scenario.
func (s *Scenario) validateResponders() error {
	switch {
	case s.Responders == 0:
		return nil
	case s.Responders < 0:
		return errors.New("responders: cannot be negative")
	case !s.V5():
		return errors.New("responders (--responders): request/response needs MQTT 5.0 (Response Topic, Correlation Data); set protocol 5 (--protocol 5)")
	case s.Publishers == 0:
		return errors.New("responders: requests come from publishers; give at least one")
	}
	if err := topic.ValidateFilter(s.responderFilter(), true); err != nil {
		return fmt.Errorf("responders: topic %q gives responders the filter %q: %v", s.Topic, s.responderFilter(), err)
	}
	return nil
}

// responderFilter is the filter that hears every publisher's requests:
// the topic template with each level holding a placeholder made '+'.
func (s *Scenario) responderFilter() string {
	levels := strings.Split(s.Topic, "/")
	for i, l := range levels {
		if strings.Contains(l, "{p}") || strings.Contains(l, "{i}") {
			levels[i] = "+"
		}
	}
	return strings.Join(levels, "/")
}

// responseTopic is publisher p's Response Topic in run runHex.
func responseTopic(runHex string, p uint32) string {
	return "mqttbench-rr/" + runHex + "/" + itoa(int(p))
}

// rrRun is the run's request/response state shared by its connections.
type rrRun struct {
	answered atomic.Uint64 // requests answered, for the drain
	dropped  atomic.Bool   // a requester's or responder's connection dropped
	ignored  atomic.Uint64 // PUBLISH to responders without a Response Topic
}

// requester is a publisher's request/response state, under client.mu
// (subscribed: the handshake's goroutine only).
type requester struct {
	topic      string
	subscribed bool
	corr       [corrSize]byte // the PUBLISH being encoded's
	answered   *roaring64.Bitmap
	duplicates uint64
	wrong      uint64
}

// responder is a responder's state, touched only by its connection's
// goroutines (one at a time) and under client.mu.
type responder struct {
	window  int                 // the broker's Receive Maximum: QoS 1 responses unacknowledged at once
	nextID  uint16              // the last packet identifier used
	out     map[uint16]struct{} // QoS 1 responses unacknowledged
	pending []pendingResponse   // waiting for room in the window
}

type pendingResponse struct {
	topic string
	corr  []byte
}

// buildRequestResponse makes this shard's publishers requesters and its
// connections after the subscribers responders.
func (a *attack) buildRequestResponse() {
	sc := &a.sc
	if sc.Responders == 0 {
		return
	}
	for _, c := range a.pubs {
		c.pub.rr = &requester{topic: responseTopic(a.runHex, c.pub.index), answered: roaring64.New()}
	}
	lo := sc.Publishers + sc.Subscribers
	for _, c := range a.clients {
		if i := int(c.idx); i >= lo && i < lo+sc.Responders {
			c.sub = &subscriber{filter: "$share/" + ResponderGroup + "/" + sc.responderFilter(), subID: uint32(i - sc.Publishers + 1),
				resp: &responder{window: 65535}}
		}
	}
}

// responseQoS is the QoS responses go at.
func (a *attack) responseQoS() packetgen.QoS { return min(a.sc.QoS, 1) }

// requestProps adds the Response Topic and Correlation Data of request
// seq, due at Unix ns due, to pkt; c.mu held.
func (c *client) requestProps(pkt *packetgen.Publish, seq uint64, due int64) {
	r := c.pub.rr
	binary.BigEndian.PutUint32(r.corr[0:], c.a.runID)
	binary.BigEndian.PutUint32(r.corr[4:], c.pub.index)
	binary.BigEndian.PutUint64(r.corr[8:], seq)
	binary.BigEndian.PutUint64(r.corr[16:], uint64(due))
	pkt.Properties.Set(packetgen.PropResponseTopic, r.topic)
	pkt.Properties.Set(packetgen.PropCorrelationData, r.corr[:])
}

// subscribeResponses sends a requester's SUBSCRIBE to its Response Topic;
// the SUBACK makes it ready.
func (c *client) subscribeResponses(st *connState) error {
	sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: c.pub.rr.topic, QoS: c.a.responseQoS()}}}
	return c.sendSubscribe(st, sp)
}

// response handles a PUBLISH to a requester: the answer to one of its
// requests, found by its Correlation Data.
func (c *client) response(h packetgen.Header, body []byte, now int64) error {
	a := c.a
	var pp packetgen.Publish
	if err := pp.DecodeBody(h.Flags, body, packetgen.V5, packetgen.FromServer); err != nil {
		return &ProtocolError{Err: err}
	}
	switch pp.QoS {
	case 1:
		c.appendAck(packetgen.TypePuback, pp.PacketID)
	case 2:
		c.appendAck(packetgen.TypePubrec, pp.PacketID)
	}
	corr := pp.Properties.CorrelationData
	c.mu.Lock()
	p := c.pub
	r := p.rr
	if len(corr) != corrSize || binary.BigEndian.Uint32(corr) != a.runID || binary.BigEndian.Uint32(corr[4:]) != p.index ||
		binary.BigEndian.Uint64(corr[8:]) >= p.seq {
		r.wrong++
		c.mu.Unlock()
		return nil
	}
	seq, due := binary.BigEndian.Uint64(corr[8:]), int64(binary.BigEndian.Uint64(corr[16:]))
	fresh := r.answered.CheckedAdd(seq)
	if !fresh {
		r.duplicates++
	}
	c.mu.Unlock()
	if fresh {
		a.rr.answered.Add(1)
		a.rec.Record(MetricRequestResponse, time.Duration(a.unixNs(now)-due))
	}
	return nil
}

// respond handles a request at a responder: acknowledge it, then answer
// it on its Response Topic with its Correlation Data.
func (c *client) respond(h packetgen.Header, body []byte) error {
	s := c.sub
	p := &s.scratch
	if err := p.DecodeBody(h.Flags, body, packetgen.V5, packetgen.FromServer); err != nil {
		return &ProtocolError{Err: err}
	}
	switch p.QoS {
	case 1:
		c.appendAck(packetgen.TypePuback, p.PacketID)
	case 2:
		// A PUBLISH repeated before PUBREL is the same request (§4.3.3).
		if _, seen := s.qos2[p.PacketID]; seen {
			c.appendAck(packetgen.TypePubrec, p.PacketID)
			return nil
		}
		if s.qos2 == nil {
			s.qos2 = map[uint16]struct{}{}
		}
		s.qos2[p.PacketID] = struct{}{}
		c.appendAck(packetgen.TypePubrec, p.PacketID)
	}
	if !p.Properties.Has(packetgen.PropResponseTopic) {
		c.a.rr.ignored.Add(1) // not a request: someone else's message, or a response
		return nil
	}
	pr := pendingResponse{topic: p.Properties.ResponseTopic, corr: bytes.Clone(p.Properties.CorrelationData)}
	c.mu.Lock()
	c.sendResponseLocked(pr)
	c.mu.Unlock()
	return nil
}

// sendResponseLocked appends a response, or holds it back while the
// window is full; c.mu held.
func (c *client) sendResponseLocked(pr pendingResponse) {
	a, r := c.a, c.sub.resp
	qos := a.responseQoS()
	if qos > 0 && len(r.out) >= r.window {
		r.pending = append(r.pending, pr)
		return
	}
	pkt := &packetgen.Publish{Topic: []byte(pr.topic), QoS: qos}
	if pr.corr != nil {
		pkt.Properties.Set(packetgen.PropCorrelationData, pr.corr)
	}
	if qos > 0 {
		id := r.nextID
		for {
			id++
			if id == 0 {
				id = 1
			}
			if _, busy := r.out[id]; !busy {
				break
			}
		}
		r.nextID, pkt.PacketID = id, id
		if r.out == nil {
			r.out = map[uint16]struct{}{}
		}
		r.out[id] = struct{}{}
	}
	var err error
	if c.wbuf, err = a.enc.Append(c.wbuf, pkt); err != nil {
		// A Response Topic the codec refuses (a wildcard, say) came from
		// the broker: there is no one to answer.
		delete(r.out, pkt.PacketID)
		a.rr.ignored.Add(1)
	}
}

// responseAckedLocked handles an acknowledgement of a response: room in
// the window for the responses held back; c.mu held.
func (c *client) responseAckedLocked(t packetgen.Type, id uint16) {
	r := c.sub.resp
	switch t {
	case packetgen.TypePuback:
		delete(r.out, id)
	case packetgen.TypePubrec: // responses are QoS 1 at most; finish the flow anyway
		c.wbuf = appendAck(c.wbuf, packetgen.TypePubrel, id)
		return
	}
	c.sendPendingLocked()
}

func (c *client) sendPendingLocked() {
	r := c.sub.resp
	n := 0
	for n < len(r.pending) && len(r.out) < r.window {
		c.sendResponseLocked(r.pending[n])
		n++
	}
	r.pending = r.pending[n:]
	if len(r.pending) == 0 {
		r.pending = nil
	}
}

// responderConnected starts a responder's connection afresh: what was
// unacknowledged went with the old one (counted unanswered); what was
// held back goes now, within the broker's Receive Maximum.
func (c *client) responderConnected(receiveMax uint16) {
	c.mu.Lock()
	r := c.sub.resp
	r.window = max(1, int(receiveMax))
	clear(r.out)
	c.sendPendingLocked()
	c.mu.Unlock()
}

// droppedMidRun notes a connection lost during the run where a shared
// group or request/response excuses what it explains.
func (c *client) droppedMidRun() {
	if s := c.sub; s != nil {
		if s.share != nil {
			s.share.dropped = true
		}
		if s.resp != nil {
			c.a.rr.dropped.Store(true)
		}
	}
	if c.pub != nil && c.pub.rr != nil {
		c.a.rr.dropped.Store(true)
	}
}

// requestResponse counts the shard's requests and their answers; nil
// without responders.
func (a *attack) requestResponse() *reports.LoadRequestResponse {
	sc := &a.sc
	if sc.Responders == 0 {
		return nil
	}
	out := &reports.LoadRequestResponse{Responders: sc.Responders, QoS: int(sc.QoS), Dropped: a.rr.dropped.Load()}
	for _, c := range a.pubs {
		p := c.pub
		sent := p.seq - p.rejected
		answered := p.rr.answered.GetCardinality()
		out.Requests += sent
		out.Answered += answered
		out.Unanswered += sent - min(sent, answered)
		out.DuplicateAnswers += p.rr.duplicates
		out.WrongCorrelation += p.rr.wrong
		// Confirmed: sent, less those never acknowledged (refused ones
		// included, which p.seq - p.rejected already left out).
		unconfirmed := uint64(len(p.unconfirmed)) - p.rejected
		if sc.QoS == 0 {
			unconfirmed = 0
		}
		out.Confirmed += sent - unconfirmed
		var missing uint64
		for i, seq := uint64(0), uint64(0); seq < p.seq; seq++ {
			for i < uint64(len(p.unconfirmed)) && p.unconfirmed[i] < seq {
				i++
			}
			if i < uint64(len(p.unconfirmed)) && p.unconfirmed[i] == seq && sc.QoS > 0 {
				continue
			}
			if !p.rr.answered.Contains(seq) {
				missing++
			}
		}
		out.UnansweredConfirmed += missing
	}
	return out
}

// MergeRequestResponse adds up the request/response counts of results'
// parts; nil when none has any.
func MergeRequestResponse(parts []*reports.Load) *reports.LoadRequestResponse {
	var out *reports.LoadRequestResponse
	for _, l := range parts {
		r := l.RequestResponse
		if r == nil {
			continue
		}
		if out == nil {
			out = &reports.LoadRequestResponse{Responders: r.Responders, QoS: r.QoS}
		}
		out.Requests += r.Requests
		out.Confirmed += r.Confirmed
		out.Answered += r.Answered
		out.Unanswered += r.Unanswered
		out.UnansweredConfirmed += r.UnansweredConfirmed
		out.DuplicateAnswers += r.DuplicateAnswers
		out.WrongCorrelation += r.WrongCorrelation
		out.Dropped = out.Dropped || r.Dropped
	}
	return out
}

// judgeRequestResponse names what l.RequestResponse breaks and adds it to
// l's violations; an interrupted run is counted, not judged.
func judgeRequestResponse(l *reports.Load) {
	r := l.RequestResponse
	if r == nil {
		return
	}
	r.Violations = nil
	if l.Interrupted {
		return
	}
	if r.WrongCorrelation > 0 {
		r.Violations = append(r.Violations, plural(r.WrongCorrelation, "response")+" with Correlation Data that names no request of the publisher (forwarded unaltered, MQTT-3.3.2-16)")
	}
	if r.QoS > 0 && r.UnansweredConfirmed > 0 && !r.Dropped {
		r.Violations = append(r.Violations, plural(r.UnansweredConfirmed, "request")+" acknowledged to the publisher never answered, although no connection dropped (requests and responses are at least once)")
	}
	l.Violations = append(l.Violations, r.Violations...)
}

// summaries are the parts' summaries.
func summaries(parts []*Results) []*reports.Load {
	out := make([]*reports.Load, len(parts))
	for i, p := range parts {
		out[i] = p.Summary
	}
	return out
}
