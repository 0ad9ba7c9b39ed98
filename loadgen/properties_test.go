package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// body encodes p as version v and returns its header and body.
func body(t testing.TB, p packetgen.Packet, v packetgen.Version) (packetgen.Header, []byte) {
	t.Helper()
	b, err := packetgen.Append(nil, p, v)
	if err != nil {
		t.Fatal(err)
	}
	return bodyOf(t, b, v)
}

func bodyOf(t testing.TB, b []byte, v packetgen.Version) (packetgen.Header, []byte) {
	t.Helper()
	d := packetgen.Decoder{Version: v, Side: packetgen.FromServer}
	h, err := d.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h, b[h.Size:h.PacketSize()]
}

// The fast reader of deliveries agrees with the codec: on thousands of
// valid PUBLISH packets from packetgen's generator, and on as many with a
// byte changed, whatever it takes the codec takes too, with the same
// fields; what it leaves, the codec decides.
func TestFastDeliveryAgreesWithCodec(t *testing.T) {
	g := packetgen.NewGen(1, packetgen.V5)
	taken, mutants := 0, 0
	for i := range 4000 {
		pub := g.Valid(packetgen.TypePublish).(*packetgen.Publish)
		wire, err := packetgen.Append(nil, pub, packetgen.V5)
		if err != nil {
			t.Fatal(err)
		}
		h, b := bodyOf(t, wire, packetgen.V5)
		if i%2 == 1 && len(b) > 0 { // a mutant: one byte of the body changed
			b = slices.Clone(b)
			b[g.Rand().IntN(len(b))] ^= byte(1 + g.Rand().IntN(255))
			mutants++
		}
		var d delivery
		want := pub.Properties.UserProperties
		if !fastDelivery(h.Flags, b, &d, want) {
			continue
		}
		taken++
		var p packetgen.Publish
		if err := p.DecodeBody(h.Flags, b, packetgen.V5, packetgen.FromServer); err != nil {
			t.Fatalf("the fast path took what the codec refuses (%v): % X", err, b)
		}
		pp := &p.Properties
		ok := d.qos == p.QoS && d.packetID == p.PacketID && bytes.Equal(d.payload, p.Payload) &&
			(d.pfi >= 0) == pp.Has(packetgen.PropPayloadFormatIndicator) && (d.pfi < 0 || byte(d.pfi) == pp.PayloadFormatIndicator) &&
			(d.expiry >= 0) == pp.Has(packetgen.PropMessageExpiryInterval) && (d.expiry < 0 || uint32(d.expiry) == pp.MessageExpiryInterval) &&
			d.hasType == pp.Has(packetgen.PropContentType) && string(d.contentType) == pp.ContentType &&
			slices.Equal(d.subIDs[:d.nSubIDs], pp.SubscriptionIdentifiers) &&
			d.userProps == slices.Equal(pp.UserProperties, want)
		if !ok {
			t.Fatalf("fast path read %+v; the codec %s", d, packetgen.Format(&p))
		}
	}
	if taken < 500 || mutants == 0 {
		t.Errorf("the fast path took %d packets: the test exercises too little", taken)
	}
}

// The generator's own deliveries, properties on, take the fast path.
func TestFastDeliveryTakesOwnMessages(t *testing.T) {
	sc := quick5(1, 1, 1, "bench/0")
	props := sc.publishProperties()
	pub := &packetgen.Publish{QoS: 1, PacketID: 7, Topic: []byte("bench/0"), Properties: props, Payload: make([]byte, 64)}
	pub.Properties.SubscriptionIdentifiers = []uint32{300}
	PutTextHeader(pub.Payload, Header{QoS: 1, Run: 9, Publisher: 3, Seq: 42, Due: 1})
	h, b := body(t, pub, packetgen.V5)
	var d delivery
	if !fastDelivery(h.Flags, b, &d, props.UserProperties) {
		t.Fatal("the fast path refused the generator's own message")
	}
	if !d.userProps || d.pfi != 1 || d.expiry != 60 || string(d.contentType) != sc.ContentType || d.nSubIDs != 1 || d.subIDs[0] != 300 {
		t.Errorf("read %+v", d)
	}
	if hd, ok := ParseHeader(d.payload); !ok || hd.Seq != 42 || hd.Publisher != 3 || hd.Run != 9 {
		t.Errorf("header %+v %v", hd, ok)
	}
}

func TestTextHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{QoS: 0, Run: 1, Publisher: 0, Seq: 0, Due: 0},
		{QoS: 2, Run: 0xFFFFFFFF, Publisher: 0xFFFFFFFF, Seq: 1<<64 - 1, Due: time.Now().UnixNano()},
	} {
		b := make([]byte, TextHeaderSize)
		PutTextHeader(b, h)
		if got, ok := ParseHeader(b); !ok || got != h {
			t.Errorf("%+v: read back %+v %v (%q)", h, got, ok, b)
		}
		for _, c := range b {
			if c < 0x21 || c > 0x7E {
				t.Errorf("%q is not printable ASCII", b)
			}
		}
	}
	bad := bytes.Repeat([]byte{'0'}, TextHeaderSize)
	copy(bad, "MBt1")
	bad[10] = 'G'
	if _, ok := ParseHeader(bad); ok {
		t.Error("a text header with a non-hex digit was read")
	}
}

// The hot path allocates nothing, as in 3.1.1: a publisher's PUBLISH
// (properties and topic alias on) with its acknowledgement, and a
// subscriber's delivery read, checked and acknowledged.
func TestHotPathAllocs(t *testing.T) {
	for _, v5 := range []bool{false, true} {
		for _, qos := range []packetgen.QoS{0, 1, 2} {
			name := fmt.Sprintf("v5=%v/qos%d", v5, qos)
			sc := quick(1, 1, qos, "bench/{p}")
			if v5 {
				sc = quick5(1, 1, qos, "bench/{p}")
			}
			a := &attack{sc: sc, v5: v5, props: sc.publishProperties(), runID: 9,
				enc: packetgen.Encoder{Version: sc.version(), Side: packetgen.FromClient},
				dec: packetgen.Decoder{Version: sc.version(), Side: packetgen.FromServer}}
			a.filler = make([]byte, sc.Payload)
			rec, err := NewRecorder(time.Now(), [numMetrics]io.Writer{})
			if err != nil {
				t.Fatal(err)
			}
			a.rec = rec
			a.buildClients()
			pubc, subc := a.clients[0], a.clients[1]
			pubc.ready = true
			pubc.connected(false, connLimits{receiveMax: 65535, aliasMax: 10, maxQoS: 2}, 0, &connState{})
			pubc.ready = true
			subc.sub.granted, subc.sub.subscribed = qos, true

			t.Run(name+"/publish", func(t *testing.T) {
				var pkt packetgen.Publish
				payload := slices.Clone(a.filler)
				n := testing.AllocsPerRun(500, func() {
					if r := pubc.publish(&pkt, payload, a.now()); r != sentOK {
						t.Fatalf("publish: %d", r)
					}
					if qos > 0 {
						id := pubc.pub.nextID
						t1 := packetgen.TypePuback
						if qos == 2 {
							t1 = packetgen.TypePubrec
						}
						if err := pubc.acked(t1, id, 0, a.now()); err != nil {
							t.Fatal(err)
						}
						if qos == 2 {
							if err := pubc.acked(packetgen.TypePubcomp, id, 0, a.now()); err != nil {
								t.Fatal(err)
							}
						}
					}
					pubc.wbuf = pubc.wbuf[:0]
				})
				if n != 0 {
					t.Errorf("%v allocations per PUBLISH", n)
				}
				if v5 && pubc.pub.aliasedSends == 0 {
					t.Error("no topic alias was used")
				}
			})

			t.Run(name+"/deliver", func(t *testing.T) {
				pub := &packetgen.Publish{QoS: qos, Topic: []byte(sc.PublisherTopic(0)), Properties: a.props, Payload: slices.Clone(a.filler)}
				if qos > 0 {
					pub.PacketID = 1
				}
				if v5 {
					pub.Properties.SubscriptionIdentifiers = []uint32{subc.sub.subID}
				}
				wire, err := packetgen.Append(nil, pub, sc.version())
				if err != nil {
					t.Fatal(err)
				}
				h, b := bodyOf(t, wire, sc.version())
				hdrAt := len(b) - len(pub.Payload)
				var seq uint64
				n := testing.AllocsPerRun(500, func() {
					hd := Header{QoS: qos, Run: a.runID, Publisher: 0, Seq: seq, Due: 1}
					if sc.PayloadFormat {
						PutTextHeader(b[hdrAt:], hd)
					} else {
						PutHeader(b[hdrAt:], hd)
					}
					seq++
					if err := subc.received(h, b, a.now()); err != nil {
						t.Fatal(err)
					}
					delete(subc.sub.qos2, 1)
					subc.wbuf = subc.wbuf[:0]
				})
				if n != 0 {
					t.Errorf("%v allocations per delivery", n)
				}
				if st := subc.sub.log.Streams[0]; st == nil || st.Received < 500 || subc.sub.log.Faults != [numFaults]uint64{} {
					t.Errorf("stream %+v, faults %v", st, subc.sub.log.Faults)
				}
			})
		}
	}
}

// Each fault a PUBLISH from a broker may carry is left to the codec: the
// fast path refuses it, and the codec refuses it too, naming the rule.
func TestFastDeliveryLeavesFaults(t *testing.T) {
	str := func(s string) []byte { return packetgen.AppendString(nil, s) }
	raw := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name  string
		topic string
		props []byte
	}{
		{"content type not UTF-8", "t", packetgen.AppendRawProperty(nil, 0x03, 0, 2, 0xC0, 0x80)},
		{"user property with U+0000", "t", packetgen.AppendRawProperty(nil, 0x26, raw(str("k"), []byte{0, 1, 0})...)},
		{"user property name surrogate", "t", packetgen.AppendRawProperty(nil, 0x26, raw([]byte{0, 3, 0xED, 0xA0, 0x80}, str("v"))...)},
		{"payload format 2", "t", packetgen.AppendRawProperty(nil, 0x01, 2)},
		{"payload format twice", "t", raw(packetgen.AppendRawProperty(nil, 0x01, 1), packetgen.AppendRawProperty(nil, 0x01, 1))},
		{"content type twice", "t", raw(packetgen.AppendRawProperty(nil, 0x03, str("a")...), packetgen.AppendRawProperty(nil, 0x03, str("a")...))},
		{"subscription identifier 0", "t", packetgen.AppendRawProperty(nil, 0x0B, 0)},
		{"subscription identifier not minimal", "t", packetgen.AppendRawProperty(nil, 0x0B, 0x81, 0x00)},
		{"expiry cut short", "t", packetgen.AppendRawProperty(nil, 0x02, 0, 0)},
		{"string overruns the properties", "t", packetgen.AppendRawProperty(nil, 0x03, 0, 9, 'a')},
		{"topic alias 0", "t", packetgen.AppendRawProperty(nil, 0x23, 0, 0)},
		{"unknown property", "t", packetgen.AppendRawProperty(nil, 0x7F, 0)},
		{"wildcard in the topic", "a/+", nil},
		{"empty topic without alias", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := raw(str(c.topic), []byte{0, 1}) // QoS 1, packet identifier 1
			b = append(packetgen.AppendVarint(b, uint32(len(c.props))), c.props...)
			b = append(b, "payload"...)
			flags := byte(1 << 1)
			var d delivery
			if fastDelivery(flags, b, &d, nil) {
				t.Fatalf("the fast path took % X", b)
			}
			var p packetgen.Publish
			if err := readDelivery(flags, b, &d, nil, &p); err == nil {
				t.Errorf("readDelivery took % X", b)
			}
		})
	}
}

// BenchmarkHotPath is the generator's own cost per message: a
// publisher's PUBLISH encoded and acknowledged, and a subscriber's
// delivery read, checked and acknowledged.
func BenchmarkHotPath(b *testing.B) {
	for _, v5 := range []bool{false, true} {
		sc := quick(1, 1, 1, "bench/{p}")
		name := "3.1.1"
		if v5 {
			sc, name = quick5(1, 1, 1, "bench/{p}"), "5.0-props"
		}
		a := &attack{sc: sc, v5: v5, props: sc.publishProperties(), runID: 9,
			enc: packetgen.Encoder{Version: sc.version(), Side: packetgen.FromClient},
			dec: packetgen.Decoder{Version: sc.version(), Side: packetgen.FromServer}}
		a.filler = make([]byte, sc.Payload)
		a.rec, _ = NewRecorder(time.Now(), [numMetrics]io.Writer{})
		a.buildClients()
		pubc, subc := a.clients[0], a.clients[1]
		pubc.connected(false, connLimits{receiveMax: 65535, aliasMax: 10, maxQoS: 2}, 0, &connState{})
		pubc.ready = true
		subc.sub.granted, subc.sub.subscribed = 1, true
		b.Run(name+"/publish", func(b *testing.B) {
			var pkt packetgen.Publish
			payload := slices.Clone(a.filler)
			b.ReportAllocs()
			for b.Loop() {
				pubc.publish(&pkt, payload, a.now())
				pubc.acked(packetgen.TypePuback, pubc.pub.nextID, 0, a.now()) //nolint:errcheck
				pubc.wbuf = pubc.wbuf[:0]
			}
		})
		b.Run(name+"/deliver", func(b *testing.B) {
			pub := &packetgen.Publish{QoS: 1, PacketID: 1, Topic: []byte(sc.PublisherTopic(0)), Properties: a.props, Payload: slices.Clone(a.filler)}
			if v5 {
				pub.Properties.SubscriptionIdentifiers = []uint32{subc.sub.subID}
			}
			wire, _ := packetgen.Append(nil, pub, sc.version())
			h, body := bodyOf(b, wire, sc.version())
			at := len(body) - len(pub.Payload)
			var seq uint64
			b.ReportAllocs()
			for b.Loop() {
				hd := Header{QoS: 1, Run: a.runID, Seq: seq, Due: 1}
				if sc.PayloadFormat {
					PutTextHeader(body[at:], hd)
				} else {
					PutHeader(body[at:], hd)
				}
				seq++
				subc.received(h, body, a.now()) //nolint:errcheck
				subc.wbuf = subc.wbuf[:0]
			}
		})
	}
}
