package fuzz

import (
	"context"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Classify tells each kind of broker failure from the others.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	reservedFlags := Case{Version: packetgen.V311, Class: "reserved-flags", Rule: "MQTT-2.2.2-2",
		Expect: packetgen.ExpectClose, Phase: packetgen.PhaseAfterConnect, Bytes: []byte{0x42, 0x02, 0x00, 0x01}}
	cutSub := Case{Version: packetgen.V311, Class: "cut-body", Expect: packetgen.ExpectClose, Phase: packetgen.PhaseAfterConnect,
		Bytes: []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x02, 'a', 'b'}}
	valid := v311Case(&packetgen.Pingreq{}, &packetgen.Unsubscribe{PacketID: 4, Filters: []string{"x/y"}})
	valid.Expect = packetgen.ExpectAccept
	ref, _ := reference(t)
	for _, tc := range []struct {
		name   string
		target func(t *testing.T) *Target
		c      Case
		want   string
		why    string
	}{
		{"reference closes on malformed", func(*testing.T) *Target { return ref }, reservedFlags, "", ""},
		{"reference serves valid", func(*testing.T) *Target { return ref }, valid, "", ""},
		{"accepts malformed", func(t *testing.T) *Target { return lenientFake(t).target() },
			reservedFlags, SpecDeviation, "PINGREQ was answered"},
		{"closes on valid", func(t *testing.T) *Target { return lenientFake(t).target() },
			func() Case { c := valid; c.Bytes = append(c.Bytes, 0xE0, 0); return c }(), SpecDeviation, "valid input refused"},
		{"stops listening", func(t *testing.T) *Target { return startFake(t, "crash", subscribeCut).target() }, cutSub, Crash, "refused"},
		{"stops answering", func(t *testing.T) *Target { return startFake(t, "hang", subscribeCut).target() }, cutSub, Hang, "no CONNACK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.target(t)
			tg.Restart = nil
			o := tg.Exec(ctx, tc.c, fast)
			got, why := Classify(tc.c, o)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Fatalf("Classify = %q (%s), want %q containing %q; observation %+v", got, why, tc.want, tc.why, o)
			}
		})
	}
}

func lenientFake(t *testing.T) *fake {
	f := startFake(t, "none", func(byte, []byte) bool { return false })
	f.lenient = true
	return f
}

// A panic the broker recovered and logged is a crash.
func TestClassifyLoggedPanic(t *testing.T) {
	ref, _ := reference(t)
	n := int64(0)
	ref.Panics = func() int64 { n++; return n } // one more on every read
	o := ref.Exec(context.Background(), v311Case(&packetgen.Pingreq{}), fast)
	if got, _ := Classify(Case{}, o); got != Crash {
		t.Fatalf("Classify = %q, want crash", got)
	}
}

// An unreachable broker fails the preflight with a one-line error.
func TestPreflightUnreachable(t *testing.T) {
	f := startFake(t, "crash", subscribeCut)
	tg := f.target()
	f.stop()
	err := Preflight(context.Background(), tg, packetgen.V311, fast.Liveness)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Preflight = %v", err)
	}
}

// In 5.0 a broker may answer malformed input with a DISCONNECT whose
// reason code is 0x80 or more (0x81 Malformed Packet, 0x82 Protocol
// Error) before it closes (MQTT-4.13.1-1); a reason code under 0x80 says
// all is well, which it is not. A DISCONNECT ends the connection: its
// sender must close (MQTT-3.14.4-2) and send nothing more (-1).
func TestClassifyV5Disconnect(t *testing.T) {
	disconnect := func(rc packetgen.ReasonCode) []byte {
		return packetgen.AppendUnchecked(nil, &packetgen.Disconnect{ReasonCode: rc}, packetgen.V5)
	}
	// A PINGREQ with a body: malformed in 5.0.
	c := judged(Case{Version: packetgen.V5, Generator: GenMalformed, Class: "trailing-bytes",
		Phase: packetgen.PhaseAfterConnect, Bytes: []byte{0xC0, 0x01, 0x00}})
	if c.Expect != packetgen.ExpectClose || c.Rule != "MQTT-4.13.1-1" {
		t.Fatalf("case judged %s [%s]", c.Expect, c.Rule)
	}
	for _, tc := range []struct {
		name   string
		answer []byte
		after  string
		want   string
		why    string
	}{
		{"0x81 then close", disconnect(packetgen.MalformedPacket), "close", "", ""},
		{"0x82 then close", disconnect(packetgen.ProtocolError), "close", "", ""},
		{"close alone", nil, "close", "", ""},
		{"0x00 then close", disconnect(0x00), "close", SpecDeviation, "reason code of 0x80 or more"},
		{"0x04 then close", disconnect(0x04), "close", SpecDeviation, "reason code of 0x80 or more"},
		{"0x81 and serving on", disconnect(packetgen.MalformedPacket), "open", SpecDeviation, "PINGREQ was answered"},
		{"0x81 and left open", disconnect(packetgen.MalformedPacket), "mute", SpecDeviation, "MQTT-3.14.4-2"},
		{"no answer, serving on", nil, "open", SpecDeviation, "PINGREQ was answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := v5Fake(t, tc.answer, tc.after)
			o := tg.Exec(context.Background(), c, fast)
			got, why := Classify(c, o)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Fatalf("Classify = %q (%s), want %q containing %q; observation %+v", got, why, tc.want, tc.why, o)
			}
		})
	}
}
