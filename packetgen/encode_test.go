package packetgen_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

// TestAppendRefuses: the strict encoder writes nothing the strict decoder
// would refuse. Each packet breaks one rule; Append returns a *Violation
// naming that rule in the version's numbering, with the version's section,
// and leaves dst as it was.
func TestAppendRefuses(t *testing.T) {
	type ids struct{ v311, v5 string }
	sub := func(filter string) []packetgen.Subscription { return []packetgen.Subscription{{Filter: filter}} }
	withProp := func(p packetgen.Publish, key, value string) *packetgen.Publish {
		p.Properties.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: key, Value: value})
		return &p
	}
	cases := []struct {
		name    string
		side    packetgen.Side
		p       packetgen.Packet
		rule    ids
		section ids
		only5   bool
	}{
		{"PUBLISH QoS 3", packetgen.FromClient,
			&packetgen.Publish{QoS: 3, PacketID: 1, Topic: []byte("a")},
			ids{"MQTT-3.3.1-4", "MQTT-3.3.1-4"}, ids{"3.3.1.2", "3.3.1.2"}, false},
		{"PUBLISH QoS 1 with packet identifier 0 from a client", packetgen.FromClient,
			&packetgen.Publish{QoS: 1, Topic: []byte("a")},
			ids{"MQTT-2.3.1-1", "MQTT-2.2.1-3"}, ids{"2.3.1", "2.2.1"}, false},
		{"PUBLISH QoS 2 with packet identifier 0 from a server", packetgen.FromServer,
			&packetgen.Publish{QoS: 2, Topic: []byte("a")},
			ids{"MQTT-2.3.1-1", "MQTT-2.2.1-4"}, ids{"2.3.1", "2.2.1"}, false},
		{"PUBLISH QoS 0 with a packet identifier", packetgen.FromClient,
			&packetgen.Publish{PacketID: 7, Topic: []byte("a")},
			ids{"MQTT-2.3.1-5", "MQTT-2.2.1-2"}, ids{"2.3.1", "2.2.1"}, false},
		{"PUBLISH topic name with '+'", packetgen.FromClient,
			&packetgen.Publish{Topic: []byte("a/+")},
			ids{"MQTT-4.7.1-1", "MQTT-4.7.0-1"}, ids{"4.7", "4.7"}, false},
		{"PUBLISH topic name '#'", packetgen.FromClient,
			&packetgen.Publish{Topic: []byte("#")},
			ids{"MQTT-4.7.1-1", "MQTT-4.7.0-1"}, ids{"4.7", "4.7"}, false},
		{"PUBLISH topic name with ill-formed UTF-8", packetgen.FromClient,
			&packetgen.Publish{Topic: []byte("a\xff")},
			ids{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}, ids{"1.5.3", "1.5.4"}, false},
		{"PUBLISH topic name with '+' before ill-formed UTF-8", packetgen.FromClient,
			&packetgen.Publish{Topic: []byte("+\xff")},
			ids{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}, ids{"1.5.3", "1.5.4"}, false},
		{"PUBLISH topic name with U+0000", packetgen.FromClient,
			&packetgen.Publish{Topic: []byte("a\x00")},
			ids{"MQTT-1.5.3-2", "MQTT-1.5.4-2"}, ids{"1.5.3", "1.5.4"}, false},
		{"PUBLISH user property with an encoded surrogate", packetgen.FromClient,
			withProp(packetgen.Publish{Topic: []byte("a")}, "k", "\xed\xa0\x80"),
			ids{"", "MQTT-1.5.4-1"}, ids{"", "1.5.4"}, true},
		{"PUBLISH Response Topic with '#' before ill-formed UTF-8", packetgen.FromClient,
			func() packetgen.Packet {
				p := &packetgen.Publish{Topic: []byte("a")}
				p.Properties.Set(packetgen.PropResponseTopic, "#\xff")
				return p
			}(),
			ids{"", "MQTT-1.5.4-1"}, ids{"", "1.5.4"}, true},
		{"CONNECT client identifier with ill-formed UTF-8", packetgen.FromClient,
			&packetgen.Connect{CleanStart: true, ClientID: "\xc0\xaf"},
			ids{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}, ids{"1.5.3", "1.5.4"}, false},
		{"SUBSCRIBE without a filter", packetgen.FromClient,
			&packetgen.Subscribe{PacketID: 1},
			ids{"MQTT-3.8.3-3", "MQTT-3.8.3-2"}, ids{"3.8.3", "3.8.3"}, false},
		{"SUBSCRIBE with packet identifier 0", packetgen.FromClient,
			&packetgen.Subscribe{Subscriptions: sub("a")},
			ids{"MQTT-2.3.1-1", "MQTT-2.2.1-3"}, ids{"2.3.1", "2.2.1"}, false},
		{"SUBSCRIBE filter with ill-formed UTF-8", packetgen.FromClient,
			&packetgen.Subscribe{PacketID: 1, Subscriptions: sub("a/\xff")},
			ids{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}, ids{"1.5.3", "1.5.4"}, false},
		{"SUBSCRIBE filter with '#' not last", packetgen.FromClient,
			&packetgen.Subscribe{PacketID: 1, Subscriptions: sub("a/#/b")},
			ids{"MQTT-4.7.1-2", "MQTT-4.7.1-1"}, ids{"4.7", "4.7"}, false},
		{"SUBSCRIBE requesting QoS 3", packetgen.FromClient,
			&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a", QoS: 3}}},
			ids{"MQTT-3.8.3-4", "MQTT-4.13.1-1"}, ids{"3.8.3", "3.8.3.1"}, false},
		{"UNSUBSCRIBE without a filter", packetgen.FromClient,
			&packetgen.Unsubscribe{PacketID: 1},
			ids{"MQTT-3.10.3-2", "MQTT-3.10.3-2"}, ids{"3.10.3", "3.10.3"}, false},
		{"SUBACK from a client", packetgen.FromClient,
			&packetgen.Suback{PacketID: 1, ReasonCodes: []packetgen.ReasonCode{0}},
			ids{"MQTT-4.8.0-1", "MQTT-4.13.1-1"}, ids{"2.2.1", "2.1.2"}, false},
		{"CONNACK with session present and a refusal", packetgen.FromServer,
			&packetgen.Connack{SessionPresent: true, ReasonCode: 5},
			ids{"MQTT-3.2.2-4", ""}, ids{"3.2.2.2", ""}, false},
	}
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
		for _, c := range cases {
			rule, section := c.rule.v311, c.section.v311
			if v == packetgen.V5 {
				rule, section = c.rule.v5, c.section.v5
			}
			if rule == "" {
				continue // the case is for the other version only
			}
			t.Run(v.String()+"/"+c.name, func(t *testing.T) {
				dst := []byte{0xAA, 0xBB}
				out, err := packetgen.Encoder{Version: v, Side: c.side}.Append(dst, c.p)
				var vi *packetgen.Violation
				if !errors.As(err, &vi) {
					t.Fatalf("Append = % X, %v; want a *Violation of %s", out, err, rule)
				}
				if vi.Rule != rule || vi.Section != section {
					t.Errorf("violation %s §%s, want %s §%s (%v)", vi.Rule, vi.Section, rule, section, vi)
				}
				if vi.Packet != c.p.Type() || vi.Detail == "" {
					t.Errorf("violation names %s with detail %q", vi.Packet, vi.Detail)
				}
				if !bytes.Equal(out, dst) || len(out) != 2 {
					t.Errorf("Append wrote % X after refusing", out)
				}
			})
		}
	}
}

// TestAppendSessionPresentV5 completes the CONNACK case above in 5.0, where
// the section holding Session Present moved to 3.2.2.1.1.
func TestAppendSessionPresentV5(t *testing.T) {
	_, err := packetgen.Encoder{Version: packetgen.V5, Side: packetgen.FromServer}.Append(nil,
		&packetgen.Connack{SessionPresent: true, ReasonCode: packetgen.ReasonCode(0x87)})
	vi := packetgen.AsViolation(err)
	if vi == nil || vi.Rule != "MQTT-3.2.2-6" || vi.Section != "3.2.2.1.1" {
		t.Fatalf("Append = %v, want MQTT-3.2.2-6 §3.2.2.1.1", err)
	}
}

// TestPublishNoAllocs: encoding a PUBLISH into a buffer with room, and
// decoding one into a reused Publish, allocate nothing (the hot path of
// the load generator and the broker), in 3.1.1 and, for a PUBLISH without
// properties, in 5.0.
func TestPublishNoAllocs(t *testing.T) {
	// No skip under -race: the counts are 0 there too (checked with go
	// 1.26); should the race runtime ever allocate here, the failure says
	// so rather than being hidden.
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
		for _, qos := range []packetgen.QoS{0, 1} {
			pub := &packetgen.Publish{QoS: qos, Topic: []byte("mqttbench/sensors/0042/temperature"), Payload: bytes.Repeat([]byte{'x'}, 64)}
			if qos > 0 {
				pub.PacketID = 42
			}
			wire, err := packetgen.Append(nil, pub, v)
			if err != nil {
				t.Fatal(err)
			}
			name := v.String() + "/QoS" + string(rune('0'+qos))
			t.Run(name+"/encode", func(t *testing.T) {
				enc := packetgen.Encoder{Version: v, Side: packetgen.FromClient}
				buf := make([]byte, 0, len(wire))
				allocs := testing.AllocsPerRun(200, func() {
					buf, err = enc.Append(buf[:0], pub)
				})
				if err != nil || !bytes.Equal(buf, wire) {
					t.Fatalf("Append = % X, %v; want % X", buf, err, wire)
				}
				if allocs != 0 {
					t.Errorf("Append into a buffer with room allocates %v times per PUBLISH", allocs)
				}
			})
			t.Run(name+"/DecodeInto", func(t *testing.T) {
				d := packetgen.Decoder{Version: v, Side: packetgen.FromClient}
				var got packetgen.Publish
				var n int
				allocs := testing.AllocsPerRun(200, func() {
					n, err = d.DecodeInto(wire, &got)
				})
				if err != nil || n != len(wire) || packetgen.Format(&got) != packetgen.Format(pub) {
					t.Fatalf("DecodeInto = %d, %v: %s; want %s", n, err, packetgen.Format(&got), packetgen.Format(pub))
				}
				if allocs != 0 {
					t.Errorf("DecodeInto a reused Publish allocates %v times per PUBLISH", allocs)
				}
			})
		}
	}
}
