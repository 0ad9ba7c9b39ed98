package suites

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// Section 6 binds MQTT over WebSocket. Its specs exist only when the run
// reaches the broker over ws:// or wss://: they open the WebSocket
// themselves, to send a text frame, to choose where frames begin and end,
// and to read the subprotocol the server chose. Over other transports the
// statements are not testable, for the reason notTestableUnlessWebSocket
// records (coverage.go).

func init() {
	addSection("6", "MQTT over WebSocket", websocketSpecs)
	addSection5("6", "MQTT over WebSocket", websocketSpecs)
	const notWS = "applies only to MQTT over WebSocket; testable with a ws:// or wss:// broker URL"
	for _, id := range []string{"MQTT-6.0.0-1", "MQTT-6.0.0-2", "MQTT-6.0.0-4"} {
		notTestableUnlessWebSocket(packetgen.V311, id, notWS)
		notTestableUnlessWebSocket(packetgen.V5, id, notWS)
	}
	// The client's offer: the suite makes it, the broker cannot be judged by it.
	const client = "binds only the client (which subprotocols it offers)"
	notTestable("MQTT-6.0.0-3", client)
	notTestable5("MQTT-6.0.0-3", client)
}

func websocketSpecs(s *S) {
	if s.cite == nil && !s.cfg.overWebSocket() {
		return // not testable on this run (see init)
	}
	label := Label("websocket")

	// MQTT control packets travel in binary data frames; a recipient that
	// receives any other type of data frame closes the connection.
	s.Spec("MQTT-6.0.0-1", "closes the connection when an MQTT packet comes in a text frame", label, func(w *World) {
		c, f := w.dialFrames("text")
		wsConnect(c, "text")
		c.Ping() // answered in binary frames: the connection works
		f.text.Store(true)
		ping, _ := packetgen.Encoder{Version: w.cfg.Version, Side: packetgen.FromClient}.Append(nil, &packetgen.Pingreq{})
		c.MustSendRaw(ping, "PINGREQ in a text frame")
		c.ExpectClosed("a PINGREQ in a text frame (only binary frames carry MQTT)")
	})

	// The receiver does not assume packets are aligned on frame
	// boundaries: a packet may span frames, a frame may hold several
	// packets, and one may end and the next begin in the same frame.
	s.Spec("MQTT-6.0.0-2", "reads MQTT packets split across WebSocket frames and several packets in one frame", label, func(w *World) {
		c, _ := w.dialFrames("frames")
		enc := packetgen.Encoder{Version: w.cfg.Version, Side: packetgen.FromClient}
		bytesOf := func(p packetgen.Packet) []byte {
			b, err := enc.Append(nil, p)
			if err != nil {
				w.Failf("encoding %s: %v", packetgen.Format(p), err)
			}
			return b
		}
		// CONNECT in four frames: packet type, remaining length, part of
		// the protocol name, the rest (the password, if any, whole in one
		// frame, so that the trace can withhold it).
		cp := w.ConnectPacket("frames")
		b := bytesOf(cp)
		for i, part := range splitAt(b, 1, 2, 5) {
			c.MustSendRaw(part, fmt.Sprintf("CONNECT, frame %d of 4", i+1))
		}
		wsExpect[*packetgen.Connack](c, "CONNACK to a CONNECT sent in four frames")

		// SUBSCRIBE one byte per frame.
		t := w.Topic("frames")
		sub := bytesOf(&packetgen.Subscribe{PacketID: c.ID(), Subscriptions: []packetgen.Subscription{{Filter: t, QoS: 1}}})
		for i := range sub {
			c.MustSendRaw(sub[i:i+1], fmt.Sprintf("SUBSCRIBE, byte %d of %d in a frame of its own", i+1, len(sub)))
		}
		ack := wsExpect[*packetgen.Suback](c, "SUBACK to a SUBSCRIBE sent one byte per frame")
		if len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] > 2 {
			w.inconclusive("the broker refused the subscription to %s the spec needs: %s", t, packetgen.Format(ack))
		}

		// A PUBLISH and a PINGREQ in one frame.
		one := &packetgen.Publish{Topic: []byte(t), QoS: 1, PacketID: c.ID(), Payload: []byte("in one frame")}
		c.MustSendRaw(append(bytesOf(one), bytesOf(&packetgen.Pingreq{})...), "PUBLISH qos=1 and PINGREQ in one frame")
		wsExpectAll(c, one, "a PUBLISH and a PINGREQ sent in one frame")

		// A PUBLISH of two-byte remaining length split inside its length,
		// then inside its payload, its last frame carrying the first byte
		// of a PINGREQ whose second byte comes alone.
		two := &packetgen.Publish{Topic: []byte(t), QoS: 1, PacketID: c.ID(), Payload: []byte(strings.Repeat("split ", 50))}
		pb, ping := bytesOf(two), bytesOf(&packetgen.Pingreq{})
		parts := splitAt(pb, 2, 150)
		parts[2] = append(parts[2], ping[0])
		parts = append(parts, ping[1:])
		for i, part := range parts {
			c.MustSendRaw(part, fmt.Sprintf("PUBLISH (%d bytes) and PINGREQ across frames, frame %d of %d", len(pb), i+1, len(parts)))
		}
		wsExpectAll(c, two, "a PUBLISH split across three frames, and a PINGREQ split across two")
	})

	// The server answers the handshake with the subprotocol mqtt, among
	// whatever else the client offers.
	s.Spec("MQTT-6.0.0-4", "answers the WebSocket handshake with the mqtt subprotocol", label, func(w *World) {
		for _, offer := range [][]string{{"mqtt"}, {"x-mqttbench-unknown", "mqtt"}} {
			got, err := w.dialRawWebSocket(offer...)
			if err != nil {
				w.Failf("expected the WebSocket handshake offering %s to succeed with subprotocol mqtt; got %v", strings.Join(offer, ", "), err)
			}
			w.Expectf(got == "mqtt", fmt.Sprintf("Sec-WebSocket-Protocol: mqtt in the answer to a handshake offering %s", strings.Join(offer, ", ")),
				"%q", got)
		}
	})
}

// splitAt cuts b before each offset.
func splitAt(b []byte, offsets ...int) [][]byte {
	var out [][]byte
	last := 0
	for _, o := range offsets {
		out = append(out, b[last:o])
		last = o
	}
	return append(out, b[last:])
}

// wsConnect sends the world's CONNECT in one frame and requires it
// accepted.
func wsConnect(c *Client, name string) {
	c.MustSend(c.w.ConnectPacket(name))
	ack := expectAnswer[*packetgen.Connack](c, c.lastSent, ruleConnack, "CONNACK")
	expectAccepted(c, ack)
}

// wsExpect waits for the answer of type T to packets sent across frames.
// Nothing in time is the finding here: the broker is waiting for a packet
// it already has, in pieces.
func wsExpect[T packetgen.Packet](c *Client, expected string) T {
	p, err := c.Recv(c.w.cfg.Timeout)
	if err != nil {
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, describeErr(err))
	}
	t, ok := p.(T)
	if !ok {
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, packetgen.Format(p))
	}
	if ack, ok := any(t).(*packetgen.Connack); ok {
		expectAccepted(c, ack)
	}
	return t
}

// wsExpectAll waits for everything a QoS 1 PUBLISH to the client's own
// subscription and a PINGREQ are owed: PUBACK, the message, PINGRESP.
func wsExpectAll(c *Client, pub *packetgen.Publish, what string) {
	var puback, delivered, pingresp bool
	for !(puback && delivered && pingresp) {
		p, err := c.Recv(c.w.cfg.Timeout)
		if err != nil {
			var missing []string
			for _, m := range []struct {
				name string
				got  bool
			}{{"PUBACK", puback}, {"the message", delivered}, {"PINGRESP", pingresp}} {
				if !m.got {
					missing = append(missing, m.name)
				}
			}
			c.w.Failf("expected PUBACK, the message and PINGRESP for %s at %s; missing %s: %s",
				what, c.Name, strings.Join(missing, ", "), describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Puback:
			c.w.Expectf(p.PacketID == pub.PacketID, fmt.Sprintf("PUBACK id=%d", pub.PacketID), "%s", packetgen.Format(p))
			puback = true
		case *packetgen.Publish:
			c.w.Expectf(string(p.Payload) == string(pub.Payload), fmt.Sprintf("the message %q", short(string(pub.Payload))),
				"%s", packetgen.Format(p))
			c.Ack(p)
			delivered = true
		case *packetgen.Pingresp:
			pingresp = true
		default:
			c.w.Failf("expected PUBACK, the message and PINGRESP for %s at %s; got %s", what, c.Name, packetgen.Format(p))
		}
	}
}
