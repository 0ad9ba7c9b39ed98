package packetgen

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed for generated tests (0: from the clock; the seed used is logged)")

// testSeed returns the seed to use and logs it so a failure can be
// replayed with -seed.
func testSeed(t testing.TB) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test ./packetgen -run '%s' -seed %d)", s, t.Name(), s)
	return s
}

var versions = []Version{V31, V311, V5}

// TestGeneratedRoundTrip: every generated packet encodes, decodes to an
// equal packet, and re-encodes to the same bytes.
func TestGeneratedRoundTrip(t *testing.T) {
	seed := testSeed(t)
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			g := NewGen(seed, v)
			for i := 0; i < 3000; i++ {
				for _, typ := range Types(v) {
					p := g.Valid(typ)
					side := sentBySide(typ, v)
					enc := Encoder{Version: v, Side: side}
					b, err := enc.Append(nil, p)
					if err != nil {
						t.Fatalf("packet %d: Append(%s): %v", i, Format(p), err)
					}
					d := Decoder{Version: v, Side: side}
					q, n, err := d.Decode(b)
					if err != nil || n != len(b) {
						t.Fatalf("packet %d: Decode(% X) = %d, %v\n%s", i, b, n, err, Format(p))
					}
					if !equalPackets(p, q) {
						t.Fatalf("packet %d round trip:\nsent %s\ngot  %s", i, Format(p), Format(q))
					}
					b2, err := enc.Append(nil, q)
					if err != nil || !bytes.Equal(b, b2) {
						t.Fatalf("packet %d re-encode differs (%v):\n% X\n% X", i, err, b, b2)
					}
				}
			}
		})
	}
}

// equalPackets compares packets treating nil and empty slices alike.
func equalPackets(a, b Packet) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(p Packet) Packet {
	q := p.Clone()
	fix := func(b *[]byte) {
		if len(*b) == 0 {
			*b = nil
		}
	}
	props := func(pr *Properties) {
		fix(&pr.CorrelationData)
		fix(&pr.AuthenticationData)
		if len(pr.UserProperties) == 0 {
			pr.UserProperties = nil
		}
		if len(pr.SubscriptionIdentifiers) == 0 {
			pr.SubscriptionIdentifiers = nil
		}
	}
	switch q := q.(type) {
	case *Publish:
		fix(&q.Topic)
		fix(&q.Payload)
		props(&q.Properties)
	case *Connect:
		fix(&q.Password)
		props(&q.Properties)
		if q.Will != nil {
			fix(&q.Will.Payload)
			props(&q.Will.Properties)
		}
	case *Connack:
		props(&q.Properties)
	case *Puback:
		props(&q.Properties)
	case *Pubrec:
		props(&q.Properties)
	case *Pubrel:
		props(&q.Properties)
	case *Pubcomp:
		props(&q.Properties)
	case *Subscribe:
		props(&q.Properties)
	case *Suback:
		props(&q.Properties)
	case *Unsubscribe:
		props(&q.Properties)
	case *Unsuback:
		props(&q.Properties)
		if len(q.ReasonCodes) == 0 {
			q.ReasonCodes = nil
		}
	case *Disconnect:
		props(&q.Properties)
	case *Auth:
		props(&q.Properties)
	}
	return q
}

// TestGenReproducible: the same seed gives the same bytes.
func TestGenReproducible(t *testing.T) {
	for _, v := range versions {
		a, b := NewGen(42, v), NewGen(42, v)
		for i := 0; i < 200; i++ {
			pa, pb := AppendUnchecked(nil, a.Packet(), v), AppendUnchecked(nil, b.Packet(), v)
			if !bytes.Equal(pa, pb) {
				t.Fatalf("%s: packet %d differs for one seed", v, i)
			}
			ma, mb := a.AnyMalformed(), b.AnyMalformed()
			if !bytes.Equal(ma.Bytes, mb.Bytes) || ma.Class != mb.Class {
				t.Fatalf("%s: malformed case %d differs for one seed", v, i)
			}
		}
	}
}

// TestMalformedClasses: every class of every version decodes to the
// violation it names, with the reason it names; stateful cases decode
// cleanly (their fault is the order), accepted cases decode cleanly, and
// waiting cases are incomplete (or too large for a bounded decoder).
func TestMalformedClasses(t *testing.T) {
	seed := testSeed(t)
	for _, v := range versions {
		for _, class := range MalformedClasses(v) {
			t.Run(v.String()+"/"+class.Name, func(t *testing.T) {
				g := NewGen(seed, v)
				for i := 0; i < 200; i++ {
					k, err := g.Malformed(class.Name)
					if err != nil {
						t.Fatal(err)
					}
					if k.Rule == "" {
						t.Fatalf("case %d names no rule: %s", i, k)
					}
					d := Decoder{Version: v, Side: FromClient}
					if k.Phase == PhaseFirst && !k.Stateful {
						d.Version = 0 // a CONNECT tells its own version
					}
					p, n, err := d.Decode(k.Bytes)
					switch {
					case k.Stateful, k.Expect == ExpectAccept:
						if err != nil || n != len(k.Bytes) {
							t.Fatalf("case %d: %v\n%s", i, err, k)
						}
					case k.Expect == ExpectWaitOrClose:
						if !errors.Is(err, ErrIncomplete) {
							t.Fatalf("case %d: want ErrIncomplete, got %v (%v)\n%s", i, err, p, k)
						}
						if k.Class == "oversized-length" {
							// A receiver with a smaller limit refuses the
							// declared size at once, under the rule the
							// case names.
							d.MaxPacketSize = 1 << 20
							_, _, err = d.Decode(k.Bytes)
							vi := AsViolation(err)
							if vi == nil || vi.Rule != k.Rule || vi.Reason != k.Reason {
								t.Fatalf("case %d: a 1 MiB limit gives %v, case says %s %s\n%s", i, err, k.Rule, k.Reason, k)
							}
						}
					default:
						vi := AsViolation(err)
						if vi == nil {
							t.Fatalf("case %d: decoded without a violation (err %v): %s\n%s", i, err, formatOrNil(p), k)
						}
						if vi.Rule != k.Rule {
							t.Fatalf("case %d: violation %q, case says %q\n%v\n%s", i, vi.Rule, k.Rule, vi, k)
						}
						if vi.Reason != k.Reason && !(k.Reason == TopicNameInvalid || k.Reason == TopicFilterInvalid ||
							k.Reason == UnsupportedProtocolVersion) {
							t.Fatalf("case %d: reason %s, case says %s\n%v\n%s", i, vi.Reason, k.Reason, vi, k)
						}
						if vi.Detail == "" {
							t.Fatalf("case %d: violation without detail", i)
						}
					}
				}
			})
		}
	}
}

func formatOrNil(p Packet) string {
	if p == nil {
		return "<nil>"
	}
	return Format(p)
}
