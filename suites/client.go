package suites

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Client is a wire connection with assertions that fail the spec with
// the statement ID and expected versus actual.
type Client struct {
	*wire.Conn
	w      *World
	nextID uint16
	// held keeps PUBLISH packets that arrived while the client waited for
	// something else (a SUBACK), for the next Receive.
	held []packetgen.Packet
	// lastSent is when MustSend last wrote: an answer is timed from it.
	lastSent time.Time
	// aliases maps the topic aliases a 5.0 broker set on this connection
	// to their topics (helpers_v5.go).
	aliases map[uint16]string
	// unacked holds the identifiers of QoS 1 and 2 PUBLISH packets sent
	// and not yet acknowledged, against a 5.0 broker's Receive Maximum
	// (helpers_v5.go).
	unacked map[uint16]bool
}

// ID returns a fresh packet identifier.
func (c *Client) ID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// MustSend sends p or fails the spec.
func (c *Client) MustSend(p packetgen.Packet) {
	c.w.capsGuard(p, packetgen.Size(p, c.Version()))
	c.lastSent = time.Now()
	if err := c.Send(p); err != nil {
		c.w.Failf("%s could not send %s: %v", c.Name, packetgen.Format(p), err)
	}
}

// MustSendRaw writes raw bytes or fails the spec.
func (c *Client) MustSendRaw(b []byte, what string) {
	c.w.capsGuard(nil, len(b), b...)
	c.lastSent = time.Now()
	if err := c.SendRaw(b, what); err != nil {
		c.w.Failf("%s could not send %s: %v", c.Name, what, err)
	}
}

// Next waits for the next packet and fails the spec if none comes: for a
// delivery the spec waits for (a PUBLISH). For an answer owed to a packet
// the client sent use NextAnswer.
func (c *Client) Next(expected string) packetgen.Packet {
	if len(c.held) > 0 {
		p := c.held[0]
		c.held = c.held[1:]
		return p
	}
	p, err := c.Recv(c.w.cfg.Timeout)
	if err != nil {
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, describeErr(err))
	}
	return p
}

// NextAnswer waits for the next packet while an answer is owed to the
// packet the client sent last (expected names it, packet first: "PUBREC
// for the repeated PUBLISH"). A close or anything unexpected fails the
// spec, which checks the answer; nothing in time leaves it inconclusive
// (see noAnswer).
func (c *Client) NextAnswer(expected string) packetgen.Packet {
	if len(c.held) > 0 {
		p := c.held[0]
		c.held = c.held[1:]
		return p
	}
	since := c.lastSent
	p, err := c.Recv(c.w.cfg.Timeout)
	switch {
	case errors.Is(err, wire.ErrTimeout):
		c.w.noAnswer(packetWord(expected), expected, c.Name)
	case err != nil:
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, describeErr(err))
	}
	if isAnswer(p) && !since.IsZero() {
		c.w.answered(answerName(p), since)
	}
	return p
}

func describeErr(err error) string {
	switch {
	case errors.Is(err, wire.ErrTimeout):
		return "nothing in time"
	case errors.Is(err, wire.ErrClosed):
		return "the connection closed"
	case packetgen.AsViolation(err) != nil:
		return "a malformed packet: " + err.Error()
	}
	return err.Error()
}

// ExpectPacket waits for a packet of type T and fails on anything else.
// T other than PUBLISH is an answer owed to what the client sent last
// (NextAnswer).
func ExpectPacket[T packetgen.Packet](c *Client) T {
	var zero T
	want := answerName(zero)
	var p packetgen.Packet
	if _, delivery := any(zero).(*packetgen.Publish); delivery {
		p = c.Next(want)
	} else {
		p = c.NextAnswer(want)
	}
	t, ok := p.(T)
	if !ok {
		if rules := answerRules(zero); rules != nil && isAnswer(p) {
			// A wrong answer, such as PUBACK for a QoS 2 PUBLISH.
			c.w.stepFailed(rules, "expected %s at %s; got %s", want, c.Name, packetgen.Format(p))
		}
		c.w.Failf("expected %s at %s; got %s", want, c.Name, packetgen.Format(p))
	}
	return t
}

// Subscribe subscribes to one filter and returns the SUBACK code.
func (c *Client) Subscribe(filter string, qos packetgen.QoS) packetgen.ReasonCode {
	return c.SubscribeMany([]packetgen.Subscription{{Filter: filter, QoS: qos}})[0]
}

// SubscribeMany sends one SUBSCRIBE and checks the SUBACK matches it: same
// packet identifier (MQTT-3.8.4-2) and one code per filter (MQTT-3.8.4-5).
func (c *Client) SubscribeMany(subs []packetgen.Subscription) []packetgen.ReasonCode {
	return c.SubscribePacket(&packetgen.Subscribe{Subscriptions: subs})
}

// SubscribePacket is SubscribeMany for a SUBSCRIBE of the spec's making
// (5.0 options and properties); it gets a fresh packet identifier.
func (c *Client) SubscribePacket(sp *packetgen.Subscribe) []packetgen.ReasonCode {
	subs := sp.Subscriptions
	id := c.ID()
	sp.PacketID = id
	since := time.Now()
	c.MustSend(sp)
	// A broker may send PUBLISH packets (retained messages, deliveries for
	// other subscriptions) before the SUBACK: keep them for Receive.
	want := fmt.Sprintf("SUBACK id=%d", id)
	var ack *packetgen.Suback
	for ack == nil {
		switch p := c.recvAnswer("SUBACK", since, want).(type) {
		case *packetgen.Suback:
			ack = p
		case *packetgen.Publish:
			c.held = append(c.held, p)
		default:
			c.wrongAnswer(ruleSuback, want, p)
		}
	}
	c.w.answered("SUBACK", since)
	if ack.PacketID != id {
		c.w.stepFailed(ruleSubackID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(ack))
	}
	if len(ack.ReasonCodes) != len(subs) {
		c.w.stepFailed(ruleSubackN, "expected %s with %d codes at %s; got %s", want, len(subs), c.Name, packetgen.Format(ack))
	}
	return ack.ReasonCodes
}

// Granted subscribes and requires the subscription to be accepted,
// returning the granted QoS. A server may refuse any subscription (0x80),
// so a refusal leaves the spec without a verdict; a code that is no
// return code at all breaks MQTT-3.9.3-2.
func (c *Client) Granted(filter string, qos packetgen.QoS) packetgen.QoS {
	rc := c.Subscribe(filter, qos)
	switch {
	case rc == packetgen.SubackFailure || (c.w.is5() && rc.IsError()):
		c.w.inconclusive("the broker refused the subscription of %s to %q that the spec needs (SUBACK code 0x%02X); "+
			"if it lacks a feature, say so in the profile", c.Name, short(filter), byte(rc))
	case rc > 2:
		c.w.stepFailed(ruleSubackRC, "expected %q to be granted with a code of 0x00, 0x01 or 0x02; got SUBACK code 0x%02X", short(filter), byte(rc))
	}
	return packetgen.QoS(rc)
}

// Unsubscribe removes filters and waits for UNSUBACK with the same id.
func (c *Client) Unsubscribe(filters ...string) {
	id := c.ID()
	since := time.Now()
	c.MustSend(&packetgen.Unsubscribe{PacketID: id, Filters: filters})
	want := fmt.Sprintf("UNSUBACK id=%d", id)
	ack := expectAnswer[*packetgen.Unsuback](c, since, ruleUnsuback, want)
	if ack.PacketID != id {
		c.w.stepFailed(ruleUnsubackID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(ack))
	}
}

// Publish sends an application message and completes the sender's side
// of its QoS flow (PUBACK, or PUBREC-PUBREL-PUBCOMP).
func (c *Client) Publish(topic, payload string, qos packetgen.QoS, retain bool) {
	p := &packetgen.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: qos, Retain: retain}
	if qos > 0 {
		p.PacketID = c.ID()
	}
	if retain {
		c.w.noteRetained(topic)
	}
	c.MustSend(p)
	c.completeSend(p.PacketID, qos)
}

// completeSend finishes the publisher's side of a QoS 1 or 2 flow whose
// PUBLISH was the last packet sent. The answers are steps: a wrong one
// breaks the statement that owes it (MQTT-3.3.4-1 and MQTT-4.3.2-2 or
// MQTT-4.3.3-2), whatever the spec checks.
func (c *Client) completeSend(id uint16, qos packetgen.QoS) {
	since := c.lastSent
	switch qos {
	case 1:
		want := fmt.Sprintf("PUBACK id=%d", id)
		ack := expectAnswer[*packetgen.Puback](c, since, rulePuback, want)
		if ack.PacketID != id {
			c.w.stepFailed(rulePubackID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(ack))
		}
		c.refusedPublish(ack.ReasonCode, packetgen.Format(ack))
	case 2:
		want := fmt.Sprintf("PUBREC id=%d", id)
		rec := expectAnswer[*packetgen.Pubrec](c, since, rulePubrec, want)
		if rec.PacketID != id {
			c.w.stepFailed(rulePubrecID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(rec))
		}
		c.refusedPublish(rec.ReasonCode, packetgen.Format(rec))
		c.MustSend(&packetgen.Pubrel{PacketID: id})
		want = fmt.Sprintf("PUBCOMP id=%d", id)
		comp := expectAnswer[*packetgen.Pubcomp](c, c.lastSent, rulePubcomp, want)
		if comp.PacketID != id {
			c.w.stepFailed(rulePubcompID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(comp))
		}
	}
}

// Receive waits for the next PUBLISH and acknowledges it as its QoS asks.
func (c *Client) Receive() *packetgen.Publish {
	p := c.ReceiveNoAck()
	c.Ack(p)
	return p
}

// ReceiveNoAck waits for the next PUBLISH and leaves it unacknowledged.
func (c *Client) ReceiveNoAck() *packetgen.Publish {
	p := ExpectPacket[*packetgen.Publish](c)
	if p.QoS > 0 && p.PacketID == 0 {
		c.w.stepFailed(rulePacketID, "expected a non-zero packet identifier on a QoS %d PUBLISH at %s; got %s", p.QoS, c.Name, packetgen.Format(p))
	}
	return p
}

// Ack completes the receiver's side of p's QoS flow.
func (c *Client) Ack(p *packetgen.Publish) {
	switch p.QoS {
	case 1:
		c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
	case 2:
		c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
		want := fmt.Sprintf("PUBREL id=%d", p.PacketID)
		rel := expectAnswer[*packetgen.Pubrel](c, c.lastSent, rulePubrel, want)
		if rel.PacketID != p.PacketID {
			c.w.stepFailed(rulePubrelID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(rel))
		}
		c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
	}
}

// ReceiveAll collects PUBLISH packets until Quiet passes with none,
// acknowledging each.
func (c *Client) ReceiveAll() []*packetgen.Publish { return c.receiveQuiet(true) }

// ReceiveAllNoAck collects PUBLISH packets until Quiet passes with none,
// leaving them unacknowledged.
func (c *Client) ReceiveAllNoAck() []*packetgen.Publish { return c.receiveQuiet(false) }

// receiveQuiet collects PUBLISH packets (held ones first) until Quiet
// passes with none, failing on anything else.
func (c *Client) receiveQuiet(ack bool) []*packetgen.Publish {
	var out []*packetgen.Publish
	take := func(p packetgen.Packet) {
		pub, ok := p.(*packetgen.Publish)
		if !ok {
			c.w.Failf("expected only PUBLISH packets at %s; got %s", c.Name, packetgen.Format(p))
		}
		if ack {
			c.Ack(pub)
		}
		out = append(out, pub)
	}
	for len(c.held) > 0 {
		p := c.held[0]
		c.held = c.held[1:]
		take(p)
	}
	for {
		p, err := c.Recv(c.w.cfg.Quiet)
		if errors.Is(err, wire.ErrTimeout) {
			return out
		}
		if err != nil {
			c.w.Failf("expected PUBLISH packets at %s; got %s", c.Name, describeErr(err))
		}
		take(p)
	}
}

// ExpectNothing requires that no packet arrives for the Quiet period.
func (c *Client) ExpectNothing(why string) {
	c.ExpectNothingFor(c.w.cfg.Quiet, why)
}

// ExpectNothingFor requires that no packet arrives for d.
func (c *Client) ExpectNothingFor(d time.Duration, why string) {
	if len(c.held) > 0 {
		c.w.Failf("expected no packet at %s (%s); got %s", c.Name, why, packetgen.Format(c.held[0]))
	}
	p, err := c.Recv(d)
	switch {
	case errors.Is(err, wire.ErrTimeout):
		return
	case err != nil:
		c.w.Failf("expected no packet at %s (%s); got %s", c.Name, why, describeErr(err))
	default:
		c.w.Failf("expected no packet at %s (%s); got %s", c.Name, why, packetgen.Format(p))
	}
}

// ExpectClosed requires the broker to close the connection within the
// timeout: a protocol violation is answered at once, so no grace is added
// (grace is for the timers the specification states, such as keep alive).
// Before closing, a 5.0 broker may send DISCONNECT with a reason code of
// 0x80 or more (MQTT-4.13.1-1); nothing else may come first.
func (c *Client) ExpectClosed(why string) {
	got, err := c.Conn.ExpectClosed(c.w.cfg.Timeout)
	if err != nil {
		seen := ""
		for _, p := range got {
			seen += packetgen.Format(p) + " and then "
		}
		c.w.Failf("expected the broker to close the connection of %s (%s); got %s%s", c.Name, why, seen, describeErr(err))
	}
	for _, p := range got {
		if d, ok := p.(*packetgen.Disconnect); ok && c.Version() == packetgen.V5 && d.ReasonCode >= 0x80 {
			continue
		}
		c.w.Failf("expected the broker to close the connection of %s (%s); got %s first", c.Name, why, packetgen.Format(p))
	}
}

// Leave sends DISCONNECT, waits (a second at most, never failing) for the
// broker to close its side, as it SHOULD (§3.14.4), and closes. Until the
// broker has read the DISCONNECT the session is online: a message
// published meanwhile may go to this connection instead of the queue
// of the session, and a spec about queued messages would not see the
// queue at work.
func (c *Client) Leave() {
	if err := c.Conn.Send(&packetgen.Disconnect{}); err != nil {
		c.Conn.Close() //nolint:errcheck // closed already: nothing to wait for
		return
	}
	c.Conn.ExpectClosed(min(time.Second, c.w.cfg.Timeout)) //nolint:errcheck
	c.Conn.Close()                                         //nolint:errcheck
}

// Ping sends PINGREQ and waits for PINGRESP: proof the connection is open
// and the broker has processed everything sent before. Whatever comes
// instead (a PUBLISH, a close) is the spec's business.
func (c *Client) Ping() {
	c.MustSend(&packetgen.Pingreq{})
	p := c.NextAnswer("PINGRESP")
	if _, ok := p.(*packetgen.Pingresp); !ok {
		c.w.Failf("expected PINGRESP at %s; got %s", c.Name, packetgen.Format(p))
	}
}
