package packetgen

import (
	"bufio"
	"errors"
	"io"
	"slices"
)

// Reader reads packets from a stream. It allocates a fresh buffer for each
// packet, so returned packets stay valid after the next read. It never
// allocates more than readChunk bytes ahead of the bytes that have arrived,
// so a peer cannot make it reserve memory by declaring a large length.
type Reader struct {
	Decoder
	r io.ByteReader
	f io.Reader
}

// readChunk is how far ahead of arrived bytes a body buffer may grow.
const readChunk = 4 << 10

// NewReader returns a Reader on r. If r is not an io.ByteReader it is
// wrapped in a small bufio.Reader.
func NewReader(r io.Reader, d Decoder) *Reader {
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReaderSize(r, 512)
		br, r = b, b
	}
	return &Reader{Decoder: d, r: br, f: r}
}

// ReadHeader reads a fixed header. It returns io.EOF when the stream ends
// before the first byte, io.ErrUnexpectedEOF inside the header, and a
// *Violation as Decoder.ParseHeader does.
func (r *Reader) ReadHeader() (Header, error) {
	var buf [5]byte
	n := 0
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, err
		}
		buf[n] = c
		n++
		h, err := r.ParseHeader(buf[:n])
		if err != ErrIncomplete {
			return h, err
		}
		if n == len(buf) {
			return Header{}, errors.New("packetgen: unreachable header state")
		}
	}
}

// ReadBody reads h.Remaining bytes, growing the buffer only as they come.
func (r *Reader) ReadBody(h Header) ([]byte, error) {
	body := make([]byte, 0, min(h.Remaining, readChunk))
	for len(body) < h.Remaining {
		if len(body) == cap(body) {
			// Double at most: memory stays within twice what has arrived.
			body = slices.Grow(body, min(h.Remaining-len(body), len(body)))
		}
		n, err := r.f.Read(body[len(body):min(cap(body), h.Remaining)])
		body = body[:len(body)+n]
		if err != nil && len(body) < h.Remaining {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return body, err
		}
	}
	return body, nil
}

// ReadPacket reads and decodes the next packet. When the Decoder's Version
// is 0, a CONNECT sets it to the CONNECT's protocol level. Errors are
// io.EOF at a packet boundary, io.ErrUnexpectedEOF inside a packet, other
// read errors, or a *Violation (with a packet in the cases Decoder.Decode
// lists).
func (r *Reader) ReadPacket() (Packet, error) {
	h, err := r.ReadHeader()
	if err != nil {
		return nil, err
	}
	body, err := r.ReadBody(h)
	if err != nil {
		return nil, err
	}
	p, err := r.DecodeBody(h, body)
	if c, ok := p.(*Connect); ok && r.Version == 0 && c.ProtocolLevel.Valid() {
		r.Version = c.ProtocolLevel
	}
	return p, err
}

// PacketBuffered reports whether a whole packet is already buffered, so
// the next ReadPacket returns without waiting on the stream. A server uses
// it to answer a burst of packets with one write.
func (r *Reader) PacketBuffered() bool {
	b, ok := r.f.(*bufio.Reader)
	if !ok {
		return false
	}
	n := b.Buffered()
	if n < 2 {
		return false
	}
	h, _ := b.Peek(min(n, 5))
	remaining, mul := 0, 1
	for i := 1; i < len(h); i++ {
		remaining += int(h[i]&0x7F) * mul
		if h[i]&0x80 == 0 {
			return 1+i+remaining <= n
		}
		mul <<= 7
	}
	return false
}
