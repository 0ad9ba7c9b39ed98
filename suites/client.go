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
	if err := c.Send(p); err != nil {
		c.w.Failf("%s could not send %s: %v", c.Name, packetgen.Format(p), err)
	}
}

// MustSendRaw writes raw bytes or fails the spec.
func (c *Client) MustSendRaw(b []byte, what string) {
	if err := c.SendRaw(b, what); err != nil {
		c.w.Failf("%s could not send %s: %v", c.Name, what, err)
	}
}

// Next waits for the next packet and fails the spec if none comes.
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
func ExpectPacket[T packetgen.Packet](c *Client) T {
	var zero T
	want := fmt.Sprintf("%T", zero)
	p := c.Next(want)
	t, ok := p.(T)
	if !ok {
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
	id := c.ID()
	c.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: subs})
	// A broker may send PUBLISH packets (retained messages, deliveries for
	// other subscriptions) before the SUBACK: keep them for Receive.
	var ack *packetgen.Suback
	for ack == nil {
		p, err := c.Recv(c.w.cfg.Timeout)
		if err != nil {
			c.w.Failf("expected SUBACK id=%d at %s; got %s", id, c.Name, describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Suback:
			ack = p
		case *packetgen.Publish:
			c.held = append(c.held, p)
		default:
			c.w.Failf("expected SUBACK id=%d at %s; got %s", id, c.Name, packetgen.Format(p))
		}
	}
	if ack.PacketID != id || len(ack.ReasonCodes) != len(subs) {
		c.w.Failf("expected SUBACK id=%d with %d codes; got %s", id, len(subs), packetgen.Format(ack))
	}
	return ack.ReasonCodes
}

// Granted subscribes and requires the subscription to be accepted,
// returning the granted QoS.
func (c *Client) Granted(filter string, qos packetgen.QoS) packetgen.QoS {
	rc := c.Subscribe(filter, qos)
	if rc > 2 {
		c.w.Failf("expected %q to be granted; got SUBACK code 0x%02X", filter, byte(rc))
	}
	return packetgen.QoS(rc)
}

// Unsubscribe removes filters and waits for UNSUBACK with the same id.
func (c *Client) Unsubscribe(filters ...string) {
	id := c.ID()
	c.MustSend(&packetgen.Unsubscribe{PacketID: id, Filters: filters})
	ack := ExpectPacket[*packetgen.Unsuback](c)
	if ack.PacketID != id {
		c.w.Failf("expected UNSUBACK id=%d; got %s", id, packetgen.Format(ack))
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

// completeSend finishes the publisher's side of a QoS 1 or 2 flow.
func (c *Client) completeSend(id uint16, qos packetgen.QoS) {
	switch qos {
	case 1:
		ack := ExpectPacket[*packetgen.Puback](c)
		if ack.PacketID != id {
			c.w.Failf("expected PUBACK id=%d; got %s", id, packetgen.Format(ack))
		}
	case 2:
		rec := ExpectPacket[*packetgen.Pubrec](c)
		if rec.PacketID != id {
			c.w.Failf("expected PUBREC id=%d; got %s", id, packetgen.Format(rec))
		}
		c.MustSend(&packetgen.Pubrel{PacketID: id})
		comp := ExpectPacket[*packetgen.Pubcomp](c)
		if comp.PacketID != id {
			c.w.Failf("expected PUBCOMP id=%d; got %s", id, packetgen.Format(comp))
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
		c.w.Failf("expected a non-zero packet identifier on a QoS %d PUBLISH (MQTT-2.3.1-1); got %s", p.QoS, packetgen.Format(p))
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
		rel := ExpectPacket[*packetgen.Pubrel](c)
		if rel.PacketID != p.PacketID {
			c.w.Failf("expected PUBREL id=%d; got %s", p.PacketID, packetgen.Format(rel))
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
// and the broker has processed everything sent before.
func (c *Client) Ping() {
	c.MustSend(&packetgen.Pingreq{})
	p := c.Next("PINGRESP")
	if _, ok := p.(*packetgen.Pingresp); !ok {
		c.w.Failf("expected PINGRESP at %s; got %s", c.Name, packetgen.Format(p))
	}
}
