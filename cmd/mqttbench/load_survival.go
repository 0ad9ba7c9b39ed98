package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/faults"
	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/wire"
)

// Survival probes (issue 16): around each process fault the fault runner
// leaves the broker something to keep, on connections of its own under
// mqttbench-probe/RUN/FAULT/, and looks for it once the broker is back:
//
//   - retained: probeRetained retained messages published at QoS 1, each
//     acknowledged; all must come back to a new subscriber, payload intact;
//   - a pending will: a 5.0 client with a will (QoS 1, Will Delay Interval
//     probeWillDelay) drops its connection just before the fault, so the
//     will is waiting when the broker dies; a watcher with a persistent
//     session, subscribed to the will's topic, must receive it.
//
// What was acknowledged was promised: a lost retained message or will is
// a violation, as an acknowledged QoS 1 message lost is.
const (
	probeRetained  = 20
	probeWillDelay = 2 // seconds
	// probeSlack is how long past the will's delay the watcher waits
	// after the broker is back; probeWindow how long a new subscriber
	// waits for retained messages.
	probeSlack  = 2 * time.Second
	probeWindow = 2 * time.Second
	// probeStep bounds each exchange (CONNACK, PUBACK, SUBACK).
	probeStep = 5 * time.Second
	// probeSessionExpiry is the watcher's Session Expiry Interval, and
	// the will client's beyond the will's delay, in seconds.
	probeSessionExpiry = 300
)

// errNoV5 is a broker that refused or did not understand a 5.0 CONNECT.
var errNoV5 = errors.New("the broker does not speak 5.0")

// survivalProbe arms and checks the probes of one run.
type survivalProbe struct {
	dial       wire.Dialer
	run        string // random, so runs never read each other's probes
	version    packetgen.Version
	user, pass string
}

// newSurvivalProbe dials the way the run does (TLS, WebSocket, client
// certificates) but straight to the broker, never through a fault proxy.
func newSurvivalProbe(ls loadSetup) (*survivalProbe, error) {
	o := *ls.opts
	o.Transport.Via = nil
	d, err := loadgen.ProbeDialer(*ls.sc, ls.shard, o)
	if err != nil {
		return nil, err
	}
	var b [4]byte
	rand.Read(b[:]) //nolint:errcheck // never fails (crypto/rand)
	v := ls.sc.Protocol
	if v != packetgen.V5 {
		v = packetgen.V311
	}
	return &survivalProbe{
		dial:    func(ctx context.Context) (net.Conn, error) { return d(ctx, 0) },
		run:     hex.EncodeToString(b[:]),
		version: v,
		user:    ls.sc.Username,
		pass:    ls.sc.Password,
	}, nil
}

// armed is one fault's probes between arming and checking.
type armed struct {
	p      *survivalProbe
	fault  string // the fault's name, for violations
	prefix string // topic prefix, ending in /
	idBase string // client identifier prefix

	retainedSent int
	retainedErr  error

	willErr error      // the will probe could not be armed
	watcher *wire.Conn // subscribed to the will's topic; nil if willErr
}

// arm is the scheduler's faults.Probe.
func (p *survivalProbe) arm(ctx context.Context, id string, sp faults.Spec) func(context.Context, bool) *reports.LoadSurvival {
	n := strings.TrimPrefix(id, "mqttbench-fault-")
	a := &armed{p: p, fault: sp.Name, prefix: "mqttbench-probe/" + p.run + "/" + n + "/", idBase: "mqbp-" + p.run + "-" + n}
	a.retainedSent, a.retainedErr = a.publishRetained(ctx)
	a.willErr = a.armWill(ctx)
	return a.check
}

func (a *armed) retainedTopic(i int) string { return fmt.Sprintf("%sr/%d", a.prefix, i) }
func (a *armed) retainedPayload(i int) string {
	return fmt.Sprintf("%s %d", strings.TrimSuffix(a.prefix, "/"), i)
}
func (a *armed) willTopic() string { return a.prefix + "will" }

// publishRetained publishes the retained messages at QoS 1 and returns
// how many were acknowledged.
func (a *armed) publishRetained(ctx context.Context) (int, error) {
	c, _, err := a.p.connect(ctx, a.p.version, &packetgen.Connect{ClientID: a.idBase + "-r", CleanStart: true}, false)
	if err != nil {
		return 0, err
	}
	defer c.Disconnect() //nolint:errcheck // done with it either way
	acked := 0
	for i := range probeRetained {
		pid := uint16(i + 1)
		err := c.Send(&packetgen.Publish{QoS: 1, Retain: true, Topic: []byte(a.retainedTopic(i)), PacketID: pid, Payload: []byte(a.retainedPayload(i))})
		if err == nil {
			err = probeAwaitAck(ctx, c, pid)
		}
		if err != nil {
			return acked, err
		}
		acked++
	}
	return acked, nil
}

// armWill connects the watcher and the will client, then cuts the will
// client's connection so its will waits out its delay.
func (a *armed) armWill(ctx context.Context) error {
	w, _, err := a.p.connect(ctx, packetgen.V5, a.watcherConnect(true), false)
	if err != nil {
		return err
	}
	if err := probeSubscribe(ctx, w, a.willTopic(), 1); err != nil {
		w.Close()
		return err
	}
	cp := &packetgen.Connect{ClientID: a.idBase + "-w", CleanStart: true,
		Will: &packetgen.Will{QoS: 1, Topic: a.willTopic(), Payload: []byte(a.idBase)}}
	cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(probeWillDelay+probeSessionExpiry))
	cp.Will.Properties.Set(packetgen.PropWillDelayInterval, uint32(probeWillDelay))
	c, _, err := a.p.connect(ctx, packetgen.V5, cp, false)
	if err != nil {
		w.Close()
		return err
	}
	c.Close() // abruptly: no DISCONNECT, so the will stands
	a.watcher = w
	return nil
}

func (a *armed) watcherConnect(clean bool) *packetgen.Connect {
	cp := &packetgen.Connect{ClientID: a.idBase + "-s", CleanStart: clean}
	cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(probeSessionExpiry))
	return cp
}

// check looks for what was armed once the broker is back, and cleans up.
func (a *armed) check(ctx context.Context, back bool) *reports.LoadSurvival {
	if !back {
		a.cleanup(ctx)
		return nil
	}
	sv := &reports.LoadSurvival{RetainedSent: a.retainedSent}
	backAt := time.Now()
	a.checkRetained(ctx, sv)
	a.checkWill(ctx, sv, backAt)
	a.cleanup(ctx)
	return sv
}

// checkRetained subscribes anew and counts the retained messages back.
func (a *armed) checkRetained(ctx context.Context, sv *reports.LoadSurvival) {
	switch {
	case a.retainedSent == 0 && a.retainedErr != nil:
		sv.Retained = "n/a: the retained probe failed before the fault: " + a.retainedErr.Error()
		return
	case a.retainedSent == 0:
		sv.Retained = "n/a: no retained message was acknowledged before the fault"
		return
	}
	c, _, err := a.p.connect(ctx, a.p.version, &packetgen.Connect{ClientID: a.idBase + "-c", CleanStart: true}, true)
	if err != nil {
		sv.Retained = "n/a: could not connect after the fault: " + err.Error()
		return
	}
	defer c.Disconnect() //nolint:errcheck // done with it either way
	got := map[string]string{}
	pubs := func(p *packetgen.Publish) {
		if p.Retain {
			got[string(p.Topic)] = string(p.Payload)
		}
	}
	if err := probeSubscribeCollect(ctx, c, a.prefix+"r/#", pubs); err != nil {
		sv.Retained = "n/a: could not subscribe after the fault: " + err.Error()
		return
	}
	deadline := time.Now().Add(probeWindow)
	for len(got) < a.retainedSent && time.Now().Before(deadline) {
		if err := probeAwait(ctx, c, deadline, nil, pubs); err != nil && !errors.Is(err, wire.ErrTimeout) {
			break
		}
	}
	changed := 0
	for i := range a.retainedSent {
		if p, ok := got[a.retainedTopic(i)]; ok {
			if p == a.retainedPayload(i) {
				sv.RetainedKept++
			} else {
				changed++
			}
		}
	}
	lost := a.retainedSent - sv.RetainedKept
	if lost == 0 {
		sv.Retained = fmt.Sprintf("%d of %d kept", sv.RetainedKept, a.retainedSent)
		return
	}
	sv.Retained = fmt.Sprintf("%d of %d lost", lost, a.retainedSent)
	if changed > 0 {
		sv.Retained += fmt.Sprintf(" (%d came back with another payload)", changed)
	}
	sv.Violations = append(sv.Violations, fmt.Sprintf("fault %s: %d of %d retained messages acknowledged (QoS 1) before it were lost", a.fault, lost, a.retainedSent))
}

// checkWill waits for the pending will at the watcher: on its connection
// while that lasts (a paused broker keeps it; a broker may also send
// pending wills as it shuts down), then on a new one that
// resumes its session (Clean Start 0), re-subscribing when the session
// is gone.
func (a *armed) checkWill(ctx context.Context, sv *reports.LoadSurvival, backAt time.Time) {
	if a.willErr != nil {
		if errors.Is(a.willErr, errNoV5) {
			sv.Wills = "n/a (the broker does not speak 5.0: no will delay)"
		} else {
			sv.Wills = "n/a: the will probe failed before the fault: " + a.willErr.Error()
		}
		return
	}
	sv.WillsPending = 1
	wait := time.Duration(probeWillDelay)*time.Second + probeSlack
	deadline := backAt.Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	delivered := false
	onPub := func(p *packetgen.Publish) {
		if string(p.Topic) == a.willTopic() && string(p.Payload) == a.idBase {
			delivered = true
		}
	}
	how := "the watcher got it on its first connection"
	w := a.watcher
	for !delivered && time.Now().Before(deadline) {
		err := probeAwait(ctx, w, deadline, func(packetgen.Packet) bool { return delivered }, onPub)
		if err == nil || errors.Is(err, wire.ErrTimeout) || ctx.Err() != nil {
			continue
		}
		// The connection died with the broker: resume the session.
		w.Close()
		nw, ack, err := a.p.connect(ctx, packetgen.V5, a.watcherConnect(false), true)
		if err != nil {
			how = "the watcher could not reconnect: " + err.Error()
			break
		}
		w = nw
		if ack.SessionPresent {
			how = "the watcher's session was kept (Session Present 1)"
			continue
		}
		how = "the watcher's session was not kept (Session Present 0): it subscribed again"
		if err := probeSubscribeCollect(ctx, w, a.willTopic(), onPub); err != nil {
			how = "the watcher could not subscribe again: " + err.Error()
			break
		}
	}
	a.watcher = w
	if delivered {
		sv.WillsDelivered = 1
		sv.Wills = "1 of 1 pending will delivered; " + how
		return
	}
	sv.Wills = fmt.Sprintf("lost: 0 of 1 pending will delivered within %.1fs of the broker's return; %s", wait.Seconds(), how)
	sv.Violations = append(sv.Violations, fmt.Sprintf("fault %s: a pending will (Will Delay Interval %ds, its client gone just before the fault) was never delivered", a.fault, probeWillDelay))
}

// cleanup removes the retained messages and both sessions, best effort.
func (a *armed) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, probeStep)
	defer cancel()
	if a.watcher != nil {
		a.watcher.Close()
	}
	if a.retainedSent > 0 {
		if c, _, err := a.p.connect(ctx, a.p.version, &packetgen.Connect{ClientID: a.idBase + "-r", CleanStart: true}, false); err == nil {
			for i := range a.retainedSent {
				pid := uint16(i + 1)
				if c.Send(&packetgen.Publish{QoS: 1, Retain: true, Topic: []byte(a.retainedTopic(i)), PacketID: pid}) != nil || probeAwaitAck(ctx, c, pid) != nil {
					break
				}
			}
			c.Disconnect() //nolint:errcheck
		}
	}
	if a.willErr == nil {
		// A clean start with no expiry ends each session as it closes.
		for _, id := range []string{a.idBase + "-s", a.idBase + "-w"} {
			if c, _, err := a.p.connect(ctx, packetgen.V5, &packetgen.Connect{ClientID: id, CleanStart: true}, false); err == nil {
				c.Disconnect() //nolint:errcheck
			}
		}
	}
}

// connect dials and connects as version v; with retry it tries again
// until ctx ends (the broker may still be coming back). A refused or
// misunderstood 5.0 CONNECT is errNoV5.
func (p *survivalProbe) connect(ctx context.Context, v packetgen.Version, cp *packetgen.Connect, retry bool) (*wire.Conn, *packetgen.Connack, error) {
	cp.ProtocolLevel = v
	cp.KeepAlive = 0 // the probes' connections idle through a pause
	if p.user != "" {
		cp.UsernameFlag, cp.Username = true, p.user
	}
	if p.pass != "" {
		cp.PasswordFlag, cp.Password = true, []byte(p.pass)
	}
	for {
		c, ack, err := p.connectOnce(ctx, v, cp)
		if err == nil || !retry || errors.Is(err, errNoV5) {
			return c, ack, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *survivalProbe) connectOnce(ctx context.Context, v packetgen.Version, cp *packetgen.Connect) (*wire.Conn, *packetgen.Connack, error) {
	dctx, cancel := context.WithTimeout(ctx, probeStep)
	defer cancel()
	c, err := wire.Dial(dctx, p.dial, cp.ClientID, v, nil)
	if err != nil {
		return nil, nil, err
	}
	ack, err := c.Connect(cp, probeStepLeft(ctx))
	switch {
	case err != nil && v == packetgen.V5 && (errors.Is(err, wire.ErrClosed) || packetgen.AsViolation(err) != nil):
		err = errNoV5
	case err == nil && ack.ReasonCode == packetgen.UnsupportedProtocolVersion, err == nil && v == packetgen.V5 && ack.ReasonCode == 0x01:
		err = errNoV5
	case err == nil && ack.ReasonCode != 0:
		err = fmt.Errorf("CONNACK refused the probe: reason code 0x%02X", byte(ack.ReasonCode))
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, ack, nil
}

// probeStepLeft is probeStep, or less when ctx ends sooner.
func probeStepLeft(ctx context.Context) time.Duration {
	d := probeStep
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return max(d, time.Millisecond)
}

// probeSubscribe subscribes c to filter at qos and waits for the SUBACK.
func probeSubscribe(ctx context.Context, c *wire.Conn, filter string, qos packetgen.QoS) error {
	return probeSubscribeWith(ctx, c, filter, qos, nil)
}

// probeSubscribeCollect subscribes at QoS 1, handing messages that arrive
// before the SUBACK (retained ones may) to onPub.
func probeSubscribeCollect(ctx context.Context, c *wire.Conn, filter string, onPub func(*packetgen.Publish)) error {
	return probeSubscribeWith(ctx, c, filter, 1, onPub)
}

func probeSubscribeWith(ctx context.Context, c *wire.Conn, filter string, qos packetgen.QoS, onPub func(*packetgen.Publish)) error {
	const pid = 0x7001
	if err := c.Send(&packetgen.Subscribe{PacketID: pid, Subscriptions: []packetgen.Subscription{{Filter: filter, QoS: qos}}}); err != nil {
		return err
	}
	var ack *packetgen.Suback
	err := probeAwait(ctx, c, time.Now().Add(probeStepLeft(ctx)), func(p packetgen.Packet) bool {
		s, ok := p.(*packetgen.Suback)
		if ok && s.PacketID == pid {
			ack = s
		}
		return ack != nil
	}, onPub)
	if err != nil {
		return err
	}
	if len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] >= 0x80 {
		return fmt.Errorf("SUBACK refused %s: %v", filter, ack.ReasonCodes)
	}
	return nil
}

// probeAwaitAck waits for the PUBACK of pid.
func probeAwaitAck(ctx context.Context, c *wire.Conn, pid uint16) error {
	var rc packetgen.ReasonCode
	err := probeAwait(ctx, c, time.Now().Add(probeStepLeft(ctx)), func(p packetgen.Packet) bool {
		a, ok := p.(*packetgen.Puback)
		if ok && a.PacketID == pid {
			rc = a.ReasonCode
		}
		return ok && a.PacketID == pid
	}, nil)
	if err == nil && rc >= 0x80 {
		err = fmt.Errorf("PUBACK refused the probe: reason code 0x%02X", byte(rc))
	}
	return err
}

// probeAwait reads c until done accepts a packet or deadline (or ctx's)
// passes: wire.ErrTimeout then. PUBLISH packets go to onPub, QoS 1 ones
// acknowledged.
func probeAwait(ctx context.Context, c *wire.Conn, deadline time.Time, done func(packetgen.Packet) bool, onPub func(*packetgen.Publish)) error {
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return wire.ErrTimeout
		}
		p, err := c.Recv(left)
		if err != nil {
			return err
		}
		if pub, ok := p.(*packetgen.Publish); ok {
			if pub.QoS == 1 {
				c.Send(&packetgen.Puback{PacketID: pub.PacketID}) //nolint:errcheck // a lost ack shows as a redelivery
			}
			if onPub != nil {
				onPub(pub)
			}
		}
		if done != nil && done(p) {
			return nil
		}
		if done == nil {
			// Collecting: every packet is a step; the caller decides.
			if _, ok := p.(*packetgen.Publish); !ok {
				continue
			}
			return nil
		}
	}
}
