package packetgen

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// PacketBuffered is true exactly when the next packet is wholly buffered:
// then ReadPacket must return it without reading the stream again.
func TestPacketBuffered(t *testing.T) {
	pub := AppendUnchecked(nil, &Publish{Topic: []byte("a"), Payload: bytes.Repeat([]byte("x"), 200)}, V311)
	ping := []byte{0xC0, 0x00}
	stream := append(append(append([]byte{}, ping...), pub...), pub[:10]...)
	src := &countingReader{r: bytes.NewReader(stream)}
	r := NewReader(src, Decoder{Version: V311, Side: FromClient})
	if r.PacketBuffered() {
		t.Fatal("nothing read yet, yet a packet is buffered")
	}
	if p, err := r.ReadPacket(); err != nil || p.Type() != TypePingreq {
		t.Fatalf("first packet: %v %v", p, err)
	}
	// One read of the 512-byte buffer took the whole stream.
	if !r.PacketBuffered() {
		t.Fatal("the PUBLISH is buffered, PacketBuffered says no")
	}
	reads := src.reads
	if p, err := r.ReadPacket(); err != nil || p.Type() != TypePublish || src.reads != reads {
		t.Fatalf("second packet: %v %v, %d more reads", p, err, src.reads-reads)
	}
	if r.PacketBuffered() {
		t.Fatal("10 bytes of a 205-byte PUBLISH are buffered, PacketBuffered says the packet is")
	}
	if r2 := NewReader(strings.NewReader("\xC0\x00"), Decoder{}); r2.PacketBuffered() {
		t.Fatal("a Reader without a buffer of its own cannot know")
	}
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(b []byte) (int, error) { c.reads++; return c.r.Read(b) }
