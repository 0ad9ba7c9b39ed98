package suites

// Helpers of the PUBLISH, QoS flow, redelivery and ordering specs
// (3_3_publish.go, 3_6_pubrel.go, 4_3_qos.go, 4_4_redelivery.go,
// 4_5_receive.go, 4_6_ordering.go).

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// pqNeedQoS skips the spec when the profile says the broker does not go as
// high as q.
func pqNeedQoS(w *World, q packetgen.QoS) {
	highest := *w.Cfg().Profile.MaxQoS
	w.Require(int(q) <= highest, fmt.Sprintf("needs QoS %d; the broker's max_qos is %d", q, highest))
}

// pqMaxQoS is the highest QoS the profile says the broker grants.
func pqMaxQoS(w *World) packetgen.QoS { return packetgen.QoS(*w.Cfg().Profile.MaxQoS) }

// pqNeedRetain skips the spec when the broker does not keep retained messages.
func pqNeedRetain(w *World) { w.Require(*w.Cfg().Profile.Retain, "needs retained messages") }

// pqHasWildcards reports whether the profile says wildcard filters work.
func pqHasWildcards(w *World) bool { return *w.Cfg().Profile.Wildcards }

// pqGrantedAtLeast subscribes at the highest QoS of the profile and skips
// the spec when the broker grants less than q: a server may always grant a
// lower QoS than asked (3.9.3), so a spec that needs q cannot hold it
// against the broker. It returns the granted QoS.
func pqGrantedAtLeast(c *Client, filter string, q packetgen.QoS) packetgen.QoS {
	g := c.Granted(filter, pqMaxQoS(c.w))
	c.w.Require(g >= q, fmt.Sprintf("needs a QoS %d subscription; %q was granted QoS %d", q, filter, g))
	return g
}

func pqMinQoS(a, b packetgen.QoS) packetgen.QoS {
	if a < b {
		return a
	}
	return b
}

// pqStartPublish sends a PUBLISH without waiting for its acknowledgement; a
// packet identifier is assigned when qos > 0. Retained topics are noted for
// cleanup. Finish the flows with pqCompletePublishes.
func pqStartPublish(c *Client, topic string, payload []byte, qos packetgen.QoS, retain, dup bool) *packetgen.Publish {
	p := &packetgen.Publish{Topic: []byte(topic), Payload: payload, QoS: qos, Retain: retain, Dup: dup}
	if qos > 0 {
		p.PacketID = c.ID()
	}
	if retain {
		c.w.noteRetained(topic)
	}
	c.MustSend(p)
	return p
}

// pqCompletePublishes completes the sender's side of every QoS 1 and 2 flow
// started by pqStartPublish: it reads PUBACK, PUBREC (answered at once with
// PUBREL) and PUBCOMP in whatever order they come and fails on anything
// else. It returns the identifiers in the order their PUBACK (QoS 1) and
// PUBREC (QoS 2) packets arrived.
func pqCompletePublishes(c *Client, pubs []*packetgen.Publish) (pubacks, pubrecs []uint16) {
	awaitAck, awaitRec, awaitComp := map[uint16]bool{}, map[uint16]bool{}, map[uint16]bool{}
	for _, p := range pubs {
		switch p.QoS {
		case 1:
			awaitAck[p.PacketID] = true
		case 2:
			awaitRec[p.PacketID] = true
		}
	}
	for len(awaitAck)+len(awaitRec)+len(awaitComp) > 0 {
		want := fmt.Sprintf("acknowledgements of %d PUBACK, %d PUBREC and %d PUBCOMP still due", len(awaitAck), len(awaitRec), len(awaitComp))
		switch a := c.NextAnswer(want).(type) {
		case *packetgen.Puback:
			if awaitRec[a.PacketID] { // a QoS 2 PUBLISH is owed PUBREC
				c.w.stepFailed(rulePubrec, "expected PUBREC id=%d at %s; got %s", a.PacketID, c.Name, packetgen.Format(a))
			}
			if !awaitAck[a.PacketID] {
				c.w.stepFailed(rulePubackID, "expected a PUBACK only for an unacknowledged QoS 1 PUBLISH at %s; got %s", c.Name, packetgen.Format(a))
			}
			delete(awaitAck, a.PacketID)
			pubacks = append(pubacks, a.PacketID)
		case *packetgen.Pubrec:
			if awaitAck[a.PacketID] { // a QoS 1 PUBLISH is owed PUBACK
				c.w.stepFailed(rulePuback, "expected PUBACK id=%d at %s; got %s", a.PacketID, c.Name, packetgen.Format(a))
			}
			if !awaitRec[a.PacketID] {
				c.w.stepFailed(rulePubrecID, "expected a PUBREC only for an unacknowledged QoS 2 PUBLISH at %s; got %s", c.Name, packetgen.Format(a))
			}
			delete(awaitRec, a.PacketID)
			pubrecs = append(pubrecs, a.PacketID)
			awaitComp[a.PacketID] = true
			c.MustSend(&packetgen.Pubrel{PacketID: a.PacketID})
		case *packetgen.Pubcomp:
			if !awaitComp[a.PacketID] {
				c.w.stepFailed(rulePubcompID, "expected a PUBCOMP only for a released QoS 2 message at %s; got %s", c.Name, packetgen.Format(a))
			}
			delete(awaitComp, a.PacketID)
		default:
			c.w.Failf("expected %s at %s; got %s", want, c.Name, packetgen.Format(a))
		}
	}
	return pubacks, pubrecs
}

// pqCollect receives PUBLISH packets at a subscriber and completes the
// receiver's side of each flow (PUBACK; PUBREC, then PUBCOMP on PUBREL) even
// when the broker interleaves them, which Client.Ack cannot: it waits for
// the PUBREL right after its PUBREC. With n >= 0 it returns once n PUBLISH
// packets came and no PUBREL is due (failing when one takes longer than the
// timeout); with n < 0 it returns when the Quiet period passes with nothing
// due. Packets come back in arrival order.
func pqCollect(c *Client, n int) []*packetgen.Publish {
	return pqCollectQuiet(c, n, c.w.cfg.Quiet)
}

// pqCollectAll collects from several subscribers until each has been
// quiet, waiting the Quiet period once for all of them rather than once
// each: what the broker sends at once has arrived after the first wait.
func pqCollectAll(w *World, clients ...*Client) [][]*packetgen.Publish {
	time.Sleep(w.cfg.Quiet)
	out := make([][]*packetgen.Publish, len(clients))
	for i, c := range clients {
		out[i] = pqCollectQuiet(c, -1, w.cfg.Quiet/10)
	}
	return out
}

// pqCollectQuiet is pqCollect with the quiet period given.
func pqCollectQuiet(c *Client, n int, quiet time.Duration) []*packetgen.Publish {
	var got []*packetgen.Publish
	released := map[uint16]bool{} // PUBREC sent, PUBREL awaited
	for {
		if n >= 0 && len(got) >= n && len(released) == 0 {
			return got
		}
		wait := c.w.cfg.Timeout
		if n < 0 && len(released) == 0 {
			wait = quiet
		}
		p, err := c.Recv(wait)
		if errors.Is(err, wire.ErrTimeout) && n < 0 && len(released) == 0 {
			return got
		}
		if err != nil {
			if (n < 0 || len(got) >= n) && len(released) > 0 { // only PUBREL, an answer, is due
				c.w.ifNoAnswer(err, pqCollectWant(n, len(got), len(released)), c.Name)
			}
			c.w.Failf("expected %s at %s; got %s after %d PUBLISH: %s",
				pqCollectWant(n, len(got), len(released)), c.Name, describeErr(err), len(got), pqFormatPublishes(got))
		}
		switch p := p.(type) {
		case *packetgen.Publish:
			if p.QoS > 0 && p.PacketID == 0 {
				c.w.stepFailed(rulePacketID, "expected a non-zero packet identifier on a QoS %d PUBLISH at %s; got %s", p.QoS, c.Name, packetgen.Format(p))
			}
			got = append(got, p)
			switch p.QoS {
			case 1:
				c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
			case 2:
				c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
				released[p.PacketID] = true
			}
		case *packetgen.Pubrel:
			if !released[p.PacketID] {
				c.w.Failf("expected PUBREL only for a QoS 2 PUBLISH answered with PUBREC at %s; got %s", c.Name, packetgen.Format(p))
			}
			delete(released, p.PacketID)
			c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
		default:
			c.w.Failf("expected %s at %s; got %s", pqCollectWant(n, len(got), len(released)), c.Name, packetgen.Format(p))
		}
	}
}

func pqCollectWant(n, got, released int) string {
	switch {
	case n > got:
		return fmt.Sprintf("%d more PUBLISH (%d of %d so far)", n-got, got, n)
	case released > 0:
		return fmt.Sprintf("PUBREL for %d QoS 2 messages answered with PUBREC", released)
	}
	return "PUBLISH or silence"
}

// pqExpectNoMore waits the Quiet period once and then requires that none of
// the clients received anything: one wait for several clients keeps the
// suite fast.
func pqExpectNoMore(w *World, why string, clients ...*Client) {
	time.Sleep(w.cfg.Quiet)
	for _, c := range clients {
		c.ExpectNothingFor(time.Millisecond, why)
	}
}

// pqNothingBeforePing sends PINGREQ and requires PINGRESP as the next
// packet: whatever the broker sends in reaction to what this connection
// sent before comes first, so this proves "nothing more" without waiting
// the Quiet period. It cannot see deliveries routed from other
// connections; use pqExpectNoMore for those.
func pqNothingBeforePing(c *Client, why string) {
	c.MustSend(&packetgen.Pingreq{})
	p := c.NextAnswer("PINGRESP")
	if _, ok := p.(*packetgen.Pingresp); !ok {
		c.w.Failf("expected nothing at %s (%s) before PINGRESP; got %s", c.Name, why, packetgen.Format(p))
	}
}

// pqResume reconnects a persistent client after an abrupt close of its old
// connection and requires CONNACK 0 with session present 1, without which
// nothing of the session can come back.
func pqResume(w *World, old *Client, name string) *Client {
	old.Close()
	c, ack := w.ConnectAck(name, Persistent)
	if ack.ReasonCode != 0 || !ack.SessionPresent {
		w.Failf("expected CONNACK code 0 with session present 1 when %s resumes its session (MQTT-3.2.2-2); got %s",
			c.Name, packetgen.Format(ack))
	}
	return c
}

// pqPubcompAfterResume reads the PUBCOMP owed to PUBREL id, sent after
// the session resumed. A PUBREC of the same identifier that the server
// repeats on resuming is skipped: the specification requires PUBLISH and
// PUBREL to be sent again (MQTT-4.4.0-1) and forbids no PUBREC, which
// only says again where the flow stands.
func pqPubcompAfterResume(c *Client, id uint16) *packetgen.Pubcomp {
	for range 3 {
		p := c.NextAnswer("PUBCOMP")
		if rec, ok := p.(*packetgen.Pubrec); ok && rec.PacketID == id {
			continue
		}
		c.held = append([]packetgen.Packet{p}, c.held...)
		break
	}
	return ExpectPacket[*packetgen.Pubcomp](c)
}

// pqIsClosed reports whether a Recv error means the peer closed the
// connection.
func pqIsClosed(err error) bool { return errors.Is(err, wire.ErrClosed) }

// pqFormatPublishes lists packets for failure messages.
func pqFormatPublishes(ps []*packetgen.Publish) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = packetgen.Format(p)
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// pqPayloads returns the payloads of ps as strings, for comparisons.
func pqPayloads(ps []*packetgen.Publish) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p.Payload)
	}
	return s
}

// pqPatternPayload is n bytes in which every byte value occurs and a shift
// or truncation shows: byte i is (i*7 + i>>8) mod 256.
func pqPatternPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}
