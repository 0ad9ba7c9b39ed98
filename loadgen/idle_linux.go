package loadgen

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// An idle connection has nothing to read but the odd PINGRESP, yet a
// reader goroutine parked on it costs a 2 KiB stack and its g: most of
// what a connection costs. On Linux idle connections are watched instead
// by one goroutine on an epoll set of their own (the runtime's poller
// keeps its registration, harmlessly: nobody waits on it), which reads
// them without blocking when the kernel says there is something to read.
//
// A connection this side closes (a keep alive timeout, a failed write,
// the end of the run) leaves the epoll set by itself when its descriptor
// closes, without an event, so the watcher sweeps its connections every
// sweepEvery for ones that failed or a run that stopped.
//
// A TLS connection is watched the same way, on its TCP socket, and read
// through crypto/tls: the socket under it is an nbConn, whose reads the
// watcher makes non-blocking, so a read that finds no whole record
// returns at once and keeps what it read for the next.

const sweepEvery = 200 * time.Millisecond

type idleConn struct {
	c    *client
	conn net.Conn
	raw  syscall.RawConn
	nb   *nbConn // TLS connections: the socket under crypto/tls
	rd   *reader
	st   *connState
}

// nbConn is a TCP connection under TLS that the idle watcher can read
// without blocking: once nonblock is set, Read returns errWouldBlock when
// the socket has nothing, and crypto/tls passes that on without failing
// the connection (it is a temporary net.Error).
type nbConn struct {
	*net.TCPConn
	raw      syscall.RawConn
	nonblock atomic.Bool
}

// wrapNonblocking is the transport's WrapConn hook for TLS connections.
func wrapNonblocking(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &nbConn{TCPConn: tc, raw: raw}
}

func (c *nbConn) Read(p []byte) (int, error) {
	if !c.nonblock.Load() {
		return c.TCPConn.Read(p)
	}
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true // never wait
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// NetConn is the TCP connection, for transport.TCPConn.
func (c *nbConn) NetConn() net.Conn { return c.TCPConn }

// wouldBlock is a non-blocking read that found nothing to read.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "read would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

type idleWatcher struct {
	a    *attack
	epfd int

	mu      sync.Mutex
	conns   []*idleConn // by the client's position in a.clients
	n       int
	started bool
	exited  bool
	done    chan struct{}
}

// newIdleWatcher returns nil where epoll is not available.
func newIdleWatcher(a *attack) *idleWatcher {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	return &idleWatcher{a: a, epfd: fd, conns: make([]*idleConn, len(a.clients)), done: make(chan struct{})}
}

// watch takes over reading conn for idle client c at position pos; false
// means it cannot (not a socket), and the caller serves it.
func (w *idleWatcher) watch(pos int, c *client, conn net.Conn, rd *reader, st *connState) bool {
	if rd.w > rd.r { // bytes left by the handshake: let a reader have them
		return false
	}
	ic := &idleConn{c: c, conn: conn, rd: rd, st: st}
	switch tc := conn.(type) {
	case *tls.Conn:
		nb, ok := tc.NetConn().(*nbConn)
		if !ok {
			return false
		}
		ic.nb, ic.raw = nb, nb.raw
		// crypto/tls may hold records read with the handshake's last
		// ones, which no event would announce: read them now.
		nb.nonblock.Store(true)
		if !drainTLS(c, tc, rd, st) {
			nb.nonblock.Store(false)
			return false
		}
	case syscall.Conn:
		raw, err := tc.SyscallConn()
		if err != nil {
			return false
		}
		ic.raw = raw
	default:
		return false
	}
	unwatch := func() {
		if ic.nb != nil {
			ic.nb.nonblock.Store(false)
		}
	}
	w.mu.Lock()
	if w.exited || w.a.stopped() {
		w.mu.Unlock()
		unwatch()
		return false
	}
	w.conns[pos] = ic
	w.n++
	if !w.started {
		w.started = true
		go w.run()
	}
	w.mu.Unlock()
	var cerr error
	err := ic.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(pos)}
		cerr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		w.mu.Lock()
		w.conns[pos] = nil
		w.n--
		w.mu.Unlock()
		unwatch()
		return false
	}
	return true
}

func (w *idleWatcher) run() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 256)
	last := time.Now()
	wait := int(sweepEvery / time.Millisecond)
	for {
		n, err := syscall.EpollWait(w.epfd, events, wait)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			n = 0
		}
		// While events keep coming, look for more without blocking: a
		// blocking wait gives up the processor, and on a busy generator
		// the watcher would then queue behind every other goroutine for
		// each batch (keep alive answers going unread).
		wait = int(sweepEvery / time.Millisecond)
		if n > 0 {
			wait = 0
		}
		for _, ev := range events[:max(n, 0)] {
			pos := int(ev.Fd)
			w.mu.Lock()
			ic := w.conns[pos]
			w.mu.Unlock()
			if ic != nil {
				w.service(pos, ic)
			}
		}
		stopped := w.a.stopped()
		if stopped || time.Since(last) >= sweepEvery {
			last = time.Now()
			if w.sweep(stopped) == 0 && stopped && w.exit() {
				return
			}
		}
	}
}

// exit ends the watcher unless a connection arrived meanwhile.
func (w *idleWatcher) exit() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 {
		return false
	}
	w.exited = true
	syscall.Close(w.epfd) //nolint:errcheck
	return true
}

// wait waits for the watcher to end, after the run stopped.
func (w *idleWatcher) wait() {
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.done
	}
}

// drainTLS handles what tc has to read until it would block; false
// leaves the connection to a reader goroutine: a packet is incomplete, or
// the connection failed (the reader reports it).
func drainTLS(c *client, tc *tls.Conn, rd *reader, st *connState) bool {
	for {
		n, err := tc.Read(rd.buf[rd.w:])
		if n > 0 {
			rd.w += n
			if perr := c.parse(rd, st); perr != nil {
				c.fail(perr)
				return false
			}
			c.mu.Lock()
			c.flushLocked()
			c.mu.Unlock()
			if rd.w > rd.r {
				return false
			}
			continue
		}
		return err == errWouldBlock
	}
}

// makeRoom makes room at the end of the buffer for a read.
func (rd *reader) makeRoom() {
	if rd.w < len(rd.buf) {
		return
	}
	if rd.r > 0 {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
		return
	}
	nb := make([]byte, 2*len(rd.buf))
	copy(nb, rd.buf[:rd.w])
	rd.buf = nb
}

// service reads what the connection has, without blocking.
func (w *idleWatcher) service(pos int, ic *idleConn) {
	if ic.nb != nil {
		w.serviceTLS(pos, ic)
		return
	}
	c, rd := ic.c, ic.rd
	rd.makeRoom()
	var n int
	var rerr error
	err := ic.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), rd.buf[rd.w:])
		return true // never wait: the caller polls
	})
	switch {
	case err != nil:
		w.finish(pos, ic, err)
		return
	case errors.Is(rerr, syscall.EAGAIN):
		return
	case rerr != nil:
		w.finish(pos, ic, rerr)
		return
	case n == 0:
		w.finish(pos, ic, io.EOF)
		return
	}
	rd.w += n
	if err := c.parse(rd, ic.st); err != nil {
		w.finish(pos, ic, err)
		return
	}
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
}

// serviceTLS reads through crypto/tls until the socket has no more:
// records it already holds announce themselves by no event.
func (w *idleWatcher) serviceTLS(pos int, ic *idleConn) {
	c, rd := ic.c, ic.rd
	for {
		rd.makeRoom()
		n, err := ic.conn.Read(rd.buf[rd.w:])
		rd.w += n
		if n > 0 {
			if perr := c.parse(rd, ic.st); perr != nil {
				w.finish(pos, ic, perr)
				return
			}
			c.mu.Lock()
			c.flushLocked()
			c.mu.Unlock()
		}
		switch {
		case err == errWouldBlock:
			return
		case err != nil:
			w.finish(pos, ic, err)
			return
		}
	}
}

// sweep ends the watch of connections that failed on this side, or of
// all when the run stopped; it returns how many are still watched.
func (w *idleWatcher) sweep(all bool) int {
	w.mu.Lock()
	var ended []int
	for pos, ic := range w.conns {
		if ic == nil {
			continue
		}
		if all {
			ended = append(ended, pos)
			continue
		}
		ic.c.mu.Lock()
		failed := ic.c.failed != nil
		ic.c.mu.Unlock()
		if failed {
			ended = append(ended, pos)
		}
	}
	w.mu.Unlock()
	for _, pos := range ended {
		w.mu.Lock()
		ic := w.conns[pos]
		w.mu.Unlock()
		if ic != nil {
			w.finish(pos, ic, net.ErrClosed)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// finish ends the watch of one connection the way a reader goroutine
// ends: drop it, and schedule the next attempt (or, stopping, nothing).
func (w *idleWatcher) finish(pos int, ic *idleConn, err error) {
	w.mu.Lock()
	if w.conns[pos] != ic {
		w.mu.Unlock()
		return
	}
	w.conns[pos] = nil
	w.n--
	w.mu.Unlock()
	ic.raw.Control(func(fd uintptr) { //nolint:errcheck // closed already: it left the set then
		syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) //nolint:errcheck
	})
	ic.c.retry(ic.c.drop(ic.conn, err), true)
}
