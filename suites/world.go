package suites

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// World is one spec's private view of the broker: client identifiers and
// topics unique to the spec (so specs never see each other's retained
// messages or sessions), a wire trace of every connection, and cleanup of
// what the spec left behind.
type World struct {
	cfg        *Config
	Statements []string
	prefix     string // unique per spec: client ids and topics start with it
	Trace      *wire.Trace

	mu         sync.Mutex
	conns      []*wire.Conn
	retained   map[string]bool // topics published with RETAIN 1
	persistent map[string]bool // client ids connected with clean session 0
	failures   []string        // collected instead of failing, for known deviations
	intercept  bool
	warnings   []string // SHOULDs the broker did not follow (should.go)
	refusals   bool     // the spec sends what the broker lacks on purpose (capsGuard)

	name   string // the spec's name, for the profile's deviations
	timing bool   // the spec is about timers: a late answer is its finding
}

var worldSeq atomic.Uint64

func newWorld(cfg *Config, statements []string) *World {
	n := worldSeq.Add(1)
	trace := wire.NewTrace()
	trace.Redact(cfg.Profile.Password)
	if a := cfg.Profile.EnhancedAuth; a != nil {
		trace.Redact(a.Password)
	}
	for _, s := range cfg.Profile.Security.secrets() {
		trace.Redact(s)
	}
	return &World{
		cfg:        cfg,
		Statements: statements,
		// Seed, process and sequence: unique across a run, across the
		// processes of a parallel ginkgo run and across runs.
		prefix:     fmt.Sprintf("m%x%x-%d", cfg.Seed&0xFFFF, os.Getpid()&0xFFFF, n),
		Trace:      trace,
		retained:   map[string]bool{},
		persistent: map[string]bool{},
	}
}

// Cfg is the run's configuration.
func (w *World) Cfg() *Config { return w.cfg }

// ClientID returns a client identifier unique to this spec, at most 23
// characters of [0-9a-zA-Z-] (the range every server must accept,
// MQTT-3.1.3-5, bar the hyphen which all brokers here take).
func (w *World) ClientID(name string) string {
	id := w.prefix + name
	id = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, id)
	if len(id) > 23 {
		id = id[len(id)-23:]
	}
	return id
}

// Topic returns a topic under this spec's private prefix.
func (w *World) Topic(suffix string) string {
	if suffix == "" {
		return "mqttbench/" + w.prefix
	}
	return "mqttbench/" + w.prefix + "/" + suffix
}

// Dial opens a raw connection (nothing sent yet).
func (w *World) Dial(name string) *Client {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	c, err := wire.Dial(ctx, w.cfg.Dial, name, w.cfg.Version, w.Trace)
	if err != nil {
		w.Failf("connecting to %s: %v", w.cfg.Broker, err)
	}
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	return &Client{Conn: c, w: w}
}

// ConnectOption changes the CONNECT a Client sends.
type ConnectOption func(*packetgen.Connect)

// Persistent asks for a session that outlives the connection: clean
// session 0 in 3.1.1; in 5.0 Clean Start 0 with a Session Expiry Interval
// of five minutes (unless one is set), as 0 ends the session with the
// connection.
func Persistent(cp *packetgen.Connect) {
	cp.CleanStart = false
	if cp.ProtocolLevel == packetgen.V5 && !cp.Properties.Has(packetgen.PropSessionExpiryInterval) {
		cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(300))
	}
}

// KeepAlive sets the keep alive in seconds.
func KeepAlive(s uint16) ConnectOption { return func(cp *packetgen.Connect) { cp.KeepAlive = s } }

// WithWill sets a will message.
func WithWill(topic string, payload string, qos packetgen.QoS, retain bool) ConnectOption {
	return func(cp *packetgen.Connect) {
		cp.Will = &packetgen.Will{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	}
}

// ConnectPacket returns the CONNECT the world would send for name.
func (w *World) ConnectPacket(name string, opts ...ConnectOption) *packetgen.Connect {
	cp := &packetgen.Connect{ProtocolLevel: w.cfg.Version, CleanStart: true, KeepAlive: defaultKeepAlive, ClientID: w.ClientID(name)}
	if u := w.cfg.Profile.Username; u != "" {
		cp.UsernameFlag, cp.Username = true, u
		cp.PasswordFlag, cp.Password = true, []byte(w.cfg.Profile.Password)
	}
	for _, o := range opts {
		o(cp)
	}
	return cp
}

// Connect opens a connection, sends CONNECT and requires CONNACK 0.
func (w *World) Connect(name string, opts ...ConnectOption) *Client {
	c, ack := w.ConnectAck(name, opts...)
	expectAccepted(c, ack)
	return c
}

// expectAccepted requires CONNACK 0 for the valid CONNECT the world sent.
// A refusal the specification allows any server (0x01 for a protocol
// level it does not serve, 0x03 server unavailable, 0x04 and 0x05 for
// credentials: see the profile's username) leaves the spec without a
// verdict; 0x02 refuses an identifier every server must accept; other
// codes are not refusals at all.
func expectAccepted(c *Client, ack *packetgen.Connack) {
	w := c.w
	if w.is5() {
		expectAccepted5(c, ack)
		return
	}
	switch ack.ReasonCode {
	case 0:
	case 0x01, 0x03, 0x04, 0x05:
		w.inconclusive("the broker refused the connection of %s that the spec needs: %s", c.Name, packetgen.Format(ack))
	case 0x02:
		w.stepFailed(ruleClientID, "expected CONNACK 0 for the client identifier of %s (1-23 characters of 0-9, a-z and A-Z); got %s",
			c.Name, packetgen.Format(ack))
	default:
		w.stepFailed(ruleConnackOK, "expected CONNACK return code 0 for %s; got %s", c.Name, packetgen.Format(ack))
	}
}

// ConnectAck is Connect without judging the CONNACK's return code.
func (w *World) ConnectAck(name string, opts ...ConnectOption) (*Client, *packetgen.Connack) {
	c := w.Dial(name)
	cp := w.ConnectPacket(name, opts...)
	if !cp.CleanStart || cp.Properties.SessionExpiryInterval > 0 {
		w.mu.Lock()
		w.persistent[cp.ClientID] = true
		w.mu.Unlock()
	}
	since := time.Now()
	c.MustSend(cp)
	// A valid CONNECT is owed a CONNACK (MQTT-3.1.4-4), before anything
	// else (MQTT-3.2.0-1).
	p := c.recvAnswer("CONNACK", since, "CONNACK")
	ack, ok := p.(*packetgen.Connack)
	if !ok {
		w.stepFailed(ruleConnack, "expected CONNACK as the first packet at %s; got %s", c.Name, packetgen.Format(p))
	}
	w.answered("CONNACK", since)
	w.serverKeepAlive(c, cp, ack)
	return c, ack
}

// cleanup closes every connection and removes what the spec left on the
// broker: retained messages and persistent sessions.
func (w *World) cleanup() {
	w.mu.Lock()
	conns, retained, persistent := w.conns, w.retained, w.persistent
	w.conns = nil
	w.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	if len(retained) == 0 && len(persistent) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	for id := range persistent {
		// Clean session 1 discards the stored session (MQTT-3.1.2-6).
		c, err := wire.Dial(ctx, w.cfg.Dial, "cleanup", w.cfg.Version, nil)
		if err != nil {
			return
		}
		cp := &packetgen.Connect{ProtocolLevel: w.cfg.Version, CleanStart: true, ClientID: id}
		if u := w.cfg.Profile.Username; u != "" {
			cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, u, true, []byte(w.cfg.Profile.Password)
		}
		c.Connect(cp, w.cfg.Timeout) //nolint:errcheck
		c.Disconnect()               //nolint:errcheck
	}
	if len(retained) > 0 {
		c, err := wire.Dial(ctx, w.cfg.Dial, "cleanup", w.cfg.Version, nil)
		if err != nil {
			return
		}
		cp := w.ConnectPacket("cleanup")
		if _, err := c.Connect(cp, w.cfg.Timeout); err == nil {
			for t := range retained {
				// An empty retained message deletes the stored one (MQTT-3.3.1-10).
				c.Send(&packetgen.Publish{Topic: []byte(t), Retain: true}) //nolint:errcheck
			}
			c.Send(&packetgen.Pingreq{})                       //nolint:errcheck
			wire.Expect[*packetgen.Pingresp](c, w.cfg.Timeout) //nolint:errcheck
		}
		c.Disconnect() //nolint:errcheck
	}
}

// abort ends a spec body that is collecting failures of a known deviation.
type abort struct{}

// Failf fails the spec with a message that names its statements and says
// what was expected and what happened.
func (w *World) Failf(format string, args ...any) {
	msg := fmt.Sprintf("[%s] %s", strings.Join(w.Statements, " "), fmt.Sprintf(format, args...))
	w.mu.Lock()
	intercept := w.intercept
	if intercept {
		w.failures = append(w.failures, msg)
	}
	w.mu.Unlock()
	if intercept {
		panic(abort{})
	}
	ginkgo.Fail(msg, 1)
}

// Expectf fails with "expected X, got Y" when ok is false.
func (w *World) Expectf(ok bool, expected string, gotFormat string, args ...any) {
	if !ok {
		w.Failf("expected %s; got %s", expected, fmt.Sprintf(gotFormat, args...))
	}
}

// Require skips the spec when the profile says the broker lacks a feature.
func (w *World) Require(ok bool, why string) {
	if !ok {
		ginkgo.Skip("profile: " + why)
	}
}

// Grace is the extra time allowed beyond a timing the specification states.
func (w *World) Grace() time.Duration { return w.cfg.Grace }

// noteRetained records a topic to clear after the spec.
func (w *World) noteRetained(topic string) {
	w.mu.Lock()
	w.retained[topic] = true
	w.mu.Unlock()
}
