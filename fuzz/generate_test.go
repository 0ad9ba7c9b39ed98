package fuzz

import (
	"reflect"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

var versions = []packetgen.Version{packetgen.V31, packetgen.V311, packetgen.V5}

// Case i of a seed is the same bytes whatever ran before it.
func TestGenerateReproducible(t *testing.T) {
	for _, v := range versions {
		const n = 400
		first := make([]Case, n)
		for i := range uint64(n) {
			first[i] = Generate(42, i, v)
		}
		for i := n - 1; i >= 0; i-- {
			if got := Generate(42, uint64(i), v); !reflect.DeepEqual(got, first[i]) {
				t.Fatalf("%s case %d differs on a second call:\n%s\n%s", v, i, got, first[i])
			}
		}
		same := 0
		for i := range uint64(n) {
			if string(Generate(43, i, v).Bytes) == string(first[i].Bytes) {
				same++
			}
		}
		if same > n/10 {
			t.Errorf("%s: seeds 42 and 43 share %d of %d cases", v, same, n)
		}
	}
}

// Every generator, every malformed class and every unusual case shows up
// in a few thousand cases.
func TestGenerateCoverage(t *testing.T) {
	for _, v := range versions {
		seen := map[string]bool{}
		for i := range uint64(2500) {
			c := Generate(7, i, v)
			seen[c.Generator] = true
			seen[c.Class] = true
			if len(c.Bytes) == 0 {
				t.Fatalf("%s: empty case %d", v, i)
			}
			if c.Phase != packetgen.PhaseFirst && c.Phase != packetgen.PhaseAfterConnect {
				t.Fatalf("%s: case %d phase %d", v, i, c.Phase)
			}
		}
		want := []string{GenMalformed, GenUnusual, GenMutated, "cut-body"}
		want = append(want, packetgen.MalformedClassNames(v)...)
		for _, u := range unusualCases {
			want = append(want, u.name)
		}
		for _, w := range want {
			if !seen[w] {
				t.Errorf("%s: no %q case in 2500", v, w)
			}
		}
	}
}

// The judge agrees with what each malformed class says a broker owes it.
func TestJudgeAgreesWithClasses(t *testing.T) {
	for _, v := range versions {
		for _, class := range packetgen.MalformedClassNames(v) {
			for seed := range uint64(40) {
				k, err := packetgen.NewGen(seed, v).Malformed(class)
				if err != nil {
					t.Fatal(err)
				}
				j := Judge(k.Bytes, k.Phase, v)
				ok := false
				switch k.Expect {
				case packetgen.ExpectClose:
					ok = j.Expect == packetgen.ExpectClose
				case packetgen.ExpectRefuse:
					ok = j.Expect == packetgen.ExpectRefuse || j.Expect == packetgen.ExpectClose
				case packetgen.ExpectWaitOrClose:
					ok = j.Incomplete || !j.Decided()
				case packetgen.ExpectAccept:
					ok = !j.Decided() && !j.Incomplete
				}
				if !ok {
					t.Errorf("%s %s: class expects %s, judge says %s (%s %s)\n%s", v, class, k.Expect, j.Expect, j.Rule, j.Detail, k)
				}
			}
		}
	}
}

// Unusual cases said to be accepted are valid streams, and the judge
// counts their PINGREQs.
func TestUnusualAcceptIsValid(t *testing.T) {
	for _, v := range versions {
		for i := range uint64(1500) {
			c := Generate(11, i, v)
			if c.Generator != GenUnusual || c.Expect != packetgen.ExpectAccept {
				continue
			}
			j := Judge(c.Bytes, c.Phase, v)
			if j.Decided() || j.Incomplete {
				t.Fatalf("%s: %s judged %s [%s] %s", v, c, j.Expect, j.Rule, j.Detail)
			}
			if j.Pings != c.Pings {
				t.Fatalf("%s: %s: %d pings, judge counts %d", v, c, c.Pings, j.Pings)
			}
		}
	}
}

func TestJudgeStream(t *testing.T) {
	v := packetgen.V311
	enc := func(ps ...packetgen.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = packetgen.AppendUnchecked(b, p, v)
		}
		return b
	}
	conn := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "x"}
	pub := &packetgen.Publish{QoS: 2, PacketID: 3, Topic: []byte("t"), Payload: []byte("p")}
	badSub := &packetgen.Subscribe{PacketID: 9, Subscriptions: []packetgen.Subscription{{Filter: "a/#/b"}}}
	for _, tc := range []struct {
		name   string
		b      []byte
		phase  packetgen.Phase
		expect packetgen.Expect
		rule   string
		pings  int
		qos2   int
		must   bool
	}{
		{"valid session", enc(conn, &packetgen.Pingreq{}, pub, pub), packetgen.PhaseFirst, packetgen.ExpectWaitOrClose, "", 1, 1, false},
		{"released then again", enc(conn, pub, &packetgen.Pubrel{PacketID: 3}, pub), packetgen.PhaseFirst, packetgen.ExpectWaitOrClose, "", 0, 2, false},
		{"packet before connect", enc(&packetgen.Pingreq{}), packetgen.PhaseFirst, packetgen.ExpectClose, "MQTT-3.1.0-1", 0, 0, true},
		{"second connect", enc(conn, &packetgen.Pingreq{}, conn), packetgen.PhaseFirst, packetgen.ExpectClose, "MQTT-3.1.0-2", 1, 0, true},
		{"refused filter then violation", append(enc(badSub, &packetgen.Pingreq{}), 0x62, 0), packetgen.PhaseAfterConnect, packetgen.ExpectRefuse, "MQTT-4.7.1-2", 0, 0, true},
		{"incomplete", enc(pub)[:5], packetgen.PhaseAfterConnect, packetgen.ExpectWaitOrClose, "", 0, 0, false},
		{"after disconnect nothing counts", append(enc(&packetgen.Disconnect{}), 0x00, 0x00), packetgen.PhaseAfterConnect, packetgen.ExpectWaitOrClose, "", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := Judge(tc.b, tc.phase, v)
			if j.Expect != tc.expect || j.Rule != tc.rule || j.Pings != tc.pings || j.MustClose != tc.must || j.QoS2[Message{"t", "p"}] != tc.qos2 {
				t.Fatalf("got %s %q pings %d must-close %v qos2 %v", j.Expect, j.Rule, j.Pings, j.MustClose, j.QoS2)
			}
		})
	}
}

// FuzzGenerate: any case of any seed is generated without panicking, is
// judged, and its split points lie inside its bytes.
func FuzzGenerate(f *testing.F) {
	f.Add(uint64(2001), uint64(0xee95), byte(5))
	f.Add(uint64(1), uint64(0), byte(4))
	f.Fuzz(func(t *testing.T, seed, i uint64, v byte) {
		ver := versions[int(v)%len(versions)]
		c := Generate(seed, i, ver)
		if len(c.Bytes) == 0 {
			t.Fatalf("empty case %d of seed %d", i, seed)
		}
		for _, s := range c.Splits {
			if s <= 0 || s >= len(c.Bytes) {
				t.Fatalf("split %d outside %d bytes", s, len(c.Bytes))
			}
		}
		Judge(c.Bytes, c.Phase, ver)
	})
}
