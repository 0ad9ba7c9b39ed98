package fuzz

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
)

// fake is a broker that reads fixed headers only: CONNECT gets CONNACK 0,
// PINGREQ (any flags, any body) PINGRESP, SUBSCRIBE a SUBACK granting
// QoS 0; nothing is ever refused or closed on. A fault fires on the first
// packet fault.when matches: crash stops listening and drops every
// connection, hang stops answering anything, grow holds 64 MiB.
type fake struct {
	t     *testing.T
	fault string
	when  func(typ byte, body []byte) bool
	// lenient: never close. Otherwise the fake closes on what the codec
	// calls malformed, on a packet before CONNECT and on a second
	// CONNECT, so only the planted fault makes findings.
	lenient bool

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
	hung  bool
	held  []byte
}

func startFake(t *testing.T, fault string, when func(typ byte, body []byte) bool) *fake {
	f := &fake{t: t, fault: fault, when: when, conns: map[net.Conn]bool{}}
	f.listen()
	t.Cleanup(f.stop)
	return f
}

func (f *fake) listen() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.l, f.hung = l, false
	f.mu.Unlock()
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[nc] = true
			f.mu.Unlock()
			go f.serve(nc)
		}
	}()
}

func (f *fake) addr() string { f.mu.Lock(); defer f.mu.Unlock(); return f.l.Addr().String() }

// stop closes the listener and every connection: a crash.
func (f *fake) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.l.Close()
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

// restart is a Target.Restart: a new listener on a new port.
func (f *fake) restart(context.Context) (string, int, error) {
	f.stop()
	f.listen()
	return f.addr(), 0, nil
}

func (f *fake) target() *Target {
	t := NewTarget("fake "+f.fault, f.addr(), 0)
	t.Restart = f.restart
	return t
}

func (f *fake) serve(nc net.Conn) {
	defer nc.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	connected := false
	dec := packetgen.Decoder{Version: packetgen.V311, Side: packetgen.FromClient}
	for {
		n, err := nc.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		for {
			typ, body, size, ok := frame(buf)
			if !ok {
				if f.fault == "grow" && len(buf) >= 5 && buf[0]>>4 == 3 && declared(buf) > 1<<20 {
					f.act(buf) // allocates what the header declares
				}
				break
			}
			whole := buf[:size]
			buf = buf[size:]
			if f.when(typ, body) && f.act(buf) {
				return
			}
			if !f.lenient {
				if _, _, err := dec.Decode(whole); err != nil || (typ == 1) == connected {
					return
				}
				connected = true
			}
			f.mu.Lock()
			hung := f.hung
			f.mu.Unlock()
			if hung {
				continue
			}
			switch typ {
			case 1:
				nc.Write([]byte{0x20, 2, 0, 0}) //nolint:errcheck
			case 12:
				nc.Write([]byte{0xD0, 0}) //nolint:errcheck
			case 8:
				if len(body) >= 2 {
					nc.Write([]byte{0x90, 3, body[0], body[1], 0}) //nolint:errcheck
				}
			case 14:
				return
			}
		}
	}
}

// act fires the fault; true when the connection is gone.
func (f *fake) act([]byte) bool {
	switch f.fault {
	case "crash":
		f.stop()
		return true
	case "hang":
		f.mu.Lock()
		f.hung = true
		f.mu.Unlock()
	case "grow":
		f.mu.Lock()
		if f.held == nil {
			f.held = bytes.Repeat([]byte{1}, 64<<20)
		}
		f.mu.Unlock()
	}
	return false
}

// frame splits the first packet off b by its fixed header.
func frame(b []byte) (typ byte, body []byte, size int, ok bool) {
	if len(b) < 2 {
		return 0, nil, 0, false
	}
	n, mul := 0, 1
	for i := 1; i < len(b) && i <= 4; i++ {
		n += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			if len(b) < 1+i+n {
				return 0, nil, 0, false
			}
			return b[0] >> 4, b[1+i : 1+i+n], 1 + i + n, true
		}
		mul *= 128
	}
	return 0, nil, 0, false
}

func declared(b []byte) int {
	n, mul := 0, 1
	for i := 1; i < len(b) && i <= 4; i++ {
		n += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			break
		}
		mul *= 128
	}
	return n
}

// subscribeCut matches a 3.1.1 SUBSCRIBE whose last topic filter ends the
// packet, with no options byte (mochi-mqtt's issue #501).
func subscribeCut(typ byte, body []byte) bool {
	if typ != 8 || len(body) < 2 {
		return false
	}
	for off := 2; off+2 <= len(body); {
		end := off + 2 + (int(body[off])<<8 | int(body[off+1]))
		if end == len(body) {
			return true
		}
		off = end + 1
	}
	return false
}

// reference starts the in-process broker with a panic watch.
func reference(t *testing.T) (*Target, *PanicWatch) {
	t.Helper()
	w := &PanicWatch{}
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Logger: slog.New(w)})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tg := NewTarget("inproc", srv.Addrs()[0].String(), 0)
	tg.Panics = w.Count
	return tg, w
}

// fast timing for tests on loopback.
var fast = Timing{Liveness: 500 * time.Millisecond, Answer: 200 * time.Millisecond}

func v311Case(ps ...packetgen.Packet) Case {
	var b []byte
	for _, p := range ps {
		b = packetgen.AppendUnchecked(b, p, packetgen.V311)
	}
	return judged(Case{Version: packetgen.V311, Generator: GenUnusual, Class: "test", Phase: packetgen.PhaseAfterConnect, Bytes: b})
}

// v5Fake is a 5.0 broker that answers CONNECT and PINGREQ and meets the
// first packet the codec calls malformed by writing answer (a DISCONNECT,
// or nothing) and then doing after: "close" the connection, stay "open"
// and go on serving, or stay open but "mute".
func v5Fake(t *testing.T, answer []byte, after string) *Target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go serveV5(nc, answer, after)
		}
	}()
	return NewTarget("v5 fake", l.Addr().String(), 0)
}

func serveV5(nc net.Conn, answer []byte, after string) {
	defer nc.Close()
	dec := packetgen.Decoder{Version: packetgen.V5, Side: packetgen.FromClient}
	var buf []byte
	tmp := make([]byte, 4096)
	mute := false
	for {
		n, err := nc.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		for {
			typ, _, size, ok := frame(buf)
			if !ok {
				break
			}
			whole := buf[:size]
			buf = buf[size:]
			if mute {
				continue
			}
			if _, _, err := dec.Decode(whole); err != nil {
				nc.Write(answer) //nolint:errcheck
				switch after {
				case "close":
					return
				case "mute":
					mute = true
				}
				continue
			}
			switch typ {
			case 1:
				nc.Write([]byte{0x20, 3, 0, 0, 0}) //nolint:errcheck
			case 12:
				nc.Write([]byte{0xD0, 0}) //nolint:errcheck
			case 14:
				return
			}
		}
	}
}
