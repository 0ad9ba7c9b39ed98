package suites

// Helpers of the connection lifecycle specs: UTF-8 strings, fixed header
// flags, packet identifiers, CONNECT, CONNACK, PINGREQ, DISCONNECT and
// session state (1_5_utf8.go, 2_2_header.go, 2_3_packet_id.go,
// 3_1_connect.go, 3_2_connack.go, 3_12_pingreq.go, 3_14_disconnect.go,
// 4_1_session.go). Their names start with "lc" so that they cannot clash
// with the helpers of other sections.

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// lcFlagsOffset is where the connect flags byte sits in the body of a
// 3.1.1 CONNECT: protocol name "MQTT" (2+4 bytes), then the level.
const lcFlagsOffset = 7

// lcConnectBytes encodes a CONNECT without checking it, so that specs can
// send what the specification forbids; edit, when set, changes the frame
// (flags, fields cut off, bytes added) before it is written.
func lcConnectBytes(w *World, cp *packetgen.Connect, edit func(f packetgen.Frame) packetgen.Frame) []byte {
	f := packetgen.FrameOf(cp, w.Cfg().Version)
	if edit != nil {
		f = edit(f)
	}
	return f.Bytes()
}

// lcSendConnect opens a connection and writes b as its first bytes,
// described as what in the trace.
func lcSendConnect(w *World, name string, b []byte, what string) *Client {
	c := w.Dial(name)
	c.MustSendRaw(b, what)
	return c
}

// lcWithFlags returns an edit that overwrites the connect flags byte.
func lcWithFlags(flags byte) func(packetgen.Frame) packetgen.Frame {
	return func(f packetgen.Frame) packetgen.Frame { return f.Patch(lcFlagsOffset, flags) }
}

// lcWaitClosed waits up to the timeout plus grace for the broker to close
// c and returns what arrived before, failing when the connection stays
// open or something undecodable comes.
func lcWaitClosed(c *Client, why string) []packetgen.Packet {
	got, err := c.Conn.ExpectClosed(c.w.cfg.Timeout + c.w.cfg.Grace)
	if err != nil {
		c.w.Failf("expected the broker to close the connection of %s (%s); got %s%s",
			c.Name, why, describeErr(err), lcAlsoGot(got))
	}
	return got
}

func lcAlsoGot(got []packetgen.Packet) string {
	if len(got) == 0 {
		return ""
	}
	var s []string
	for _, p := range got {
		s = append(s, packetgen.Format(p))
	}
	return " after " + strings.Join(s, ", ")
}

// lcExpectRefused requires the broker to refuse the CONNECT c sent: it
// closes the connection, either at once or after a CONNACK with a
// non-zero return code (a server may explain a refusal, MQTT-3.2.2-5).
// CONNACK 0 or any other packet fails the spec. It returns the refusing
// CONNACK, if one came.
func lcExpectRefused(c *Client, why string) *packetgen.Connack {
	got := lcWaitClosed(c, why)
	var ack *packetgen.Connack
	for i, p := range got {
		if a, ok := p.(*packetgen.Connack); ok && i == 0 && a.ReasonCode != 0 {
			ack = a
			continue
		}
		c.w.Failf("expected the broker to refuse %s (%s) by closing the connection, with or without a non-zero CONNACK; got %s",
			c.Name, why, lcAlsoGot(got)[len(" after "):])
	}
	return ack
}

// lcPending is a connection that has been sent something the broker must
// answer by closing it.
type lcPending struct {
	c   *Client
	why string
	// refusal lets a CONNACK with a non-zero return code come before the
	// close (a refused CONNECT).
	refusal bool
}

// lcExpectAllClosed waits for every pending connection at once and fails
// the spec with the list of those the broker did not close, or answered
// first, so that one run shows every case a broker gets wrong.
func lcExpectAllClosed(w *World, pending []lcPending) {
	problems := make([]string, len(pending))
	var wg sync.WaitGroup
	for i, p := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := p.c.Conn.ExpectClosed(w.cfg.Timeout + w.cfg.Grace)
			if n := len(got); n > 0 && p.c.Version() == packetgen.V5 {
				// A 5.0 server may say why with DISCONNECT (0x80 or more)
				// before it closes a connection it accepted.
				if d, ok := got[n-1].(*packetgen.Disconnect); ok && d.ReasonCode.IsError() {
					got = got[:n-1]
				}
			}
			switch {
			case err != nil:
				problems[i] = fmt.Sprintf("%s: got %s%s", p.why, describeErr(err), lcAlsoGot(got))
			case len(got) == 1 && p.refusal:
				if a, ok := got[0].(*packetgen.Connack); ok && a.ReasonCode != 0 {
					return
				}
				fallthrough
			case len(got) > 0:
				problems[i] = fmt.Sprintf("%s: got %s first", p.why, lcAlsoGot(got)[len(" after "):])
			}
		}()
	}
	wg.Wait()
	var bad []string
	for _, p := range problems {
		if p != "" {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		w.Failf("expected the broker to close the connection in each of %d cases (a refused CONNECT may get a non-zero CONNACK first); %d were not: %s",
			len(pending), len(bad), strings.Join(bad, "; "))
	}
}

// lcExpectConnackThenClose requires a CONNACK with return code rc as the
// first packet and then the end of the connection, with nothing between.
func lcExpectConnackThenClose(c *Client, rc packetgen.ReasonCode, why string) *packetgen.Connack {
	p, err := c.Recv(c.w.cfg.Timeout)
	if err != nil {
		c.w.ifNoAnswer(err, fmt.Sprintf("CONNACK with return code 0x%02X (%s)", byte(rc), why), c.Name)
		c.w.Failf("expected CONNACK with return code 0x%02X at %s (%s); got %s", byte(rc), c.Name, why, describeErr(err))
	}
	ack, ok := p.(*packetgen.Connack)
	if !ok || ack.ReasonCode != rc {
		c.w.Failf("expected CONNACK with return code 0x%02X at %s (%s); got %s", byte(rc), c.Name, why, packetgen.Format(p))
	}
	if got := lcWaitClosed(c, why+", after CONNACK 0x"+fmt.Sprintf("%02X", byte(rc))); len(got) > 0 {
		c.w.Failf("expected the broker to close the connection of %s right after %s (%s); got %s",
			c.Name, packetgen.Format(ack), why, lcAlsoGot(got)[len(" after "):])
	}
	return ack
}

// lcReconnect opens a new connection for name with opts and returns it
// with its CONNACK, which must accept (return code 0).
func lcReconnect(w *World, name string, opts ...ConnectOption) (*Client, *packetgen.Connack) {
	c, ack := w.ConnectAck(name, opts...)
	if ack.ReasonCode != 0 {
		w.Failf("expected CONNACK return code 0 for %s; got %s", c.Name, packetgen.Format(ack))
	}
	return c, ack
}

// lcSessionPresent requires a CONNACK's session present flag to be want.
func lcSessionPresent(w *World, ack *packetgen.Connack, want bool, why string) {
	w.Expectf(ack.SessionPresent == want, fmt.Sprintf("CONNACK session present %d (%s)", lcBit(want), why),
		"%s", packetgen.Format(ack))
}

func lcBit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lcRecvPublish waits up to d for a PUBLISH and acknowledges it. Anything
// else, a close or nothing in time fails the spec with expected.
func lcRecvPublish(c *Client, d time.Duration, expected string) *packetgen.Publish {
	p, err := c.Recv(d)
	if err != nil {
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, describeErr(err))
	}
	pub, ok := p.(*packetgen.Publish)
	if !ok {
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, packetgen.Format(p))
	}
	if pub.QoS > 0 && pub.PacketID == 0 {
		c.w.stepFailed(rulePacketID, "expected a non-zero packet identifier on a QoS %d PUBLISH at %s; got %s", pub.QoS, c.Name, packetgen.Format(pub))
	}
	c.Ack(pub)
	return pub
}

// lcExpectWill waits for the will message on topic with payload at sub,
// allowing the spec's timing extra plus the grace and the timeout, and
// returns it.
func lcExpectWill(sub *Client, topic, payload string, extra time.Duration, why string) *packetgen.Publish {
	want := fmt.Sprintf("the will message topic=%q payload=%q (%s)", topic, payload, why)
	p := lcRecvPublish(sub, extra+sub.w.cfg.Timeout+sub.w.cfg.Grace, want)
	if string(p.Topic) != topic || string(p.Payload) != payload {
		sub.w.Failf("expected %s at %s; got %s", want, sub.Name, packetgen.Format(p))
	}
	return p
}

var lcMarkerSeq atomic.Uint64

// lcExpectNoWill proves that no will message reaches sub: it closes a
// fresh connection whose will goes to a marker topic sub subscribes to,
// waits for that marker (evidence that the broker has handled abrupt
// closes by now), and then requires the Quiet period to pass with
// nothing more. Any other PUBLISH fails the spec. A broker that publishes
// no will at all sends no marker either; the wait then ends after the
// timeout and only the absence of other messages is judged (the will
// specs of MQTT-3.1.2-8 catch such a broker).
func lcExpectNoWill(w *World, sub *Client, why string) {
	n := lcMarkerSeq.Add(1)
	marker := w.Topic(fmt.Sprintf("marker%d", n))
	sub.Granted(marker, 0)
	m := w.Connect(fmt.Sprintf("mark%d", n), WithWill(marker, "marker", 0, false))
	m.Close()
	deadline := time.Now().Add(w.cfg.Timeout + w.cfg.Grace)
	for {
		p, err := sub.Recv(time.Until(deadline))
		if errors.Is(err, wire.ErrTimeout) {
			return // no marker: this broker publishes no will at all
		}
		if err != nil {
			w.Failf("expected no will message at %s (%s); got %s", sub.Name, why, describeErr(err))
		}
		pub, ok := p.(*packetgen.Publish)
		if !ok || string(pub.Topic) != marker {
			w.Failf("expected no will message at %s (%s); got %s", sub.Name, why, packetgen.Format(p))
		}
		sub.Ack(pub)
		break
	}
	sub.ExpectNothing(why)
}

// lcHold receives PUBLISH packets without acknowledging them until the
// Quiet period passes with nothing new, failing on anything but PUBLISH.
func lcHold(c *Client) []*packetgen.Publish { return c.ReceiveAllNoAck() }

// lcCollect receives PUBLISH packets until the Quiet period passes with
// nothing new and no PUBREL due, completing the receiver's side of each
// flow even when the broker interleaves them (Client.Ack expects the
// PUBREL right after its PUBREC). Anything but PUBLISH and PUBREL fails.
func lcCollect(c *Client) []*packetgen.Publish {
	var out []*packetgen.Publish
	released := map[uint16]bool{} // PUBREC sent, PUBREL due
	for {
		d := c.w.cfg.Quiet
		if len(released) > 0 {
			d = c.w.cfg.Timeout
		}
		p, err := c.Recv(d)
		if errors.Is(err, wire.ErrTimeout) && len(released) == 0 {
			return out
		}
		if err != nil {
			c.w.ifNoAnswer(err, fmt.Sprintf("PUBREL for %d QoS 2 messages answered with PUBREC", len(released)), c.Name)
			c.w.Failf("expected PUBLISH or PUBREL packets at %s (%d PUBREL due); got %s", c.Name, len(released), describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Publish:
			if p.QoS > 0 && p.PacketID == 0 {
				c.w.stepFailed(rulePacketID, "expected a non-zero packet identifier on a QoS %d PUBLISH at %s; got %s", p.QoS, c.Name, packetgen.Format(p))
			}
			out = append(out, p)
			switch p.QoS {
			case 1:
				c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
			case 2:
				released[p.PacketID] = true
				c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
			}
		case *packetgen.Pubrel:
			if !released[p.PacketID] {
				c.w.Failf("expected PUBREL only for a QoS 2 PUBLISH answered with PUBREC at %s; got %s", c.Name, packetgen.Format(p))
			}
			delete(released, p.PacketID)
			c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
		default:
			c.w.Failf("expected PUBLISH or PUBREL packets at %s; got %s", c.Name, packetgen.Format(p))
		}
	}
}

// lcPayloads lists the payloads of ps, sorted.
func lcPayloads(ps []*packetgen.Publish) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Payload))
	}
	sort.Strings(out)
	return out
}

// lcMissing returns the members of want that are not in got.
func lcMissing(want, got []string) []string {
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	var out []string
	for _, s := range want {
		if !have[s] {
			out = append(out, s)
		}
	}
	return out
}

// lcCredentials is the user name and password a spec sends when it needs
// both fields: the profile's when set, else made-up ones that a broker
// admitting anonymous clients normally accepts.
func lcCredentials(w *World) (string, []byte, bool) {
	if u := w.Cfg().Profile.Username; u != "" {
		return u, []byte(w.Cfg().Profile.Password), true
	}
	return "mqttbench", []byte("mqttbench"), false
}

// lcNoCredentials removes the user name and password from a CONNECT.
func lcNoCredentials(cp *packetgen.Connect) {
	cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = false, "", false, nil
}

// lcStillOpen requires c's connection to be open and served: PINGREQ
// draws PINGRESP. why says why it must be.
func lcStillOpen(c *Client, why string) {
	c.MustSend(&packetgen.Pingreq{})
	p, err := c.Recv(c.w.cfg.Timeout)
	if err != nil {
		c.w.ifNoAnswer(err, "PINGRESP to PINGREQ", c.Name)
		c.w.Failf("expected the connection of %s to be open (%s): PINGRESP to PINGREQ; got %s", c.Name, why, describeErr(err))
	}
	if _, ok := p.(*packetgen.Pingresp); !ok {
		c.w.Failf("expected the connection of %s to be open (%s): PINGRESP to PINGREQ; got %s", c.Name, why, packetgen.Format(p))
	}
}

// lcViolate sends a PUBLISH with both QoS bits set (QoS 3), a protocol
// violation every server must answer by closing the connection
// (MQTT-3.3.1-4).
func lcViolate(c *Client) {
	p := &packetgen.Publish{Topic: []byte(c.w.Topic("qos3")), Payload: []byte("x")}
	c.MustSendRaw(packetgen.FrameOf(p, c.w.cfg.Version).WithFlags(0x6).Bytes(), "PUBLISH with QoS 3 (a protocol violation)")
}

// lcExpectNothingAll requires that none of the clients receives anything
// for the Quiet period, waiting it once for all of them.
func lcExpectNothingAll(w *World, why string, clients ...*Client) {
	time.Sleep(w.cfg.Quiet)
	for _, c := range clients {
		c.ExpectNothingFor(time.Millisecond, why)
	}
}
