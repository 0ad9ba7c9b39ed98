package suites

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Helpers of the SUBSCRIBE, UNSUBSCRIBE, topic and error sections
// (3_8_subscribe.go, 3_9_suback.go, 3_10_unsubscribe.go, 4_7_topics.go,
// 4_8_errors.go).

// sendUnchecked writes p without the encoder's checks, so that a spec can
// send what a client must not (an invalid filter, QoS 3, no filter).
func sendUnchecked(c *Client, p packetgen.Packet) {
	c.MustSendRaw(packetgen.AppendUnchecked(nil, p, c.Version()), packetgen.Format(p))
}

// rawSubscribe sends a SUBSCRIBE with one filter and the requested QoS
// byte as given, unchecked, and returns its packet identifier.
func rawSubscribe(c *Client, filter string, options byte) uint16 {
	id := c.ID()
	f := packetgen.FrameOf(&packetgen.Subscribe{PacketID: id,
		Subscriptions: []packetgen.Subscription{{Filter: filter}}}, c.Version())
	f = f.Patch(len(f.Body)-1, options)
	c.MustSendRaw(f.Bytes(), fmt.Sprintf("SUBSCRIBE id=%d filter=%q options=0x%02X", id, short(filter), options))
	return id
}

// subackOrClosed waits for the SUBACK answering the SUBSCRIBE id with n
// filters, or for the broker to close the connection. It fails on
// anything else, or on a SUBACK with another identifier or code count.
func subackOrClosed(c *Client, id uint16, n int) (codes []packetgen.ReasonCode, closed bool) {
	p, err := c.Recv(c.w.cfg.Timeout + c.w.cfg.Grace)
	switch {
	case errors.Is(err, wire.ErrClosed):
		return nil, true
	case err != nil:
		c.w.Failf("expected SUBACK id=%d or the connection closed at %s; got %s", id, c.Name, describeErr(err))
	}
	ack, ok := p.(*packetgen.Suback)
	if !ok || ack.PacketID != id || len(ack.ReasonCodes) != n {
		c.w.Failf("expected SUBACK id=%d with %d codes, or the connection closed, at %s; got %s",
			id, n, c.Name, packetgen.Format(p))
	}
	return ack.ReasonCodes, false
}

// expectFilterRefused sends SUBSCRIBE for an invalid filter and requires
// the broker to refuse it: SUBACK 0x80, or closing the connection (both
// are allowed for a filter that breaks section 4.7).
func expectFilterRefused(c *Client, filter string, why string) {
	id := rawSubscribe(c, filter, 0)
	codes, closed := subackOrClosed(c, id, 1)
	if !closed && codes[0] != packetgen.SubackFailure {
		c.w.Failf("expected SUBACK 0x80 or the connection closed for the filter %q (%s); got SUBACK code 0x%02X",
			short(filter), why, byte(codes[0]))
	}
}

// subscribeTaking subscribes to one filter and returns the SUBACK code,
// with the PUBLISH packets (acknowledged) that came before the SUBACK: a
// server may start sending matching messages, retained ones for instance,
// before it acknowledges the SUBSCRIBE (section 3.8.4).
func subscribeTaking(c *Client, filter string, qos packetgen.QoS) (packetgen.ReasonCode, []*packetgen.Publish) {
	id := c.ID()
	c.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{{Filter: filter, QoS: qos}}})
	var early []*packetgen.Publish
	for {
		p := c.Next("SUBACK")
		if answerFlow(c, p) {
			continue
		}
		if pub, ok := p.(*packetgen.Publish); ok {
			early = append(early, pub)
			continue
		}
		ack, ok := p.(*packetgen.Suback)
		if !ok || ack.PacketID != id || len(ack.ReasonCodes) != 1 {
			c.w.Failf("expected SUBACK id=%d with one code at %s; got %s", id, c.Name, packetgen.Format(p))
		}
		return ack.ReasonCodes[0], early
	}
}

// collect reads every packet until the Quiet period passes with none,
// completing the receiver's side of QoS 1 and 2 deliveries as they come
// (PUBACK; PUBREC, then PUBCOMP for the PUBREL, which is not returned).
// It fails if the connection closes.
func collect(c *Client) []packetgen.Packet {
	var out []packetgen.Packet
	for {
		p, err := c.Recv(c.w.cfg.Quiet)
		if errors.Is(err, wire.ErrTimeout) {
			return out
		}
		if err != nil {
			c.w.Failf("expected the connection of %s to stay open; got %s", c.Name, describeErr(err))
		}
		if !answerFlow(c, p) {
			out = append(out, p)
		}
	}
}

// answerFlow acknowledges p as a receiving client would. It reports true
// for a PUBREL, which it answers with PUBCOMP and callers need not see.
func answerFlow(c *Client, p packetgen.Packet) bool {
	switch p := p.(type) {
	case *packetgen.Publish:
		switch p.QoS {
		case 1:
			c.MustSend(&packetgen.Puback{PacketID: p.PacketID})
		case 2:
			c.MustSend(&packetgen.Pubrec{PacketID: p.PacketID})
		}
	case *packetgen.Pubrel:
		c.MustSend(&packetgen.Pubcomp{PacketID: p.PacketID})
		return true
	}
	return false
}

// drainPublishes waits one Quiet period, then takes the PUBLISH packets
// each client has received by then, acknowledging them. It is ReceiveAll
// for several subscribers at the cost of a single Quiet wait, for specs
// whose publisher has had every message acknowledged already.
func drainPublishes(w *World, clients ...*Client) [][]*packetgen.Publish {
	time.Sleep(w.cfg.Quiet)
	out := make([][]*packetgen.Publish, len(clients))
	for i, c := range clients {
		for {
			p, err := c.Recv(time.Millisecond)
			if errors.Is(err, wire.ErrTimeout) {
				break
			}
			if err != nil {
				w.Failf("expected PUBLISH packets at %s; got %s", c.Name, describeErr(err))
			}
			if answerFlow(c, p) {
				continue
			}
			pub, ok := p.(*packetgen.Publish)
			if !ok {
				w.Failf("expected only PUBLISH packets at %s; got %s", c.Name, packetgen.Format(p))
			}
			out[i] = append(out[i], pub)
		}
	}
	return out
}

// publishQoS is the QoS publishers use when they need the broker to have
// routed a message before the spec goes on: 1 (PUBACK comes after
// routing), or 0 where the profile says the broker stops at QoS 0.
func publishQoS(w *World) packetgen.QoS {
	return packetgen.QoS(min(1, *w.cfg.Profile.MaxQoS))
}

// matchCase is one topic filter and the published topic names it must
// match.
type matchCase struct {
	filter  string
	matches []string
}

// checkMatching subscribes one client per case at QoS 0, publishes every
// topic once, and requires each subscriber to get exactly the topics its
// case lists, each once, with the topic name unchanged. Messages on topics
// the spec did not publish, outside its private prefix, are other
// clients' traffic reaching a wide filter and are ignored.
func checkMatching(w *World, topics []string, cases []matchCase) {
	subs := make([]*Client, len(cases))
	for i, mc := range cases {
		subs[i] = w.Connect(fmt.Sprintf("s%d", i))
		subs[i].Granted(mc.filter, 0)
	}
	pub := w.Connect("pub")
	for _, t := range topics {
		pub.Publish(t, "to "+short(t), publishQoS(w), false)
	}
	got := drainPublishes(w, subs...)
	for i, mc := range cases {
		counts := countOwnTopics(w, topics, got[i])
		var wrong []string
		for _, t := range mc.matches {
			if counts[t] != 1 {
				wrong = append(wrong, fmt.Sprintf("%q %d times", short(t), counts[t]))
			}
		}
		for t, n := range counts {
			if !contains(mc.matches, t) {
				wrong = append(wrong, fmt.Sprintf("%q %d times", short(t), n))
			}
		}
		if len(wrong) > 0 {
			sort.Strings(wrong)
			w.Failf("expected the filter %q to match exactly %s, each once; got %s",
				short(mc.filter), quoteAll(mc.matches), strings.Join(wrong, ", "))
		}
	}
}

// countOwnTopics counts the messages on topics the spec published or
// under its private prefix.
func countOwnTopics(w *World, published []string, got []*packetgen.Publish) map[string]int {
	counts := map[string]int{}
	for _, p := range got {
		t := string(p.Topic)
		if contains(published, t) || isOwnTopic(w, t) {
			counts[t]++
		}
	}
	return counts
}

// isOwnTopic reports a topic under the spec's private prefix.
func isOwnTopic(w *World, t string) bool {
	root := w.Topic("")
	return t == root || strings.HasPrefix(t, root+"/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// short cuts long topics for messages (a 65,535-byte topic would drown
// the report).
func short(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s...(%d bytes)", s[:60], len(s))
	}
	return s
}

func quoteAll(list []string) string {
	if len(list) == 0 {
		return "nothing"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", short(s))
	}
	return strings.Join(q, ", ")
}

// formatAll formats PUBLISH packets for failure messages.
func formatAll(ps []*packetgen.Publish) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = packetgen.Format(p)
	}
	return out
}
