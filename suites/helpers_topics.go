package suites

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
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
// filters, or for the broker to close the connection (in 5.0 perhaps
// after a DISCONNECT saying why, §4.13.1). It fails on anything else, or
// on a SUBACK with another identifier or code count. Neither in time
// leaves the spec inconclusive: the SUBACK may still come, and with it a
// refusal (0x80) as well as a grant.
func subackOrClosed(c *Client, id uint16, n int) (codes []packetgen.ReasonCode, closed bool) {
	want := fmt.Sprintf("SUBACK id=%d or the connection closed", id)
	p, err := c.Recv(c.w.cfg.Timeout + c.w.cfg.Grace)
	switch {
	case errors.Is(err, wire.ErrClosed):
		return nil, true
	case err != nil:
		c.w.ifNoAnswer(err, want, c.Name)
		c.w.Failf("expected %s at %s; got %s", want, c.Name, describeErr(err))
	}
	if d, ok := p.(*packetgen.Disconnect); ok && c.w.is5() && d.ReasonCode.IsError() {
		c.closedAfter(d)
		return nil, true
	}
	ack, ok := p.(*packetgen.Suback)
	switch {
	case !ok:
		c.w.Failf("expected SUBACK id=%d with %d codes, or the connection closed, at %s; got %s",
			id, n, c.Name, packetgen.Format(p))
	case ack.PacketID != id:
		c.w.stepFailed(ruleSubackID, "expected SUBACK id=%d at %s; got %s", id, c.Name, packetgen.Format(p))
	case len(ack.ReasonCodes) != n:
		c.w.stepFailed(ruleSubackN, "expected SUBACK id=%d with %d codes at %s; got %s", id, n, c.Name, packetgen.Format(p))
	}
	return ack.ReasonCodes, false
}

// expectFilterRefused sends SUBSCRIBE for an invalid filter and requires
// the broker to refuse it: SUBACK 0x80, or closing the connection (both
// are allowed for a filter that breaks section 4.7).
func expectFilterRefused(c *Client, filter string, why string) {
	id := rawSubscribe(c, filter, 0)
	codes, closed := subackOrClosed(c, id, 1)
	if !closed && codes[0] != packetgen.SubackFailure && !(c.w.is5() && codes[0].IsError()) {
		c.w.Failf("expected SUBACK 0x80 (5.0: 0x80 or more) or the connection closed for the filter %q (%s); got SUBACK code 0x%02X",
			short(filter), why, byte(codes[0]))
	}
}

// subscribeTaking subscribes to one filter and returns the SUBACK code,
// with the PUBLISH packets (acknowledged) that came before the SUBACK: a
// server may start sending matching messages, retained ones for instance,
// before it acknowledges the SUBSCRIBE (section 3.8.4).
func subscribeTaking(c *Client, filter string, qos packetgen.QoS) (packetgen.ReasonCode, []*packetgen.Publish) {
	id := c.ID()
	since := time.Now()
	c.MustSend(&packetgen.Subscribe{PacketID: id, Subscriptions: []packetgen.Subscription{{Filter: filter, QoS: qos}}})
	want := fmt.Sprintf("SUBACK id=%d", id)
	var early []*packetgen.Publish
	for {
		var p packetgen.Packet
		if len(c.held) > 0 {
			p, c.held = c.held[0], c.held[1:]
		} else {
			p = c.recvAnswer("SUBACK", since, want)
		}
		if answerFlow(c, p) {
			continue
		}
		if pub, ok := p.(*packetgen.Publish); ok {
			early = append(early, pub)
			continue
		}
		ack, ok := p.(*packetgen.Suback)
		switch {
		case !ok && isAnswer(p):
			c.w.stepFailed(ruleSuback, "expected %s at %s; got %s", want, c.Name, packetgen.Format(p))
		case !ok:
			c.w.Failf("expected %s with one code at %s; got %s", want, c.Name, packetgen.Format(p))
		case ack.PacketID != id:
			c.w.stepFailed(ruleSubackID, "expected %s at %s; got %s", want, c.Name, packetgen.Format(p))
		case len(ack.ReasonCodes) != 1:
			c.w.stepFailed(ruleSubackN, "expected %s with one code at %s; got %s", want, c.Name, packetgen.Format(p))
		}
		c.w.answered("SUBACK", since)
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
// whose publisher has had every message acknowledged already. A client
// that acknowledged something waits one Quiet period more: the broker
// may have held messages, QoS 0 ones too, until then (§4.9).
func drainPublishes(w *World, clients ...*Client) [][]*packetgen.Publish {
	out, errs := drainPublishesErr(w, clients...)
	for i, err := range errs {
		if err != nil {
			w.Failf("expected PUBLISH packets at %s; got %s", clients[i].Name, err)
		}
	}
	return out
}

// drainPublishesErr is drainPublishes that goes on past a client whose
// connection ends or brings something else: what went wrong there is its
// error, and the other clients are still read.
func drainPublishesErr(w *World, clients ...*Client) ([][]*packetgen.Publish, []error) {
	time.Sleep(w.cfg.Quiet)
	out := make([][]*packetgen.Publish, len(clients))
	errs := make([]error, len(clients))
	for i, c := range clients {
		acked := false // since the last wait of a Quiet period
		for errs[i] == nil {
			wait := time.Millisecond
			if acked {
				wait = w.cfg.Quiet
			}
			p, err := c.Recv(wait)
			if errors.Is(err, wire.ErrTimeout) && acked {
				acked = false
				continue
			}
			if errors.Is(err, wire.ErrTimeout) {
				break
			}
			if err != nil {
				errs[i] = errors.New(describeErr(err))
				break
			}
			// PUBACK and PUBCOMP free a place in flight; so may PUBREC.
			switch p := p.(type) {
			case *packetgen.Publish:
				acked = acked || p.QoS > 0
			case *packetgen.Pubrel:
				acked = true
			}
			out[i], errs[i] = takePublish(c, p, out[i])
		}
	}
	return out, errs
}

// takePublish is one packet of a loop collecting PUBLISH packets: flow
// packets are answered, a PUBLISH is appended to got, anything else is the
// client's error.
func takePublish(c *Client, p packetgen.Packet, got []*packetgen.Publish) ([]*packetgen.Publish, error) {
	if answerFlow(c, p) {
		return got, nil
	}
	pub, ok := p.(*packetgen.Publish)
	if !ok {
		return got, fmt.Errorf("%s (only PUBLISH packets expected)", packetgen.Format(p))
	}
	return append(got, pub), nil
}

// collectPublishes reads PUBLISH packets from each client until it has
// want[i] of them, waiting up to the answer timeout in all: a slow broker,
// or one routing a topic of 30,000 levels, is not taken for one that drops
// messages (at QoS 0 nothing else tells when routing is done).
// drainPublishesErr then catches extra copies.
func collectPublishes(w *World, want []int, clients ...*Client) ([][]*packetgen.Publish, []error) {
	return collectPublishesWithin(w, w.cfg.Timeout, want, clients...)
}

// collectPublishesWithin is collectPublishes waiting up to wait in all.
func collectPublishesWithin(w *World, wait time.Duration, want []int, clients ...*Client) ([][]*packetgen.Publish, []error) {
	deadline := time.Now().Add(wait)
	out := make([][]*packetgen.Publish, len(clients))
	errs := make([]error, len(clients))
	for i, c := range clients {
		for len(out[i]) < want[i] {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			p, err := c.Recv(left)
			if errors.Is(err, wire.ErrTimeout) {
				break
			}
			if err != nil {
				errs[i] = errors.New(describeErr(err))
				break
			}
			if out[i], errs[i] = takePublish(c, p, out[i]); errs[i] != nil {
				break
			}
		}
	}
	return out, errs
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
// case lists, each once. Each message's payload names the topic it was
// published to, so a message is counted for that topic whatever name it
// arrives with, and a name that differs from the published one by a
// single byte breaks MQTT-4.7.3-4 (no normalisation, modification or
// substitution): a broker that maps '/' onto another protocol's separator
// and back would rewrite "a.b" as "a/b". Messages on topics the spec did
// not publish, outside its private prefix, are other clients' traffic
// reaching a wide filter and are ignored.
func checkMatching(w *World, topics []string, cases []matchCase) {
	checkMatchingWithin(w, w.cfg.Timeout, topics, cases)
}

// slowRouting is how many answer timeouts checkMatchingSlow waits for
// deliveries. mochi-mqtt v2.7.9 routed a topic of 32,000 levels in 8.5 s
// on an idle machine (it finds each level by scanning the name from its
// start again), correctly: the specification sets no time.
const slowRouting = 6

// checkMatchingSlow is checkMatching for topics a broker may take long
// to route: it waits slowRouting timeouts for the deliveries, and if
// none reached any subscriber by then the spec is inconclusive, since at
// QoS 0 a message still being routed and one dropped look alike. A
// delivery to some subscribers and not others still fails.
func checkMatchingSlow(w *World, topics []string, cases []matchCase) {
	checkMatchingWithin(w, slowRouting*w.cfg.Timeout, topics, cases)
}

// checkMatchingWithin is checkMatching waiting up to wait for the
// deliveries; past the answer timeout, a run where none came is
// inconclusive.
func checkMatchingWithin(w *World, wait time.Duration, topics []string, cases []matchCase) {
	subs := make([]*Client, len(cases))
	for i, mc := range cases {
		subs[i] = w.Connect(fmt.Sprintf("s%d", i))
		subs[i].Granted(mc.filter, 0)
	}
	pub := w.Connect("pub")
	for i, t := range topics {
		pub.Publish(t, matchPayload(w, i, t), publishQoS(w), false)
	}
	want := make([]int, len(cases))
	for i, mc := range cases {
		want[i] = len(mc.matches)
	}
	got, errs := collectPublishesWithin(w, wait, want, subs...)
	more, moreErrs := drainPublishesErr(w, subs...)
	if wait > w.cfg.Timeout && !slices.ContainsFunc(got, func(ps []*packetgen.Publish) bool { return len(ps) > 0 }) &&
		!slices.ContainsFunc(more, func(ps []*packetgen.Publish) bool { return len(ps) > 0 }) &&
		!slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		w.inconclusive("no subscriber got any of the %d messages within %s: still being routed, or dropped (at QoS 0 they look alike)",
			len(topics), wait)
	}
	for i := range got {
		got[i] = append(got[i], more[i]...)
		if errs[i] == nil {
			errs[i] = moreErrs[i]
		}
	}
	var problems, renamed []string
	for i, mc := range cases {
		counts := map[string]int{}
		for _, p := range got[i] {
			k, ok := matchIndex(w, p.Payload, len(topics))
			if !ok {
				if t := string(p.Topic); contains(topics, t) || isOwnTopic(w, t) {
					counts[t]++
				}
				continue
			}
			counts[topics[k]]++
			if string(p.Topic) != topics[k] {
				renamed = append(renamed, fmt.Sprintf("the message published to %q reached the filter %q as %q",
					short(topics[k]), short(mc.filter), short(string(p.Topic))))
			}
		}
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
		sort.Strings(wrong)
		if errs[i] != nil {
			wrong = append(wrong, "then "+errs[i].Error())
		}
		if len(wrong) > 0 {
			problems = append(problems, fmt.Sprintf("the filter %q to match exactly %s, each once; got %s",
				short(mc.filter), quoteAll(mc.matches), strings.Join(wrong, ", ")))
		}
	}
	// Every case in one message: one run shows all a broker gets wrong.
	rename := ""
	if len(renamed) > 0 {
		rename = "every message delivered with the topic name it was published to, byte for byte, but " + strings.Join(renamed, "; ")
		if w.checks(ruleNoRename) {
			problems, rename = append(problems, rename), ""
		}
	}
	if len(problems) > 0 {
		w.Failf("expected %s", strings.Join(problems, "; "))
	}
	if rename != "" {
		w.stepFailed(ruleNoRename, "expected %s", rename)
	}
}

// matchPayload is the payload of the i-th topic checkMatching publishes:
// the spec's prefix (no other spec's message can look the same) and i.
func matchPayload(w *World, i int, topic string) string {
	return fmt.Sprintf("%s #%d to %s", w.prefix, i, short(topic))
}

// matchIndex reads i back from a payload made by matchPayload.
func matchIndex(w *World, payload []byte, n int) (int, bool) {
	rest, ok := strings.CutPrefix(string(payload), w.prefix+" #")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, " ")
	i, err := strconv.Atoi(num)
	if !ok || err != nil || i < 0 || i >= n {
		return 0, false
	}
	return i, true
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
