package loadgen

import (
	"errors"
	"io"
	"net"
	"sync"
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

const sweepEvery = 200 * time.Millisecond

type idleConn struct {
	c    *client
	conn net.Conn
	raw  syscall.RawConn
	rd   *reader
	st   *connState
}

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
	sc, ok := conn.(syscall.Conn)
	if !ok || rd.w > rd.r { // bytes left by the handshake: let a reader have them
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ic := &idleConn{c: c, conn: conn, raw: raw, rd: rd, st: st}
	w.mu.Lock()
	if w.exited || w.a.stopped() {
		w.mu.Unlock()
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
	err = raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(pos)}
		cerr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		w.mu.Lock()
		w.conns[pos] = nil
		w.n--
		w.mu.Unlock()
		return false
	}
	return true
}

func (w *idleWatcher) run() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 256)
	last := time.Now()
	for {
		n, err := syscall.EpollWait(w.epfd, events, int(sweepEvery/time.Millisecond))
		if err != nil && !errors.Is(err, syscall.EINTR) {
			n = 0
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

// service reads what the connection has, without blocking.
func (w *idleWatcher) service(pos int, ic *idleConn) {
	c, rd := ic.c, ic.rd
	if rd.w == len(rd.buf) {
		if rd.r > 0 {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.r = 0
		} else {
			nb := make([]byte, 2*len(rd.buf))
			copy(nb, rd.buf[:rd.w])
			rd.buf = nb
		}
	}
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
