package fuzz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Finding classes.
const (
	Crash          = "crash"           // the broker stopped accepting connections, its process is gone, or it logged a panic
	Hang           = "hang"            // the liveness probe got no answer in time
	ResourceGrowth = "resource-growth" // the broker's RSS grew past the bound
	SpecDeviation  = "spec-deviation"  // malformed input accepted, or valid input refused
)

// Timing bounds every wait of a case.
type Timing struct {
	// Answer bounds the wait for a close or a PINGRESP after a case's bytes.
	Answer time.Duration
	// Liveness bounds each step of the liveness probe; past it the broker
	// hangs. Valid (ExpectAccept) cases get this long to answer too.
	Liveness time.Duration
	// Settle is how long to watch a case that owes nothing for a close.
	Settle time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.Liveness <= 0 {
		t.Liveness = 5 * time.Second
	}
	if t.Answer <= 0 {
		// Loopback answers take microseconds; a broker that sits on a
		// malformed packet this long is waiting for more bytes, which is
		// no finding, so a longer wait only costs throughput.
		t.Answer = min(250*time.Millisecond, t.Liveness)
	}
	if t.Settle <= 0 {
		t.Settle = 10 * time.Millisecond
	}
	return t
}

// Observation is what one case run showed.
type Observation struct {
	// Skipped says why the case did not run (our CONNECT refused); the
	// liveness probe still ran.
	Skipped string
	// Local is set when our side ran out of resources: nothing is judged.
	Local bool
	// Closed: the broker closed the case's connection.
	Closed bool
	// Answered: the broker answered the PINGREQ sent after the bytes.
	Answered bool
	// Silent: neither a close nor that answer came in time.
	Silent bool
	// Accepted: a CONNACK with code 0 answered a CONNECT owed a refusal
	// (Case.RefuseConnect).
	Accepted bool
	// Granted: the SUBACK for a refusable SUBSCRIBE refused nothing.
	Granted bool
	// BadDisconnect is a 5.0 DISCONNECT with a reason code under 0x80
	// (or one the codec rejects) sent instead of an error.
	BadDisconnect string
	// OpenAfterDisconnect is a DISCONNECT the broker sent without closing
	// the connection after it.
	OpenAfterDisconnect string
	// Received lists the packets the broker sent (the first few).
	Received []string
	Probe    Probe
	Panics   int64 // panics the broker logged during the case
	RSS      int64 // broker RSS after the bytes, before the close (when known)
	Took     time.Duration
}

// Exec runs c on a fresh connection to t: a valid CONNECT first when the
// case says so, the bytes in their writes, a PINGREQ after them when the
// case owes an answer or a close, then the liveness probe on another
// connection.
func (t *Target) Exec(ctx context.Context, c Case, tm Timing) Observation {
	return t.ExecTraced(ctx, c, tm, nil)
}

// ExecTraced is Exec recording the case's connection in trace.
func (t *Target) ExecTraced(ctx context.Context, c Case, tm Timing, trace *wire.Trace) Observation {
	tm = tm.withDefaults()
	start := time.Now()
	panics := t.panics()
	o := t.exec(ctx, c, tm, trace)
	if !o.Local {
		o.Probe = t.Probe(ctx, c.Version, tm.Liveness)
		if o.Probe.Failure == ProbeRefused || o.Probe.Failure == ProbeClosed {
			// A broker restarting a worker or draining a backlog gets one
			// more chance; a crashed one fails again.
			time.Sleep(100 * time.Millisecond)
			if p := t.Probe(ctx, c.Version, tm.Liveness); p.Alive() || p.Failure == ProbeTimeout {
				o.Probe = p
			}
		}
		o.Local = o.Probe.Failure == ProbeLocal
	}
	o.Panics = t.panics() - panics
	o.Took = time.Since(start)
	return o
}

func (t *Target) exec(ctx context.Context, c Case, tm Timing, trace *wire.Trace) (o Observation) {
	nc, err := t.dial(ctx, tm.Liveness)
	if err != nil {
		o.Local = errors.Is(err, errLocal)
		o.Skipped = "dial: " + err.Error()
		return o
	}
	wc := wire.New(nc, "case", c.Version, trace)
	defer wc.Close()
	if c.Phase == packetgen.PhaseAfterConnect {
		ack, err := wc.Connect(&packetgen.Connect{ProtocolLevel: c.Version, CleanStart: true, KeepAlive: 60,
			ClientID: t.clientID("fz")}, tm.Liveness)
		if err != nil {
			o.Skipped = "CONNECT: " + err.Error()
			return o
		}
		if ack.ReasonCode != 0 {
			o.Skipped = fmt.Sprintf("CONNECT refused: code 0x%02X", byte(ack.ReasonCode))
			return o
		}
	}
	for i, chunk := range c.Chunks() {
		if i > 0 && c.Delay > 0 {
			time.Sleep(c.Delay)
		}
		if wc.SendRaw(chunk, "case") != nil {
			break // closed under us: the reads below tell
		}
	}
	wait := tm.Settle
	switch c.Expect {
	case packetgen.ExpectAccept:
		wait = tm.Liveness
		fallthrough
	case packetgen.ExpectClose, packetgen.ExpectRefuse:
		if wait == tm.Settle {
			wait = tm.Answer
		}
		wc.SendRaw(pingreq, "PINGREQ") //nolint:errcheck
	}
	deadline := time.Now().Add(wait)
	pongs := 0
	disconnect := "" // the DISCONNECT the broker sent, if any
	for {
		p, err := wc.Recv(time.Until(deadline))
		switch {
		case errors.Is(err, wire.ErrClosed):
			o.Closed = true
		case errors.Is(err, wire.ErrTimeout):
			o.Silent = c.Expect != packetgen.ExpectWaitOrClose
		case err != nil:
			// A malformed answer: what followed cannot be told.
			o.Received = append(o.Received, "malformed: "+err.Error())
			// A DISCONNECT with a reason code no server may send (0x04,
			// say) is no error report either.
			if vi := packetgen.AsViolation(err); vi != nil && vi.Packet == packetgen.TypeDisconnect &&
				c.Version == packetgen.V5 && o.BadDisconnect == "" {
				o.BadDisconnect = "an invalid DISCONNECT (" + vi.Rule + ": " + vi.Detail + ")"
			}
		}
		if err != nil {
			break
		}
		if len(o.Received) < 8 {
			o.Received = append(o.Received, packetgen.Format(p))
		}
		switch p := p.(type) {
		case *packetgen.Pingresp:
			pongs++
		case *packetgen.Connack:
			o.Accepted = o.Accepted || (p.ReasonCode == 0 && c.RefuseConnect)
		case *packetgen.Suback:
			if c.RefuseID != 0 && p.PacketID == c.RefuseID {
				o.Granted = true
				for _, rc := range p.ReasonCodes {
					o.Granted = o.Granted && rc < 0x80
				}
			}
		case *packetgen.Disconnect:
			if p.ReasonCode < 0x80 && o.BadDisconnect == "" {
				o.BadDisconnect = packetgen.Format(p)
			}
			if disconnect == "" {
				disconnect = packetgen.Format(p)
				// The close follows the DISCONNECT at once: give it as
				// long as an answer gets, however late the DISCONNECT came.
				deadline = later(deadline, time.Now().Add(tm.Answer))
			}
		}
		if pongs > c.Pings && c.Expect != packetgen.ExpectWaitOrClose {
			o.Answered = true
			break
		}
	}
	if disconnect != "" && !o.Closed {
		o.OpenAfterDisconnect = disconnect
	}
	o.RSS = t.RSS()
	return o
}

// Classify names the finding an observation shows for case c, and why;
// "" when the broker did right.
func Classify(c Case, o Observation) (class, why string) {
	switch {
	case o.Local:
		return "", ""
	case o.Panics > 0:
		return Crash, fmt.Sprintf("the broker logged %d panic(s) while serving the case", o.Panics)
	case o.Probe.Failure == ProbeRefused || o.Probe.Failure == ProbeClosed:
		return Crash, "liveness probe: " + o.Probe.Failure + ": " + o.Probe.Detail
	case o.Probe.Failure == ProbeTimeout:
		return Hang, "liveness probe: " + o.Probe.Detail
	case o.Skipped != "":
		return "", ""
	}
	seen := ""
	if len(o.Received) > 0 {
		seen = "; received " + strings.Join(o.Received, ", ")
	}
	switch c.Expect {
	case packetgen.ExpectClose:
		if o.Answered {
			return SpecDeviation, fmt.Sprintf("malformed input accepted [%s]: the connection stayed open and PINGREQ was answered%s", c.Rule, seen)
		}
		// MQTT-4.13.1-1: a 5.0 broker may report the error in a DISCONNECT
		// first, with a reason code of 0x80 or more (0x81, 0x82).
		if o.BadDisconnect != "" {
			return SpecDeviation, fmt.Sprintf("malformed input answered with %s, not a DISCONNECT with a reason code of 0x80 or more [%s]", o.BadDisconnect, c.Rule)
		}
	case packetgen.ExpectRefuse:
		if o.Accepted {
			return SpecDeviation, fmt.Sprintf("CONNECT owed a refusal was accepted [%s]%s", c.Rule, seen)
		}
		if o.Granted {
			return SpecDeviation, fmt.Sprintf("SUBSCRIBE with an invalid filter granted [%s]%s", c.Rule, seen)
		}
	case packetgen.ExpectAccept:
		// Silence is not judged: a broker slowed by load (or by its own
		// memory growth) answers late, and that is no spec deviation.
		if o.Closed {
			return SpecDeviation, "valid input refused: the broker closed the connection" + seen
		}
	}
	// MQTT-3.14.4-2 (5.0): the sender of a DISCONNECT closes the connection.
	if o.OpenAfterDisconnect != "" {
		return SpecDeviation, fmt.Sprintf("the broker sent %s but left the connection open [MQTT-3.14.4-2]%s", o.OpenAfterDisconnect, seen)
	}
	return "", ""
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
