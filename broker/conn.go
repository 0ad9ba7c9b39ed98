package broker

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// conn is one network connection. Its reader runs in ServeConn; a writer
// goroutine drains the outgoing queue, so a slow client never blocks the
// clients publishing to it.
type conn struct {
	srv *Server
	nc  net.Conn
	rd  *packetgen.Reader
	enc packetgen.Encoder

	sess      *session
	keepalive time.Duration
	will      *message

	// The writer goroutine runs only while there is something to send, so
	// an idle connection costs one goroutine, not two.
	qmu     sync.Mutex
	queue   []packetgen.Packet
	writing bool // a writer (goroutine or the reader inline) is running
	closed  bool // no writer starts any more
	// handling: the reader is acting on packets it has read and will
	// write what they queued itself before it reads again (flushOwn), so
	// an answer costs no goroutine and a burst of packets one write.
	handling bool
	// raw is the socket, for writes that must not wait; nil when the
	// connection is not a socket (an in-memory pipe, TLS).
	raw     syscall.RawConn
	writers sync.WaitGroup
	done    chan struct{} // closed when the connection is closing
	closing sync.Once
	reason  error
}

func newConn(srv *Server, nc net.Conn) *conn {
	c := &conn{srv: srv, nc: nc, done: make(chan struct{})}
	c.rd = packetgen.NewReader(nc, packetgen.Decoder{Side: packetgen.FromClient, MaxPacketSize: srv.opts.MaxPacketSize})
	c.enc = packetgen.Encoder{Version: packetgen.V311, Side: packetgen.FromServer}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// Reasons a connection ends. Only a DISCONNECT keeps the will unpublished.
var (
	errDisconnect = errors.New("client sent DISCONNECT")
	errTakenOver  = errors.New("session taken over by a new connection")
	errKeepalive  = errors.New("keep alive expired")
)

// send queues p for the writer, starting one if none runs. Safe from any
// goroutine; after close it drops p.
func (c *conn) send(p packetgen.Packet) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.closed {
		return
	}
	c.queue = append(c.queue, p)
	if !c.writing && !c.handling {
		c.writing = true
		c.writers.Add(1)
		go c.writer(nil)
	}
}

// beginHandling marks the reader as acting on a packet: what is sent
// meanwhile waits for flushOwn.
func (c *conn) beginHandling() {
	c.qmu.Lock()
	c.handling = true
	c.qmu.Unlock()
}

// flushOwn ends handling: unless a writer runs, the reader encodes what
// is queued and writes it itself without blocking (a TCP socket's buffer
// takes it at once); what the socket does not take, and everything when
// the connection is not a socket, goes to a writer goroutine, so a client
// that does not read never stops the reader.
func (c *conn) flushOwn() {
	c.qmu.Lock()
	c.handling = false
	if c.writing || c.closed || len(c.queue) == 0 {
		c.qmu.Unlock()
		return
	}
	c.writing = true
	c.writers.Add(1)
	if c.raw == nil {
		c.qmu.Unlock()
		go c.writer(nil)
		return
	}
	batch := c.queue
	c.queue = nil
	c.qmu.Unlock()

	bp := writeBufs.Get().(*[]byte)
	buf := c.encode((*bp)[:0], batch)
	rest, err := c.tryWrite(buf)
	if err != nil {
		c.close(fmt.Errorf("write: %w", err))
	}
	if len(rest) > 0 && err == nil {
		// The writer owns the buffer now and returns it to the pool.
		go c.writer(bp, rest...)
		return
	}
	putWriteBuf(bp, buf)
	c.qmu.Lock()
	if len(c.queue) > 0 && !c.closed {
		c.qmu.Unlock()
		go c.writer(nil) // c.writing stays true: the role passes on
		return
	}
	c.writing = false
	c.qmu.Unlock()
	c.writers.Done()
}

// tryWrite writes b to the socket without waiting and returns what the
// socket's buffer did not take.
func (c *conn) tryWrite(b []byte) (rest []byte, err error) {
	ctlErr := c.raw.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, werr := syscall.Write(int(fd), b)
			if n > 0 {
				b = b[n:]
			}
			switch {
			case werr == syscall.EINTR:
				continue
			case werr == syscall.EAGAIN:
				return true
			case werr != nil:
				err = werr
				return true
			}
		}
		return true
	})
	if err == nil {
		err = ctlErr
	}
	return b, err
}

// close starts closing the connection for reason; the first reason wins.
func (c *conn) close(reason error) {
	c.closing.Do(func() {
		c.qmu.Lock()
		c.closed = true
		c.qmu.Unlock()
		c.reason = reason
		close(c.done)
		// Unblock the reader and a writer stuck on a client that does not
		// read; serve closes the socket once both have stopped.
		past := time.Unix(1, 0)
		c.nc.SetReadDeadline(past)  //nolint:errcheck
		c.nc.SetWriteDeadline(past) //nolint:errcheck
	})
}

// writer writes queued packets until the queue is empty or the
// connection closes.
//
// A writer started by flushOwn first writes rest, the bytes of bp the
// socket did not take at once.
func (c *conn) writer(bp *[]byte, rest ...byte) {
	defer c.writers.Done()
	defer c.recoverPanic("writer")
	if bp != nil {
		_, err := c.nc.Write(rest)
		putWriteBuf(bp, *bp)
		if err != nil {
			c.close(fmt.Errorf("write: %w", err))
		}
	}
	for {
		c.qmu.Lock()
		batch := c.queue
		c.queue = nil
		if len(batch) == 0 || c.closed {
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
		c.writeBatch(batch)
	}
}

// writeBufs holds write buffers between batches: an idle connection keeps
// none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// flushAt is how much a batch encodes before it writes.
const flushAt = 64 << 10

func putWriteBuf(bp *[]byte, buf []byte) {
	if cap(buf) <= 1<<20 {
		*bp = buf[:0]
		writeBufs.Put(bp)
	}
}

// encode appends the encoding of batch to buf, counting PUBLISH packets.
func (c *conn) encode(buf []byte, batch []packetgen.Packet) []byte {
	for i, p := range batch {
		batch[i] = nil
		var err error
		n := len(buf)
		buf, err = c.enc.Append(buf, p)
		if err != nil {
			buf = buf[:n]
			c.srv.log.Error("encoding a packet failed", "client", c.clientID(), "packet", packetgen.Format(p), "err", err)
			continue
		}
		if p.Type() == packetgen.TypePublish {
			c.srv.stats.Sent.Add(1)
		}
	}
	return buf
}

// writeBatch encodes batch and writes it, flushAt bytes at most at a
// time; a write error closes the connection.
func (c *conn) writeBatch(batch []packetgen.Packet) {
	bp := writeBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for len(batch) > 0 {
		// Encode up to about flushAt bytes' worth, then write.
		k := 0
		for size := 0; k < len(batch) && size < flushAt; k++ {
			if p, ok := batch[k].(*packetgen.Publish); ok {
				size += len(p.Payload) + len(p.Topic)
			}
			size += 8
		}
		buf = c.encode(buf[:0], batch[:k])
		batch = batch[k:]
		if len(buf) == 0 {
			continue
		}
		if _, err := c.nc.Write(buf); err != nil {
			c.close(fmt.Errorf("write: %w", err))
			break
		}
	}
	putWriteBuf(bp, buf)
}

func (c *conn) clientID() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.id
}

// recoverPanic turns a panic while serving one connection into the end of
// that connection, logged with its stack; the broker goes on. It works only
// deferred directly (defer c.recoverPanic(...)): recover returns nil when
// called from a function the deferred one calls.
func (c *conn) recoverPanic(where string) {
	if r := recover(); r != nil {
		c.srv.log.Error("panic while serving a connection", "where", where, "client", c.clientID(),
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.close(fmt.Errorf("panic: %v", r))
	}
}

// serve reads packets until the connection ends, then cleans up: the will
// is published unless the client said DISCONNECT, and a clean session ends.
func (c *conn) serve() (err error) {
	defer func() {
		c.close(io.EOF)
		c.writers.Wait()
		c.nc.Close()
		c.finish()
		if c.reason != nil && !errors.Is(c.reason, errDisconnect) && !errors.Is(c.reason, io.EOF) {
			err = c.reason
		}
	}()
	// Deferred on its own and so run first: recover stops a panic only
	// when the deferred function itself calls it, and called from inside
	// the clean-up above it would return nil.
	defer c.recoverPanic("reader")
	if err := c.handshake(); err != nil {
		c.close(err)
		return err
	}
	for {
		if c.keepalive > 0 && !c.armRead(time.Now().Add(c.keepalive)) {
			return nil
		}
		p, err := c.rd.ReadPacket()
		if err != nil && !refusableFilter(p, err, c.enc.Version) {
			c.close(c.readError(err))
			return nil
		}
		c.beginHandling()
		if err := c.handle(p); err != nil {
			c.flushOwn() // a CONNACK or SUBACK queued before the end
			c.close(err)
			return nil
		}
		if !c.rd.PacketBuffered() {
			c.flushOwn()
		}
	}
}

// armRead sets the read deadline and reports whether the connection is
// still open. close moves the deadline into the past to stop the reader; a
// deadline set after that would undo it (a taken-over connection would stay
// open for its keep alive), so the check comes after the set: a close
// before it is seen here, a close after it moves the deadline again.
func (c *conn) armRead(t time.Time) bool {
	c.nc.SetReadDeadline(t) //nolint:errcheck
	select {
	case <-c.done:
		c.nc.SetReadDeadline(time.Unix(1, 0)) //nolint:errcheck
		return false
	default:
		return true
	}
}

// readError names why reading stopped.
func (c *conn) readError(err error) error {
	select {
	case <-c.done:
		return c.reason // closed from our side: keep that reason
	default:
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errKeepalive // MQTT-3.1.2-24: 1.5 x keep alive without a packet
	}
	if v := packetgen.AsViolation(err); v != nil {
		c.srv.log.Info("closing on a protocol violation", "client", c.clientID(), "err", err)
		return err
	}
	return err
}

// finish runs after the connection has closed.
func (c *conn) finish() {
	s := c.sess
	if s == nil {
		return
	}
	// A will goes out on every close but DISCONNECT (MQTT-3.1.2-8,
	// MQTT-3.1.2-10); a taken-over connection closes abnormally too.
	if c.will != nil && !errors.Is(c.reason, errDisconnect) && !c.srv.opts.Faults.DropWill {
		c.srv.publish(c.will)
	}
	c.srv.detach(s, c)
}

var errRefused = errors.New("connection refused in CONNACK")

// handshake reads CONNECT and answers it (§3.1.4).
func (c *conn) handshake() error {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.ConnectTimeout)) //nolint:errcheck
	p, err := c.rd.ReadPacket()
	if err != nil {
		if v := packetgen.AsViolation(err); v != nil {
			return c.refuseConnect(p, v)
		}
		return err
	}
	cp, ok := p.(*packetgen.Connect)
	if !ok {
		// MQTT-3.1.0-1: the first packet must be CONNECT.
		return fmt.Errorf("MQTT-3.1.0-1: first packet is %s, not CONNECT", p.Type())
	}
	if cp.ProtocolLevel == packetgen.V5 {
		// 5.0 is not served yet: answer as 3.1.1 does for an unsupported
		// level (MQTT-3.1.2-2).
		return c.refuse(packetgen.ConnRefusedProtocolVersion, "MQTT 5.0 is not supported")
	}
	c.enc.Version = cp.ProtocolLevel
	if rc := c.srv.authenticate(cp); rc != packetgen.ConnAccepted {
		return c.refuse(rc, "authentication failed")
	}
	clientID := cp.ClientID
	if clientID == "" {
		clientID = c.srv.clientID() // MQTT-3.1.3-6 (clean session is 1 here)
	}
	if cp.Will != nil {
		w := cp.Will
		c.will = &message{topic: []byte(w.Topic), payload: w.Payload, qos: w.QoS, retain: w.Retain}
	}
	if cp.KeepAlive > 0 && !c.srv.opts.Faults.IgnoreKeepalive {
		c.keepalive = time.Duration(float64(cp.KeepAlive) * c.srv.opts.KeepaliveGrace * float64(time.Second))
	}
	if !c.armRead(time.Time{}) {
		return c.reason
	}
	if !c.srv.attach(c, clientID, cp.CleanStart) {
		return ErrServerClosed
	}
	return nil
}

// refuseConnect answers a CONNECT the codec refused: an unsupported
// protocol level gets return code 1 (MQTT-3.1.2-2), a refused client
// identifier return code 2 (MQTT-3.1.3-8, -9); an unknown protocol name
// and any other violation close the connection without CONNACK.
func (c *conn) refuseConnect(p packetgen.Packet, v *packetgen.Violation) error {
	cp, _ := p.(*packetgen.Connect)
	switch {
	case cp != nil && v.Reason == packetgen.UnsupportedProtocolVersion && v.Rule == "MQTT-3.1.2-2":
		return c.refuse(packetgen.ConnRefusedProtocolVersion, v.Error())
	case cp != nil && v.Reason == packetgen.ClientIdentifierNotValid:
		if cp.ProtocolLevel.Valid() && cp.ProtocolLevel != packetgen.V5 {
			c.enc.Version = cp.ProtocolLevel
		}
		return c.refuse(packetgen.ConnRefusedIdentifierRejected, v.Error())
	}
	c.srv.log.Info("closing on a bad CONNECT", "err", v)
	return v
}

// refuse sends CONNACK with a refusing return code and closes
// (MQTT-3.2.2-5); session present is 0 (MQTT-3.2.2-4). It writes directly:
// before CONNECT is accepted nothing else is queued, and the write must be
// done before close cuts the connection.
func (c *conn) refuse(rc byte, why string) error {
	buf, err := c.enc.Append(nil, &packetgen.Connack{ReasonCode: packetgen.ReasonCode(rc)})
	if err == nil {
		c.nc.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck
		c.nc.Write(buf)                                    //nolint:errcheck
	}
	return fmt.Errorf("%w: code %d: %s", errRefused, rc, why)
}

// authenticate checks the user name and password against Options.Users.
func (s *Server) authenticate(cp *packetgen.Connect) byte {
	if s.opts.Users == nil {
		return packetgen.ConnAccepted
	}
	if !cp.UsernameFlag {
		if s.opts.AllowAnonymous {
			return packetgen.ConnAccepted
		}
		return packetgen.ConnRefusedNotAuthorized
	}
	want, ok := s.opts.Users[cp.Username]
	if !ok || !cp.PasswordFlag || subtle.ConstantTimeCompare([]byte(want), cp.Password) != 1 {
		return packetgen.ConnRefusedBadCredentials
	}
	return packetgen.ConnAccepted
}

// handle acts on one packet after CONNECT. An error closes the connection.
func (c *conn) handle(p packetgen.Packet) error {
	s := c.sess
	switch p := p.(type) {
	case *packetgen.Publish:
		return c.handlePublish(p)
	case *packetgen.Puback:
		s.acked(p.PacketID, 1)
	case *packetgen.Pubrec:
		s.received(p.PacketID)
	case *packetgen.Pubrel:
		// Release the identifier: a new PUBLISH with it is a new message.
		s.mu.Lock()
		delete(s.inboundQoS2, p.PacketID)
		s.mu.Unlock()
		c.send(&packetgen.Pubcomp{PacketID: p.PacketID})
	case *packetgen.Pubcomp:
		s.acked(p.PacketID, 2)
	case *packetgen.Subscribe:
		c.handleSubscribe(p)
	case *packetgen.Unsubscribe:
		if !c.srv.opts.Faults.IgnoreUnsubscribe {
			c.srv.unsubscribe(s, p.Filters)
		}
		c.send(&packetgen.Unsuback{PacketID: p.PacketID}) // MQTT-3.10.4-4, -5
	case *packetgen.Pingreq:
		c.send(&packetgen.Pingresp{}) // MQTT-3.12.4-1
	case *packetgen.Disconnect:
		c.will = nil // MQTT-3.14.4-3: the will is discarded
		return errDisconnect
	case *packetgen.Connect:
		if c.srv.opts.Faults.AcceptSecondConnect {
			c.send(&packetgen.Connack{})
			return nil
		}
		return errors.New("MQTT-3.1.0-2: a second CONNECT")
	default:
		return fmt.Errorf("%s from a client", p.Type())
	}
	return nil
}

// refusableFilter reports a SUBSCRIBE or UNSUBSCRIBE whose only fault is an
// invalid topic filter: 3.1.1 refuses that filter in SUBACK (0x80) and
// UNSUBSCRIBE of a filter that cannot exist changes nothing. 3.1 has no
// refusal code, so there the connection closes.
func refusableFilter(p packetgen.Packet, err error, v packetgen.Version) bool {
	vi := packetgen.AsViolation(err)
	if p == nil || vi == nil || v == packetgen.V31 {
		return false
	}
	switch p.(type) {
	case *packetgen.Subscribe, *packetgen.Unsubscribe:
		return true
	}
	return false
}

func (c *conn) handlePublish(p *packetgen.Publish) error {
	c.srv.opts.Faults.panicOn(p.Topic)
	c.srv.stats.Received.Add(1)
	m := &message{topic: p.Topic, payload: p.Payload, qos: p.QoS, retain: p.Retain}
	switch p.QoS {
	case 0:
		c.srv.publish(m)
	case 1:
		c.srv.publish(m)
		c.send(&packetgen.Puback{PacketID: p.PacketID}) // MQTT-4.3.2-2
	case 2:
		s := c.sess
		s.mu.Lock()
		_, seen := s.inboundQoS2[p.PacketID]
		if s.inboundQoS2 == nil {
			s.inboundQoS2 = map[uint16]struct{}{}
		}
		s.inboundQoS2[p.PacketID] = struct{}{}
		s.mu.Unlock()
		if !seen || c.srv.opts.Faults.QoS2Twice {
			// Delivered once; a repeat before PUBREL only gets PUBREC again.
			c.srv.publish(m)
		}
		c.send(&packetgen.Pubrec{PacketID: p.PacketID}) // MQTT-4.3.3-2
	}
	return nil
}

// handleSubscribe grants each filter min(requested, MaxQoS), refuses
// invalid filters with 0x80 (3.1.1; 3.1 has no refusal code and closes),
// answers SUBACK and then sends the retained messages that match.
func (c *conn) handleSubscribe(p *packetgen.Subscribe) {
	codes := make([]packetgen.ReasonCode, len(p.Subscriptions))
	var granted []packetgen.Subscription
	for i, sub := range p.Subscriptions {
		if err := topic.ValidateFilter(sub.Filter, false); err != nil && !c.srv.opts.Faults.GrantInvalidFilters {
			codes[i] = packetgen.SubackFailure
			continue
		}
		q := min(sub.QoS, c.srv.opts.MaxQoS)
		codes[i] = packetgen.ReasonCode(q)
		granted = append(granted, packetgen.Subscription{Filter: sub.Filter, QoS: q})
	}
	c.srv.subscribe(c.sess, granted)
	c.send(&packetgen.Suback{PacketID: p.PacketID, ReasonCodes: codes}) // MQTT-3.8.4-1
	// Retained messages for every (re)subscribed filter, RETAIN set
	// (MQTT-3.3.1-6, MQTT-3.8.4-3), at most at the granted QoS.
	for _, sub := range granted {
		for _, m := range c.srv.retainedFor(sub.Filter) {
			c.sess.deliver(m, min(m.qos, sub.QoS), true)
		}
	}
}
