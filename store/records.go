package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Message is an application message as the store keeps it.
type Message struct {
	Topic   []byte
	Payload []byte
	QoS     packetgen.QoS
	Retain  bool
	// Origin is the publisher's client identifier, for No Local.
	Origin string
	// Props are the 5.0 properties forwarded with the message; nil: none.
	Props *packetgen.Properties
	// Expires is when the Message Expiry Interval runs out; zero: never.
	Expires time.Time
}

// Session is a persistent session (one whose expiry interval is not 0).
type Session struct {
	ClientID string
	// Expiry is the Session Expiry Interval in seconds; math.MaxUint32
	// never expires.
	Expiry uint32
	// Deadline is when an offline session expires. Zero while its client
	// is connected: after a crash the interval counts from the next start.
	Deadline time.Time
	// User is the authenticated user name, for the ACL; never a password.
	User string
}

// Subscription is one filter of a session's subscriptions and its options.
type Subscription struct {
	ClientID          string
	Filter            string // as the client wrote it, "$share/..." included
	Shared            bool   // a 5.0 shared subscription (3.1.1 has none)
	QoS               packetgen.QoS
	NoLocal           bool
	RetainAsPublished bool
	ID                uint32 // Subscription Identifier; 0: none
}

// Delivery is a QoS 1 or 2 message (or a queued QoS 0 one) on its way to a
// session: queued while PacketID is 0, in flight once sent with PacketID;
// Released once the client's PUBREC has been answered with PUBREL.
type Delivery struct {
	Seq      uint64 // orders a session's deliveries; unique in the store
	ClientID string
	Msg      Message
	QoS      packetgen.QoS
	Retain   bool
	SubIDs   []uint32
	Share    string // "$share/{name}/{filter}" it came through; "" none
	PacketID uint16
	Released bool
}

// Will is a will message waiting to be published: a connected client's,
// or one waiting for its Will Delay Interval after its connection closed.
type Will struct {
	ClientID string
	Msg      Message
	// Expiry is the Message Expiry Interval, counted from publication;
	// negative: none.
	Expiry time.Duration
	Delay  uint32 // Will Delay Interval in seconds
	// Deadline is when a waiting will goes out; zero while its client is
	// connected (after a crash: the delay counts from the next start).
	Deadline time.Time
}

// Buckets, one per kind of record.
var (
	bucketMeta       = []byte("meta")
	bucketSessions   = []byte("sessions")
	bucketSubs       = []byte("subscriptions")
	bucketInbound    = []byte("inbound-qos2")
	bucketDeliveries = []byte("deliveries")
	bucketRetained   = []byte("retained")
	bucketWills      = []byte("wills")
	allBuckets       = [][]byte{bucketMeta, bucketSessions, bucketSubs, bucketInbound, bucketDeliveries, bucketRetained, bucketWills}
)

// Indexes of allBuckets, which pending changes carry.
const (
	iMeta byte = iota
	iSessions
	iSubs
	iInbound
	iDeliveries
	iRetained
	iWills
)

// formatVersion is the version of the record encoding, kept in the meta
// bucket; a store of another version is refused at start.
const formatVersion = 1

// Every value starts with the format version and ends with a CRC-32C of
// what precedes it: bbolt checks its own pages' structure, not the bytes
// of values.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func seal(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errChecksum = errors.New("checksum mismatch")

// unseal checks a value's checksum and version and returns its fields.
func unseal(v []byte) (*reader, error) {
	if len(v) < 5 {
		return nil, errors.New("value too short")
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errChecksum
	}
	if body[0] != formatVersion {
		return nil, errors.New("unknown record version")
	}
	return &reader{b: body[1:]}, nil
}

// Keys. A key that starts with a client identifier carries its length
// first, so one identifier's keys never run into another's.
func clientKey(id string, rest int) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(id)+rest)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}

func subKey(id, filter string) []byte {
	return append(clientKey(id, len(filter)), filter...)
}

func inboundKey(id string, pid uint16) []byte {
	return binary.BigEndian.AppendUint16(clientKey(id, 2), pid)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// splitClientKey returns the client identifier a key starts with and the
// rest.
func splitClientKey(k []byte) (string, []byte, error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n {
		return "", nil, errors.New("malformed key")
	}
	return string(k[w : w+int(n)]), k[w+int(n):], nil
}

// writer appends fields.
type writer struct{ b []byte }

func newWriter(size int) *writer {
	w := &writer{b: make([]byte, 0, size+32)}
	w.b = append(w.b, formatVersion)
	return w
}

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) byte(v byte)      { w.b = append(w.b, v) }
func (w *writer) bytes(v []byte)   { w.uvarint(uint64(len(v))); w.b = append(w.b, v...) }
func (w *writer) string(v string)  { w.uvarint(uint64(len(v))); w.b = append(w.b, v...) }
func (w *writer) bool(v bool) {
	if v {
		w.byte(1)
	} else {
		w.byte(0)
	}
}
func (w *writer) time(t time.Time) {
	if t.IsZero() {
		w.varint(0)
		return
	}
	w.varint(t.UnixNano())
}
func (w *writer) done() []byte { return seal(w.b) }

// reader takes fields in the order a writer wrote them; the first fault
// sticks and is reported by err.
type reader struct {
	b   []byte
	bad bool
}

var errTruncated = errors.New("malformed value")

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bool() bool { return r.byte() != 0 }

// bytes copies: bbolt's values live in its memory map only during the
// read transaction.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.bad, r.b = true, nil
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) time() time.Time {
	ns := r.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (r *reader) err() error {
	if r.bad || len(r.b) != 0 {
		return errTruncated
	}
	return nil
}

// The 5.0 properties a message carries along (the broker keeps no others).
const forwarded = packetgen.PropSet(1<<packetgen.PropPayloadFormatIndicator | 1<<packetgen.PropContentType |
	1<<packetgen.PropResponseTopic | 1<<packetgen.PropCorrelationData)

func (w *writer) message(m *Message) {
	w.bytes(m.Topic)
	w.bytes(m.Payload)
	w.byte(byte(m.QoS))
	w.bool(m.Retain)
	w.string(m.Origin)
	w.time(m.Expires)
	p := m.Props
	if p == nil {
		w.byte(0)
		return
	}
	w.byte(1)
	w.uvarint(uint64(p.Present & forwarded))
	w.byte(p.PayloadFormatIndicator)
	w.string(p.ContentType)
	w.string(p.ResponseTopic)
	w.bytes(p.CorrelationData)
	w.uvarint(uint64(len(p.UserProperties)))
	for _, u := range p.UserProperties {
		w.string(u.Key)
		w.string(u.Value)
	}
}

func (r *reader) message() Message {
	m := Message{Topic: r.bytes(), Payload: r.bytes(), QoS: packetgen.QoS(r.byte()), Retain: r.bool(), Origin: r.string(), Expires: r.time()}
	if r.byte() == 0 {
		return m
	}
	p := &packetgen.Properties{Present: packetgen.PropSet(r.uvarint()) & forwarded}
	p.PayloadFormatIndicator = r.byte()
	p.ContentType = r.string()
	p.ResponseTopic = r.string()
	p.CorrelationData = r.bytes()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		return m
	}
	for range n {
		p.UserProperties = append(p.UserProperties, packetgen.UserProperty{Key: r.string(), Value: r.string()})
	}
	m.Props = p
	return m
}

func msgSize(m *Message) int { return len(m.Topic) + len(m.Payload) + len(m.Origin) + 32 }

func encodeSession(s *Session) []byte {
	w := newWriter(len(s.ClientID) + len(s.User) + 16)
	w.uvarint(uint64(s.Expiry))
	w.time(s.Deadline)
	w.string(s.User)
	return w.done()
}

func decodeSession(id string, v []byte) (Session, error) {
	r, err := unseal(v)
	if err != nil {
		return Session{}, err
	}
	s := Session{ClientID: id, Expiry: uint32(r.uvarint()), Deadline: r.time(), User: r.string()}
	return s, r.err()
}

func encodeSub(s *Subscription) []byte {
	w := newWriter(8)
	w.byte(byte(s.QoS))
	w.bool(s.NoLocal)
	w.bool(s.RetainAsPublished)
	w.uvarint(uint64(s.ID))
	w.bool(s.Shared)
	return w.done()
}

func decodeSub(id, filter string, v []byte) (Subscription, error) {
	r, err := unseal(v)
	if err != nil {
		return Subscription{}, err
	}
	s := Subscription{ClientID: id, Filter: filter, QoS: packetgen.QoS(r.byte()), NoLocal: r.bool(), RetainAsPublished: r.bool(), ID: uint32(r.uvarint())}
	s.Shared = r.bool()
	return s, r.err()
}

func encodeDelivery(d *Delivery) []byte {
	w := newWriter(len(d.ClientID) + len(d.Share) + msgSize(&d.Msg) + 4*len(d.SubIDs))
	w.string(d.ClientID)
	w.message(&d.Msg)
	w.byte(byte(d.QoS))
	w.bool(d.Retain)
	w.uvarint(uint64(len(d.SubIDs)))
	for _, id := range d.SubIDs {
		w.uvarint(uint64(id))
	}
	w.string(d.Share)
	w.uvarint(uint64(d.PacketID))
	w.bool(d.Released)
	return w.done()
}

func decodeDelivery(seq uint64, v []byte) (Delivery, error) {
	r, err := unseal(v)
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Seq: seq, ClientID: r.string(), Msg: r.message(), QoS: packetgen.QoS(r.byte()), Retain: r.bool()}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return d, errTruncated
	}
	for range n {
		d.SubIDs = append(d.SubIDs, uint32(r.uvarint()))
	}
	d.Share = r.string()
	d.PacketID = uint16(r.uvarint())
	d.Released = r.bool()
	return d, r.err()
}

func encodeMessage(m *Message) []byte {
	w := newWriter(msgSize(m))
	w.message(m)
	return w.done()
}

func decodeMessage(v []byte) (Message, error) {
	r, err := unseal(v)
	if err != nil {
		return Message{}, err
	}
	m := r.message()
	return m, r.err()
}

func encodeWill(wl *Will) []byte {
	w := newWriter(msgSize(&wl.Msg) + 16)
	w.message(&wl.Msg)
	w.varint(int64(wl.Expiry))
	w.uvarint(uint64(wl.Delay))
	w.time(wl.Deadline)
	return w.done()
}

func decodeWill(id string, v []byte) (Will, error) {
	r, err := unseal(v)
	if err != nil {
		return Will{}, err
	}
	wl := Will{ClientID: id, Msg: r.message(), Expiry: time.Duration(r.varint()), Delay: uint32(r.uvarint()), Deadline: r.time()}
	return wl, r.err()
}
