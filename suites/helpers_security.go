package suites

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/wire"
)

// Helpers of the security specs (section 5): who connects as whom, which
// topic stands for a profile's filter, and what a refusal looks like.

// secProfile is the profile's security section; the spec is skipped
// without one.
func secProfile(w *World) *Security {
	sec := w.cfg.Profile.Security
	w.Require(sec != nil, "no security section: the profile says who may connect, publish and subscribe (see suites/profile_security.go)")
	return sec
}

// asUser makes the CONNECT carry name and password instead of the
// profile's own credentials.
func asUser(name, password string) ConnectOption {
	return func(cp *packetgen.Connect) {
		cp.UsernameFlag, cp.Username = true, name
		cp.PasswordFlag, cp.Password = true, []byte(password)
	}
}

// withClientID sets the client identifier as it is.
func withClientID(id string) ConnectOption {
	return func(cp *packetgen.Connect) { cp.ClientID = id }
}

// as connects as the profile's user u.
func (w *World) as(name string, u SecurityUser, opts ...ConnectOption) *Client {
	return w.Connect(name, append([]ConnectOption{asUser(u.Name, u.Password)}, opts...)...)
}

// fill turns a filter of the profile into a topic name of this spec: each
// '+' or '#' level becomes a level no other spec uses.
func (w *World) fill(filter string) string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			levels[i] = w.prefix
		}
	}
	return strings.Join(levels, "/")
}

// mayPublish reports whether the profile lets u publish to t.
func mayPublish(u SecurityUser, t string) bool {
	for _, f := range u.MayPublish {
		if topic.Match(f, t) {
			return true
		}
	}
	return false
}

// mayRead reports whether the profile lets u read t.
func mayRead(u SecurityUser, t string) bool {
	for _, f := range u.MaySubscribe {
		if topic.Match(f, t) {
			return true
		}
	}
	return false
}

// secWriterOf finds a user other than not who may publish to t.
func secWriterOf(sec *Security, t, not string) (SecurityUser, bool) {
	for _, u := range sec.Users {
		if u.Name != not && mayPublish(u, t) {
			return u, true
		}
	}
	return SecurityUser{}, false
}

// secTopicIn finds a topic of this spec that filter matches, that some
// user may publish to and, if reader is given, that reader may not read:
// the topic and its writer.
func secTopicIn(w *World, sec *Security, filter string, reader *SecurityUser) (string, SecurityUser, bool) {
	for _, u := range sec.Users {
		for _, q := range u.MayPublish {
			t := w.fill(q)
			if topic.Match(filter, t) && (reader == nil || !mayRead(*reader, t)) {
				return t, u, true
			}
		}
	}
	return "", SecurityUser{}, false
}

// secReader finds a user who may subscribe to a filter matching t: the
// user and the filter.
func secReader(sec *Security, t string) (SecurityUser, string, bool) {
	for _, u := range sec.Users {
		for _, f := range u.MaySubscribe {
			if topic.Match(f, t) {
				return u, f, true
			}
		}
	}
	return SecurityUser{}, "", false
}

// payload is a message body of this spec: the prefix tells it from other
// specs' messages on shared filters.
func (w *World) payload(what string) string { return w.prefix + " " + what }

// secReceive collects at c the payloads of this spec's messages until
// want has come and Quiet has passed with nothing more (or the timeout
// with want missing), acknowledging each; with want empty, until Quiet
// passes with nothing. Other specs' messages on a shared filter are
// skipped.
func secReceive(c *Client, want string) (got []string, came bool) {
	w := c.w
	deadline := time.Now().Add(w.cfg.Timeout)
	if want == "" {
		deadline = time.Now().Add(w.cfg.Quiet)
	}
	take := func(p packetgen.Packet) {
		pub, ok := p.(*packetgen.Publish)
		if !ok {
			w.Failf("expected PUBLISH packets at %s; got %s", c.Name, packetgen.Format(p))
		}
		c.Ack(pub)
		if s := string(pub.Payload); strings.HasPrefix(s, w.prefix+" ") {
			got = append(got, s)
			came = came || s == want
		}
	}
	for len(c.held) > 0 {
		p := c.held[0]
		c.held = c.held[1:]
		take(p)
	}
	for {
		wait := time.Until(deadline)
		if came {
			wait = w.cfg.Quiet
		}
		if wait <= 0 {
			return got, came
		}
		p, err := c.Recv(wait)
		switch {
		case errors.Is(err, wire.ErrTimeout):
			return got, came
		case err != nil:
			w.Failf("expected only PUBLISH packets at %s; got %s", c.Name, describeErr(err))
		}
		take(p)
	}
}

// secControl ends the spec without a verdict when the message that shows
// the spec's clients work did not come: the profile and the broker
// disagree about a permission, and no denial can be told from a loss.
func secControl(w *World, came bool, format string, args ...any) {
	if !came {
		w.inconclusive("the control message did not arrive (%s): does the profile match the broker's rules?", fmt.Sprintf(format, args...))
	}
}

// secPublishDenied sends a QoS 1 PUBLISH the client may not make and
// judges the answer: 3.1.1 lets the server only acknowledge it or close
// the connection (MQTT-3.3.5-2); 5.0 acknowledges it, with 0x87 Not
// authorized or another code, or closes, after a DISCONNECT of 0x80 or
// more if it sends one. It reports whether the connection is still open.
func secPublishDenied(c *Client, t, payload string) bool {
	w := c.w
	id := c.ID()
	c.MustSend(&packetgen.Publish{Topic: []byte(t), QoS: 1, PacketID: id, Payload: []byte(payload)})
	since := c.lastSent
	for {
		p, err := c.Recv(max(time.Until(since.Add(w.cfg.Timeout)), time.Millisecond))
		switch {
		case errors.Is(err, wire.ErrTimeout):
			w.noAnswer("PUBACK", fmt.Sprintf("PUBACK id=%d or a close for a PUBLISH to %s the user may not make", id, t), c.Name)
		case errors.Is(err, wire.ErrClosed):
			return false
		case err != nil:
			w.Failf("expected PUBACK id=%d or a close at %s; got %s", id, c.Name, describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Puback:
			w.Expectf(p.PacketID == id, fmt.Sprintf("PUBACK id=%d", id), "%s", packetgen.Format(p))
			return true
		case *packetgen.Publish:
			c.held = append(c.held, p) // a delivery of a subscription: for later
		case *packetgen.Disconnect:
			w.Expectf(w.is5() && p.ReasonCode >= 0x80, fmt.Sprintf("PUBACK id=%d or a close", id), "%s", packetgen.Format(p))
			c.ExpectClosed("after DISCONNECT")
			return false
		default:
			w.Failf("expected PUBACK id=%d or a close for a PUBLISH to %s the user may not make; got %s", id, t, packetgen.Format(p))
		}
	}
}

// secSubscribeAny subscribes to a filter the client may or may not be
// granted and returns whether it was: a SUBACK is owed either way
// (MQTT-3.8.4-1) with a code that grants a QoS or says the subscription
// failed (MQTT-3.9.3-2).
func secSubscribeAny(c *Client, filter string) bool {
	rc := c.Subscribe(filter, 1)
	switch {
	case rc <= 2:
		return true
	case rc == packetgen.SubackFailure || (c.w.is5() && rc >= 0x80):
		return false
	}
	c.w.Failf("expected a SUBACK code granting a QoS or saying the subscription to %q failed; got 0x%02X", short(filter), byte(rc))
	return false
}

// refusalCodes are the CONNACK codes that refuse credentials or a client
// the broker does not admit.
func refusalCodes(w *World) []packetgen.ReasonCode {
	if w.is5() {
		return []packetgen.ReasonCode{packetgen.BadUserNameOrPassword, packetgen.NotAuthorized}
	}
	return []packetgen.ReasonCode{4, 5}
}

// expectRefused sends the CONNECT of a client the broker must not admit
// and requires a refusal: CONNACK with one of refusalCodes, session
// present 0 and then a close (3.1.1: MQTT-3.2.2-4, MQTT-3.2.2-5; 5.0:
// MQTT-3.2.2-6, MQTT-3.2.2-7), or a close without CONNACK (3.1.1 §3.1.4
// asks for the CONNACK with SHOULD; 5.0 MQTT-3.1.4-2 with MAY). A broken
// connection counts as a close: over TLS a refused certificate often
// shows as an alert on the first read.
func expectRefused(c *Client, cp *packetgen.Connect, who string) {
	w := c.w
	codes := refusalCodes(w)
	var want []string
	for _, rc := range codes {
		want = append(want, fmt.Sprintf("0x%02X", byte(rc)))
	}
	expected := fmt.Sprintf("CONNACK %s and a close, or a close, for %s", strings.Join(want, " or "), who)
	if err := c.Send(cp); err != nil {
		return // the broker closed the connection already
	}
	p, err := c.Recv(w.cfg.Timeout)
	switch {
	case errors.Is(err, wire.ErrClosed):
		return
	case errors.Is(err, wire.ErrTimeout):
		w.Failf("expected %s; got nothing in %s", expected, w.cfg.Timeout)
	case err != nil:
		w.Failf("expected %s; got %s", expected, describeErr(err))
	}
	ack, ok := p.(*packetgen.Connack)
	switch {
	case !ok:
		w.Failf("expected %s; got %s", expected, packetgen.Format(p))
	case ack.ReasonCode == 0:
		w.Failf("expected %s; got %s: the broker admitted it", expected, packetgen.Format(ack))
	}
	known := false
	for _, rc := range codes {
		known = known || ack.ReasonCode == rc
	}
	w.Expectf(known, expected, "%s", packetgen.Format(ack))
	w.Expectf(!ack.SessionPresent, "session present 0 in a refusing CONNACK", "%s", packetgen.Format(ack))
	c.ExpectClosed("after a refusing CONNACK")
}

// wrongPassword is a password that is not u's. It holds u's password, so
// a trace withholds the bytes of any packet carrying it.
func wrongPassword(u SecurityUser) string { return u.Password + "-not-the-password" }

// refusedIDs are the statements a refusal of credentials or of a client
// certificate answers to, by version.
func refusedIDs(s *S) string {
	if s.cfg.Version == packetgen.V5 {
		return "MQTT-3.1.4-2 MQTT-3.2.2-6 MQTT-3.2.2-7"
	}
	return "MQTT-3.2.2-4 MQTT-3.2.2-5"
}

// deniedPublishID is the statement a denied PUBLISH answers to.
func deniedPublishID(s *S) string {
	if s.cfg.Version == packetgen.V5 {
		return "MQTT-3.3.4-1"
	}
	return "MQTT-3.3.5-2"
}

// patternFilter fills a pattern's %c and %u levels with a client
// identifier and a user name. A '#' put in ends the filter there, as a
// filter ends at '#'.
func patternFilter(pattern, clientID, user string) string {
	levels := strings.Split(pattern, "/")
	for i, l := range levels {
		switch l {
		case "%c":
			levels[i] = clientID
		case "%u":
			levels[i] = user
		}
		if levels[i] == "#" {
			levels = levels[:i+1]
			break
		}
	}
	return strings.Join(levels, "/")
}
