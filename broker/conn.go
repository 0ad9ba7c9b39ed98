package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/packetgen"
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
	will      *will

	// What a 5.0 client asked for in CONNECT; fixed once it is answered.
	v5            bool
	recvMax       uint16 // the client's Receive Maximum (65535 when absent)
	maxPacket     uint32 // the client's Maximum Packet Size; 0: none
	aliasMax      uint16 // the client's Topic Alias Maximum, for outbound aliases
	noProblemInfo bool   // Request Problem Information 0
	expiry        uint32 // Session Expiry Interval agreed in CONNECT
	// connacked is set once a successful CONNACK is queued: only then may
	// a server send DISCONNECT (MQTT-3.14.0-1).
	connacked atomic.Bool
	// inAliases maps the client's topic aliases to topic names
	// (§3.3.2.3.4); reader only. outAliases are the broker's, encoder only.
	inAliases  map[uint16][]byte
	outAliases map[string]uint16
	// user is the authenticated user name ("" for none); rules are what
	// the ACL lets this client do (nil without an ACL).
	user  string
	rules *acl.Rules
	// authMethod is the enhanced authentication method of CONNECT;
	// reauth a re-authentication in progress (reader only).
	authMethod string
	reauth     auth.Conversation

	// The writer goroutine runs only while there is something to send, so
	// an idle connection costs one goroutine, not two.
	qmu     sync.Mutex
	queue   []packetgen.Packet
	held    []heldPacket
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
	// draining: a 5.0 DISCONNECT is queued last; nothing more is queued,
	// and the connection closes for drainReason once it is written.
	draining    bool
	drainReason error
}

func newConn(srv *Server, nc net.Conn) *conn {
	c := &conn{srv: srv, nc: nc, done: make(chan struct{}), recvMax: 65535}
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
	// errDisconnectWithWill is a 5.0 DISCONNECT with reason 0x04: it ends
	// the connection as a normal one, but the will is published.
	errDisconnectWithWill = errors.New("client sent DISCONNECT with will message")
)

// codeError is a reason to close a 5.0 connection and the reason code
// DISCONNECT (or CONNACK) says it with.
type codeError struct {
	code packetgen.ReasonCode
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func codeErrorf(code packetgen.ReasonCode, format string, args ...any) error {
	return &codeError{code, fmt.Sprintf(format, args...)}
}

// reasonCode is the DISCONNECT reason code for err: what a codeError or a
// codec violation names, 0x8D for keep alive, 0x8E for a takeover; 0x82 for
// a code a server may not put in DISCONNECT (table 3-10).
func reasonCode(err error) packetgen.ReasonCode {
	code := packetgen.UnspecifiedError
	var ce *codeError
	switch v := packetgen.AsViolation(err); {
	case errors.As(err, &ce):
		code = ce.code
	case v != nil:
		code = v.Reason
	case errors.Is(err, errKeepalive):
		code = packetgen.KeepAliveTimeout
	case errors.Is(err, errTakenOver):
		code = packetgen.SessionTakenOver
	case errors.Is(err, errServerShutdown):
		code = packetgen.ServerShuttingDown
	}
	if !serverMaySend(&packetgen.Disconnect{ReasonCode: code}) {
		return packetgen.ProtocolError
	}
	return code
}

// send queues p for the writer, starting one if none runs. Safe from any
// goroutine; after close it drops p.
func (c *conn) send(p packetgen.Packet) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.sendLocked(p)
}

func (c *conn) sendLocked(p packetgen.Packet) {
	if c.closed || c.draining {
		return
	}
	if len(c.held) > 0 {
		c.held = append(c.held, heldPacket{p: p}) // after those waiting
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
// meanwhile waits for flushOwn. It reports false when a DISCONNECT of
// ours is on its way: nothing more is acted on (MQTT-4.13.1-1). Packets
// already read when the connection broke are still handled.
func (c *conn) beginHandling() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.draining {
		return false
	}
	c.handling = true
	return true
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
	c.drainedUnlock()
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

// disconnect ends the connection for reason. A 5.0 connection that has
// had its CONNACK is told why first, with DISCONNECT and code (§3.14,
// MQTT-4.13.1-1); nothing is sent after it (MQTT-3.14.4-1), and it gets
// one second to be written. Safe from any goroutine; it does not wait.
func (c *conn) disconnect(code packetgen.ReasonCode, reason error) {
	// connacked first: its store publishes what the handshake set (v5).
	if !c.connacked.Load() || !c.v5 || c.srv.opts.Faults.BareCloses {
		c.close(reason)
		return
	}
	d := &packetgen.Disconnect{ReasonCode: code}
	if reason != nil {
		// The reason string is for people; it goes only where it fits.
		d.Properties.Set(packetgen.PropReasonString, reasonString(reason))
		if !c.fits(d) {
			d.Properties = packetgen.Properties{}
		}
	}
	c.qmu.Lock()
	if c.closed || c.draining {
		c.qmu.Unlock()
		return
	}
	c.queue = append(c.queue, d)
	c.draining, c.drainReason = true, reason
	c.nc.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck
	start := !c.writing && !c.handling
	if start {
		c.writing = true
		c.writers.Add(1)
	}
	c.qmu.Unlock()
	if start {
		go c.writer(nil)
	}
}

// drained closes a draining connection once its queue is written; qmu
// held, and released.
func (c *conn) drainedUnlock() {
	draining, reason := c.draining, c.drainReason
	c.qmu.Unlock()
	if draining {
		c.close(reason)
	}
}

// reasonString makes err fit a Reason String: valid UTF-8, no U+0000.
func reasonString(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\\0")
}

// fits reports whether p is within the client's Maximum Packet Size
// (MQTT-3.1.2-24: the server must not send a larger packet).
func (c *conn) fits(p packetgen.Packet) bool {
	return c.maxPacket == 0 || packetgen.Size(p, c.enc.Version) <= int(c.maxPacket) || c.srv.opts.Faults.IgnoreMaxPacketSize
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
			c.drainedUnlock()
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
		if pub, ok := p.(*packetgen.Publish); ok && c.aliasMax > 0 && c.srv.opts.OutboundTopicAliases {
			c.alias(pub)
		}
		if ack, ok := p.(*packetgen.Puback); ok && c.v5 && c.srv.opts.Faults.AckGrantedQoS && ack.ReasonCode == packetgen.Success {
			buf = packetgen.AppendUnchecked(buf, &packetgen.Puback{PacketID: ack.PacketID, ReasonCode: 0x01}, packetgen.V5)
			continue
		}
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

// alias gives p's topic an alias (§3.3.2.3.4): the first PUBLISH to a
// topic carries the name and a new alias, later ones the alias alone.
// Aliases are numbered from 1 up to the client's Topic Alias Maximum
// (MQTT-3.3.2-11, none without one: MQTT-3.1.2-27); topics past that go
// by name. The map lives with the connection (MQTT-3.3.2-7). Only the
// writer calls it, in the order packets go out.
func (c *conn) alias(p *packetgen.Publish) {
	if a, ok := c.outAliases[string(p.Topic)]; ok {
		p.Properties.Set(packetgen.PropTopicAlias, a)
		p.Topic = nil
		return
	}
	if len(c.outAliases) >= int(c.aliasMax) && !c.srv.opts.Faults.AliasBeyondMaximum {
		return
	}
	a := uint16(len(c.outAliases) + 1)
	p.Properties.Set(packetgen.PropTopicAlias, a)
	if !c.fits(p) {
		// The alias's three bytes must not push the packet over the
		// client's Maximum Packet Size (MQTT-3.1.2-24): this one goes by
		// name alone.
		p.Properties.Present &^= 1 << packetgen.PropTopicAlias
		p.Properties.TopicAlias = 0
		return
	}
	if c.outAliases == nil {
		c.outAliases = map[string]uint16{}
	}
	c.outAliases[string(p.Topic)] = a
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
// is published unless the client said DISCONNECT, and a session whose
// expiry interval is 0 ends.
func (c *conn) serve() (err error) {
	defer func() {
		c.waitDrained()
		c.close(io.EOF)
		c.writers.Wait()
		c.nc.Close()
		c.finish()
		if c.reason != nil && !normalEnd(c.reason) {
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
		// A whole packet already read is acted on even when the connection
		// has broken meanwhile: what the client sent counts.
		if c.keepalive > 0 && !c.rd.PacketBuffered() && !c.armRead(time.Now().Add(c.keepalive)) {
			return nil
		}
		p, err := c.rd.ReadPacket()
		if err != nil && !refusableFilter(p, err, c.enc.Version) {
			c.end(c.readError(err))
			c.flushOwn() // the reader may still hold the writer's role
			return nil
		}
		if !c.beginHandling() {
			return nil // a DISCONNECT of ours is on its way: read no more
		}
		if err := c.handle(p); err != nil {
			c.flushOwn() // a CONNACK or SUBACK queued before the end
			c.end(err)
			return nil
		}
		if !c.rd.PacketBuffered() {
			c.flushOwn()
		}
	}
}

// end ends the connection for err: a 5.0 client is told the reason code
// err carries; the client's own DISCONNECT and a lost connection just
// close.
func (c *conn) end(err error) {
	if normalEnd(err) || errors.Is(err, net.ErrClosed) {
		c.close(err)
		return
	}
	c.disconnect(reasonCode(err), err)
}

// serverMaySend reports whether a 5.0 server may send p as it is: its
// reason code among those the packet allows from a server.
func serverMaySend(p packetgen.Packet) bool {
	_, err := packetgen.Encoder{Version: packetgen.V5, Side: packetgen.FromServer}.Append(nil, p)
	return err == nil
}

// normalEnd reports a connection the client ended as it should.
func normalEnd(err error) bool {
	return errors.Is(err, errDisconnect) || errors.Is(err, errDisconnectWithWill) || errors.Is(err, io.EOF)
}

// waitDrained gives a DISCONNECT being written the time its write
// deadline allows.
func (c *conn) waitDrained() {
	c.qmu.Lock()
	draining := c.draining
	c.qmu.Unlock()
	if draining {
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
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
		// MQTT-3.1.2-24 (3.1.1) / MQTT-3.1.2-22 (5.0): 1.5 x keep alive
		// without a packet.
		return errKeepalive
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
	// A will goes out on every close but a normal DISCONNECT
	// (MQTT-3.1.2-8, MQTT-3.1.2-10); a taken-over connection closes
	// abnormally too.
	w := c.will
	if errors.Is(c.reason, errDisconnect) || c.srv.opts.Faults.DropWill {
		w = nil
	}
	c.srv.detach(s, c, w)
}

// handle acts on one packet after CONNECT. An error ends the connection,
// with the reason code it carries for 5.0.
func (c *conn) handle(p packetgen.Packet) error {
	s := c.sess
	switch p := p.(type) {
	case *packetgen.Publish:
		return c.handlePublish(p)
	case *packetgen.Puback:
		s.acked(p.PacketID, 1)
	case *packetgen.Pubrec:
		s.received(p.PacketID, p.ReasonCode)
	case *packetgen.Pubrel:
		// Release the identifier: a new PUBLISH with it is a new message.
		s.mu.Lock()
		_, known := s.inboundQoS2[p.PacketID]
		delete(s.inboundQoS2, p.PacketID)
		if st := s.stored(); st != nil && known {
			st.DeleteInbound(s.id, p.PacketID)
		}
		s.mu.Unlock()
		comp := &packetgen.Pubcomp{PacketID: p.PacketID}
		if !known && c.v5 {
			comp.ReasonCode = packetgen.PacketIdentifierNotFound
		}
		c.sendDurable(comp) // MQTT-4.3.3-11; once the release is stored
	case *packetgen.Pubcomp:
		s.acked(p.PacketID, 2)
	case *packetgen.Subscribe:
		return c.handleSubscribe(p)
	case *packetgen.Unsubscribe:
		c.handleUnsubscribe(p)
	case *packetgen.Pingreq:
		c.send(&packetgen.Pingresp{}) // MQTT-3.12.4-1
	case *packetgen.Disconnect:
		return c.handleDisconnect(p)
	case *packetgen.Auth:
		return c.handleAuth(p)
	case *packetgen.Connect:
		if c.srv.opts.Faults.AcceptSecondConnect {
			c.send(&packetgen.Connack{})
			return nil
		}
		return codeErrorf(packetgen.ProtocolError, "MQTT-3.1.0-2: a second CONNECT")
	default:
		return codeErrorf(packetgen.ProtocolError, "%s from a client", p.Type())
	}
	return nil
}

// handleDisconnect ends the connection as the client asks: normally, with
// the will discarded (MQTT-3.14.4-3 / MQTT-3.1.2-10), or, with 5.0 reason
// 0x04, with the will published. A 5.0 client may change the Session
// Expiry Interval, but not from 0 (§3.14.2.2.2): that is a protocol
// error, and the will goes out.
func (c *conn) handleDisconnect(p *packetgen.Disconnect) error {
	if c.v5 && p.Properties.Has(packetgen.PropSessionExpiryInterval) {
		e := p.Properties.SessionExpiryInterval
		if c.expiry == 0 && e != 0 {
			return codeErrorf(packetgen.ProtocolError, "DISCONNECT sets a Session Expiry Interval of %d after CONNECT set 0 (§3.14.2.2.2)", e)
		}
		e = c.srv.capExpiry(e)
		c.srv.mu.Lock()
		c.sess.mu.Lock()
		c.sess.expiry = e
		c.sess.storeSessionLocked(time.Time{})
		c.sess.mu.Unlock()
		c.srv.mu.Unlock()
	}
	if c.v5 && p.ReasonCode == packetgen.DisconnectWithWill {
		return errDisconnectWithWill
	}
	return errDisconnect
}

// refusableFilter reports a SUBSCRIBE or UNSUBSCRIBE whose only fault is an
// invalid topic filter: 3.1.1 refuses that filter in SUBACK (0x80), 5.0
// with 0x8F, and UNSUBSCRIBE of a filter that cannot exist changes nothing.
// 3.1 has no refusal code, so there the connection closes.
func refusableFilter(p packetgen.Packet, err error, v packetgen.Version) bool {
	vi := packetgen.AsViolation(err)
	if p == nil || vi == nil || v == packetgen.V31 {
		return false
	}
	switch p.(type) {
	case *packetgen.Subscribe, *packetgen.Unsubscribe:
		return vi.Reason == packetgen.TopicFilterInvalid || v != packetgen.V5
	}
	return false
}
