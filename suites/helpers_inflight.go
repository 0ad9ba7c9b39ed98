package suites

// Reading deliveries a spec leaves unacknowledged. A server may keep as
// few as one QoS 1 or 2 message in flight to a client: in 5.0 its send
// quota starts anywhere from 1 to the client's Receive Maximum
// (MQTT-4.9.0-1), 3.1.1 sets no number at all, and either may hold QoS 0
// messages behind an unacknowledged one (§4.9). ejabberd sends one at a
// time. A spec that waits for more unacknowledged PUBLISH packets than
// the broker sends before it waits for an acknowledgement waits for
// nothing: these helpers take what comes, tell the spec when the broker
// has stopped, and complete flows without blocking on their order.

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// ruleDupFirst: DUP says whether a PUBLISH is a retransmission, so a
// first delivery carries DUP 0.
var ruleDupFirst = []string{"MQTT-3.3.1-3"}

// pqInbox reads the PUBLISH packets a broker sends one subscriber,
// answering the PUBREL of every QoS 2 flow ack started as it comes, so a
// spec can leave some messages unacknowledged and complete others in any
// order.
type pqInbox struct {
	c *Client
	// released holds the QoS 2 flows answered with PUBREC whose PUBREL is
	// still due.
	released map[uint16]bool
}

func pqNewInbox(c *Client) *pqInbox {
	return &pqInbox{c: c, released: map[uint16]bool{}}
}

// recv returns the next PUBLISH, or nil when none comes within wait. A
// PUBREL it is owed is answered with PUBCOMP on the way; anything else,
// or a close, fails the spec.
func (in *pqInbox) recv(wait time.Duration) *packetgen.Publish {
	c := in.c
	deadline := time.Now().Add(wait)
	for {
		var p packetgen.Packet
		if len(c.held) > 0 {
			p, c.held = c.held[0], c.held[1:]
		} else {
			var err error
			p, err = c.Recv(max(time.Until(deadline), time.Millisecond))
			switch {
			case errors.Is(err, wire.ErrTimeout):
				return nil
			case err != nil:
				c.w.Failf("expected PUBLISH packets at %s; got %s", c.Name, describeErr(err))
			}
		}
		switch p := p.(type) {
		case *packetgen.Publish:
			if p.QoS > 0 && p.PacketID == 0 {
				c.w.stepFailed(rulePacketID, "expected a non-zero packet identifier on a QoS %d PUBLISH at %s; got %s", p.QoS, c.Name, packetgen.Format(p))
			}
			return p
		case *packetgen.Pubrel:
			if !in.released[p.PacketID] {
				c.w.Failf("expected PUBREL only for a QoS 2 PUBLISH answered with PUBREC at %s; got %s", c.Name, packetgen.Format(p))
			}
			delete(in.released, p.PacketID)
			c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
		default:
			c.w.Failf("expected PUBLISH packets at %s; got %s", c.Name, packetgen.Format(p))
		}
	}
}

// burst returns the PUBLISH packets the broker sends before it stops,
// at most limit: the first waited for up to the timeout (none fails the
// spec, as Next does), each further one for the Quiet period. Fewer
// than limit means the broker waits, perhaps for an acknowledgement.
// Nothing is acknowledged.
func (in *pqInbox) burst(limit int) []*packetgen.Publish {
	first := in.recv(in.c.w.cfg.Timeout)
	if first == nil {
		in.c.w.Failf("expected PUBLISH at %s; got nothing in time", in.c.Name)
	}
	ps := []*packetgen.Publish{first}
	for len(ps) < limit {
		p := in.recv(in.c.w.cfg.Quiet)
		if p == nil {
			break
		}
		ps = append(ps, p)
	}
	return ps
}

// ack completes the receiver's side of p's flow: PUBACK, or PUBREC now
// and PUBCOMP when the PUBREL comes (recv, each or settle answer it).
func (in *pqInbox) ack(p *packetgen.Publish) {
	switch p.QoS {
	case 1:
		in.c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
	case 2:
		in.c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
		in.released[p.PacketID] = true
	}
}

// each calls fn with every PUBLISH until the Quiet period passes with no
// PUBREL due; fn acknowledges what it wants to (ack). A PUBREL due that
// does not come within the timeout leaves the spec inconclusive.
func (in *pqInbox) each(fn func(p *packetgen.Publish)) {
	for {
		wait := in.c.w.cfg.Quiet
		if len(in.released) > 0 {
			wait = in.c.w.cfg.Timeout
		}
		p := in.recv(wait)
		if p == nil {
			if len(in.released) > 0 {
				in.c.w.noAnswer("PUBREL", fmt.Sprintf("PUBREL for %d QoS 2 messages answered with PUBREC", len(in.released)), in.c.Name)
			}
			return
		}
		fn(p)
	}
}

// settle waits for the PUBREL of every flow ack started and answers it.
// It returns the PUBLISH packets that came meanwhile (a broker may send
// the next message once it has a PUBREC), unacknowledged.
func (in *pqInbox) settle() []*packetgen.Publish {
	var more []*packetgen.Publish
	for len(in.released) > 0 {
		p := in.recv(in.c.w.cfg.Timeout)
		if p == nil {
			in.c.w.noAnswer("PUBREL", fmt.Sprintf("PUBREL for %d QoS 2 messages answered with PUBREC", len(in.released)), in.c.Name)
		}
		more = append(more, p)
	}
	return more
}

// pqPubrels reads n PUBREL packets at c, owed to the PUBREC packets it
// sent; a PUBLISH that comes meanwhile (a broker may send the next
// message once it has a PUBREC) is kept for the next read.
func pqPubrels(c *Client, n int) []*packetgen.Pubrel {
	var rels []*packetgen.Pubrel
	for len(rels) < n {
		want := fmt.Sprintf("%d more PUBREL", n-len(rels))
		switch p := c.recvAnswer("PUBREL", time.Now(), want).(type) {
		case *packetgen.Pubrel:
			rels = append(rels, p)
		case *packetgen.Publish:
			c.held = append(c.held, p)
		default:
			c.wrongAnswer(rulePubrel, want, p)
		}
	}
	return rels
}

// pqShuffle is an order of n indices that is neither the order given
// nor its reverse when n > 2: a broker that answers in either of those
// instead of in the order asked shows.
func pqShuffle(n int) []int {
	if n == 4 {
		return []int{2, 0, 3, 1}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = (i + 1) % n
	}
	return order
}
