// Package wire is a packet-level MQTT client for tests, suites and the
// fuzzer: it sends any packet, valid or not, reads packets with deadlines,
// tells a closed connection from a silent one, and records a trace of
// everything that crossed the wire.
package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
)

// Direction of a traced packet.
type Direction string

const (
	Sent     Direction = "sent"
	Received Direction = "received"
	Event    Direction = "event" // a close, a timeout, a decode error
)

// Entry is one line of a trace.
type Entry struct {
	At     time.Duration `json:"at"` // since the connection was made
	Dir    Direction     `json:"dir"`
	Packet string        `json:"packet"` // packetgen.Format, or what happened
	Hex    string        `json:"hex,omitempty"`
}

func (e Entry) String() string {
	arrow := map[Direction]string{Sent: "->", Received: "<-", Event: "!!"}[e.Dir]
	return fmt.Sprintf("%9.3fms %s %s", float64(e.At.Microseconds())/1000, arrow, e.Packet)
}

// Trace is a shared, concurrency-safe record of several connections.
type Trace struct {
	mu      sync.Mutex
	start   time.Time
	entries []Entry
	secrets [][]byte
}

// Redact withholds the hex of any packet whose bytes contain secret (a
// password): decoded packets never show passwords, raw bytes would.
func (t *Trace) Redact(secret string) {
	if t == nil || secret == "" {
		return
	}
	t.mu.Lock()
	t.secrets = append(t.secrets, []byte(secret))
	t.mu.Unlock()
}

// NewTrace starts a trace now.
func NewTrace() *Trace { return &Trace{start: time.Now()} }

func (t *Trace) add(name string, dir Direction, what string, b []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := Entry{At: time.Since(t.start), Dir: dir, Packet: name + " " + what}
	for _, s := range t.secrets {
		if bytes.Contains(b, s) {
			e.Hex, b = "(withheld: holds a secret)", nil
			break
		}
	}
	if len(b) > 0 {
		if len(b) > 256 {
			e.Hex = fmt.Sprintf("% X ...(%d bytes)", b[:256], len(b))
		} else {
			e.Hex = fmt.Sprintf("% X", b)
		}
	}
	t.entries = append(t.entries, e)
}

// Entries returns a copy of the trace so far.
func (t *Trace) Entries() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Entry(nil), t.entries...)
}

// String renders the trace one entry a line.
func (t *Trace) String() string {
	var b strings.Builder
	for _, e := range t.Entries() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Conn is one client connection.
type Conn struct {
	Name    string // shown in the trace, e.g. the client identifier
	nc      net.Conn
	rd      *packetgen.Reader
	enc     packetgen.Encoder
	trace   *Trace
	wmu     sync.Mutex
	pending chan result
	readErr error
	// autoPings counts the PINGREQ packets KeepAlive sent whose PINGRESP
	// has not come: those PINGRESP packets are not handed to Recv.
	autoPings atomic.Int32
}

type result struct {
	p   packetgen.Packet
	err error
}

// Dialer makes connections to a broker.
type Dialer func(ctx context.Context) (net.Conn, error)

// TCP dials a TCP address.
func TCP(addr string) Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// Transport dials through d: any broker URL (tcp, tls, ws, wss, inproc).
func Transport(d *transport.Dialer) Dialer { return d.DialContext }

// TLS names the TLS version and cipher suite negotiated, such as "TLS 1.3"
// and "TLS_AES_128_GCM_SHA256"; false when the connection is not TLS.
func (c *Conn) TLS() (version, cipher string, ok bool) { return transport.TLSInfo(c.nc) }

// New wraps nc. Packets are encoded and decoded as version v (a CONNECT
// sent through Send sets it); trace may be nil.
func New(nc net.Conn, name string, v packetgen.Version, trace *Trace) *Conn {
	c := &Conn{Name: name, nc: nc, trace: trace, pending: make(chan result, 64)}
	c.enc = packetgen.Encoder{Version: v, Side: packetgen.FromClient}
	c.rd = packetgen.NewReader(nc, packetgen.Decoder{Version: v, Side: packetgen.FromServer})
	go c.readLoop()
	return c
}

// Dial connects with d and wraps the connection.
func Dial(ctx context.Context, d Dialer, name string, v packetgen.Version, trace *Trace) (*Conn, error) {
	nc, err := d(ctx)
	if err != nil {
		return nil, err
	}
	return New(nc, name, v, trace), nil
}

// readLoop decodes packets into the pending channel until the connection
// ends; the last result carries the error.
func (c *Conn) readLoop() {
	for {
		p, err := c.rd.ReadPacket()
		if err != nil {
			what := "closed by peer"
			if !errors.Is(err, io.EOF) {
				what = "read error: " + err.Error()
			}
			c.trace.add(c.Name, Event, what, nil)
			c.pending <- result{nil, err}
			close(c.pending)
			return
		}
		c.trace.add(c.Name, Received, packetgen.Format(p), packetgen.AppendUnchecked(nil, p, c.rd.Version))
		if c.ownPingresp(p) {
			continue
		}
		c.pending <- result{p, nil}
	}
}

// Version is the protocol version in use.
func (c *Conn) Version() packetgen.Version {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.enc.Version
}

// Send encodes p strictly and writes it. A CONNECT of another protocol
// level switches the connection to that level before it is encoded.
func (c *Conn) Send(p packetgen.Packet) error {
	c.wmu.Lock()
	if cp, ok := p.(*packetgen.Connect); ok && cp.ProtocolLevel.Valid() && cp.ProtocolLevel != c.enc.Version {
		// The read loop reads rd.Version only after a packet arrives,
		// and the answer to this CONNECT comes after it is written.
		c.enc.Version = cp.ProtocolLevel
		c.rd.Version = cp.ProtocolLevel
	}
	b, err := c.enc.Append(nil, p)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding %s: %w", packetgen.Format(p), err)
	}
	return c.write(b, packetgen.Format(p))
}

// SendRaw writes bytes as they are, described as what in the trace.
func (c *Conn) SendRaw(b []byte, what string) error { return c.write(b, what) }

func (c *Conn) write(b []byte, what string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.trace.add(c.Name, Sent, what, b)
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	_, err := c.nc.Write(b)
	if err != nil {
		c.trace.add(c.Name, Event, "write error: "+err.Error(), nil)
	}
	return err
}

// ErrTimeout is returned by Recv when nothing arrived in time.
var ErrTimeout = errors.New("wire: no packet in time")

// ErrClosed is returned by Recv when the peer closed the connection.
var ErrClosed = errors.New("wire: connection closed")

// Recv waits up to d for the next packet. It returns ErrTimeout when none
// came, ErrClosed (wrapping the reason) when the connection ended, or a
// *packetgen.Violation when the peer sent a malformed packet.
func (c *Conn) Recv(d time.Duration) (packetgen.Packet, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r, ok := <-c.pending:
		if !ok {
			return nil, fmt.Errorf("%w: %v", ErrClosed, c.readErr)
		}
		if r.err != nil {
			c.readErr = r.err
			if packetgen.AsViolation(r.err) != nil {
				return nil, r.err
			}
			return nil, fmt.Errorf("%w: %v", ErrClosed, r.err)
		}
		return r.p, nil
	case <-t.C:
		return nil, ErrTimeout
	}
}

// Close closes the connection abruptly (no DISCONNECT).
func (c *Conn) Close() error {
	c.trace.add(c.Name, Event, "closed by us", nil)
	return c.nc.Close()
}

// Disconnect sends DISCONNECT and closes.
func (c *Conn) Disconnect() error {
	err := c.Send(&packetgen.Disconnect{})
	c.nc.Close()
	return err
}
