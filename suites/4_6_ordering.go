package suites

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

func init() {
	addSection("4.6", "Message ordering", func(s *S) {
		orderingResend(s)
		orderingAcks(s)
		orderingDelivery(s)
		orderingQueued(s)
	})
}

// orderingResend: PUBLISH packets sent again keep their order (4.6.0-1).
func orderingResend(s *S) {
	// Unacknowledged PUBLISH packets (QoS 1 and 2) are sent again in the
	// order they were first sent; the server follows this when delivering
	// to subscribers (MQTT-4.6.0-6's "rules listed above"). Order needs
	// two in flight at once: a broker that sends one at a time, as it
	// may (§4.9), leaves nothing to judge.
	s.Spec("MQTT-4.6.0-1", "sends unacknowledged PUBLISH packets again in their original order when the session resumes",
		Label("ordering", "qos1", "qos2", "session"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("resend")
			sub := w.Connect("sub", Persistent)
			g := pqGrantedAtLeast(sub, t, 1)
			pub := w.Connect("pub")
			qs := []packetgen.QoS{1, g, 1, g, 1, g}
			for i, q := range qs {
				pub.Publish(t, fmt.Sprintf("message %d", i), q, false)
			}
			var first []string
			sentFirst := map[string]bool{}
			for _, p := range pqNewInbox(sub).burst(len(qs)) {
				first = append(first, fmt.Sprintf("id=%d %q", p.PacketID, p.Payload))
				sentFirst[string(p.Payload)] = true
			}
			if len(first) < 2 {
				Skip("the broker sent one QoS 1 or 2 message and no more until it was acknowledged (a send quota of 1, which §4.9 allows): no order among unacknowledged messages to keep")
			}
			sub = pqResume(w, sub, "sub")
			in := pqNewInbox(sub)
			var again []string
			for len(again) < len(first) {
				p := in.recv(w.cfg.Timeout)
				if p == nil {
					w.Failf("expected the %d unacknowledged PUBLISH packets again at %s; got nothing in time after %v", len(first), sub.Name, again)
				}
				if sentFirst[string(p.Payload)] { // not one held back until these are acknowledged
					again = append(again, fmt.Sprintf("id=%d %q", p.PacketID, p.Payload))
				}
			}
			w.Expectf(slices.Equal(first, again), fmt.Sprintf("the unacknowledged PUBLISH packets sent again in their original order %v", first),
				"%v", again)
		})
}

// orderingAcks: acknowledgements keep the order of what they acknowledge
// (4.6.0-2 to 4.6.0-4). The rules are written for clients; the server
// follows them as receiver of a publisher's messages and as sender to its
// subscribers (4.6.0-6).
func orderingAcks(s *S) {
	// PUBACKs go out in the order their QoS 1 PUBLISH packets came in.
	s.Spec("MQTT-4.6.0-2", "sends PUBACKs in the order the QoS 1 PUBLISH packets arrived",
		Label("ordering", "qos1"), func(w *World) {
			pqNeedQoS(w, 1)
			pqAckOrder(w, 1)
		})

	// PUBRECs go out in the order their QoS 2 PUBLISH packets came in.
	s.Spec("MQTT-4.6.0-3", "sends PUBRECs in the order the QoS 2 PUBLISH packets arrived",
		Label("ordering", "qos2"), func(w *World) {
			pqNeedQoS(w, 2)
			pqAckOrder(w, 2)
		})

	// PUBRELs go out in the order their PUBRECs came in, whatever the
	// order of the PUBLISH packets. Order needs two flows in flight at
	// once: a broker that sends one at a time, as it may (§4.9), leaves
	// nothing to judge.
	s.Spec("MQTT-4.6.0-4", "sends PUBRELs in the order the PUBRECs arrived",
		Label("ordering", "qos2"), func(w *World) {
			pqNeedQoS(w, 2)
			t := w.Topic("rel")
			sub := w.Connect("sub")
			pqGrantedAtLeast(sub, t, 2)
			pub := w.Connect("pub")
			for i := range 4 {
				pub.Publish(t, fmt.Sprintf("message %d", i), 2, false)
			}
			in := pqNewInbox(sub)
			ps := in.burst(4)
			if len(ps) < 2 {
				Skip("the broker sent one QoS 2 message and no more until it was acknowledged (a send quota of 1, which §4.9 allows): no two PUBRECs outstanding to order")
			}
			var want []uint16
			for _, i := range pqShuffle(len(ps)) { // [2 0 3 1]
				sub.MustSend(&packetgen.Pubrec{PacketID: ps[i].PacketID})
				want = append(want, ps[i].PacketID)
			}
			var got []uint16
			for _, rel := range pqPubrels(sub, len(ps)) {
				got = append(got, rel.PacketID)
			}
			w.Expectf(slices.Equal(got, want), fmt.Sprintf("PUBREL ids in the order of the PUBRECs: %v", want), "%v", got)
			for _, id := range got {
				sub.MustSend(&packetgen.Pubcomp{PacketID: id})
			}
			in.each(in.ack) // the messages held back, if any
			sub.Ping()
		})
}

// pqAckOrder publishes 20 messages at qos without waiting and requires
// their PUBACKs (QoS 1) or PUBRECs (QoS 2) in the order sent.
func pqAckOrder(w *World, qos packetgen.QoS) {
	t := w.Topic("acks")
	c := w.Connect("pub")
	var sent []*packetgen.Publish
	var want []uint16
	for i := range 20 {
		p := pqStartPublish(c, t, fmt.Appendf(nil, "message %d", i), qos, false, false)
		sent = append(sent, p)
		want = append(want, p.PacketID)
	}
	pubacks, pubrecs := pqCompletePublishes(c, sent)
	got, what := pubacks, "PUBACK"
	if qos == 2 {
		got, what = pubrecs, "PUBREC"
	}
	w.Expectf(slices.Equal(got, want), fmt.Sprintf("%s ids in the order the PUBLISH packets were sent: %v", what, want), "%v", got)
}

// orderingDelivery: topics are ordered (4.6.0-5, 4.6.0-6).
func orderingDelivery(s *S) {
	// By default every topic is an Ordered Topic: each subscriber gets a
	// publisher's messages on it in the order they were published.
	s.Spec("MQTT-4.6.0-5", "treats a topic as ordered by default: every subscriber gets a publisher's messages in order",
		Label("ordering", "qos1", "wildcard"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("ordered")
			subs := []*Client{w.Connect("sub1"), w.Connect("subMax")}
			if g := subs[0].Granted(t, 1); g < 1 {
				w.Require(false, fmt.Sprintf("needs a QoS 1 subscription; %q was granted QoS %d", t, g))
			}
			pqGrantedAtLeast(subs[1], t, 1)
			if pqHasWildcards(w) {
				wild := w.Connect("wild")
				pqGrantedAtLeast(wild, w.Topic("#"), 1)
				subs = append(subs, wild)
			}
			pub := w.Connect("pub")
			const n = 30
			var sent []*packetgen.Publish
			for k := range n {
				sent = append(sent, pqStartPublish(pub, t, []byte(strconv.Itoa(k)), 1, false, false))
			}
			pqCompletePublishes(pub, sent)
			for _, sub := range subs {
				got := pqCollect(sub, n)
				var seq []int
				for _, p := range got {
					k, err := strconv.Atoi(string(p.Payload))
					w.Expectf(err == nil, "payloads holding the sequence number", "%s", packetgen.Format(p))
					if p.Dup && slices.Contains(seq, k) {
						continue // a permitted retransmission
					}
					seq = append(seq, k)
				}
				w.Expectf(slices.Equal(seq, pqSeq(n)), fmt.Sprintf("at %s the messages 0 to %d in the order published", sub.Name, n-1), "%v", seq)
			}
		})

	// The server sends each publisher's messages of one topic and QoS to
	// every subscriber in the order it received them; payload sizes (0
	// bytes to the profile's max_payload) and other publishers and QoS
	// levels in between change nothing.
	s.Spec("MQTT-4.6.0-6", "delivers each publisher's messages of a topic and QoS in the order received, whatever their sizes",
		Label("ordering", "qos1", "qos2"), func(w *World) {
			t := w.Topic("ordered")
			sub := w.Connect("sub")
			g := sub.Granted(t, pqMaxQoS(w))
			pubs := []*Client{w.Connect("pubA"), w.Connect("pubB")}
			const n = 10
			top := pqMaxQoS(w)
			emptyQoS := pqMinQoS(1, top) // the one empty message is publisher 0's message 3 at this QoS
			sent := make([][]*packetgen.Publish, len(pubs))
			for k := range n {
				for pi, pub := range pubs {
					for q := packetgen.QoS(0); q <= top; q++ {
						var payload []byte
						switch {
						case pi == 0 && q == emptyQoS && k == 3:
						case pi == 0 && k == 1:
							payload = pqStreamPayload(pi, q, k, w.Cfg().Profile.MaxPayload)
						default:
							payload = pqStreamPayload(pi, q, k, 0)
						}
						sent[pi] = append(sent[pi], pqStartPublish(pub, t, payload, q, false, false))
					}
				}
			}
			for pi, pub := range pubs {
				pqCompletePublishes(pub, sent[pi])
			}
			streams := map[[2]int][]int{}
			for _, p := range pqCollect(sub, -1) {
				pi, q, k := 0, int(emptyQoS), 3
				if len(p.Payload) > 0 {
					var ok bool
					pi, q, k, ok = pqParseStream(p.Payload)
					w.Expectf(ok, "payloads that name publisher, QoS and sequence number", "%s", packetgen.Format(p))
				}
				key := [2]int{pi, q}
				if p.Dup && slices.Contains(streams[key], k) {
					continue // a permitted retransmission
				}
				streams[key] = append(streams[key], k)
			}
			for pi := range pubs {
				for q := 0; q <= int(top); q++ {
					seq := streams[[2]int{pi, q}]
					if q == 0 {
						// QoS 0 may lose messages, never reorder them.
						ok := slices.IsSorted(seq) && !slices.ContainsFunc(seq, func(k int) bool { return k >= n }) && len(slices.Compact(slices.Clone(seq))) == len(seq)
						w.Expectf(ok, fmt.Sprintf("publisher %d's QoS 0 messages (of 0 to %d) in the order published", pi, n-1), "%v", seq)
						continue
					}
					w.Expectf(slices.Equal(seq, pqSeq(n)),
						fmt.Sprintf("publisher %d's QoS %d messages 0 to %d in the order published (granted QoS %d)", pi, q, n-1, g), "%v", seq)
				}
			}
		})
}

// orderingQueued: messages held for an offline session (4.6.0-6).
func orderingQueued(s *S) {
	// Messages queued for a client while it is offline go out in the
	// order the server received them when the session resumes.
	s.Spec("MQTT-4.6.0-6", "delivers the messages queued for an offline session in the order received",
		Label("ordering", "qos1", "qos2", "session"), func(w *World) {
			pqNeedQoS(w, 1)
			t := w.Topic("queued")
			sub := w.Connect("sub", Persistent)
			g := pqGrantedAtLeast(sub, t, 1)
			sub.Leave()
			pub := w.Connect("pub")
			const n = 10
			var sent []*packetgen.Publish
			for k := range n {
				for q := packetgen.QoS(1); q <= g; q++ {
					sent = append(sent, pqStartPublish(pub, t, pqStreamPayload(0, q, k, 0), q, false, false))
				}
			}
			pqCompletePublishes(pub, sent)
			back, ack := w.ConnectAck("sub", Persistent)
			w.Expectf(ack.ReasonCode == 0 && ack.SessionPresent, "CONNACK code 0 with session present 1 for the stored session",
				"%s", packetgen.Format(ack))
			streams := map[int][]int{}
			for _, p := range pqCollect(back, len(sent)) {
				_, q, k, ok := pqParseStream(p.Payload)
				w.Expectf(ok, "payloads that name QoS and sequence number", "%s", packetgen.Format(p))
				streams[q] = append(streams[q], k)
			}
			for q := 1; q <= int(g); q++ {
				w.Expectf(slices.Equal(streams[q], pqSeq(n)), fmt.Sprintf("the queued QoS %d messages 0 to %d in the order published", q, n-1),
					"%v", streams[q])
			}
		})
}

// pqSeq is 0, 1, ..., n-1.
func pqSeq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// pqStreamPayload names publisher pi, QoS q and sequence number k, padded
// to size bytes (when size is larger than the name).
func pqStreamPayload(pi int, q packetgen.QoS, k, size int) []byte {
	b := fmt.Appendf(nil, "%d/%d/%d;", pi, q, k)
	if size > len(b) {
		b = append(b, pqPatternPayload(size-len(b))...)
	}
	return b
}

// pqParseStream reads what pqStreamPayload wrote.
func pqParseStream(b []byte) (pi, q, k int, ok bool) {
	head, _, found := bytes.Cut(b, []byte(";"))
	if !found {
		return 0, 0, 0, false
	}
	parts := strings.Split(string(head), "/")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	var err [3]error
	pi, err[0] = strconv.Atoi(parts[0])
	q, err[1] = strconv.Atoi(parts[1])
	k, err[2] = strconv.Atoi(parts[2])
	return pi, q, k, err[0] == nil && err[1] == nil && err[2] == nil
}
