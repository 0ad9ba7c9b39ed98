package fuzz

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

// Target is the broker under test.
type Target struct {
	// Name is how reports name the broker: a URL, or "inproc (addr)".
	Name string
	// Panics, when set, counts the panics the broker has logged so far
	// (the in-process broker recovers them per connection): a rise during
	// a case is a crash.
	Panics func() int64
	// Restart, when set, starts the broker again after a crash or a hang
	// and returns its new address and process ID (0 when unknown).
	Restart func(ctx context.Context) (addr string, pid int, err error)

	mu     sync.Mutex
	addr   string
	pid    int
	dialer *transport.Dialer
	err    error // from building the dialer
	seq    atomic.Uint64
}

// NewTarget returns a target at addr (host:port) over plain TCP; pid is
// the broker's process ID, 0 when unknown.
func NewTarget(name, addr string, pid int) *Target {
	t := &Target{Name: name, addr: addr, pid: pid}
	t.dialer, t.err = transport.NewDialer("tcp://"+addr, transport.Options{})
	return t
}

// NewURLTarget returns a target reached through a transport URL (tcp://,
// tls://, ws://, wss://) with opts; a restart keeps the URL and options
// and changes only the host:port.
func NewURLTarget(name, url string, opts transport.Options, pid int) (*Target, error) {
	d, err := transport.NewDialer(url, opts)
	if err != nil {
		return nil, err
	}
	if d.URL().Inproc() {
		return nil, fmt.Errorf("%s: the fuzzer needs a broker on a socket", url)
	}
	return &Target{Name: name, addr: d.URL().Host, pid: pid, dialer: d}, nil
}

// Addr is the broker's address now (a restart may change it).
func (t *Target) Addr() string { t.mu.Lock(); defer t.mu.Unlock(); return t.addr }

// PID is the broker's process ID now, 0 when unknown.
func (t *Target) PID() int { t.mu.Lock(); defer t.mu.Unlock(); return t.pid }

func (t *Target) panics() int64 {
	if t.Panics == nil {
		return 0
	}
	return t.Panics()
}

// restart starts the broker again; false when the target cannot.
func (t *Target) restart(ctx context.Context) error {
	if t.Restart == nil {
		return errors.New("no way to restart the broker (see --restart)")
	}
	addr, pid, err := t.Restart(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dialer != nil {
		d, err := t.dialer.WithHost(addr)
		if err != nil {
			return fmt.Errorf("the restarted broker's address: %v", err)
		}
		t.dialer = d
	}
	t.addr, t.pid = addr, pid
	return nil
}

// errLocal marks a failure on our side of the connection (no ephemeral
// port left): never the broker's fault.
var errLocal = errors.New("local resource exhausted")

// dial connects with a deadline (TLS and WebSocket handshakes included).
// Our side closes with RST (linger 0), so tens of thousands of short
// connections leave no TIME_WAIT behind.
func (t *Target) dial(ctx context.Context, d time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t.mu.Lock()
	dialer, err := t.dialer, t.err
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	nc, err := dialer.DialContext(ctx)
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			return nil, fmt.Errorf("%w: %v", errLocal, err)
		}
		return nil, err
	}
	if tc, ok := transport.TCPConn(nc); ok {
		tc.SetLinger(0) //nolint:errcheck
	}
	return nc, nil
}

// clientID returns a client identifier no other connection of this run
// uses (23 characters at most, as 3.1 requires).
func (t *Target) clientID(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%10000, t.seq.Add(1))
}

// Probe results.
const (
	ProbeOK      = ""
	ProbeRefused = "refused" // connection refused, or the process is gone: a crash
	ProbeClosed  = "closed"  // accepted, then closed without CONNACK
	ProbeTimeout = "timeout" // no CONNACK or PINGRESP in time: a hang
	ProbeLocal   = "local"   // our side ran out of ports or files
)

// Probe is the result of a liveness check.
type Probe struct {
	Failure string // one of the Probe* constants
	Detail  string
	Took    time.Duration
}

// Alive reports a broker that answered CONNECT and PINGREQ (or refused
// the CONNECT in a CONNACK, which is an answer too).
func (p Probe) Alive() bool { return p.Failure == ProbeOK }

// Probe checks the broker is alive: the process exists (when its ID is
// known), a fresh connection is accepted, CONNECT is answered and, when
// accepted, PINGREQ too, each within d.
func (t *Target) Probe(ctx context.Context, v packetgen.Version, d time.Duration) Probe {
	start := time.Now()
	p := t.probe(ctx, v, d)
	p.Took = time.Since(start)
	if pid := t.PID(); pid > 0 && (p.Failure == ProbeClosed || p.Failure == ProbeRefused) {
		// A dying process resets connections before it is gone: say so.
		time.Sleep(50 * time.Millisecond)
		if !processAlive(pid) && !strings.HasPrefix(p.Detail, "process") {
			p.Failure, p.Detail = ProbeRefused, fmt.Sprintf("process %d is gone (%s)", pid, p.Detail)
		}
	}
	return p
}

func (t *Target) probe(ctx context.Context, v packetgen.Version, d time.Duration) Probe {
	if pid := t.PID(); pid > 0 && !processAlive(pid) {
		return Probe{Failure: ProbeRefused, Detail: fmt.Sprintf("process %d is gone", pid)}
	}
	nc, err := t.dial(ctx, d)
	switch {
	case errors.Is(err, errLocal):
		return Probe{Failure: ProbeLocal, Detail: err.Error()}
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		return Probe{Failure: ProbeTimeout, Detail: "connect: " + err.Error()}
	case err != nil:
		return Probe{Failure: ProbeRefused, Detail: err.Error()}
	}
	c := wire.New(nc, "probe", v, nil)
	defer c.Close()
	if err := c.Send(&packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60, ClientID: t.clientID("fzp")}); err != nil {
		return Probe{Failure: ProbeClosed, Detail: "writing CONNECT: " + err.Error()}
	}
	p, err := c.Recv(d)
	switch {
	case errors.Is(err, wire.ErrTimeout):
		return Probe{Failure: ProbeTimeout, Detail: fmt.Sprintf("no CONNACK within %s", d)}
	case errors.Is(err, wire.ErrClosed):
		return Probe{Failure: ProbeClosed, Detail: "closed before CONNACK: " + err.Error()}
	case err != nil:
		return Probe{} // a malformed answer is still an answer
	}
	if ack, ok := p.(*packetgen.Connack); !ok || ack.ReasonCode != 0 {
		return Probe{}
	}
	if err := c.SendRaw(pingreq, "PINGREQ"); err != nil {
		return Probe{Failure: ProbeClosed, Detail: "writing PINGREQ: " + err.Error()}
	}
	deadline := time.Now().Add(d)
	for {
		p, err := c.Recv(time.Until(deadline))
		switch {
		case errors.Is(err, wire.ErrTimeout):
			return Probe{Failure: ProbeTimeout, Detail: fmt.Sprintf("no PINGRESP within %s", d)}
		case errors.Is(err, wire.ErrClosed):
			return Probe{Failure: ProbeClosed, Detail: "closed before PINGRESP: " + err.Error()}
		case err != nil:
			return Probe{}
		}
		if _, ok := p.(*packetgen.Pingresp); ok {
			c.SendRaw(disconnect, "DISCONNECT") //nolint:errcheck
			return Probe{}
		}
	}
}

var (
	pingreq    = []byte{0xC0, 0x00}
	disconnect = []byte{0xE0, 0x00}
)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// RSS reads the resident set size of the broker process in bytes; 0 when
// the process is unknown or gone.
func (t *Target) RSS() int64 {
	pid := t.PID()
	if pid <= 0 {
		return 0
	}
	return readRSS(pid)
}

func readRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
