package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Read buffer sizes: an idle connection holds readInitial bytes; a busy
// one grows to readMax so one read takes many packets.
const (
	readInitial = 64
	readMax     = 64 << 10
	writeKeep   = 64 << 10 // larger write buffers are dropped after a flush
	// writeTimeout bounds one write: a broker that reads nothing for this
	// long has its connection closed (a timeout).
	writeTimeout = 10 * time.Second
	backoffMin   = 100 * time.Millisecond
	backoffMax   = 5 * time.Second
)

// client is one MQTT connection of the run, reconnected when it drops:
// a publisher (pub set), a subscriber (sub set) or idle. There is no writer
// goroutine: whoever has bytes to send (a sender for PUBLISH, the reader
// for acknowledgements, the keepalive loop for PINGREQ) appends them to
// wbuf under mu and writes them. A busy connection has a reader goroutine;
// an idle TCP one on Linux has none (idle_linux.go) and costs a 64-byte
// read buffer, this struct and the socket's (about 2 KiB in all).
type client struct {
	a   *attack
	idx int32

	mu     sync.Mutex
	conn   net.Conn // nil while disconnected
	wbuf   []byte
	ready  bool  // handshake done: PUBLISH may go out
	failed error // why the connection was closed from this side
	wdl    int64 // write deadline set on conn, attack ns
	dirty  bool  // has unflushed PUBLISH bytes; the owning sender's only

	timer    *time.Timer // the next attempt, while backing off; under mu
	backoff  time.Duration
	attempts uint32

	// live is the open connection for beginStop, which must reach it
	// without mu (a writer blocked on a stalled broker holds mu).
	live atomic.Pointer[connRef]

	lastWrite atomic.Int64 // attack ns
	// readBusy is the time its reader spent handling what it read, in
	// ns: the generator's watch on itself (saturation.go).
	readBusy atomic.Int64
	pingSent atomic.Int64 // attack ns of an unanswered PINGREQ, 0 if none

	pub *publisher  // publishers only
	sub *subscriber // subscribers only

	// up: the connection had its CONNACK; everUp: some connection did,
	// so the next CONNACK is a reconnection. Under mu.
	up, everUp bool

	// Churn (churn.go): cleanStart makes every CONNECT clean (set before
	// the start); holdUntil keeps an offline subscriber away until then
	// (attack ns); downAt is when the connection last dropped, under mu,
	// for the reconnect metric.
	cleanStart bool
	holdUntil  atomic.Int64
	downAt     int64
}

// publisher is a publishing client's message state, under client.mu.
type publisher struct {
	index  uint32
	topic  []byte
	seq    uint64 // next sequence number; also the number sent
	nextID uint16
	// ring is the QoS 1/2 window in send order: ids are consecutive, so
	// an acknowledgement finds its entry by arithmetic.
	ring        []flight
	head, n     int
	unconfirmed []uint64
	// failed are the unconfirmed the broker refused (reason code 0x80 or
	// more); the others' outcome is unknown: the connection was lost
	// before their acknowledgement, or the run ended first.
	failed []uint64
	sends  SendIndex // due time of every sequence number, for the history

	// From each CONNACK (MQTT 5.0; 3.1.1 keeps the defaults): the window
	// is the smaller of Inflight and the broker's Receive Maximum
	// (MQTT-3.3.4-7), and no PUBLISH larger than its Maximum Packet Size
	// goes out (MQTT-3.2.2-15).
	window    int
	maxPacket uint32 // 0: no limit
	unsent    int    // flights a resumed session has not re-sent yet: the window was full
	// Topic alias 1 stands for topic once aliased (MQTT 5.0): aliasOK
	// when the scenario asks and the broker's Topic Alias Maximum allows;
	// aliased from the first PUBLISH of each connection that carried it.
	aliasOK, aliased bool
	fullSize         int   // bytes of this publisher's PUBLISH without an alias
	aliasSaved       int64 // bytes aliases saved, over the run
	aliasedSends     uint64
	rejected         uint64     // refused by a reason code: they cause no delivery
	rr               *requester // request/response runs only (reqresp.go)
}

type flight struct {
	seq      uint64
	due      int64 // attack ns
	id       uint16
	released bool // PUBREC seen, PUBREL sent
	done     bool
	unsent   bool // waits for room in the window to be re-sent
}

// subscriber is a subscribing client's state, touched only by its
// goroutine (and read after it ends).
type subscriber struct {
	filter     string
	granted    packetgen.QoS
	subscribed bool // a SUBACK was ever received
	scratch    packetgen.Publish
	qos2       map[uint16]struct{} // QoS 2 ids received, PUBREL not yet
	subID      uint32              // its Subscription Identifier (MQTT 5.0 subscription_id)
	d          delivery            // MQTT 5.0 scratch
	// down: the connection dropped mid-run and has not come back; what
	// the broker held for it may be gone with it.
	down bool
	// resumedAt is when (Unix ns) the subscriber last came back to its
	// session without subscribing again, until a message published since
	// shows the broker kept the subscription; 0 otherwise.
	resumedAt int64
	log       SubscriberLog
	// share: a member of a shared group (shared.go); resp: a responder
	// (reqresp.go).
	share *sharedMember
	resp  *responder
	// off: one of the subscribers taken offline (backlog.go).
	off *backlogSub
}

// connRef boxes a net.Conn for an atomic pointer.
type connRef struct{ net.Conn }

// connState is one connection's handshake progress, on the reader's stack.
type connState struct {
	connectAt   int64
	subscribeAt int64
	phase       uint8 // 0 waiting CONNACK, 1 waiting SUBACK, 2 ready
}

// clientID is unique per run, at most 23 characters of [0-9a-zA-Z] so
// every 3.1.1 broker must accept it (MQTT-3.1.3-5).
func (c *client) clientID() string {
	return "mb" + c.a.runHex + "c" + strconv.Itoa(int(c.idx))
}

// The life of a connection takes two goroutines in turn, never two at
// once: a short-lived one dials and handshakes (CONNECT→CONNACK, and
// SUBSCRIBE→SUBACK for a subscriber), then hands the connection to a fresh
// reader goroutine and ends. Dialing needs a deep stack; a goroutine that
// did it would keep a 4 KiB stack for the life of the connection, while a
// reader that only ever waits in Read and handles small packets stays at
// the 2 KiB minimum. Between attempts no goroutine waits: the backoff is a
// timer.

// start begins the client's first connection attempt.
func (c *client) start() {
	c.a.clientsDone.Add(1)
	go c.connect()
}

// connect makes one attempt: dial, handshake, then serve in a new
// goroutine.
func (c *client) connect() {
	a := c.a
	if a.stopped() {
		a.clientsDone.Done()
		return
	}
	a.counters.Attempts.Add(1)
	ctx, cancel := a.dialContext()
	conn, err := a.dialConn(ctx, int(c.idx))
	cancel()
	if err != nil {
		c.retry(err, false)
		return
	}
	a.counters.opened()
	c.mu.Lock()
	if a.stopped() {
		c.mu.Unlock()
		conn.Close()
		a.counters.Open.Add(-1)
		a.clientsDone.Done()
		return
	}
	c.conn, c.failed, c.wdl = conn, nil, 0
	c.live.Store(&connRef{conn})
	c.mu.Unlock()

	st := &connState{}
	rd := &reader{buf: make([]byte, readInitial)}
	if err := c.handshake(conn, rd, st); err != nil {
		c.retry(c.drop(conn, err), false)
		return
	}
	if c.pub == nil && c.sub == nil && a.idle != nil && a.idle.watch(a.position(c.idx), c, conn, rd, st) {
		return
	}
	go c.serve(conn, rd, st)
}

// connectPacket is the CONNECT of client id. In 5.0 it asks for its
// session to be kept SessionExpiry (MQTT-3.1.2-23) and bounds what the
// broker may send to what the decoder takes (MQTT-3.1.2-24); it allows no
// topic aliases (MQTT-3.1.2-27), so none are read.
func (a *attack) connectPacket(id string) *packetgen.Connect {
	sc := &a.sc
	cp := &packetgen.Connect{
		ProtocolLevel: sc.version(), CleanStart: sc.CleanSession,
		KeepAlive: uint16(sc.Keepalive / time.Second), ClientID: id,
	}
	if sc.Username != "" {
		cp.UsernameFlag, cp.Username = true, sc.Username
	}
	// 3.1.1 sends a password only with a user name (Validate checks);
	// 5.0 also without one (§3.1.2.9).
	if sc.Password != "" {
		cp.PasswordFlag, cp.Password = true, []byte(sc.Password)
	}
	if a.v5 {
		if e := sc.sessionExpiry(); e > 0 {
			cp.Properties.Set(packetgen.PropSessionExpiryInterval, e)
		}
		cp.Properties.Set(packetgen.PropMaximumPacketSize, uint32(a.dec.MaxPacketSize))
	}
	return cp
}

// refused is the error for a CONNACK or SUBACK refusal with code.
func (a *attack) refused(t packetgen.Type, code byte) error {
	e := &RefusedError{Packet: t.String(), Code: code}
	if a.v5 {
		e.Reason = reasonName(packetgen.V5, t, code)
	}
	return e
}

// disconnected handles a 5.0 DISCONNECT from the broker: its reason code
// is counted, and the connection ends with it.
func (a *attack) disconnected(h packetgen.Header, body []byte) error {
	p, err := a.dec.DecodeBody(h, body)
	if err != nil {
		return &ProtocolError{Err: err}
	}
	d := p.(*packetgen.Disconnect)
	if d.ReasonCode != 0 {
		a.reasons.add(rpDisconnect, byte(d.ReasonCode))
	}
	return &DisconnectError{Code: byte(d.ReasonCode), Reason: d.Properties.ReasonString}
}

// handshake sends CONNECT and reads until the client is ready.
func (c *client) handshake(conn net.Conn, rd *reader, st *connState) error {
	a := c.a
	conn.SetReadDeadline(time.Now().Add(a.sc.ConnectTimeout)) //nolint:errcheck
	cp := a.connectPacket(c.clientID())
	cp.CleanStart = cp.CleanStart || c.cleanStart
	c.mu.Lock()
	st.connectAt = a.now()
	var err error
	c.wbuf, err = a.enc.Append(c.wbuf, cp)
	if err == nil {
		c.flushLocked()
		err = c.failed
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.read(conn, rd, st, true)
}

// serve reads until the connection ends, then schedules the next attempt.
func (c *client) serve(conn net.Conn, rd *reader, st *connState) {
	err := c.read(conn, rd, st, false)
	c.retry(c.drop(conn, err), true)
}

// drop cleans up after a connection; it returns the reason to count: ours
// (a failed write, a keep alive timeout) beats the read error it caused,
// but not a DISCONNECT in which the broker gave its own reason (5.0).
func (c *client) drop(conn net.Conn, err error) error {
	a := c.a
	c.mu.Lock()
	var de *DisconnectError
	if c.failed != nil && !errors.As(err, &de) {
		err = c.failed
	}
	if c.ready {
		a.counters.Ready.Add(-1)
	}
	if c.up && !a.stopped() {
		a.sessions.add(a.unixNs(a.now()), func(t *SessionTally) { t.Dropped++ })
		c.droppedMidRun()
		c.downAt = a.now()
	}
	c.ready, c.conn, c.up = false, nil, false
	c.wbuf = nil
	c.live.Store(nil)
	c.mu.Unlock()
	c.pingSent.Store(0)
	conn.Close()
	a.counters.Open.Add(-1)
	if c.sub != nil && c.sub.subscribed && !a.stopped() {
		c.sub.down = true
	}
	return err
}

// retry counts err and schedules the next attempt after an exponential
// backoff with jitter; wasUp resets the backoff.
func (c *client) retry(err error, wasUp bool) {
	a := c.a
	if a.stopped() {
		a.clientsDone.Done()
		return
	}
	a.countError(err)
	a.counters.Reconnects.Add(1)
	if wasUp || c.backoff == 0 {
		c.backoff = backoffMin
	}
	// ±25% jitter, so dropped connections do not come back in step.
	c.attempts++
	j := mix(a.sc.Seed^uint64(c.idx)<<20^uint64(c.attempts)) % 500
	wait := c.backoff * time.Duration(750+j) / 1000
	c.backoff = min(2*c.backoff, backoffMax)
	if h := c.holdUntil.Load(); h != 0 {
		wait = max(wait, time.Duration(h-a.now())) // offline for a while (backlog.go)
	}
	c.mu.Lock()
	if a.stopped() { // shutdown has been past this client: stop here
		c.mu.Unlock()
		a.clientsDone.Done()
		return
	}
	c.timer = time.AfterFunc(wait, func() {
		c.mu.Lock()
		c.timer = nil
		c.mu.Unlock()
		c.connect()
	})
	c.mu.Unlock()
}

// reader is a connection's read buffer: packets are decoded in place, and
// it grows while the connection is busy.
type reader struct {
	buf  []byte
	r, w int
	need int
}

// read reads and handles packets until an error or, in a handshake, until
// the client is ready (leaving what follows in rd for serve).
func (c *client) read(conn net.Conn, rd *reader, st *connState, handshake bool) error {
	for {
		switch {
		case rd.need > len(rd.buf):
			nb := make([]byte, max(rd.need, 2*len(rd.buf)))
			rd.w = copy(nb, rd.buf[rd.r:rd.w])
			rd.buf, rd.r = nb, 0
		case rd.w == len(rd.buf) || rd.r+rd.need > len(rd.buf):
			if rd.r > 0 {
				rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
				rd.r = 0
			} else {
				nb := make([]byte, 2*len(rd.buf))
				copy(nb, rd.buf[:rd.w])
				rd.buf = nb
			}
		}
		space := len(rd.buf) - rd.w
		n, err := conn.Read(rd.buf[rd.w:])
		rd.w += n
		if n > 0 {
			t0 := time.Now()
			herr := c.parse(rd, st)
			c.readBusy.Add(int64(time.Since(t0)))
			if herr != nil {
				return herr
			}
			c.mu.Lock()
			c.flushLocked()
			c.mu.Unlock()
			if n == space && len(rd.buf) < readMax && rd.need <= len(rd.buf) {
				rd.need = 2 * len(rd.buf) // the read filled the buffer: more is waiting
			}
			if handshake && st.phase == 2 {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// parse handles every whole packet in rd.
func (c *client) parse(rd *reader, st *connState) error {
	now := c.a.now()
	rd.need = 0
	for rd.r < rd.w {
		h, err := c.a.dec.ParseHeader(rd.buf[rd.r:rd.w])
		if err == packetgen.ErrIncomplete {
			rd.need = 5
			break
		}
		if err != nil {
			return &ProtocolError{Err: err}
		}
		size := h.PacketSize()
		if rd.w-rd.r < size {
			rd.need = size
			break
		}
		if err := c.handle(h, rd.buf[rd.r+h.Size:rd.r+size], now, st); err != nil {
			return err
		}
		rd.r += size
	}
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	return nil
}

// handle acts on one packet from the broker; body aliases the read buffer.
func (c *client) handle(h packetgen.Header, body []byte, now int64, st *connState) error {
	a := c.a
	switch h.Type {
	case packetgen.TypePublish:
		return c.received(h, body, now)
	case packetgen.TypePuback, packetgen.TypePubrec, packetgen.TypePubcomp:
		id, code, err := a.ackFields(h, body)
		if err != nil {
			return err
		}
		if code != 0 {
			a.reasons.add(reasonOf(h.Type), code)
		}
		return c.acked(h.Type, id, code, now)
	case packetgen.TypePubrel:
		id, code, err := a.ackFields(h, body)
		if err != nil {
			return err
		}
		if code != 0 {
			a.reasons.add(rpPubrel, code)
		}
		if c.sub != nil {
			delete(c.sub.qos2, id)
		}
		c.appendAck(packetgen.TypePubcomp, id)
		return nil
	case packetgen.TypePingresp:
		c.pingSent.Store(0)
		return nil
	case packetgen.TypeConnack:
		p, err := a.dec.DecodeBody(h, body)
		if err != nil {
			return &ProtocolError{Err: err}
		}
		if st.phase != 0 {
			return &ProtocolError{Detail: "a second CONNACK"}
		}
		ca := p.(*packetgen.Connack)
		if ca.ReasonCode != 0 {
			a.reasons.add(rpConnack, byte(ca.ReasonCode))
			return a.refused(packetgen.TypeConnack, byte(ca.ReasonCode))
		}
		lim := limitsOf(&ca.Properties)
		if a.v5 {
			a.limits.observe(lim)
			a.serverKeepAlive(lim.keepAlive)
		}
		if err := lim.check(c); err != nil {
			return err
		}
		a.rec.Record(MetricConnect, time.Duration(now-st.connectAt))
		a.counters.Connects.Add(1)
		return c.connected(ca.SessionPresent && !a.sc.CleanSession, lim, now, st)
	case packetgen.TypeSuback:
		p, err := a.dec.DecodeBody(h, body)
		if err != nil {
			return &ProtocolError{Err: err}
		}
		sa := p.(*packetgen.Suback)
		if st.phase != 1 || sa.PacketID != 1 || len(sa.ReasonCodes) != 1 {
			return &ProtocolError{Detail: fmt.Sprintf("unexpected SUBACK for packet %d", sa.PacketID)}
		}
		if rc := byte(sa.ReasonCodes[0]); rc > 2 {
			a.reasons.add(rpSuback, rc)
			return a.refused(packetgen.TypeSuback, rc)
		}
		a.rec.Record(MetricSubscribe, time.Duration(now-st.subscribeAt))
		if c.sub == nil { // a requester's Response Topic
			c.pub.rr.subscribed = true
			c.setReady(st)
			return nil
		}
		c.sub.granted = packetgen.QoS(sa.ReasonCodes[0])
		c.sub.subscribed = true
		c.setReady(st)
		return nil
	case packetgen.TypeDisconnect:
		if a.v5 { // 3.1.1 has no DISCONNECT from the broker: ParseHeader refused it
			return a.disconnected(h, body)
		}
	}
	return &ProtocolError{Detail: fmt.Sprintf("%s from the broker", h.Type)}
}

// connected follows a successful CONNACK: a resumed session gets its
// unacknowledged messages again (MQTT-4.4.0-1); a new one abandons them
// and, for a subscriber, subscribes.
func (c *client) connected(resumed bool, lim connLimits, now int64, st *connState) error {
	a := c.a
	c.mu.Lock()
	again, down := c.everUp, c.downAt
	c.up, c.everUp, c.downAt = true, true, 0
	c.mu.Unlock()
	// An offline subscriber's return is not a reconnection to time: it
	// stayed away on purpose (backlog.go).
	if back := c.sub != nil && c.sub.off != nil && c.sub.off.returned(a, now); down != 0 && !back {
		a.rec.Record(MetricReconnect, time.Duration(now-down))
	}
	if again {
		a.sessions.add(a.unixNs(now), func(t *SessionTally) {
			if resumed {
				t.Resumed++
			} else {
				t.Fresh++
			}
			if resumed && c.sub != nil && c.sub.subscribed {
				t.SubscribersResumed++
			}
		})
		if c.sub != nil {
			c.sub.resumedAt = 0
			if resumed && c.sub.subscribed {
				c.sub.resumedAt = a.unixNs(now)
			}
		}
	}
	if p := c.pub; p != nil {
		c.mu.Lock()
		p.window = min(a.sc.Inflight, int(lim.receiveMax))
		p.maxPacket = lim.maxPacket
		// Aliases do not outlive a connection (MQTT-3.3.2-7); alias 1 needs
		// a Topic Alias Maximum of 1 or more (MQTT-3.2.2-17).
		p.aliasOK, p.aliased = a.sc.TopicAlias && lim.aliasMax >= 1, false
		if resumed {
			c.resendLocked()
		} else {
			c.pub.abandon()
		}
		c.mu.Unlock()
		if p.rr != nil && (!p.rr.subscribed || !resumed) {
			return c.subscribeResponses(st)
		}
	}
	if c.sub != nil && c.sub.resp != nil {
		c.responderConnected(lim.receiveMax)
	}
	if c.sub != nil {
		s := c.sub
		if s.subscribed && !resumed {
			s.log.SessionLost = true // what was sent meanwhile is gone
			clear(s.qos2)
		}
		if !s.subscribed || !resumed {
			sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: s.filter, QoS: a.sc.QoS}}}
			if a.sc.SubscriptionID {
				sp.Properties.SubscriptionIdentifiers = []uint32{s.subID}
			}
			return c.sendSubscribe(st, sp)
		}
	}
	c.setReady(st)
	return nil
}

// sendSubscribe queues a connection's SUBSCRIBE; its SUBACK (phase 1)
// makes the connection ready.
func (c *client) sendSubscribe(st *connState, sp *packetgen.Subscribe) error {
	c.mu.Lock()
	var err error
	c.wbuf, err = c.a.enc.Append(c.wbuf, sp)
	st.subscribeAt = c.a.now()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	st.phase = 1
	return nil
}

func (c *client) setReady(st *connState) {
	st.phase = 2
	if c.sub != nil {
		c.sub.down = false
	}
	c.mu.Lock()
	if c.conn != nil {
		c.conn.SetReadDeadline(time.Time{}) //nolint:errcheck
	}
	c.ready = true
	c.mu.Unlock()
	c.a.counters.Ready.Add(1)
}

// received handles a PUBLISH: acknowledge it, then check it.
func (c *client) received(h packetgen.Header, body []byte, now int64) error {
	s := c.sub
	if s == nil && c.pub != nil && c.pub.rr != nil {
		return c.response(h, body, now)
	}
	if s != nil && s.resp != nil {
		return c.respond(h, body)
	}
	if s == nil {
		// Not ours to count (a publisher or idle client left with an old
		// subscription): acknowledge and drop.
		p, err := c.a.dec.DecodeBody(h, body)
		if err != nil {
			return &ProtocolError{Err: err}
		}
		pp := p.(*packetgen.Publish)
		switch pp.QoS {
		case 1:
			c.appendAck(packetgen.TypePuback, pp.PacketID)
		case 2:
			c.appendAck(packetgen.TypePubrec, pp.PacketID)
		}
		return nil
	}
	var qos packetgen.QoS
	var id uint16
	var payload []byte
	var d *delivery
	if c.a.v5 {
		d = &s.d
		if err := readDelivery(h.Flags, body, d, c.a.props.UserProperties, &s.scratch); err != nil {
			return err
		}
		qos, id, payload = d.qos, d.packetID, d.payload
	} else {
		p := &s.scratch
		if err := p.DecodeBody(h.Flags, body, packetgen.V311, packetgen.FromServer); err != nil {
			return &ProtocolError{Err: err}
		}
		qos, id, payload = p.QoS, p.PacketID, p.Payload
	}
	switch qos {
	case 1:
		c.appendAck(packetgen.TypePuback, id)
	case 2:
		// A PUBLISH repeated before PUBREL is the same message: the
		// receiver delivers it once (§4.3.3, method B).
		if _, seen := s.qos2[id]; seen {
			c.appendAck(packetgen.TypePubrec, id)
			return nil
		}
		if s.qos2 == nil {
			s.qos2 = map[uint16]struct{}{}
		}
		s.qos2[id] = struct{}{}
		c.appendAck(packetgen.TypePubrec, id)
	}
	hd, ok := ParseHeader(payload)
	if !ok && c.a.tmpl != nil && c.a.tmpl.header {
		hd, ok = findTextHeader(payload) // placed by the template
	}
	if !ok || hd.Run != c.a.runID {
		s.log.Foreign++
		return nil
	}
	if d != nil {
		c.a.checkDelivery(d, s)
	}
	if s.resumedAt != 0 && hd.Due > s.resumedAt {
		at := s.resumedAt
		s.resumedAt = 0
		c.a.sessions.add(at, func(t *SessionTally) { t.SubscriptionsKept++ })
	}
	if s.share != nil {
		c.sharedReceived(s, hd, qos, now)
		return nil
	}
	if s.off != nil {
		s.off.saw(hd, qos, now)
	}
	stream := s.log.Streams[hd.Publisher]
	if stream == nil {
		if s.log.Streams == nil {
			s.log.Streams = map[uint32]*Stream{}
		}
		stream = &Stream{}
		s.log.Streams[hd.Publisher] = stream
	}
	if qos < min(hd.QoS, s.granted) {
		stream.Downgraded++
	}
	if stream.Receive(hd.Seq) != Duplicate {
		c.a.counters.Received.Add(1)
		c.a.rec.Record(MetricEndToEnd, time.Duration(c.a.unixNs(now)-hd.Due))
	}
	return nil
}

// acked handles PUBACK, PUBREC and PUBCOMP for a publisher; code is the
// reason code (MQTT 5.0; 0 in 3.1.1).
func (c *client) acked(t packetgen.Type, id uint16, code byte, now int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil && c.sub.resp != nil {
		c.responseAckedLocked(t, id)
		return nil
	}
	p := c.pub
	var f *flight
	if p != nil {
		f = p.find(id)
	}
	if f == nil {
		// From a session we abandoned: finish the flow, count nothing.
		if t == packetgen.TypePubrec && code < 0x80 {
			c.wbuf = appendAck(c.wbuf, packetgen.TypePubrel, id)
		}
		return nil
	}
	qos := c.a.sc.QoS
	switch t {
	case packetgen.TypePuback:
		if qos != 1 {
			return &ProtocolError{Detail: fmt.Sprintf("PUBACK for a QoS %d message (packet %d)", qos, id)}
		}
		if code >= 0x80 {
			c.rejectLocked(f)
			return nil
		}
	case packetgen.TypePubrec:
		if qos != 2 {
			return &ProtocolError{Detail: fmt.Sprintf("PUBREC for a QoS %d message (packet %d)", qos, id)}
		}
		if code >= 0x80 { // the flow ends here, without PUBREL (§4.3.3)
			c.rejectLocked(f)
			return nil
		}
		f.released = true
		c.wbuf = appendAck(c.wbuf, packetgen.TypePubrel, id)
		return nil
	case packetgen.TypePubcomp:
		if qos != 2 || !f.released {
			return &ProtocolError{Detail: fmt.Sprintf("PUBCOMP before PUBREL for packet %d", id)}
		}
	}
	f.done = true
	c.a.rec.Record(MetricPublishAck, time.Duration(now-f.due))
	c.a.counters.Acked.Add(1)
	p.popDone()
	c.topUpLocked()
	return nil
}

// rejectLocked ends the flow of a message the broker refused with a
// reason code of 0x80 or more: it was never accepted, so it is
// unconfirmed, and its place in the window is free (MQTT-3.3.4-7).
func (c *client) rejectLocked(f *flight) {
	p := c.pub
	f.done = true
	p.unconfirmed = append(p.unconfirmed, f.seq)
	p.failed = append(p.failed, f.seq)
	p.rejected++
	c.a.counters.Rejected.Add(1)
	p.popDone()
	c.topUpLocked()
}

func (c *client) appendAck(t packetgen.Type, id uint16) {
	c.mu.Lock()
	c.wbuf = appendAck(c.wbuf, t, id)
	c.mu.Unlock()
}

// appendAck appends a 3.1.1 PUBACK, PUBREC, PUBREL or PUBCOMP: four bytes,
// PUBREL with flags 0010 (MQTT-3.6.1-1).
func appendAck(b []byte, t packetgen.Type, id uint16) []byte {
	first := byte(t) << 4
	if t == packetgen.TypePubrel {
		first |= 2
	}
	return append(b, first, 2, byte(id>>8), byte(id))
}

// ackID reads the packet identifier of a 3.1.1 acknowledgement, whose
// remaining length is exactly 2 (§3.4 to §3.7).
func ackID(h packetgen.Header, body []byte) (uint16, error) {
	if len(body) != 2 {
		return 0, &ProtocolError{Detail: fmt.Sprintf("%s with remaining length %d, want 2", h.Type, len(body))}
	}
	id := binary.BigEndian.Uint16(body)
	if id == 0 {
		return 0, &ProtocolError{Detail: fmt.Sprintf("%s with packet identifier 0 (MQTT-2.3.1-1)", h.Type)}
	}
	return id, nil
}

// ackFields reads the packet identifier and reason code of an
// acknowledgement. A 5.0 one that says Success in two to four bytes is
// read here; any other (a reason code, properties, a fault) goes through
// the codec, which checks the code is one the packet may carry.
func (a *attack) ackFields(h packetgen.Header, body []byte) (uint16, byte, error) {
	if !a.v5 {
		id, err := ackID(h, body)
		return id, 0, err
	}
	if n := len(body); n >= 2 && (n == 2 || body[2] == 0 && (n == 3 || n == 4 && body[3] == 0)) {
		if id := binary.BigEndian.Uint16(body); id != 0 {
			return id, 0, nil
		}
	}
	p, err := a.dec.DecodeBody(h, body)
	if err != nil {
		if id, code, ok := a.tolerate.ack(body, err); ok {
			return id, code, nil
		}
		return 0, 0, &ProtocolError{Err: err}
	}
	var ack *packetgen.Puback
	switch q := p.(type) {
	case *packetgen.Puback:
		ack = q
	case *packetgen.Pubrec:
		ack = (*packetgen.Puback)(q)
	case *packetgen.Pubrel:
		ack = (*packetgen.Puback)(q)
	case *packetgen.Pubcomp:
		ack = (*packetgen.Puback)(q)
	}
	return ack.PacketID, byte(ack.ReasonCode), nil
}

// flushLocked writes what wbuf holds; c.mu held. A failed write closes the
// connection and keeps the error for the reader to report.
func (c *client) flushLocked() {
	if len(c.wbuf) == 0 {
		return
	}
	if c.conn == nil || c.failed != nil {
		c.wbuf = c.wbuf[:0]
		return
	}
	now := c.a.now()
	if c.wdl-now < int64(writeTimeout/2) && !c.a.stopped() { // stopping: keep beginStop's deadline
		c.wdl = now + int64(writeTimeout)
		c.conn.SetWriteDeadline(c.a.start.Add(time.Duration(c.wdl))) //nolint:errcheck
	}
	_, err := c.conn.Write(c.wbuf)
	c.lastWrite.Store(now)
	if cap(c.wbuf) > writeKeep {
		c.wbuf = nil
	} else {
		c.wbuf = c.wbuf[:0]
	}
	if err != nil {
		c.failLocked(err)
	}
}

// failLocked closes the connection for err; c.mu held.
func (c *client) failLocked(err error) {
	if c.failed == nil {
		c.failed = err
	}
	if c.ready { // drop counts only connections still ready
		c.a.counters.Ready.Add(-1)
	}
	c.ready = false
	if c.conn != nil {
		c.conn.Close()
	}
}

func (c *client) fail(err error) {
	c.mu.Lock()
	if c.conn != nil {
		c.failLocked(err)
	}
	c.mu.Unlock()
}

// missReason says why a due PUBLISH was not sent.
type missReason uint8

const (
	sentOK missReason = iota
	missDisconnected
	missWindow
	missTooLarge
)

// publish appends the next PUBLISH, due at attack time due; the sender
// flushes later. pkt and payload are the sender's scratch.
func (c *client) publish(pkt *packetgen.Publish, payload []byte, due int64) missReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return missDisconnected
	}
	p, a := c.pub, c.a
	qos := a.sc.QoS
	if qos > 0 && p.n >= p.window {
		return missWindow
	}
	seq := p.seq
	var id uint16
	if qos > 0 {
		id = p.nextFreeID()
	}
	start := len(c.wbuf)
	var err error
	c.wbuf, err = c.appendPublish(c.wbuf, pkt, payload, seq, due, id, false)
	if err != nil {
		// The scenario was validated: an encoding failure is a bug.
		panic(err)
	}
	if !c.sentLocked(len(c.wbuf) - start) {
		c.wbuf = c.wbuf[:start]
		return missTooLarge
	}
	if qos > 0 {
		p.nextID = id
		p.push(flight{seq: seq, due: due, id: id})
	}
	p.sends.Add(seq, a.unixNs(due)/1e6)
	p.seq++
	return sentOK
}

// appendPublish encodes a PUBLISH of the client's publisher into b, the
// header of message seq at the front of payload; c.mu held.
func (c *client) appendPublish(b []byte, pkt *packetgen.Publish, payload []byte, seq uint64, due int64, id uint16, dup bool) ([]byte, error) {
	a, p := c.a, c.pub
	h := Header{QoS: a.sc.QoS, Run: a.runID, Publisher: p.index, Seq: seq, Due: a.unixNs(due)}
	if a.tmpl != nil {
		out, done, err := a.tmpl.render(h)
		if err != nil {
			return b, err
		}
		defer done() // once the encoder has copied it
		payload = out
	} else if a.sc.PayloadFormat {
		PutTextHeader(payload, h)
	} else {
		PutHeader(payload, h)
	}
	*pkt = packetgen.Publish{Topic: p.topic, QoS: a.sc.QoS, PacketID: id, Dup: dup, Payload: payload}
	if a.v5 {
		pkt.Properties = a.props
		if p.rr != nil {
			c.requestProps(pkt, seq, h.Due)
		}
		if p.aliasOK {
			pkt.Properties.Set(packetgen.PropTopicAlias, uint16(1))
			if p.aliased {
				pkt.Topic = nil // alias 1 stands for it (§3.3.2.3.4)
			}
		}
	}
	return a.enc.Append(b, pkt)
}

// sentLocked decides whether an encoded PUBLISH of n bytes goes out: not
// when it exceeds the broker's Maximum Packet Size. One that goes out
// with an alias counts the bytes the alias saved.
func (c *client) sentLocked(n int) bool {
	p := c.pub
	if p.maxPacket > 0 && n > int(p.maxPacket) {
		return false
	}
	if p.aliasOK {
		if p.aliased {
			p.aliasedSends++
		}
		p.aliased = true
		p.aliasSaved += int64(p.fullSize - n)
	}
	return true
}

// resendLocked re-sends, on a resumed session, every unacknowledged PUBLISH
// with DUP set and every unanswered PUBREL, in their original order. A
// window that shrank since (a smaller Receive Maximum) holds the rest
// back until acknowledgements make room.
func (c *client) resendLocked() {
	p := c.pub
	p.unsent = 0
	out := 0
	for i := 0; i < p.n; i++ {
		f := &p.ring[(p.head+i)%len(p.ring)]
		f.unsent = false
		if f.done {
			continue
		}
		if f.released {
			c.wbuf = appendAck(c.wbuf, packetgen.TypePubrel, f.id)
			out++
			continue
		}
		if out >= p.window {
			f.unsent = true
			p.unsent++
			continue
		}
		c.resendOne(f)
		out++
	}
}

// topUpLocked re-sends held-back flights while the window has room.
func (c *client) topUpLocked() {
	p := c.pub
	if p.unsent == 0 || !c.ready {
		return
	}
	out := 0
	for i := 0; i < p.n; i++ {
		if f := &p.ring[(p.head+i)%len(p.ring)]; !f.done && !f.unsent {
			out++
		}
	}
	for i := 0; i < p.n && p.unsent > 0 && out < p.window; i++ {
		if f := &p.ring[(p.head+i)%len(p.ring)]; f.unsent {
			f.unsent = false
			p.unsent--
			c.resendOne(f)
			out++
		}
	}
}

// resendOne re-sends flight f with DUP set; one that no longer fits the
// broker's Maximum Packet Size is given up, unconfirmed.
func (c *client) resendOne(f *flight) {
	var pkt packetgen.Publish
	payload := slices.Clone(c.a.filler)
	start := len(c.wbuf)
	c.wbuf, _ = c.appendPublish(c.wbuf, &pkt, payload, f.seq, f.due, f.id, true)
	if !c.sentLocked(len(c.wbuf) - start) {
		c.wbuf = c.wbuf[:start]
		f.done = true
		c.pub.unconfirmed = append(c.pub.unconfirmed, f.seq)
	}
}

// nextFreeID is the packet identifier the next flight takes.
func (p *publisher) nextFreeID() uint16 {
	if p.nextID == 65535 {
		return 1
	}
	return p.nextID + 1
}

func (p *publisher) push(f flight) {
	if p.n == len(p.ring) {
		nr := make([]flight, max(16, 2*len(p.ring)))
		for i := 0; i < p.n; i++ {
			nr[i] = p.ring[(p.head+i)%len(p.ring)]
		}
		p.ring, p.head = nr, 0
	}
	p.ring[(p.head+p.n)%len(p.ring)] = f
	p.n++
}

// find returns the in-flight entry with packet identifier id, or nil.
// Identifiers are handed out consecutively (1 to 65535, wrapping) and the
// window is at most 65535, so the offset from the oldest entry is exact.
func (p *publisher) find(id uint16) *flight {
	if p.n == 0 {
		return nil
	}
	first := p.ring[p.head].id
	off := (int(id) - int(first) + 65535) % 65535
	if off >= p.n {
		return nil
	}
	f := &p.ring[(p.head+off)%len(p.ring)]
	if f.id != id || f.done {
		return nil
	}
	return f
}

func (p *publisher) popDone() {
	for p.n > 0 && p.ring[p.head].done {
		p.ring[p.head] = flight{}
		p.head = (p.head + 1) % len(p.ring)
		p.n--
	}
	if p.n == 0 {
		p.head = 0
		if len(p.ring) > 1024 {
			p.ring = nil // a stall made it big; let it go
		}
	}
}

// abandon gives up the window: the session that held it is gone. A QoS 2
// message whose PUBREC came back was accepted by the broker and stays
// confirmed; the rest become unconfirmed.
func (p *publisher) abandon() {
	for i := 0; i < p.n; i++ {
		f := p.ring[(p.head+i)%len(p.ring)]
		if !f.done && !f.released {
			p.unconfirmed = append(p.unconfirmed, f.seq)
		}
	}
	p.ring, p.head, p.n, p.unsent = nil, 0, 0, 0
}
