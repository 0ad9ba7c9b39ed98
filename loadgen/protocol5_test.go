package loadgen

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// quick5 is quick at MQTT 5.0 with a few properties on every message:
// two 16-byte user properties, a content type, a message expiry, UTF-8
// payloads, subscription identifiers and topic aliases.
func quick5(pubs, subs int, qos packetgen.QoS, topic string) Scenario {
	sc := quick(pubs, subs, qos, topic)
	sc.Protocol = packetgen.V5
	sc.UserProperties, sc.UserPropertySize = 2, 16
	sc.ContentType, sc.MessageExpiry = "application/x-mqttbench", time.Minute
	sc.PayloadFormat, sc.SubscriptionID, sc.TopicAlias = true, true, true
	sc.SessionExpiry = 30 * time.Second
	return sc
}

// reasonCount is how often the summary counted code in packet.
func reasonCount(l *reports.Load, packet string, code int) uint64 {
	for _, r := range l.ReasonCodes {
		if r.Packet == packet && r.Code == code {
			return r.Count
		}
	}
	return 0
}

// Every pattern at every QoS at 5.0, properties on, against the reference
// broker in process and over TCP: every message arrives once, with the
// properties it was sent with (a broker that dropped one would show as a
// violation), and topic aliases save bytes.
func TestRunV5Patterns(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	patterns := []struct {
		name       string
		pubs, subs int
		topic      string
		fanout     uint64
		tcp        bool
	}{
		{"fan-in", 3, 1, "bench/all", 1, false},
		{"fan-out", 1, 3, "bench/all", 3, false},
		{"point-to-point", 3, 3, "bench/{p}", 1, false},
		{"point-to-point/tcp", 3, 3, "bench/{p}", 1, true},
	}
	for _, p := range patterns {
		for qos := packetgen.QoS(0); qos <= 2; qos++ {
			t.Run(fmt.Sprintf("%s/qos%d", p.name, qos), func(t *testing.T) {
				sc := quick5(p.pubs, p.subs, qos, p.topic)
				if p.tcp {
					sc.Brokers = []string{"tcp://" + srv.Addrs()[0].String()}
				}
				l := run(t, sc, Options{})
				checkClean(t, l, p.fanout)
				m := l.Messages
				if m.TopicAliased != m.Sent-uint64(p.pubs) || m.TopicAliasBytesSaved <= 0 {
					t.Errorf("topic aliased %d of %d sent, %d bytes saved", m.TopicAliased, m.Sent, m.TopicAliasBytesSaved)
				}
				// Each aliased PUBLISH saves its topic less the alias
				// property's 3 bytes; the first of each publisher costs 3.
				topicLen := int64(len(sc.PublisherTopic(0)))
				if want := int64(m.TopicAliased)*(topicLen-3) - 3*int64(p.pubs); m.TopicAliasBytesSaved != want {
					t.Errorf("bytes saved %d, want %d", m.TopicAliasBytesSaved, want)
				}
				if l.Connack == nil || l.Connack.ReceiveMaximum != 65535 || l.Connack.InflightWindow != sc.Inflight || l.Connack.TopicAliasMaximum != 65535 {
					t.Errorf("connack %+v", l.Connack)
				}
				if len(l.ReasonCodes) != 0 || l.Scenario.Protocol != "5.0" {
					t.Errorf("reason codes %+v, protocol %q", l.ReasonCodes, l.Scenario.Protocol)
				}
			})
		}
	}
}

// A broker that alters what it forwards is caught: here a proxy drops
// every user property and the subscription identifier from the PUBLISH
// packets the broker sends.
func TestRunV5PropertyFaults(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	dial := func(ctx context.Context, i int) (net.Conn, error) {
		client, server := net.Pipe()
		go srv.ServeConn(server) //nolint:errcheck
		if i == 0 {
			return client, nil // the publisher
		}
		return newRewriter(client, func(p packetgen.Packet) {
			if pub, ok := p.(*packetgen.Publish); ok {
				pub.Properties.UserProperties = nil
				pub.Properties.SubscriptionIdentifiers = nil
			}
		}), nil
	}
	l := run(t, quick5(1, 1, 1, "bench/{p}"), Options{Dial: dial})
	v := strings.Join(l.Violations, "\n")
	for _, want := range []string{"without the subscriber's Subscription Identifier (MQTT-3.3.4-3)", "user properties altered, missing or reordered"} {
		if !strings.Contains(v, want) {
			t.Errorf("violations lack %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "Content Type") || strings.Contains(v, "Message Expiry") {
		t.Errorf("violations name what was not altered:\n%s", v)
	}
}

// A publisher's window is the smaller of --inflight and the broker's
// Receive Maximum: a proxy that advertises Receive Maximum 3 and holds
// acknowledgements back a little never sees a fourth QoS 1 PUBLISH
// outstanding, and the window is what limits the run.
func TestRunV5ReceiveMaximumQoS1(t *testing.T) {
	srv := broker.New(broker.Options{})
	defer srv.Close()
	var mu sync.Mutex
	maxOut := 0
	dial := func(ctx context.Context, i int) (net.Conn, error) {
		client, server := net.Pipe()
		go srv.ServeConn(server) //nolint:errcheck
		if i != 0 {
			return client, nil
		}
		var out atomic.Int64
		rw := newRewriter(client, func(p packetgen.Packet) {
			switch q := p.(type) {
			case *packetgen.Connack:
				q.Properties.Set(packetgen.PropReceiveMaximum, uint16(3))
			case *packetgen.Puback:
				out.Add(-1)
				time.Sleep(2 * time.Millisecond) // acknowledgements come back slowly
			}
		})
		rw.sent = func(b []byte) {
			if packetgen.Type(b[0]>>4) == packetgen.TypePublish && b[0]>>1&3 > 0 {
				n := int(out.Add(1))
				mu.Lock()
				maxOut = max(maxOut, n)
				mu.Unlock()
			}
		}
		return rw, nil
	}
	sc := quick5(1, 1, 1, "bench/rm")
	sc.Rate, sc.Inflight, sc.MaxLag = 2000, 100, time.Second
	l := run(t, sc, Options{Dial: dial})
	mu.Lock()
	defer mu.Unlock()
	if maxOut > 3 || maxOut == 0 {
		t.Errorf("%d QoS 1 PUBLISH packets outstanding at once; the broker allows 3", maxOut)
	}
	if l.Connack == nil || l.Connack.ReceiveMaximum != 3 || l.Connack.InflightWindow != 3 {
		t.Errorf("connack %+v", l.Connack)
	}
	if l.Messages.MissedWindow == 0 || len(l.Violations) != 0 || len(l.Errors) != 0 {
		t.Errorf("missed (window) %d, violations %v, errors %v", l.Messages.MissedWindow, l.Violations, l.Errors)
	}
	if !strings.Contains(strings.Join(l.Notes, "\n"), "Receive Maximum 3 made each publisher's window 3, not 100") {
		t.Errorf("notes %v", l.Notes)
	}
}

// At QoS 2 the reference broker enforces its Receive Maximum: one PUBLISH
// too many gets DISCONNECT 0x93. The generator stays within it.
func TestRunV5ReceiveMaximumQoS2(t *testing.T) {
	sc := quick5(2, 2, 2, "bench/{p}")
	sc.Rate, sc.Inflight = 2000, 1000
	l := run(t, sc, Options{Broker: broker.Options{ReceiveMaximum: 2}})
	if len(l.Errors) != 0 || len(l.ReasonCodes) != 0 || len(l.Violations) != 0 {
		t.Errorf("errors %v %v, reason codes %+v, violations %v", l.Errors, l.ErrorSample, l.ReasonCodes, l.Violations)
	}
	if l.Connack == nil || l.Connack.ReceiveMaximum != 2 || l.Connack.InflightWindow != 2 {
		t.Errorf("connack %+v", l.Connack)
	}
	if m := l.Messages; m.Received != m.Expected || m.Acked != m.Sent {
		t.Errorf("messages %+v", m)
	}
}

// Every non-success reason code is counted: PUBACK and PUBREC 0x10 when
// nobody subscribes, PUBACK 0x87 when the broker's ACL denies the publish
// (those messages are rejected, not lost), DISCONNECT 0x8B when the broker
// shuts down.
func TestRunV5ReasonCodes(t *testing.T) {
	for _, qos := range []packetgen.QoS{1, 2} {
		t.Run(fmt.Sprintf("no subscribers/qos%d", qos), func(t *testing.T) {
			l := run(t, quick5(2, 0, qos, "bench/{p}"), Options{})
			packet := map[packetgen.QoS]string{1: "PUBACK", 2: "PUBREC"}[qos]
			if n := reasonCount(l, packet, 0x10); n == 0 || n != l.Messages.Sent || l.Messages.Acked != l.Messages.Sent {
				t.Errorf("%s 0x10 counted %d, sent %d, acked %d (%+v)", packet, n, l.Messages.Sent, l.Messages.Acked, l.ReasonCodes)
			}
			if l.ReasonCodes[0].Name != "No matching subscribers" {
				t.Errorf("reason codes %+v", l.ReasonCodes)
			}
		})
	}
	t.Run("acl denies publish", func(t *testing.T) {
		rules, err := acl.Parse(strings.NewReader("topic read bench/#\n"), "test.acl")
		if err != nil {
			t.Fatal(err)
		}
		l := run(t, quick5(1, 1, 1, "bench/{p}"), Options{Broker: broker.Options{ACL: rules}})
		m := l.Messages
		if n := reasonCount(l, "PUBACK", 0x87); n == 0 || n != m.Sent || m.Rejected != m.Sent || m.Acked != 0 {
			t.Errorf("PUBACK 0x87 counted %d; sent %d rejected %d acked %d", n, m.Sent, m.Rejected, m.Acked)
		}
		if len(l.Violations) != 0 || l.Verify[0].Confirmed != 0 {
			t.Errorf("rejected messages are not losses: violations %v, verification %+v", l.Violations, l.Verify)
		}
	})
	t.Run("broker shuts down", func(t *testing.T) {
		srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		sc := quick5(1, 1, 1, "bench/{p}")
		sc.Brokers = []string{"tcp://" + srv.Addrs()[0].String()}
		sc.Rate, sc.Duration, sc.Drain, sc.MaxLag = 200, time.Second, 200*time.Millisecond, time.Second
		go closeAfter(srv, 20, func() { srv.Close() })
		l := run(t, sc, Options{})
		if n := reasonCount(l, "DISCONNECT", 0x8B); n == 0 {
			t.Errorf("no DISCONNECT 0x8B counted: %+v", l.ReasonCodes)
		}
		if !strings.Contains(l.ErrorSample["closed"], "DISCONNECT 0x8B (Server shutting down)") {
			t.Errorf("error samples %v", l.ErrorSample)
		}
	})
}

// A message larger than the broker's Maximum Packet Size is not sent,
// and counted apart.
func TestRunV5MaximumPacketSize(t *testing.T) {
	sc := quick5(1, 1, 1, "bench/{p}")
	sc.Payload = 300
	l := run(t, sc, Options{Broker: broker.Options{MaxPacketSize: 200}})
	m := l.Messages
	if m.Offered == 0 || m.MissedTooLarge != m.Offered || m.Sent != 0 || len(l.Errors) != 0 {
		t.Errorf("offered %d, missed too large %d, sent %d, errors %v", m.Offered, m.MissedTooLarge, m.Sent, l.Errors)
	}
	if l.Connack == nil || l.Connack.MaximumPacketSize != 200 {
		t.Errorf("connack %+v", l.Connack)
	}
	if !strings.Contains(strings.Join(l.Notes, "\n"), "larger than the broker's Maximum Packet Size") {
		t.Errorf("notes %v", l.Notes)
	}
}

// A broker that sets a Server Keep Alive is obeyed (MQTT-3.2.2-21): with
// no keep alive of its own, the generator pings every idle connection
// often enough that the broker closes none.
func TestRunV5ServerKeepAlive(t *testing.T) {
	sc := DefaultScenario()
	sc.Protocol = packetgen.V5
	sc.Publishers, sc.Subscribers, sc.Connections = 0, 0, 3
	sc.Keepalive, sc.Duration = 0, 2500*time.Millisecond
	l := run(t, sc, Options{Broker: broker.Options{ServerKeepAlive: 1}})
	if len(l.Errors) != 0 || len(l.ReasonCodes) != 0 || l.Connections.Attempts != 3 {
		t.Errorf("errors %v %v, reason codes %+v, connections %+v", l.Errors, l.ErrorSample, l.ReasonCodes, l.Connections)
	}
	if l.Connack == nil || l.Connack.ServerKeepAlive == nil || *l.Connack.ServerKeepAlive != 1 {
		t.Errorf("connack %+v", l.Connack)
	}
}

// rewriter is a client's end of a connection that decodes what the broker
// sends (5.0), lets edit change each packet, and re-encodes it; sent, when
// set, sees each write of the client.
type rewriter struct {
	net.Conn
	edit func(packetgen.Packet)
	sent func([]byte)
	in   []byte // undecoded bytes from the broker
	out  []byte // re-encoded bytes not yet read
}

func newRewriter(c net.Conn, edit func(packetgen.Packet)) *rewriter {
	return &rewriter{Conn: c, edit: edit}
}

func (r *rewriter) Read(b []byte) (int, error) {
	dec := packetgen.Decoder{Version: packetgen.V5, Side: packetgen.FromServer}
	for len(r.out) == 0 {
		buf := make([]byte, 4096)
		n, err := r.Conn.Read(buf)
		r.in = append(r.in, buf[:n]...)
		for {
			p, size, derr := dec.Decode(r.in)
			if derr != nil {
				break // incomplete
			}
			p = p.Clone()
			r.in = r.in[size:]
			r.edit(p)
			r.out, _ = packetgen.Append(r.out, p, packetgen.V5)
		}
		if err != nil && len(r.out) == 0 {
			return 0, err
		}
	}
	n := copy(b, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *rewriter) Write(b []byte) (int, error) {
	if r.sent != nil {
		for rest := b; len(rest) > 0; {
			h, err := (&packetgen.Decoder{Version: packetgen.V5, Side: packetgen.FromClient}).ParseHeader(rest)
			if err != nil || len(rest) < h.PacketSize() {
				break
			}
			r.sent(rest[:h.PacketSize()])
			rest = rest[h.PacketSize():]
		}
	}
	return r.Conn.Write(b)
}

// protocol: 5 and the 5.0 fields of a scenario file; a 3.1.1 scenario
// with a 5.0 field, or a bad value, is one line naming the field.
func TestParseScenarioV5(t *testing.T) {
	s, err := LoadScenario("testdata/p2p-v5.yaml", DefaultScenario())
	if err != nil {
		t.Fatal(err)
	}
	if !s.V5() || s.SessionExpiry != 5*time.Minute || s.MessageExpiry != time.Minute || s.UserProperties != 2 ||
		s.UserPropertySize != 16 || s.ContentType != "application/octet-stream" || !s.TopicAlias || !s.SubscriptionID || s.PayloadFormat {
		t.Errorf("parsed %+v", s)
	}
	s, err = ParseScenario("s.yaml", []byte("protocol: \"5.0\"\nuser_properties: 3\npayload_format: true\n"), DefaultScenario())
	if err != nil || !s.V5() || s.UserPropertySize != DefaultUserPropertySize || !s.PayloadFormat {
		t.Errorf("defaults: %+v, %v", s, err)
	}
	if s, err := ParseScenario("s.yaml", []byte("protocol: 3.1.1\n"), DefaultScenario()); err != nil || s.V5() {
		t.Errorf("protocol 3.1.1: %v", err)
	}
	if s, err := ParseScenario("s.yaml", []byte("protocol: 5\npassword: x\n"), DefaultScenario()); err != nil || s.Password != "x" {
		t.Errorf("5.0 sends a password without a user name: %v", err)
	}
	cases := []struct{ name, yaml, want string }{
		{"unknown protocol", "protocol: 6\n", `bad.yaml: protocol: "6": want 3.1.1 or 5`},
		{"3.1", "protocol: 3.1\n", `bad.yaml: protocol: "3.1": want 3.1.1 or 5`},
		{"5.0 field at 3.1.1", "topic_alias: true\n", "bad.yaml: topic_alias (--topic-alias): an MQTT 5.0 property; set protocol 5"},
		{"expiry below a second", "protocol: 5\nmessage_expiry: 500ms\n", "bad.yaml: message_expiry: 500ms is less than a second"},
		{"negative session expiry", "protocol: 5\nsession_expiry: -1s\n", "bad.yaml: session_expiry: -1s is not between 0"},
		{"content type not UTF-8", "protocol: 5\ncontent_type: \"a\\0b\"\n", "bad.yaml: content_type: "},
		{"text header needs room", "protocol: 5\npayload_format: true\npayload: 40\n", "bad.yaml: payload: 40 bytes is less than the 52-byte text header"},
		{"too many user properties", "protocol: 5\nuser_properties: 1001\n", "bad.yaml: user_properties: 1001 is not between 0 and 1000"},
		{"3.1.1 password alone", "password: x\n", "password: MQTT 3.1.1 sends a password only with a user name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario("bad.yaml", []byte(tc.yaml), DefaultScenario())
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v; want one line with %q", err, tc.want)
			}
		})
	}
}

// The probe before a 5.0 run refuses what every connection's CONNACK
// would rule out, naming the property; a broker that allows it passes.
func TestProbeV5(t *testing.T) {
	cases := []struct {
		name string
		opts broker.Options
		sc   func(*Scenario)
		want string
	}{
		{"allowed", broker.Options{}, func(*Scenario) {}, ""},
		{"maximum QoS", broker.Options{MaxQoS: 1}, func(s *Scenario) { s.QoS = 2 }, "Maximum QoS 1: run at --qos 1 or less"},
		{"no subscription identifiers", broker.Options{DisableSubscriptionIDs: true}, func(*Scenario) {}, "Subscription Identifier Available 0"},
		{"no wildcards", broker.Options{DisableWildcard: true}, func(s *Scenario) { s.Filter = "bench/+" }, `Wildcard Subscription Available 0, and filter "bench/+"`},
		{"refused", broker.Options{Users: map[string]string{"u": "p"}}, func(*Scenario) {}, "CONNACK reason code 0x87 (Not authorized)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := broker.New(tc.opts)
			defer srv.Close()
			sc := quick5(1, 1, 1, "bench/{p}")
			tc.sc(&sc)
			err := Probe(context.Background(), sc, PipeDialer(srv))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Probe: %v; want %q", err, tc.want)
			}
		})
	}
}

// Against a broker without subscription identifiers, subscribers give up
// their connections themselves, counted as refused with the reason,
// rather than send one: that would be a Protocol Error (§3.2.2.3.12) the
// broker answers with DISCONNECT 0xA1.
func TestRunV5NoSubscriptionIDs(t *testing.T) {
	sc := quick5(1, 1, 0, "bench/{p}")
	sc.Duration, sc.Drain = 200*time.Millisecond, 100*time.Millisecond
	sc.ConnectTimeout = 500 * time.Millisecond
	l := run(t, sc, Options{Broker: broker.Options{DisableSubscriptionIDs: true}})
	if l.Errors["refused"] == 0 || !strings.Contains(l.ErrorSample["refused"], "Subscription Identifier Available 0") {
		t.Errorf("errors %v %v", l.Errors, l.ErrorSample)
	}
	if n := reasonCount(l, "DISCONNECT", 0xA1); n != 0 {
		t.Errorf("the broker disconnected %d times for a subscription identifier sent anyway", n)
	}
}

// Shards of a 5.0 run merge like one run: reason codes add up (here
// PUBACK 0x10 from the three publishers nobody hears), CONNACK limits and
// property faults carry over.
func TestShardsMergeV5(t *testing.T) {
	srv := broker.New(broker.Options{ReceiveMaximum: 50})
	defer srv.Close()
	sc := crossShard(1)
	sc.Protocol, sc.UserProperties, sc.UserPropertySize, sc.SubscriptionID = packetgen.V5, 1, 8, true
	sc.Filter = "bench/1"
	parts := runShards(t, srv, sc, 3)
	merged, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	m := merged.Summary
	if n := reasonCount(m, "PUBACK", 0x10); n != 150 || len(m.ReasonCodes) != 1 {
		t.Errorf("merged reason codes %+v; want PUBACK 0x10 × 150", m.ReasonCodes)
	}
	if m.Connack == nil || m.Connack.ReceiveMaximum != 50 || m.Connack.InflightWindow != 50 || m.Connack.Varied {
		t.Errorf("merged connack %+v", m.Connack)
	}
	if len(m.Violations) != 0 || m.Messages.Received != m.Messages.Expected || m.Messages.Expected != 300 {
		t.Errorf("violations %v, messages %+v", m.Violations, m.Messages)
	}

	a := &VerifyState{RunID: "r", ShardCount: 2, Shards: []int{0}, Faults: map[string]uint64{"content_type": 2}}
	b := &VerifyState{RunID: "r", ShardCount: 2, Shards: []int{1}, Faults: map[string]uint64{"content_type": 1, "message_expiry": 4}}
	vs, err := MergeVerify([]*VerifyState{a, b})
	if err != nil {
		t.Fatal(err)
	}
	_, violations, _ := vs.Judge()
	if got := strings.Join(violations, "\n"); !strings.Contains(got, "3 messages delivered with the Content Type altered (MQTT-3.3.2-20)") ||
		!strings.Contains(got, "4 messages delivered with a Message Expiry Interval missing") {
		t.Errorf("violations %q", got)
	}
}
