package packetgen

import (
	"bytes"
	"errors"
	"io"
	"runtime/metrics"
	"testing"
	"testing/iotest"
)

// heapAllocated reads the cumulative bytes allocated on the heap.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// allocatedBy is the heap bytes fn allocates: the least of three runs. The
// counter is process-wide, so the fuzzing engine's own goroutines can add
// to one reading; decoding is deterministic, so the least of three is
// decoding's own cost, and an allocation driven by a declared length shows
// in every run.
func allocatedBy(fn func()) uint64 {
	least := ^uint64(0)
	for i := 0; i < 3; i++ {
		before := heapAllocated()
		fn()
		least = min(least, heapAllocated()-before)
	}
	return least
}

// allocBound is what decoding n input bytes may allocate: decoded
// structures cost a small multiple of their wire size (a 3-byte filter
// becomes a 48-byte Subscription, slices grow by doubling), plus the
// Reader's first body chunk. The runtime counts small allocations per span
// refill, not per object, so the reading jumps by up to a span's worth at a
// time: the slack of 256 KiB absorbs that, while an allocation driven by a
// declared length (megabytes) is counted at once and still fails.
func allocBound(n int) uint64 { return uint64(64*n + readChunk + 256<<10) }

func fuzzSeeds(f *testing.F) {
	for _, v := range versions {
		g := NewGen(1, v)
		for _, t := range Types(v) {
			f.Add(AppendUnchecked(nil, g.Valid(t), v), byte(v), byte(FromClient))
		}
		for _, c := range MalformedClasses(v) {
			k, _ := g.Malformed(c.Name)
			if len(k.Bytes) < 4096 {
				f.Add(k.Bytes, byte(v), byte(FromClient))
			}
		}
	}
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, byte(V311), byte(AnySide))
}

// FuzzDecode: decoding never panics, allocates in proportion to the input,
// and whatever decodes re-encodes (strictly) to bytes that decode to an
// equal packet.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, ver byte, side byte) {
		v := Version(ver%4 + 2) // 2 (unset: 0 after the next line), 3, 4, 5
		if v == 2 {
			v = 0
		}
		d := Decoder{Version: v, Side: Side(side % 3)}
		if got := allocatedBy(func() { d.Decode(data) }); got > allocBound(len(data)) { //nolint:errcheck
			t.Fatalf("decoding %d bytes allocated %d bytes", len(data), got)
		}
		p, n, err := d.Decode(data)
		if err != nil {
			if p != nil && AsViolation(err) == nil {
				t.Fatalf("a packet with a non-violation error: %v", err)
			}
			if vi := AsViolation(err); vi != nil && (vi.Rule == "" || vi.Detail == "") {
				t.Fatalf("violation without rule or detail: %#v", vi)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("Decode took %d of %d bytes", n, len(data))
		}
		ev := d.version()
		if c, ok := p.(*Connect); ok {
			ev = c.ProtocolLevel
		}
		enc := Encoder{Version: ev, Side: d.Side}
		b, err := enc.Append(nil, p)
		if err != nil {
			t.Fatalf("decoded %s from % X but Append refuses it: %v", Format(p), data[:n], err)
		}
		d2 := Decoder{Version: ev, Side: d.Side}
		q, n2, err := d2.Decode(b)
		if err != nil || n2 != len(b) {
			t.Fatalf("re-encoded % X does not decode: %v", b, err)
		}
		if !equalPackets(p, q) {
			t.Fatalf("round trip differs:\nfirst  %s\nsecond %s", Format(p), Format(q))
		}
	})
}

// FuzzStream: a Reader fed the same bytes in pieces of any size decodes
// the same packets, and the same first error, as Decode on the whole slice,
// without allocating in proportion to declared lengths.
func FuzzStream(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, ver byte, chunk byte) {
		v := Version(ver%3 + 3)
		want := decodeAll(Decoder{Version: v, Side: FromClient}, data)
		reader := func() io.Reader {
			if chunk%4 == 0 {
				return iotest.OneByteReader(bytes.NewReader(data))
			}
			return &chunkReader{b: data, n: int(chunk)}
		}
		var got streamResult
		a := allocatedBy(func() { got = readAll(NewReader(reader(), Decoder{Version: v, Side: FromClient})) })
		if a > allocBound(len(data))+uint64(len(want.packets))*256 {
			t.Fatalf("reading %d bytes allocated %d bytes", len(data), a)
		}
		compareStreams(t, want, got)
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), max(c.n, 1), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

type streamResult struct {
	packets []string
	err     error // nil, ErrIncomplete/io.ErrUnexpectedEOF, or a violation
}

func decodeAll(d Decoder, b []byte) streamResult {
	var r streamResult
	for len(b) > 0 {
		p, n, err := d.Decode(b)
		if p != nil {
			r.packets = append(r.packets, Format(p))
		}
		if err != nil {
			r.err = err
			return r
		}
		b = b[n:]
	}
	return r
}

func readAll(rd *Reader) streamResult {
	var r streamResult
	for {
		p, err := rd.ReadPacket()
		if p != nil {
			r.packets = append(r.packets, Format(p))
		}
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			r.err = err
			return r
		}
	}
}

func compareStreams(t *testing.T, want, got streamResult) {
	t.Helper()
	if len(want.packets) != len(got.packets) {
		t.Fatalf("slice decode gave %d packets (%v), stream gave %d (%v)", len(want.packets), want.err, len(got.packets), got.err)
	}
	for i := range want.packets {
		if want.packets[i] != got.packets[i] {
			t.Fatalf("packet %d: slice %s, stream %s", i, want.packets[i], got.packets[i])
		}
	}
	wantIncomplete := errors.Is(want.err, ErrIncomplete)
	gotIncomplete := errors.Is(got.err, io.ErrUnexpectedEOF)
	switch {
	case want.err == nil && got.err == nil:
	case wantIncomplete && gotIncomplete:
	case AsViolation(want.err) != nil && AsViolation(got.err) != nil:
		if w, g := AsViolation(want.err), AsViolation(got.err); w.Rule != g.Rule || w.Detail != g.Detail {
			t.Fatalf("slice error %v, stream error %v", w, g)
		}
	default:
		t.Fatalf("slice error %v, stream error %v", want.err, got.err)
	}
}

// TestStreamSplitAnywhere: a stream of generated packets of every type,
// split into two writes at every possible point, reads back identically.
func TestStreamSplitAnywhere(t *testing.T) {
	seed := testSeed(t)
	for _, v := range versions {
		g := NewGen(seed, v)
		var stream []byte
		for i := 0; i < 3; i++ {
			for _, typ := range Types(v) {
				p := g.Valid(typ)
				if pub, ok := p.(*Publish); ok && len(pub.Payload) > 300 {
					pub.Payload = pub.Payload[:300] // keep the quadratic loop short
				}
				stream = AppendUnchecked(stream, p, v)
			}
		}
		d := Decoder{Version: v}
		want := decodeAll(d, stream)
		if want.err != nil {
			t.Fatalf("%s: generated stream does not decode: %v", v, want.err)
		}
		for cut := 0; cut <= len(stream); cut++ {
			r := io.MultiReader(bytes.NewReader(stream[:cut]), bytes.NewReader(stream[cut:]))
			compareStreams(t, want, readAll(NewReader(r, d)))
		}
		compareStreams(t, want, readAll(NewReader(iotest.OneByteReader(bytes.NewReader(stream)), d)))
	}
}

// TestReaderDoesNotTrustLength: five bytes declaring 256 MB cost a few
// kilobytes, not megabytes, and end in io.ErrUnexpectedEOF.
func TestReaderDoesNotTrustLength(t *testing.T) {
	for _, in := range [][]byte{
		{0x30, 0xFF, 0xFF, 0xFF, 0x7F},
		{0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 'a'},
		{0x82, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01},
	} {
		var err error
		if a := allocatedBy(func() { _, err = NewReader(bytes.NewReader(in), Decoder{}).ReadPacket() }); a > 16<<10 {
			t.Errorf("% X: allocated %d bytes", in, a)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("% X: err %v, want unexpected EOF", in, err)
		}
		// A bounded decoder refuses at once, before reading the body.
		_, err = NewReader(bytes.NewReader(in), Decoder{MaxPacketSize: 1 << 20}).ReadPacket()
		if vi := AsViolation(err); vi == nil || vi.Reason != PacketTooLarge {
			t.Errorf("% X with a 1 MiB limit: %v", in, err)
		}
	}
}

// TestReaderSetsVersionFromConnect: a server-side Reader with no version
// learns it from CONNECT and decodes what follows as that version.
func TestReaderSetsVersionFromConnect(t *testing.T) {
	var stream []byte
	stream = AppendUnchecked(stream, &Connect{ProtocolLevel: V5, CleanStart: true, ClientID: "x"}, V5)
	var props Properties
	props.Set(PropTopicAlias, uint16(1))
	stream = AppendUnchecked(stream, &Publish{Topic: []byte("t"), Properties: props}, V5)
	rd := NewReader(bytes.NewReader(stream), Decoder{Side: FromClient})
	if _, err := rd.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if rd.Version != V5 {
		t.Fatalf("version %s after a 5.0 CONNECT", rd.Version)
	}
	p, err := rd.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if pub := p.(*Publish); pub.Properties.TopicAlias != 1 {
		t.Fatalf("PUBLISH decoded as %s", Format(p))
	}
}
