package packetgen_test

// Codec benchmarks: packetgen beside mochi-mqtt v2 and paho.golang, each on
// its fastest public path from an in-memory byte slice (decode) or into a
// reused buffer (encode). Sub-benchmarks are named .../packetgen,
// .../mochi and .../paho so benchstat can set them side by side:
//
//	go test -run '^$' -bench . -benchmem -count 10 ./packetgen/ > all.txt
//	for l in packetgen mochi paho; do grep "/$l-" all.txt | sed "s,/$l-,-," > $l.txt; done
//	benchstat mochi.txt packetgen.txt
//
// What one operation is, per library:
//
//   - packetgen decode: Decoder.DecodeInto into a reused packet. It checks
//     every rule (UTF-8 of the topic, no wildcards, packet identifier, QoS,
//     properties). Topic and Payload alias the input; Go strings (client
//     identifier, user name, topic filters, string properties) are copies.
//   - mochi decode: what mochi's broker does after reading the bytes:
//     FixedHeader.Decode, DecodeLength (through a reused bytes.Reader), the
//     type's XxxDecode and the XxxValidate the broker calls. It turns byte
//     fields into strings with an unsafe no-copy cast (topic, client id,
//     filters), so those alias the input too; 5.0 property blocks go
//     through a fresh bytes.Buffer. The broker itself also copies every body
//     once before decoding (clients.go ReadPacket); that copy is not timed.
//   - paho decode: packets.ReadPacket on a reused bytes.Reader, its only
//     public decoder for a whole packet. Per packet it allocates the
//     ControlPacket, the content struct, its Properties, a buffer for the
//     length bytes, a copy of the body, and copies of the topic and payload.
//   - packetgen encode: packetgen.Append(buf[:0], p, v) — validates, then
//     appends into the caller's buffer.
//   - mochi encode: Packet.XxxEncode into a reused bytes.Buffer. It builds
//     the body in pooled buffers, with a fresh small slice per string field.
//   - paho encode: Xxx.WriteTo into a reused bytes.Buffer (ControlPacket,
//     net.Buffers and a header buffer per call).
//
// paho.golang implements MQTT 5.0 only, so in the 3.1.1 rows it handles the
// 5.0 form of the same packet (an empty property block: one to three bytes
// more). b.SetBytes is the size of the bytes each library actually handles.

import (
	"bytes"
	"testing"

	ppackets "github.com/eclipse/paho.golang/packets"
	mpackets "github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttbench/mqttbench/packetgen"
)

type publishBench struct {
	name    string
	v       packetgen.Version
	qos     packetgen.QoS
	payload int
	props   bool // 5.0: Message Expiry Interval and Topic Alias
}

var publishBenches = []publishBench{
	{"v311-qos0-64B", packetgen.V311, 0, 64, false},
	{"v311-qos1-64B", packetgen.V311, 1, 64, false},
	{"v311-qos0-4KiB", packetgen.V311, 0, 4 << 10, false},
	{"v311-qos1-4KiB", packetgen.V311, 1, 4 << 10, false},
	{"v5-qos1-64B-props", packetgen.V5, 1, 64, true},
}

const benchTopic = "bench/sensors/device-0042/temperature"

func (c publishBench) packet() *packetgen.Publish {
	p := &packetgen.Publish{QoS: c.qos, Topic: []byte(benchTopic), Payload: bytes.Repeat([]byte{'x'}, c.payload)}
	if c.qos > 0 {
		p.PacketID = 4242
	}
	if c.props {
		p.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(60))
		p.Properties.Set(packetgen.PropTopicAlias, uint16(3))
	}
	return p
}

func (c publishBench) mochi() *mpackets.Packet {
	p := c.packet()
	pk := &mpackets.Packet{
		FixedHeader:     mpackets.FixedHeader{Type: mpackets.Publish, Qos: byte(p.QoS)},
		ProtocolVersion: byte(c.v),
		TopicName:       string(p.Topic),
		PacketID:        p.PacketID,
		Payload:         p.Payload,
	}
	if c.props {
		pk.Properties.MessageExpiryInterval = 60
		pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = 3, true
	}
	return pk
}

func (c publishBench) paho() *ppackets.Publish {
	p := c.packet()
	pp := &ppackets.Publish{QoS: byte(p.QoS), Topic: string(p.Topic), PacketID: p.PacketID, Payload: p.Payload,
		Properties: &ppackets.Properties{}}
	if c.props {
		expiry, alias := uint32(60), uint16(3)
		pp.Properties.MessageExpiry, pp.Properties.TopicAlias = &expiry, &alias
	}
	return pp
}

// mustEncode is packetgen's encoding of p as v; setup fails loudly.
func mustEncode(b *testing.B, p packetgen.Packet, v packetgen.Version) []byte {
	b.Helper()
	w, err := packetgen.Encode(p, v)
	if err != nil {
		b.Fatalf("packetgen.Encode: %v", err)
	}
	return w
}

// sameAs fails b unless got decodes (as v) to the packet want encodes: every
// library's output must be the same packet, or the comparison is void.
// Property order may differ between encoders, so packets are compared by
// packetgen.Format, which lists properties in identifier order.
func sameAs(b *testing.B, lib string, got, want []byte, v packetgen.Version) {
	b.Helper()
	g, _, err := packetgen.Decode(got, v)
	if err != nil {
		b.Fatalf("%s wrote % X: %v", lib, got, err)
	}
	w, _, _ := packetgen.Decode(want, v)
	if packetgen.Format(g) != packetgen.Format(w) {
		b.Fatalf("%s wrote a different packet:\n  %s\n  %s", lib, packetgen.Format(g), packetgen.Format(w))
	}
}

// ---- mochi decode path ----

// mochiReader is the reused reader DecodeLength reads the remaining length
// from, as the broker's bufio.Reader would be.
type mochiReader struct{ r bytes.Reader }

// header runs FixedHeader.Decode and DecodeLength and returns the body.
func (m *mochiReader) header(pk *mpackets.Packet, wire []byte, v packetgen.Version) ([]byte, error) {
	if err := pk.FixedHeader.Decode(wire[0]); err != nil {
		return nil, err
	}
	m.r.Reset(wire[1:])
	n, bu, err := mpackets.DecodeLength(&m.r)
	if err != nil {
		return nil, err
	}
	pk.FixedHeader.Remaining = n
	pk.ProtocolVersion = byte(v)
	return wire[1+bu : 1+bu+n], nil
}

func mochiCodeErr(c mpackets.Code) error {
	if c != mpackets.CodeSuccess {
		return c
	}
	return nil
}

// ---- PUBLISH ----

func BenchmarkDecodePublish(b *testing.B) {
	for _, c := range publishBenches {
		wire := mustEncode(b, c.packet(), c.v)
		pahoWire := mustEncode(b, c.packet(), packetgen.V5)
		b.Run(c.name, func(b *testing.B) {
			b.Run("packetgen", func(b *testing.B) {
				d := packetgen.Decoder{Version: c.v, Side: packetgen.FromClient}
				var pub packetgen.Publish
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := d.DecodeInto(wire, &pub); err != nil {
						b.Fatal(err)
					}
				}
				if string(pub.Topic) != benchTopic || len(pub.Payload) != c.payload {
					b.Fatalf("decoded %s", packetgen.Format(&pub))
				}
			})
			b.Run("mochi", func(b *testing.B) {
				var m mochiReader
				var pk mpackets.Packet
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					pk = mpackets.Packet{}
					body, err := m.header(&pk, wire, c.v)
					if err == nil {
						err = pk.PublishDecode(body)
					}
					if err == nil {
						err = mochiCodeErr(pk.PublishValidate(65535))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if pk.TopicName != benchTopic || len(pk.Payload) != c.payload {
					b.Fatalf("decoded topic %q, %d bytes", pk.TopicName, len(pk.Payload))
				}
			})
			b.Run("paho", func(b *testing.B) {
				var r bytes.Reader
				var cp *ppackets.ControlPacket
				b.SetBytes(int64(len(pahoWire)))
				b.ReportAllocs()
				for b.Loop() {
					r.Reset(pahoWire)
					var err error
					if cp, err = ppackets.ReadPacket(&r); err != nil {
						b.Fatal(err)
					}
				}
				if p := cp.Content.(*ppackets.Publish); p.Topic != benchTopic || len(p.Payload) != c.payload {
					b.Fatalf("decoded topic %q, %d bytes", p.Topic, len(p.Payload))
				}
			})
		})
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	for _, c := range publishBenches {
		pub := c.packet()
		wire := mustEncode(b, pub, c.v)
		pahoWire := mustEncode(b, pub, packetgen.V5)
		b.Run(c.name, func(b *testing.B) {
			b.Run("packetgen", func(b *testing.B) {
				buf := make([]byte, 0, len(wire))
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = packetgen.Append(buf[:0], pub, c.v); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "packetgen", buf, wire, c.v)
			})
			b.Run("mochi", func(b *testing.B) {
				pk := c.mochi()
				var buf bytes.Buffer
				buf.Grow(len(wire))
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := pk.PublishEncode(&buf); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "mochi", buf.Bytes(), wire, c.v)
			})
			b.Run("paho", func(b *testing.B) {
				pp := c.paho()
				var buf bytes.Buffer
				buf.Grow(len(pahoWire))
				b.SetBytes(int64(len(pahoWire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if _, err := pp.WriteTo(&buf); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "paho", buf.Bytes(), pahoWire, packetgen.V5)
			})
		})
	}
}

// ---- CONNECT ----

func benchConnect(v packetgen.Version) *packetgen.Connect {
	c := &packetgen.Connect{
		CleanStart: true, KeepAlive: 30, ClientID: "mqttbench-client-000042",
		Will:         &packetgen.Will{QoS: 1, Topic: "clients/000042/status", Payload: []byte("offline")},
		UsernameFlag: true, Username: "bench", PasswordFlag: true, Password: []byte("s3cret-s3cret"),
	}
	if v == packetgen.V5 {
		c.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(3600))
		c.Properties.Set(packetgen.PropReceiveMaximum, uint16(100))
	}
	return c
}

func mochiConnect(v packetgen.Version) *mpackets.Packet {
	c := benchConnect(v)
	pk := &mpackets.Packet{
		FixedHeader:     mpackets.FixedHeader{Type: mpackets.Connect},
		ProtocolVersion: byte(v),
		Connect: mpackets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: c.CleanStart, Keepalive: c.KeepAlive,
			ClientIdentifier: c.ClientID,
			WillFlag:         true, WillQos: byte(c.Will.QoS), WillTopic: c.Will.Topic, WillPayload: c.Will.Payload,
			UsernameFlag: true, Username: []byte(c.Username), PasswordFlag: true, Password: c.Password,
		},
	}
	if v == packetgen.V5 {
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 3600, true
		pk.Properties.ReceiveMaximum = 100
	}
	return pk
}

func pahoConnect(v packetgen.Version) *ppackets.Connect {
	c := benchConnect(v)
	pc := &ppackets.Connect{
		ProtocolName: "MQTT", ProtocolVersion: 5, CleanStart: c.CleanStart, KeepAlive: c.KeepAlive,
		ClientID: c.ClientID,
		WillFlag: true, WillQOS: byte(c.Will.QoS), WillTopic: c.Will.Topic, WillMessage: c.Will.Payload,
		UsernameFlag: true, Username: c.Username, PasswordFlag: true, Password: c.Password,
		Properties: &ppackets.Properties{}, WillProperties: &ppackets.Properties{},
	}
	if v == packetgen.V5 {
		se, rm := uint32(3600), uint16(100)
		pc.Properties.SessionExpiryInterval, pc.Properties.ReceiveMaximum = &se, &rm
	}
	return pc
}

var benchVersions = []struct {
	name string
	v    packetgen.Version
}{{"v311", packetgen.V311}, {"v5", packetgen.V5}}

func BenchmarkDecodeConnect(b *testing.B) {
	for _, bv := range benchVersions {
		v := bv.v
		wire := mustEncode(b, benchConnect(v), v)
		pahoWire := mustEncode(b, benchConnect(v), packetgen.V5)
		b.Run(bv.name, func(b *testing.B) {
			b.Run("packetgen", func(b *testing.B) {
				d := packetgen.Decoder{Version: v, Side: packetgen.FromClient}
				var conn packetgen.Connect
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					// DecodeInto does not clear a reused CONNECT: a stale
					// Will, flags and properties would survive (a 5.0
					// property then reads as a duplicate). Start from zero.
					conn = packetgen.Connect{}
					if _, err := d.DecodeInto(wire, &conn); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("mochi", func(b *testing.B) {
				var m mochiReader
				var pk mpackets.Packet
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					pk = mpackets.Packet{}
					body, err := m.header(&pk, wire, v)
					if err == nil {
						err = pk.ConnectDecode(body)
					}
					if err == nil {
						err = mochiCodeErr(pk.ConnectValidate())
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("paho", func(b *testing.B) {
				var r bytes.Reader
				b.SetBytes(int64(len(pahoWire)))
				b.ReportAllocs()
				for b.Loop() {
					r.Reset(pahoWire)
					if _, err := ppackets.ReadPacket(&r); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkEncodeConnect(b *testing.B) {
	for _, bv := range benchVersions {
		v := bv.v
		conn := benchConnect(v)
		wire := mustEncode(b, conn, v)
		pahoWire := mustEncode(b, conn, packetgen.V5)
		b.Run(bv.name, func(b *testing.B) {
			b.Run("packetgen", func(b *testing.B) {
				buf := make([]byte, 0, len(wire))
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = packetgen.Append(buf[:0], conn, v); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "packetgen", buf, wire, v)
			})
			b.Run("mochi", func(b *testing.B) {
				pk := mochiConnect(v)
				var buf bytes.Buffer
				buf.Grow(len(wire))
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := pk.ConnectEncode(&buf); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "mochi", buf.Bytes(), wire, v)
			})
			b.Run("paho", func(b *testing.B) {
				pc := pahoConnect(v)
				var buf bytes.Buffer
				buf.Grow(len(pahoWire))
				b.SetBytes(int64(len(pahoWire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if _, err := pc.WriteTo(&buf); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "paho", buf.Bytes(), pahoWire, packetgen.V5)
			})
		})
	}
}

// ---- SUBSCRIBE ----

func benchSubscribe(v packetgen.Version) *packetgen.Subscribe {
	s := &packetgen.Subscribe{PacketID: 10, Subscriptions: []packetgen.Subscription{
		{Filter: "bench/+/temperature", QoS: 1},
		{Filter: "bench/#", QoS: 0},
		{Filter: "$SYS/broker/load/#", QoS: 2},
	}}
	if v == packetgen.V5 {
		s.Subscriptions[0].NoLocal = true
		s.Subscriptions[1].RetainHandling = 1
		s.Properties.Set(packetgen.PropSubscriptionIdentifier, uint32(7))
	}
	return s
}

func mochiSubscribe(v packetgen.Version) *mpackets.Packet {
	s := benchSubscribe(v)
	pk := &mpackets.Packet{
		FixedHeader:     mpackets.FixedHeader{Type: mpackets.Subscribe, Qos: 1},
		ProtocolVersion: byte(v),
		PacketID:        s.PacketID,
	}
	for _, x := range s.Subscriptions {
		pk.Filters = append(pk.Filters, mpackets.Subscription{Filter: x.Filter, Qos: byte(x.QoS),
			NoLocal: x.NoLocal, RetainAsPublished: x.RetainAsPublished, RetainHandling: x.RetainHandling})
	}
	if v == packetgen.V5 {
		pk.Properties.SubscriptionIdentifier = []int{7}
	}
	return pk
}

func pahoSubscribe(v packetgen.Version) *ppackets.Subscribe {
	s := benchSubscribe(v)
	ps := &ppackets.Subscribe{PacketID: s.PacketID, Properties: &ppackets.Properties{}}
	for _, x := range s.Subscriptions {
		ps.Subscriptions = append(ps.Subscriptions, ppackets.SubOptions{Topic: x.Filter, QoS: byte(x.QoS),
			NoLocal: x.NoLocal, RetainAsPublished: x.RetainAsPublished, RetainHandling: x.RetainHandling})
	}
	if v == packetgen.V5 {
		id := 7
		ps.Properties.SubscriptionIdentifier = &id
	}
	return ps
}

func BenchmarkDecodeSubscribe(b *testing.B) {
	for _, bv := range benchVersions {
		v := bv.v
		wire := mustEncode(b, benchSubscribe(v), v)
		pahoWire := mustEncode(b, benchSubscribe(v), packetgen.V5)
		b.Run(bv.name, func(b *testing.B) {
			b.Run("packetgen", func(b *testing.B) {
				d := packetgen.Decoder{Version: v, Side: packetgen.FromClient}
				var sub packetgen.Subscribe
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					// DecodeInto appends to a reused Subscriptions slice and
					// keeps old properties, so reset it, keeping capacity.
					sub = packetgen.Subscribe{Subscriptions: sub.Subscriptions[:0]}
					if _, err := d.DecodeInto(wire, &sub); err != nil {
						b.Fatal(err)
					}
				}
				if len(sub.Subscriptions) != 3 {
					b.Fatalf("decoded %s", packetgen.Format(&sub))
				}
			})
			b.Run("mochi", func(b *testing.B) {
				var m mochiReader
				var pk mpackets.Packet
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					pk = mpackets.Packet{}
					body, err := m.header(&pk, wire, v)
					if err == nil {
						err = pk.SubscribeDecode(body)
					}
					if err == nil {
						err = mochiCodeErr(pk.SubscribeValidate())
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if len(pk.Filters) != 3 {
					b.Fatalf("decoded %d filters", len(pk.Filters))
				}
			})
			b.Run("paho", func(b *testing.B) {
				var r bytes.Reader
				b.SetBytes(int64(len(pahoWire)))
				b.ReportAllocs()
				for b.Loop() {
					r.Reset(pahoWire)
					if _, err := ppackets.ReadPacket(&r); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkEncodeSubscribe(b *testing.B) {
	for _, bv := range benchVersions {
		v := bv.v
		sub := benchSubscribe(v)
		wire := mustEncode(b, sub, v)
		pahoWire := mustEncode(b, sub, packetgen.V5)
		b.Run(bv.name, func(b *testing.B) {
			b.Run("packetgen", func(b *testing.B) {
				buf := make([]byte, 0, len(wire))
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = packetgen.Append(buf[:0], sub, v); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "packetgen", buf, wire, v)
			})
			b.Run("mochi", func(b *testing.B) {
				pk := mochiSubscribe(v)
				var buf bytes.Buffer
				buf.Grow(len(wire))
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := pk.SubscribeEncode(&buf); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "mochi", buf.Bytes(), wire, v)
			})
			b.Run("paho", func(b *testing.B) {
				ps := pahoSubscribe(v)
				var buf bytes.Buffer
				buf.Grow(len(pahoWire))
				b.SetBytes(int64(len(pahoWire)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if _, err := ps.WriteTo(&buf); err != nil {
						b.Fatal(err)
					}
				}
				sameAs(b, "paho", buf.Bytes(), pahoWire, packetgen.V5)
			})
		})
	}
}
