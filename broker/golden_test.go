package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/packettest"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/wire"
)

// TestGoldenTable sends every 3.1 and 3.1.1 case of the shared golden
// packet table (testdata/packets.json) that a client may send: as the
// first packet of a connection, and, for all but CONNECT, after a valid
// CONNECT. The table is read at run time, so cases added to it are
// covered without a change here. Each case runs on its own broker, which
// must afterwards serve a fresh client and leave no goroutine behind.
//
//   - A valid packet after CONNECT keeps the connection open and gets the
//     answer the specification owes it, and nothing else: PUBACK or PUBREC
//     with its identifier (MQTT-4.3.2-2, MQTT-4.3.3-2), SUBACK with its
//     identifier and one return code per filter (MQTT-3.8.4-1, -5),
//     UNSUBACK (MQTT-3.10.4-4), PINGRESP (MQTT-3.12.4-1), PUBCOMP for
//     PUBREL (MQTT-4.3.3-11). A PUBLISH reaches a subscriber to "#".
//     DISCONNECT ends the connection with nothing sent.
//   - A violation after CONNECT closes the connection with nothing sent
//     (§4.8), and a malformed PUBLISH reaches nobody. The exception is a
//     SUBSCRIBE or UNSUBSCRIBE whose only fault is a topic filter rule
//     (reason 0x8F in the table): 3.1.1 refuses that filter with SUBACK
//     0x80 (§3.9.3) and goes on; 3.1 has no refusal code and closes.
//   - Any packet but CONNECT as the first packet closes the connection
//     unanswered (MQTT-3.1.0-1). A valid CONNECT gets CONNACK 0 and a
//     second one closes (MQTT-3.1.0-2); an unsupported level gets CONNACK
//     1 and an unacceptable client identifier CONNACK 2, then a close
//     (MQTT-3.1.2-2, MQTT-3.1.3-9, MQTT-3.2.2-5); any other bad CONNECT
//     closes without CONNACK.
//   - An incomplete packet is waited for: no answer, no close.
func TestGoldenTable(t *testing.T) {
	cases, err := packettest.Load()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, gc := range cases {
		v := gc.Version()
		if (v != packetgen.V31 && v != packetgen.V311) || gc.Side == "server" {
			continue
		}
		n++
		t.Run(gc.Name, func(t *testing.T) {
			s := newServer(t, Options{ConnectTimeout: 300 * time.Millisecond})
			b := gc.Bytes()
			if len(b) > 0 && packetgen.Type(b[0]>>4) == packetgen.TypeConnect {
				goldenConnect(t, s, gc)
			} else {
				goldenFirstPacket(t, s, gc)
				goldenAfterConnect(t, s, gc)
			}
			fresh, _ := connect(t, s, "fresh", true)
			if before := syncPing(t, fresh); len(before) > 0 {
				t.Fatalf("a fresh client got %s", formatAll(before))
			}
		})
	}
	if n < 50 {
		t.Fatalf("only %d 3.x client cases in %s", n, packettest.Path)
	}
}

// goldenConnect judges a CONNECT case sent as the first packet, and sent
// again after a valid CONNECT (MQTT-3.1.0-2).
func goldenConnect(t *testing.T, s *Server, gc packettest.Case) {
	c := pipe(t, s, gc.Name)
	sendMaybeCut(t, c, gc.Bytes())
	switch {
	case gc.Valid():
		ack, err := wire.Expect[*packetgen.Connack](c, wait)
		if err != nil {
			t.Fatalf("%s: %v", gc.Packet, err)
		}
		if ack.ReasonCode != packetgen.ReasonCode(packetgen.ConnAccepted) || ack.SessionPresent {
			t.Fatalf("%s: got %s, want CONNACK 0 without session present", gc.Packet, packetgen.Format(ack))
		}
		if before := syncPing(t, c); len(before) > 0 {
			t.Fatalf("after CONNACK: %s", formatAll(before))
		}
		// MQTT-3.1.0-2: a second CONNECT is a violation.
		sendMaybeCut(t, c, gc.Bytes())
		expectClosedSilently(t, c, "a second CONNECT")
	case gc.Violation():
		var want packetgen.ConnectReturnCode
		switch {
		case gc.ReasonCode() == packetgen.UnsupportedProtocolVersion && gc.Rule == "MQTT-3.1.2-2":
			want = packetgen.ConnRefusedProtocolVersion
		case gc.ReasonCode() == packetgen.ClientIdentifierNotValid:
			want = packetgen.ConnRefusedIdentifierRejected
		}
		got, err := c.ExpectClosed(wait)
		if err != nil {
			t.Fatalf("%s: not closed: %v (got %s)", gc.Rule, err, formatAll(got))
		}
		switch {
		case want == 0 && len(got) > 0:
			t.Fatalf("%s: got %s, want a close without CONNACK", gc.Rule, formatAll(got))
		case want != 0 && (len(got) != 1 || got[0].Type() != packetgen.TypeConnack ||
			got[0].(*packetgen.Connack).ReasonCode != packetgen.ReasonCode(want)):
			t.Fatalf("%s: got %s, want CONNACK code %d then a close", gc.Rule, formatAll(got), want)
		}
		// After a valid CONNECT it is a second CONNECT as well as a bad
		// one: closed unanswered either way.
		second := pipe(t, s, gc.Name+" second")
		if _, err := second.Connect(&packetgen.Connect{ProtocolLevel: gc.Version(), ClientID: "golden", CleanStart: true}, wait); err != nil {
			t.Fatal(err)
		}
		sendMaybeCut(t, second, gc.Bytes())
		expectClosedSilently(t, second, gc.Rule+" after CONNECT")
	default: // incomplete: the connect timeout ends it
		expectNothing(t, c, 100*time.Millisecond)
		expectClosedSilently(t, c, "an incomplete CONNECT past the connect timeout")
	}
}

// goldenFirstPacket sends a packet other than CONNECT, valid or not, as
// the first packet: the connection is closed unanswered (MQTT-3.1.0-1), an
// incomplete one once the connect timeout has passed.
func goldenFirstPacket(t *testing.T, s *Server, gc packettest.Case) {
	c := pipe(t, s, gc.Name+" first")
	if b := gc.Bytes(); len(b) > 0 {
		sendMaybeCut(t, c, b)
	}
	expectClosedSilently(t, c, "a first packet that is not CONNECT")
}

// goldenAfterConnect sends the case after a valid CONNECT of its version,
// with a subscriber to "#" watching what gets published.
func goldenAfterConnect(t *testing.T, s *Server, gc packettest.Case) {
	watch, _ := connect(t, s, "watch", true)
	subscribe(t, watch, "#", 0)
	c := pipe(t, s, gc.Name)
	if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: gc.Version(), ClientID: "golden", CleanStart: true}, wait); err != nil {
		t.Fatal(err)
	}
	b := gc.Bytes()
	if len(b) > 0 {
		sendMaybeCut(t, c, b)
	}
	if gc.Waiting() {
		// The broker waits for the rest: nothing comes back and the
		// connection stays open (expectNothing fails on a close).
		expectNothing(t, c, 100*time.Millisecond)
		return
	}
	d := gc.Decoder()
	p, _, decErr := d.Decode(b)
	if gc.Violation() {
		sub, isSub := p.(*packetgen.Subscribe)
		unsub, isUnsub := p.(*packetgen.Unsubscribe)
		refusable := gc.ReasonCode() == packetgen.TopicFilterInvalid && (isSub || isUnsub)
		if !refusable || gc.Version() == packetgen.V31 {
			expectClosedSilently(t, c, gc.Rule)
			if got := syncPing(t, watch); len(got) > 0 {
				t.Fatalf("%s: a subscriber got %s from a connection that broke %s", gc.Name, formatAll(got), gc.Rule)
			}
			return
		}
		// 3.1.1: the bad filter is refused, the connection goes on.
		var want packetgen.Packet
		if isSub {
			want = &packetgen.Suback{PacketID: sub.PacketID, ReasonCodes: grantedCodes(sub)}
		} else {
			want = &packetgen.Unsuback{PacketID: unsub.PacketID}
		}
		expectAnswer(t, c, gc, want)
		return
	}
	if decErr != nil {
		t.Fatalf("the table says %q is valid, the codec says %v", gc.Hex, decErr)
	}
	var want packetgen.Packet
	switch p := p.(type) {
	case *packetgen.Publish:
		switch p.QoS {
		case 1:
			want = &packetgen.Puback{PacketID: p.PacketID}
		case 2:
			want = &packetgen.Pubrec{PacketID: p.PacketID}
		}
		// Once c has its answer the broker has routed the message.
		expectAnswer(t, c, gc, want)
		got := syncPing(t, watch)
		if bytes.HasPrefix(p.Topic, []byte("$")) { // '#' does not match it (MQTT-4.7.2-1)
			if len(got) > 0 {
				t.Fatalf("'#' matched %q: %s", p.Topic, formatAll(got))
			}
			break
		}
		if len(got) != 1 {
			t.Fatalf("a subscriber to '#' got %s, want the one PUBLISH", formatAll(got))
		}
		dp, ok := got[0].(*packetgen.Publish)
		if !ok || !bytes.Equal(dp.Topic, p.Topic) || !bytes.Equal(dp.Payload, p.Payload) || dp.QoS != 0 || dp.Retain {
			t.Fatalf("a subscriber to '#' at QoS 0 got %s for %s", packetgen.Format(got[0]), packetgen.Format(p))
		}
		return
	case *packetgen.Subscribe:
		want = &packetgen.Suback{PacketID: p.PacketID, ReasonCodes: grantedCodes(p)}
	case *packetgen.Unsubscribe:
		want = &packetgen.Unsuback{PacketID: p.PacketID}
	case *packetgen.Pingreq:
		want = &packetgen.Pingresp{}
	case *packetgen.Pubrel:
		// Owed whether or not the identifier is known (MQTT-4.3.3-11).
		want = &packetgen.Pubcomp{PacketID: p.PacketID}
	case *packetgen.Pubrec:
		// Loosely judged: this fresh session sent nothing, so the
		// identifier is unknown to it. The broker may answer PUBREL to
		// let the client finish its side (it does), or nothing; a PUBREL
		// must carry the same identifier.
		got := syncPing(t, c)
		if len(got) > 1 || len(got) == 1 && packetgen.Format(got[0]) != packetgen.Format(&packetgen.Pubrel{PacketID: p.PacketID}) {
			t.Fatalf("%s: got %s, want nothing or PUBREL id=%d", gc.Packet, formatAll(got), p.PacketID)
		}
		return
	case *packetgen.Disconnect:
		expectClosedSilently(t, c, "DISCONNECT")
		return
	case *packetgen.Connect:
		t.Fatal("CONNECT cases are judged by goldenConnect")
	}
	// PUBACK and PUBCOMP of an identifier this fresh session never used
	// release nothing and are owed nothing: want stays nil.
	expectAnswer(t, c, gc, want)
}

// expectAnswer checks that c gets want (nil: nothing) and no more before
// the PINGRESP to a PINGREQ sent after it: the answer, and an open
// connection.
func expectAnswer(t *testing.T, c *wire.Conn, gc packettest.Case, want packetgen.Packet) {
	t.Helper()
	if want != nil {
		// Received first, so that a PINGRESP owed to the case is not
		// taken for the one syncPing waits for.
		got, err := c.Recv(wait)
		if err != nil {
			t.Fatalf("%s %s: want %s: %v", gc.Name, gc.Hex, packetgen.Format(want), err)
		}
		if packetgen.Format(got) != packetgen.Format(want) {
			t.Fatalf("%s %s: got %s, want %s", gc.Name, gc.Hex, packetgen.Format(got), packetgen.Format(want))
		}
	}
	if got := syncPing(t, c); len(got) > 0 {
		t.Fatalf("%s %s: got %s more", gc.Name, gc.Hex, formatAll(got))
	}
}

// grantedCodes is the SUBACK a broker with the default options owes p:
// the requested QoS for each valid filter, 0x80 for an invalid one.
func grantedCodes(p *packetgen.Subscribe) []packetgen.ReasonCode {
	codes := make([]packetgen.ReasonCode, len(p.Subscriptions))
	for i, s := range p.Subscriptions {
		codes[i] = packetgen.ReasonCode(s.QoS)
		if topic.ValidateFilter(s.Filter, false) != nil {
			codes[i] = packetgen.SubackFailure
		}
	}
	return codes
}

// syncPing sends PINGREQ and returns what arrived before its PINGRESP. The
// broker answers in order, so everything it queued for c before reading
// the PINGREQ is in the result.
func syncPing(t *testing.T, c *wire.Conn) []packetgen.Packet {
	t.Helper()
	must(t, c.Send(&packetgen.Pingreq{}))
	var got []packetgen.Packet
	for {
		p, err := c.Recv(wait)
		if err != nil {
			t.Fatalf("%s: waiting for PINGRESP (after %s): %v", c.Name, formatAll(got), err)
		}
		if p.Type() == packetgen.TypePingresp {
			return got
		}
		got = append(got, p)
	}
}

// sendMaybeCut writes b; the broker may close the connection before it has
// read all of it, which is no failure here (the close is judged next).
func sendMaybeCut(t *testing.T, c *wire.Conn, b []byte) {
	t.Helper()
	if err := c.SendRaw(b, fmt.Sprintf("% X", b)); err != nil {
		t.Logf("writing % X: %v", b, err)
	}
}

// expectClosedSilently waits for the broker to close c without sending
// anything first.
func expectClosedSilently(t *testing.T, c *wire.Conn, why string) {
	t.Helper()
	got, err := c.ExpectClosed(wait)
	if err != nil || len(got) > 0 {
		t.Fatalf("%s: want a close with nothing sent, got %s (%v)", why, formatAll(got), err)
	}
}

func formatAll(ps []packetgen.Packet) string {
	if len(ps) == 0 {
		return "nothing"
	}
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(packetgen.Format(p))
	}
	return b.String()
}
