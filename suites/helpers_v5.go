package suites

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Helpers of the 5.0 specs: CONNECT options for properties, subscriptions
// with options and identifiers, publishing prepared PUBLISH packets,
// topic aliases the broker sets, and closes with a DISCONNECT reason.

// Statements every server DISCONNECT is held to, whatever the spec checks.
var (
	ruleDisconnectNoExpiry = []string{"MQTT-3.14.2-2"} // no Session Expiry Interval from the server
	ruleDisconnectLast     = []string{"MQTT-3.14.4-1"} // nothing after DISCONNECT
	ruleDisconnectClose    = []string{"MQTT-3.14.4-2"} // the sender closes after DISCONNECT
	ruleNoDisconnectEarly  = []string{"MQTT-3.14.0-1"} // no DISCONNECT before a successful CONNACK
)

// SessionExpiry sets the Session Expiry Interval in seconds (5.0).
func SessionExpiry(s uint32) ConnectOption {
	return func(cp *packetgen.Connect) { cp.Properties.Set(packetgen.PropSessionExpiryInterval, s) }
}

// CleanStart sets Clean Start (5.0; Persistent clears it too).
func CleanStart(b bool) ConnectOption { return func(cp *packetgen.Connect) { cp.CleanStart = b } }

// WithProps edits the CONNECT's properties.
func WithProps(edit func(p *packetgen.Properties)) ConnectOption {
	return func(cp *packetgen.Connect) { edit(&cp.Properties) }
}

// WillProps edits the will's properties; it comes after WithWill.
func WillProps(edit func(p *packetgen.Properties)) ConnectOption {
	return func(cp *packetgen.Connect) {
		if cp.Will == nil {
			panic("suites: WillProps without WithWill")
		}
		edit(&cp.Will.Properties)
	}
}

// WillDelay sets the Will Delay Interval in seconds; it comes after WithWill.
func WillDelay(s uint32) ConnectOption {
	return WillProps(func(p *packetgen.Properties) { p.Set(packetgen.PropWillDelayInterval, s) })
}

// expectAccepted5 is expectAccepted for a 5.0 CONNACK: refusals any
// server may make leave the spec without a verdict (0x80 and 0x83 for
// reasons it keeps to itself, 0x84, credentials, 0x88 to 0x8A, quotas,
// rates and redirection, and 0x9A, 0x9B for a will it cannot serve);
// 0x85 refuses an identifier every server must accept; 0x81, 0x82 and
// 0x95 call a valid CONNECT of a few bytes malformed, erroneous or too
// large.
func expectAccepted5(c *Client, ack *packetgen.Connack) {
	w := c.w
	switch ack.ReasonCode {
	case packetgen.Success:
	case packetgen.ClientIdentifierNotValid:
		w.stepFailed(ruleClientID, "expected CONNACK 0x00 for the client identifier of %s (1-23 characters of 0-9, a-z and A-Z); got %s",
			c.Name, packetgen.Format(ack))
	case packetgen.MalformedPacket, packetgen.ProtocolError, packetgen.PacketTooLarge:
		w.stepFailed(ruleConnackOK, "expected CONNACK 0x00 for the valid CONNECT of %s; got %s", c.Name, packetgen.Format(ack))
	default:
		w.inconclusive("the broker refused the connection of %s that the spec needs: %s", c.Name, packetgen.Format(ack))
	}
}

// Connect5 is Connect returning the CONNACK too.
func (w *World) Connect5(name string, opts ...ConnectOption) (*Client, *packetgen.Connack) {
	c, ack := w.ConnectAck(name, opts...)
	expectAccepted(c, ack)
	return c, ack
}

// refusedPublish ends the spec without a verdict when a 5.0 broker
// refused a PUBLISH the spec needs (PUBACK or PUBREC of 0x80 or more:
// not authorized, quota exceeded...), which any broker may do.
func (c *Client) refusedPublish(rc packetgen.ReasonCode, ack string) {
	if c.w.is5() && rc.IsError() {
		c.w.inconclusive("the broker refused a PUBLISH the spec needs: %s", ack)
	}
}

// Sub is a 5.0 subscription: a filter and its options, and a
// Subscription Identifier when SubID is not 0.
type Sub struct {
	packetgen.Subscription
	SubID uint32
}

// Subscribe5 sends one SUBSCRIBE holding subs (with the identifier of
// the first that has one: a SUBSCRIBE carries at most one) and returns
// the SUBACK's codes.
func (c *Client) Subscribe5(subs ...Sub) []packetgen.ReasonCode {
	sp := &packetgen.Subscribe{}
	for _, s := range subs {
		sp.Subscriptions = append(sp.Subscriptions, s.Subscription)
		if s.SubID != 0 && !sp.Properties.Has(packetgen.PropSubscriptionIdentifier) {
			sp.Properties.Set(packetgen.PropSubscriptionIdentifier, s.SubID)
		}
	}
	return c.SubscribePacket(sp)
}

// Granted5 subscribes with options and requires the subscription to be
// granted (a refusal, allowed any server, leaves the spec without a
// verdict), returning the granted QoS.
func (c *Client) Granted5(s Sub) packetgen.QoS {
	rc := c.Subscribe5(s)[0]
	switch {
	case rc.IsError():
		c.w.inconclusive("the broker refused the subscription of %s to %q that the spec needs (SUBACK %s)",
			c.Name, short(s.Filter), packetgen.Format(&packetgen.Suback{ReasonCodes: []packetgen.ReasonCode{rc}}))
	case rc > 2:
		c.w.stepFailed(ruleSubackRC, "expected %q to be granted with a code of 0x00, 0x01 or 0x02; got SUBACK code 0x%02X", short(s.Filter), byte(rc))
	}
	return packetgen.QoS(rc)
}

// On is a subscription to filter at QoS q with default options.
func On(filter string, q packetgen.QoS) Sub {
	return Sub{Subscription: packetgen.Subscription{Filter: filter, QoS: q}}
}

// PublishPacket sends a PUBLISH of the spec's making (a packet
// identifier is given to QoS 1 and 2) and completes the sender's side of
// its flow, returning the reason code of the PUBACK or PUBREC (0 for QoS
// 0). A refusal (0x80 or more) is returned too: specs about refusals
// judge it.
func (c *Client) PublishPacket(p *packetgen.Publish) packetgen.ReasonCode {
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = c.ID()
	}
	if p.Retain {
		c.w.noteRetained(string(p.Topic))
	}
	c.MustSend(p)
	since, id := c.lastSent, p.PacketID
	switch p.QoS {
	case 1:
		want := fmt.Sprintf("PUBACK id=%d", id)
		ack := expectAnswer[*packetgen.Puback](c, since, rulePuback, want)
		if ack.PacketID != id {
			c.w.stepFailed(rulePubackID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(ack))
		}
		return ack.ReasonCode
	case 2:
		want := fmt.Sprintf("PUBREC id=%d", id)
		rec := expectAnswer[*packetgen.Pubrec](c, since, rulePubrec, want)
		if rec.PacketID != id {
			c.w.stepFailed(rulePubrecID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(rec))
		}
		if rec.ReasonCode.IsError() {
			return rec.ReasonCode // the flow ends here (§4.3.3)
		}
		c.MustSend(&packetgen.Pubrel{PacketID: id})
		want = fmt.Sprintf("PUBCOMP id=%d", id)
		comp := expectAnswer[*packetgen.Pubcomp](c, c.lastSent, rulePubcomp, want)
		if comp.PacketID != id {
			c.w.stepFailed(rulePubcompID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(comp))
		}
		return rec.ReasonCode
	}
	return 0
}

// Message builds a PUBLISH to topic with payload, at QoS q, with
// properties set by edit (which may be nil).
func Message(topic, payload string, q packetgen.QoS, edit func(p *packetgen.Properties)) *packetgen.Publish {
	p := &packetgen.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: q}
	if edit != nil {
		edit(&p.Properties)
	}
	return p
}

// Deliver publishes a prepared message the spec needs delivered: a
// refusal leaves the spec without a verdict.
func (c *Client) Deliver(p *packetgen.Publish) {
	rc := c.PublishPacket(p)
	c.refusedPublish(rc, fmt.Sprintf("reason code 0x%02X for %s", byte(rc), packetgen.Format(p)))
}

// resolveAlias fills in the topic of a PUBLISH from a 5.0 broker that
// uses a topic alias, as the client must (§3.3.2.3.4): a topic and an
// alias set the alias, an empty topic uses it. It returns an error for an
// alias the broker never set.
func (c *Client) resolveAlias(p *packetgen.Publish) error {
	if !p.Properties.Has(packetgen.PropTopicAlias) {
		return nil
	}
	a := p.Properties.TopicAlias
	if len(p.Topic) > 0 {
		if c.aliases == nil {
			c.aliases = map[uint16]string{}
		}
		c.aliases[a] = string(p.Topic)
		return nil
	}
	t, ok := c.aliases[a]
	if !ok {
		return fmt.Errorf("topic alias %d was never set on this connection", a)
	}
	p.Topic = []byte(t)
	return nil
}

// Receive5 waits for the next PUBLISH, resolves its topic alias and
// acknowledges it. The packet keeps its Topic Alias property, so specs
// can see that one was used.
func (c *Client) Receive5() *packetgen.Publish {
	p := c.ReceiveNoAck()
	if err := c.resolveAlias(p); err != nil {
		c.w.Failf("expected a PUBLISH whose topic alias is known at %s; got %s: %v", c.Name, packetgen.Format(p), err)
	}
	c.Ack(p)
	return p
}

// ReceiveAll5 is ReceiveAll with topic aliases resolved.
func (c *Client) ReceiveAll5() []*packetgen.Publish {
	ps := c.ReceiveAll()
	for _, p := range ps {
		if err := c.resolveAlias(p); err != nil {
			c.w.Failf("expected a PUBLISH whose topic alias is known at %s; got %s: %v", c.Name, packetgen.Format(p), err)
		}
	}
	return ps
}

// closeHow says what a broker owes when it closes a connection on an
// error: whether a DISCONNECT before the close is a SHOULD (an error in
// a packet other than CONNECT, §4.13.1) or optional (keep alive: closed
// "as if the network had failed"), and the reason codes that are right
// for it. 0x80 (unspecified error) is always accepted in their place.
type closeHow struct {
	should bool
	codes  []packetgen.ReasonCode
}

// withDisconnect is closeHow for an error whose DISCONNECT is a SHOULD.
func withDisconnect(codes ...packetgen.ReasonCode) closeHow {
	return closeHow{should: true, codes: codes}
}

// ExpectClosedBy requires the broker to close the connection (the MUST
// of the spec) and judges the DISCONNECT it may send first: a code other
// than those right for the error, or none where the specification says
// the server SHOULD send one, is a warning. What every server DISCONNECT
// must be (no Session Expiry Interval, nothing after it) is checked as
// steps. It returns the DISCONNECT, if any.
func (c *Client) ExpectClosedBy(why string, how closeHow) *packetgen.Disconnect {
	w := c.w
	got, err := c.Conn.ExpectClosed(w.cfg.Timeout)
	var disc *packetgen.Disconnect
	for i, p := range got {
		d, ok := p.(*packetgen.Disconnect)
		if !ok || disc != nil {
			if disc != nil {
				w.stepFailed(ruleDisconnectLast, "expected nothing after %s at %s; got %s", packetgen.Format(disc), c.Name, packetgen.Format(p))
			}
			w.Failf("expected the broker to close the connection of %s (%s); got %s first", c.Name, why, packetgen.Format(got[i]))
		}
		disc = d
	}
	if err != nil {
		if v := packetgen.AsViolation(err); v != nil {
			w.stepFailed([]string{v.Rule}, "expected the broker to close the connection of %s (%s); got a malformed packet: %v", c.Name, why, err)
		}
		if disc != nil && errors.Is(err, wire.ErrTimeout) {
			w.stepFailed(ruleDisconnectClose, "expected the broker to close the connection of %s after %s; it stayed open %s",
				c.Name, packetgen.Format(disc), w.cfg.Timeout)
		}
		w.Failf("expected the broker to close the connection of %s (%s); got %s", c.Name, why, describeErr(err))
	}
	if disc == nil {
		if how.should {
			w.Warnf("expected DISCONNECT with %s before the close (%s: the server SHOULD send one, §4.13.1); got a close without DISCONNECT",
				codeList(how.codes), why)
		}
		return nil
	}
	if !disc.ReasonCode.IsError() {
		w.Failf("expected the broker to close the connection of %s (%s), with or without a DISCONNECT of 0x80 or more; got %s",
			c.Name, why, packetgen.Format(disc))
	}
	if disc.Properties.Has(packetgen.PropSessionExpiryInterval) {
		w.stepFailed(ruleDisconnectNoExpiry, "expected no Session Expiry Interval on the DISCONNECT of the server at %s; got %s",
			c.Name, packetgen.Format(disc))
	}
	if len(how.codes) > 0 && !slices.Contains(how.codes, disc.ReasonCode) && disc.ReasonCode != packetgen.UnspecifiedError {
		w.Warnf("expected DISCONNECT with %s (%s); got %s", codeList(how.codes), why, packetgen.Format(disc))
	}
	return disc
}

// closedAfter requires the connection to close after the server's
// DISCONNECT d, already read: nothing may follow it [MQTT-3.14.4-1], the
// server closes [MQTT-3.14.4-2], and it carries no Session Expiry
// Interval [MQTT-3.14.2-2]. Breaches are steps: the spec's own statement
// (closing was allowed) is not at fault.
func (c *Client) closedAfter(d *packetgen.Disconnect) {
	w := c.w
	if d.Properties.Has(packetgen.PropSessionExpiryInterval) {
		w.stepFailed(ruleDisconnectNoExpiry, "expected no Session Expiry Interval on the DISCONNECT of the server at %s; got %s",
			c.Name, packetgen.Format(d))
	}
	got, err := c.Conn.ExpectClosed(w.cfg.Timeout)
	switch {
	case len(got) > 0:
		w.stepFailed(ruleDisconnectLast, "expected nothing after %s at %s; got %s", packetgen.Format(d), c.Name, packetgen.Format(got[0]))
	case errors.Is(err, wire.ErrTimeout):
		w.stepFailed(ruleDisconnectClose, "expected the broker to close the connection of %s after %s; it stayed open %s",
			c.Name, packetgen.Format(d), w.cfg.Timeout)
	}
}

// codeList names reason codes for messages: "0x81 (Malformed Packet) or
// 0x82 (Protocol Error)".
func codeList(codes []packetgen.ReasonCode) string {
	if len(codes) == 0 {
		return "a reason code of 0x80 or more"
	}
	var parts []string
	for i, rc := range codes {
		if slices.Contains(codes[:i], rc) {
			continue // several rules allowing the same code name it once
		}
		parts = append(parts, fmt.Sprintf("0x%02X (%s)", byte(rc), rc))
	}
	return strings.Join(parts, " or ")
}

// ExpectOpen requires the connection to be open: PINGRESP to PINGREQ,
// with PUBLISH packets that come first held for Receive.
func (c *Client) ExpectOpen(why string) {
	c.MustSend(&packetgen.Pingreq{})
	deadline := time.Now().Add(c.w.cfg.Timeout)
	for {
		p, err := c.Recv(max(time.Until(deadline), time.Millisecond))
		if err != nil {
			c.w.ifNoAnswer(err, "PINGRESP to PINGREQ", c.Name)
			c.w.Failf("expected the connection of %s to be open (%s): PINGRESP to PINGREQ; got %s", c.Name, why, describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Pingresp:
			return
		case *packetgen.Publish:
			c.held = append(c.held, p)
		default:
			c.w.Failf("expected the connection of %s to be open (%s): PINGRESP to PINGREQ; got %s", c.Name, why, packetgen.Format(p))
		}
	}
}

// userProps makes user properties from alternating keys and values.
func userProps(kv ...string) []packetgen.UserProperty {
	var out []packetgen.UserProperty
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, packetgen.UserProperty{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// seconds is a duration of s seconds.
func seconds(s uint32) time.Duration { return time.Duration(s) * time.Second }

// serverKeepAlive takes on the client's duty to keep a 5.0 connection
// alive when the CONNACK imposed a Server Keep Alive (MQTT-3.1.2-21): a
// client with the world's default keep alive sends PINGREQ at half the
// interval (wire.Conn.KeepAlive hides the PINGRESP packets). A client that
// asked for a keep alive of its own is the spec's to keep or let lapse.
func (w *World) serverKeepAlive(c *Client, cp *packetgen.Connect, ack *packetgen.Connack) {
	if !w.is5() || ack == nil || ack.ReasonCode != 0 || cp.KeepAlive != defaultKeepAlive {
		return
	}
	if k, ok := ack.Properties.Get(packetgen.PropServerKeepAlive).(uint16); ok && k > 0 {
		c.Conn.KeepAlive(time.Duration(k) * time.Second / 2)
	}
}

// defaultKeepAlive is the keep alive of the world's CONNECT packets.
const defaultKeepAlive = 60

// Send is wire.Conn.Send behind capsGuard, so that specs sending through
// it directly are held to what a 5.0 broker said it takes too.
func (c *Client) Send(p packetgen.Packet) error {
	c.w.capsGuard(p, packetgen.Size(p, c.Version()))
	c.quotaGuard(p)
	return c.Conn.Send(p)
}

// quotaGuard skips a spec about to have more QoS 1 and 2 PUBLISH packets
// unacknowledged than the Receive Maximum a 5.0 broker advertised, which
// a client must not (MQTT-3.3.4-7); Recv takes acknowledged ones off.
func (c *Client) quotaGuard(p packetgen.Packet) {
	caps := c.w.cfg.caps
	pub, ok := p.(*packetgen.Publish)
	if !ok || pub.QoS == 0 || !c.w.is5() || caps == nil || caps.Ack == nil || caps.ReceiveMaximum == 65535 || c.w.refusals {
		return
	}
	if c.unacked == nil {
		c.unacked = map[uint16]bool{}
	}
	if !c.unacked[pub.PacketID] && len(c.unacked) >= int(caps.ReceiveMaximum) {
		Skip(fmt.Sprintf("capabilities: the spec has more than %d QoS 1 and 2 PUBLISH packets unacknowledged, the broker's Receive Maximum", caps.ReceiveMaximum))
	}
	c.unacked[pub.PacketID] = true
}

// Recv is wire.Conn.Recv, taking what ends a QoS 1 or 2 flow of the
// client's off the count of quotaGuard.
func (c *Client) Recv(d time.Duration) (packetgen.Packet, error) {
	p, err := c.Conn.Recv(d)
	if len(c.unacked) > 0 {
		switch a := p.(type) {
		case *packetgen.Puback:
			delete(c.unacked, a.PacketID)
		case *packetgen.Pubcomp:
			delete(c.unacked, a.PacketID)
		case *packetgen.Pubrec:
			if a.ReasonCode.IsError() {
				delete(c.unacked, a.PacketID)
			}
		}
	}
	return p, err
}

// Connect is wire.Conn.Connect behind capsGuard.
func (c *Client) Connect(p *packetgen.Connect, d time.Duration) (*packetgen.Connack, error) {
	c.w.capsGuard(p, packetgen.Size(p, p.ProtocolLevel))
	return c.Conn.Connect(p, d)
}
