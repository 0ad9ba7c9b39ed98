package faults

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"

	"github.com/mqttbench/mqttbench/broker"
)

// echoServer echoes every connection on 127.0.0.1 and records the size
// of every read.
type echoServer struct {
	ln    net.Listener
	mu    sync.Mutex
	reads []int
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.mu.Lock()
						e.reads = append(e.reads, n)
						e.mu.Unlock()
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return e
}

func (e *echoServer) addr() string { return e.ln.Addr().String() }

func (e *echoServer) readSizes() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.reads...)
}

func newProxies(t *testing.T, upstream string, groups []string, server string) *Proxies {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := NewProxies(ctx, []string{upstream}, groups, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// roundTrip sends a line and reads it back, returning how long it took.
func roundTrip(t *testing.T, nc net.Conn) time.Duration {
	t.Helper()
	msg := []byte("ping through the proxy\n")
	nc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	start := time.Now()
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo %q; want %q", got, msg)
	}
	return time.Since(start)
}

func inject(t *testing.T, p *Proxies, spec, id string) {
	t.Helper()
	sp, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Inject(ctx, sp, id); err != nil {
		t.Fatal(err)
	}
}

func heal(t *testing.T, p *Proxies, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Heal(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// remoteToxiproxy serves toxiproxy's HTTP API on 127.0.0.1:0: the routes
// of ApiServer.Listen, which cannot pick a port itself.
func remoteToxiproxy(t *testing.T) string {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	r := mux.NewRouter()
	r.HandleFunc("/proxies", api.ProxyCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", api.ProxyShow).Methods("GET")
	r.HandleFunc("/proxies/{proxy}", api.ProxyUpdate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", api.ProxyDelete).Methods("DELETE")
	r.HandleFunc("/proxies/{proxy}/toxics", api.ToxicCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", api.ToxicDelete).Methods("DELETE")
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		srv.Close()
		api.Collection.Clear() //nolint:errcheck
	})
	return srv.URL
}

// backends runs a test against toxiproxy in this process and against a
// toxiproxy server driven over its API (--toxiproxy).
func backends(t *testing.T, f func(t *testing.T, server string)) {
	t.Run("inproc", func(t *testing.T) { f(t, "") })
	t.Run("server", func(t *testing.T) { f(t, remoteToxiproxy(t)) })
}

// Latency delays each way: a round trip takes at least twice as long.
func TestProxyLatency(t *testing.T) {
	backends(t, func(t *testing.T, server string) {
		e := startEcho(t)
		p := newProxies(t, e.addr(), nil, server)
		nc := dialT(t, p.Addr(e.addr(), ""))
		if d := roundTrip(t, nc); d >= 100*time.Millisecond {
			t.Fatalf("a round trip without a fault took %s", d)
		}
		inject(t, p, "latency=100ms@0s", "lat")
		if d := roundTrip(t, nc); d < 200*time.Millisecond {
			t.Fatalf("a round trip with 100ms each way took %s", d)
		}
		heal(t, p, "lat")
		if d := roundTrip(t, nc); d >= 100*time.Millisecond {
			t.Fatalf("a round trip after healing took %s", d)
		}
	})
}

// The slicer cuts writes: the server reads at most N bytes at a time.
func TestProxySlicer(t *testing.T) {
	e := startEcho(t)
	p := newProxies(t, e.addr(), nil, "")
	inject(t, p, "slicer=8,delay=1ms@0s", "slice")
	nc := dialT(t, p.Addr(e.addr(), ""))
	msg := bytes.Repeat([]byte("0123456789"), 20)
	nc.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the bytes changed on the way")
	}
	// The slicer writes at most 8 bytes at a time, 1 ms apart; a reader
	// scheduled late may find several slices waiting and read them at
	// once, so most reads, not all, are that small. Without the slicer
	// the 200 bytes come in one or two reads.
	sizes := e.readSizes()
	total := 0
	for _, n := range sizes {
		total += n
	}
	sorted := slices.Sorted(slices.Values(sizes))
	if total != len(msg) || len(sizes) < len(msg)/16 || sorted[len(sorted)/2] > 8 {
		t.Fatalf("reads %v: want most of them at most 8 bytes", sizes)
	}
}

// A reset cuts a connection that carries a byte; after healing, new
// connections work.
func TestProxyReset(t *testing.T) {
	backends(t, func(t *testing.T, server string) {
		e := startEcho(t)
		p := newProxies(t, e.addr(), nil, server)
		addr := p.Addr(e.addr(), "")
		nc := dialT(t, addr)
		roundTrip(t, nc)
		inject(t, p, "reset@0s", "rst")
		nc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		nc.Write([]byte("x"))                           //nolint:errcheck // the reset shows on the read
		_, err := nc.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("read after the reset: %v; want the connection closed", err)
		}
		// A connection made during the reset is reset (RST) too.
		nc2 := dialT(t, addr)
		nc2.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		nc2.Write([]byte("x"))                           //nolint:errcheck
		if _, err := nc2.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("read on a new connection during the reset: %v", err)
		}
		heal(t, p, "rst")
		roundTrip(t, dialT(t, addr))
	})
}

// mqttBroker is the reference broker on 127.0.0.1:0.
func mqttBroker(t *testing.T) string {
	t.Helper()
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addrs()[0].String()
}

// Raw MQTT 3.1.1 packets.
var (
	pingreq  = []byte{0xC0, 0}
	pingresp = []byte{0xD0, 0}
	connack  = []byte{0x20, 2, 0, 0}
)

func connectPacket(id string) []byte {
	b := []byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, byte(len(id))}
	return append(b, id...)
}

// mqttConn connects and subscribes to topic t (when subscribe is set).
func mqttConn(t *testing.T, addr, id string, subscribe bool) net.Conn {
	t.Helper()
	nc := dialT(t, addr)
	expect(t, nc, connectPacket(id), connack)
	if subscribe {
		expect(t, nc, []byte{0x82, 6, 0, 1, 0, 1, 't', 0}, []byte{0x90, 3, 0, 1, 0})
	}
	return nc
}

// expect writes out and reads want back within 5 s.
func expect(t *testing.T, nc net.Conn, out, want []byte) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("waiting for % x: %v", want, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x; want % x", got, want)
	}
}

// silent checks nothing arrives on nc for d and the connection stays
// open (the read times out rather than ending).
func silent(t *testing.T, nc net.Conn, d time.Duration, what string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck
	n, err := nc.Read(make([]byte, 16))
	var ne net.Error
	if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: read %d bytes, %v; want silence on an open connection", what, n, err)
	}
}

// A blackhole keeps connections open and silent both ways: a PINGREQ
// goes unanswered, and a message published to the client's subscription
// (by a client that reaches the broker directly) never arrives.
func TestProxyBlackhole(t *testing.T) {
	backends(t, func(t *testing.T, server string) {
		b := mqttBroker(t)
		p := newProxies(t, b, nil, server)
		sub := mqttConn(t, p.Addr(b, ""), "sub", true)
		expect(t, sub, pingreq, pingresp)
		inject(t, p, "blackhole@0s", "hole")
		sub.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		if _, err := sub.Write(pingreq); err != nil {
			t.Fatal(err)
		}
		silent(t, sub, time.Second, "PINGREQ in the blackhole")
		pub := mqttConn(t, b, "pub", false)
		pub.Write([]byte{0x30, 5, 0, 1, 't', 'h', 'i'}) //nolint:errcheck
		silent(t, sub, 500*time.Millisecond, "a PUBLISH in the blackhole")
		// A new connection gets no CONNACK either.
		nc := dialT(t, p.Addr(b, ""))
		nc.Write(connectPacket("late")) //nolint:errcheck
		silent(t, nc, 500*time.Millisecond, "CONNECT in the blackhole")
		heal(t, p, "hole")
		// Healing closes the blackholed connections (toxiproxy's timeout
		// toxic cleans up that way); new ones work.
		mqttConn(t, p.Addr(b, ""), "again", false)
	})
}

// A fault on a group reaches that group's listener only.
func TestProxyGroup(t *testing.T) {
	e := startEcho(t)
	p := newProxies(t, e.addr(), []string{"publishers", "subscribers"}, "")
	pubAddr, subAddr := p.Addr(e.addr(), "publishers"), p.Addr(e.addr(), "subscribers")
	if pubAddr == "" || subAddr == "" || pubAddr == subAddr {
		t.Fatalf("listeners %q and %q", pubAddr, subAddr)
	}
	pub, sub := dialT(t, pubAddr), dialT(t, subAddr)
	inject(t, p, "latency=150ms@0s:group=subscribers", "part")
	if d := roundTrip(t, pub); d >= 100*time.Millisecond {
		t.Errorf("publishers' round trip took %s; the fault was on subscribers", d)
	}
	if d := roundTrip(t, sub); d < 300*time.Millisecond {
		t.Errorf("subscribers' round trip took %s; want 150ms each way", d)
	}
}

// toxiproxy logs nothing on our stderr: its proxies log to the Nop
// logger we give them, and its bandwidth toxic to zerolog's global
// logger (stderr, captured when zerolog starts), which we silence.
func TestProxyQuiet(t *testing.T) {
	e := startEcho(t)
	newProxies(t, e.addr(), nil, "")
	if l := zlog.Logger.GetLevel(); l != zerolog.Disabled {
		t.Fatalf("zerolog's global logger logs at %s", l)
	}
}

func TestNewProxiesErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, tc := range []struct{ server, want string }{
		{"ftp://x", "--toxiproxy \"ftp://x\": want the server's API address"},
		{"http://127.0.0.1:1", "fault proxy for 127.0.0.1:9: "},
	} {
		_, err := NewProxies(ctx, []string{"127.0.0.1:9"}, nil, tc.server)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.server, err, tc.want)
		}
	}
}
