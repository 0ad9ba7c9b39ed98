package packetgen_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFrame exercises each way a Frame lies: the exact bytes it writes, and
// what the strict decoder makes of them, the statement and section in each
// version's numbering. PUBACK 0x0102 and PINGREQ are the same bytes in
// 3.1.1 and 5.0, so one frame serves both versions.
func TestFrame(t *testing.T) {
	puback := packetgen.FrameOf(&packetgen.Puback{PacketID: 0x0102}, packetgen.V311)
	pingreq := packetgen.FrameOf(&packetgen.Pingreq{}, packetgen.V311)
	type want struct{ rule, section string } // zero: decodes, or waits
	cases := []struct {
		name       string
		f          packetgen.Frame
		hex        string
		max        int  // the decoder's MaxPacketSize
		waits      bool // the decoder needs more bytes: a peer waits, no rule is broken yet
		only311    bool // the bytes mean something else in 5.0
		v311, v5   want
		v311Decode string // Format of the packet 3.1.1 accepts, when it does
	}{
		{name: "FrameOf tells the truth", f: puback, hex: "40 02 01 02",
			v311Decode: "PUBACK id=258"},
		{name: "WithLength shorter than the body", f: puback.WithLength(1), hex: "40 01 01 02",
			// The packet ends after one byte of the identifier.
			v311: want{"MQTT-4.8.0-1", "2.2.3"}, v5: want{"MQTT-4.13.1-1", "2.1.4"}},
		{name: "WithLength longer than the body", f: puback.WithLength(3), hex: "40 03 01 02", waits: true},
		{name: "WithLength past a receiver's limit", f: puback.WithLength(packetgen.MaxRemainingLength), hex: "40 FF FF FF 7F 01 02", max: 1 << 20,
			v311: want{"MQTT-4.8.0-1", "2.2.3"}, v5: want{"MQTT-3.2.2-15", "3.2.2.3.6"}},
		{name: "WithLengthBytes 2 pads the length", f: puback.WithLengthBytes(2), hex: "40 82 00 01 02",
			// 3.1.1 does not require the minimal encoding; 5.0 does.
			v5: want{"MQTT-1.5.5-1", "1.5.5"}, v311Decode: "PUBACK id=258"},
		{name: "WithLengthBytes 5 is over-long", f: puback.WithLengthBytes(5), hex: "40 82 80 80 80 00 01 02",
			v311: want{"MQTT-4.8.0-1", "2.2.3"}, v5: want{"MQTT-4.13.1-1", "1.5.5"}},
		{name: "WithFlags sets reserved bits", f: puback.WithFlags(0x2), hex: "42 02 01 02",
			v311: want{"MQTT-2.2.2-2", "2.2.2"}, v5: want{"MQTT-2.1.3-1", "2.1.3"}},
		{name: "WithType keeps flags PUBREL may not have", f: puback.WithType(packetgen.TypePubrel), hex: "60 02 01 02",
			v311: want{"MQTT-3.6.1-1", "2.2.2"}, v5: want{"MQTT-3.6.1-1", "2.1.3"}},
		{name: "WithType 0 is reserved", f: puback.WithType(packetgen.TypeReserved), hex: "00 02 01 02",
			v311: want{"MQTT-4.8.0-1", "2.2.1"}, v5: want{"MQTT-4.13.1-1", "2.1.2"}},
		{name: "WithType makes a server's packet", f: puback.WithType(packetgen.TypeUnsuback), hex: "B0 02 01 02",
			v311: want{"MQTT-4.8.0-1", "2.2.1"}, v5: want{"MQTT-4.13.1-1", "2.1.2"}},
		{name: "Truncated keeps the declared length", f: puback.Truncated(1), hex: "40 02 01", waits: true},
		{name: "Cut makes the length tell the truth", f: puback.Cut(1), hex: "40 01 01",
			v311: want{"MQTT-4.8.0-1", "2.2.3"}, v5: want{"MQTT-4.13.1-1", "2.1.4"}},
		{name: "WithTrailing counts the extra bytes", f: pingreq.WithTrailing(0xEE, 0xFF), hex: "C0 02 EE FF",
			v311: want{"MQTT-4.8.0-1", "2.2.3"}, v5: want{"MQTT-4.13.1-1", "2.1.4"}},
		{name: "Patch makes a string length lie",
			f:   packetgen.FrameOf(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a"}}}, packetgen.V311).Patch(2, 0x00, 0x09),
			hex: "82 06 00 01 00 09 61 00",
			// 3.1.1 only: the 5.0 body has a property length at offset 2.
			only311: true, v311: want{"MQTT-4.8.0-1", "1.5.3"}},
		{name: "Patch past the end grows the body", f: pingreq.Patch(1, 0xAA), hex: "C0 02 00 AA",
			v311: want{"MQTT-4.8.0-1", "2.2.3"}, v5: want{"MQTT-4.13.1-1", "2.1.4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.f.Bytes()
			if w := mustHex(t, c.hex); !bytes.Equal(b, w) {
				t.Fatalf("Bytes() = % X, want % X", b, w)
			}
			if a := c.f.Append([]byte{0x99}); !bytes.Equal(a, append([]byte{0x99}, b...)) {
				t.Errorf("Append(dst) = % X, want dst followed by the frame", a)
			}
			for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
				w := c.v311
				if v == packetgen.V5 {
					w = c.v5
				}
				if v == packetgen.V5 && c.only311 {
					continue
				}
				d := packetgen.Decoder{Version: v, Side: packetgen.FromClient, MaxPacketSize: c.max}
				p, n, err := d.Decode(b)
				switch {
				case c.waits:
					if !errors.Is(err, packetgen.ErrIncomplete) {
						t.Errorf("%s: Decode = %v, want ErrIncomplete", v, err)
					}
					// A stream that ends there is cut inside a packet.
					r := packetgen.NewReader(bytes.NewReader(b), d)
					if _, err := r.ReadPacket(); !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Errorf("%s: ReadPacket at the end of the stream = %v, want io.ErrUnexpectedEOF", v, err)
					}
				case w.rule == "":
					if err != nil || n != len(b) || packetgen.Format(p) != c.v311Decode {
						t.Errorf("%s: Decode = %d, %v, want %s", v, n, err, c.v311Decode)
					}
				default:
					var vi *packetgen.Violation
					if !errors.As(err, &vi) {
						t.Fatalf("%s: Decode(% X) = %v, want %s §%s", v, b, err, w.rule, w.section)
					}
					if vi.Rule != w.rule || vi.Section != w.section {
						t.Errorf("%s: violation %s §%s, want %s §%s\n%v", v, vi.Rule, vi.Section, w.rule, w.section, vi)
					}
				}
			}
		})
	}
}

// TestFrameDoesNotAlias: the frame methods return changed copies; the frame
// they start from, and the bytes it was built from, stay as they were.
func TestFrameDoesNotAlias(t *testing.T) {
	f := packetgen.FrameOf(&packetgen.Puback{PacketID: 0x0102}, packetgen.V311)
	before := f.Bytes()
	_ = f.Patch(0, 0xFF, 0xFF)
	_ = f.Truncated(1).WithTrailing(0xEE)
	_ = f.Cut(0)
	g := f.WithTrailing(0xAB)
	_ = g.Patch(2, 0xCD)
	if got := f.Bytes(); !bytes.Equal(got, before) {
		t.Errorf("the original frame now writes % X, want % X", got, before)
	}
	if got, want := g.Bytes(), mustHex(t, "40 03 01 02 AB"); !bytes.Equal(got, want) {
		t.Errorf("WithTrailing frame now writes % X, want % X", got, want)
	}
	if f.Type() != packetgen.TypePuback || f.WithType(packetgen.TypePubrel).Type() != packetgen.TypePubrel {
		t.Error("Type does not follow WithType")
	}
}
