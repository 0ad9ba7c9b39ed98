package main

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// brokerProxy stands between the suite and a broker and changes what the
// broker sends, packet by packet, to play a broker that behaves another
// way: edit gets each packet from the broker as a frame and returns the
// frame to forward and how long to hold it first (holding one holds the
// ones after it, as a slow broker would). What clients send passes as it
// is. toxiproxy works on bytes; these faults need packet boundaries.
type brokerProxy struct {
	ln       net.Listener
	upstream string
	edit     func(packetgen.Frame) (packetgen.Frame, time.Duration)
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

// startProxy listens on 127.0.0.1:0 and returns the address to dial.
func startProxy(t *testing.T, upstream string, edit func(packetgen.Frame) (packetgen.Frame, time.Duration)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &brokerProxy{ln: ln, upstream: upstream, edit: edit}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return ln.Addr().String()
}

func (p *brokerProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // client -> broker, as it is
			defer p.wg.Done()
			io.Copy(b, c) //nolint:errcheck
			b.Close()
		}()
		go func() { // broker -> client, packet by packet
			defer p.wg.Done()
			defer c.Close()
			rd := packetgen.NewReader(b, packetgen.Decoder{Version: packetgen.V311, Side: packetgen.FromServer})
			for {
				h, err := rd.ReadHeader()
				if err != nil {
					return
				}
				body, err := rd.ReadBody(h)
				if err != nil {
					return
				}
				f, hold := p.edit(packetgen.Frame{Header: byte(h.Type)<<4 | h.Flags, Body: body, Length: packetgen.LengthAuto})
				time.Sleep(hold)
				if _, err := c.Write(f.Bytes()); err != nil {
					return
				}
			}
		}()
	}
}

func (p *brokerProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// pubackForPubrec answers QoS 2 PUBLISH packets with PUBACK, as RabbitMQ
// 3.10 does: every PUBREC from the broker becomes a PUBACK of the same
// identifier.
func pubackForPubrec(f packetgen.Frame) (packetgen.Frame, time.Duration) {
	if f.Type() == packetgen.TypePubrec {
		f = f.WithType(packetgen.TypePuback)
	}
	return f, 0
}

// holding returns an edit that holds every packet of type t for d.
func holding(t packetgen.Type, d time.Duration) func(packetgen.Frame) (packetgen.Frame, time.Duration) {
	return func(f packetgen.Frame) (packetgen.Frame, time.Duration) {
		if f.Type() == t {
			return f, d
		}
		return f, 0
	}
}
