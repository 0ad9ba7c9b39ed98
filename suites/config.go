// Package suites holds mqttbench's conformance specs: Ginkgo v2 specs that
// drive any MQTT broker over the wire, one file per specification section,
// each spec named by the normative statements it checks. Register adds them
// to Ginkgo's global suite; Run runs them from the mqttbench binary, and
// suite_test.go runs them under `go test` and the ginkgo CLI.
package suites

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

// Config says what to test and how patient to be.
type Config struct {
	// Dial connects to the broker under test.
	Dial wire.Dialer
	// Transport, when the broker was given as a URL, is the dialer behind
	// Dial: the WebSocket specs (section 6) open raw WebSockets with it,
	// and the TLS specs dial with other client certificates.
	Transport *transport.Dialer
	// Broker names the target in reports ("tcp://127.0.0.1:1883", "inproc").
	Broker string
	// Version is the protocol the specs speak: packetgen.V311 (the
	// default) or packetgen.V5.
	Version packetgen.Version
	// Versions, when set, runs the specs of each version in one run
	// (mqttbench conform --protocol all), with one report and verdicts per
	// version; Version is then ignored.
	Versions []packetgen.Version
	// Profile lists the broker's capabilities and known deviations.
	Profile Profile
	// Timeout is how long an answer the broker owes may take (default
	// 5 s: RabbitMQ 3.10 took up to 2 s over a SUBACK here with specs run
	// one after another, and 3-5 s over CONNACK under load). An answer
	// that does not come in time leaves its spec inconclusive, and a
	// longer wait costs only when an answer is missing.
	Timeout time.Duration
	// Quiet is how long to wait before concluding that nothing more comes
	// (default 300 ms).
	Quiet time.Duration
	// Grace is added to every timing the specification states, such as
	// 1.5 x keep alive, because real brokers check timers coarsely
	// (default 1.5 s; mosquitto 2.0.11 needs about 4.5 s).
	Grace time.Duration
	// Seed makes client identifiers and topic prefixes unique per run.
	Seed uint64

	shard Shard // set by Run from the Selection

	// Set by Register: the configuration of each version's specs, and for
	// 5.0 what the broker advertised in CONNACK.
	perVersion map[packetgen.Version]*Config
	caps       *Caps
}

// BrokerDialer turns a broker given as mqttbench conform's --broker takes
// it (tcp://, tls://, ws://, wss://, inproc or host:port) and the TLS and
// WebSocket options into a dialer; wire.Transport makes it the Dial of a
// Config. Files are read now. Errors are one line and never show a
// password: they end up in CI logs.
func BrokerDialer(url string, opts transport.Options) (*transport.Dialer, error) {
	if u, err := transport.Parse(url); err == nil && u.User != nil {
		return nil, fmt.Errorf("--broker %q: credentials in the URL are not supported (the profile has username and password)", transport.Redact(url))
	}
	d, err := transport.NewDialer(url, opts)
	if err != nil {
		return nil, transport.FlagError("--broker", err)
	}
	return d, nil
}

func (c *Config) withDefaults() {
	if c.Version == 0 {
		c.Version = packetgen.V311
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 300 * time.Millisecond
	}
	if c.Grace <= 0 {
		c.Grace = 1500 * time.Millisecond
	}
	c.Profile.withDefaults()
}

// Profile describes what a broker supports, so that a spec needing a
// feature the broker lacks is skipped (never failed), and which statements
// it is known to break, so that those are reported as known deviations.
type Profile struct {
	Name string `yaml:"name" json:"name"`
	// MaxQoS is the highest QoS the broker grants (default 2).
	MaxQoS *int `yaml:"max_qos" json:"max_qos"`
	// Retain: retained messages are supported (default true).
	Retain *bool `yaml:"retain" json:"retain"`
	// Wildcards: wildcard subscriptions are supported (default true).
	Wildcards *bool `yaml:"wildcards" json:"wildcards"`
	// MaxPayload is the largest payload the broker accepts in bytes
	// (default 256 KiB: large enough to matter, small enough for any broker).
	MaxPayload int `yaml:"max_payload" json:"max_payload"`
	// QoS0QueuedOffline: whether the broker queues QoS 0 messages for
	// offline persistent sessions. Unset means either is accepted (the
	// specification lets the server choose).
	QoS0QueuedOffline *bool `yaml:"qos0_queued_offline" json:"qos0_queued_offline,omitempty"`
	// QueueLimit is how many QoS 1/2 messages the broker keeps per
	// offline session (mosquitto: max_queued_messages, 1000 by default).
	// The conformance suites keep under it; `mqttbench load --profile`
	// takes it as the broker's promise for offline subscribers, so a
	// backlog dropped beyond it is not a violation. Unset: not known.
	QueueLimit *int `yaml:"queue_limit" json:"queue_limit,omitempty"`
	// Username and Password are sent in every CONNECT when set. The
	// password never appears in reports.
	Username string `yaml:"username" json:"username,omitempty"`
	Password string `yaml:"password" json:"-"`
	// Deviations are statements the broker is known to break.
	Deviations []Deviation `yaml:"deviations" json:"deviations,omitempty"`

	// MQTT 5.0 capabilities. A 5.0 run reads what the broker advertises
	// in CONNACK and skips what it lacks; set here, a value is what the
	// broker is expected to advertise, and a disagreement is reported (see
	// Caps.narrow). max_qos, retain and wildcards above count for 5.0 too.
	SharedSubscriptions     *bool `yaml:"shared_subscriptions" json:"shared_subscriptions,omitempty"`
	SubscriptionIdentifiers *bool `yaml:"subscription_identifiers" json:"subscription_identifiers,omitempty"`
	TopicAliasMaximum       *int  `yaml:"topic_alias_maximum" json:"topic_alias_maximum,omitempty"`
	ReceiveMaximum          *int  `yaml:"receive_maximum" json:"receive_maximum,omitempty"`
	MaxPacketSize           *int  `yaml:"max_packet_size" json:"max_packet_size,omitempty"`
	ServerKeepAlive         *int  `yaml:"server_keep_alive" json:"server_keep_alive,omitempty"`
	// EnhancedAuth turns on the optional 5.0 enhanced-authentication
	// profile (§4.12): the method the broker offers and a user it knows.
	EnhancedAuth *EnhancedAuth `yaml:"enhanced_auth" json:"enhanced_auth,omitempty"`
	// Redirect turns on the optional 5.0 server-redirection profile
	// (§4.11): a client identifier the broker redirects.
	Redirect *Redirect `yaml:"redirect" json:"redirect,omitempty"`
	// Security says who may connect, publish and subscribe, and what TLS
	// requires, for the security specs (profile_security.go).
	Security *Security `yaml:"security" json:"-"`

	// explicit names the capabilities the profile set (before defaults).
	explicit map[string]bool
}

// EnhancedAuth is a SCRAM method the broker offers and a user of it.
type EnhancedAuth struct {
	Method   string `yaml:"method" json:"method"` // SCRAM-SHA-256 or SCRAM-SHA-512
	Username string `yaml:"username" json:"username"`
	Password string `yaml:"password" json:"-"`
}

// Redirect names a client the broker sends elsewhere with CONNACK 0x9C
// (use another server) or 0x9D (server moved).
type Redirect struct {
	ClientID string `yaml:"client_id" json:"client_id"`
	// Moved: the broker answers 0x9D, else 0x9C.
	Moved bool `yaml:"moved" json:"moved,omitempty"`
}

// Deviation is a known departure from a statement.
type Deviation struct {
	Statement string `yaml:"statement" json:"statement"`
	// Spec, when set, narrows the deviation to specs whose name contains it.
	Spec   string `yaml:"spec" json:"spec,omitempty"`
	Reason string `yaml:"reason" json:"reason"`
	// Protocol, when set ("3.1.1" or "5.0"), narrows the deviation to the
	// specs of that version (a --protocol all run has both).
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`
}

func (p *Profile) withDefaults() {
	if p.explicit == nil {
		p.explicit = map[string]bool{"max_qos": p.MaxQoS != nil, "retain": p.Retain != nil, "wildcards": p.Wildcards != nil}
	}
	if p.MaxQoS == nil {
		two := 2
		p.MaxQoS = &two
	}
	if p.Retain == nil {
		t := true
		p.Retain = &t
	}
	if p.Wildcards == nil {
		t := true
		p.Wildcards = &t
	}
	if p.MaxPayload <= 0 {
		p.MaxPayload = 256 << 10
	}
}

// LoadProfile reads a YAML profile. Errors name the file and the problem.
func LoadProfile(path string) (Profile, error) {
	var p Profile
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return p, fmt.Errorf("profile %s: %v", path, err)
	}
	if p.MaxQoS != nil && (*p.MaxQoS < 0 || *p.MaxQoS > 2) {
		return p, fmt.Errorf("profile %s: max_qos is %d; want 0, 1 or 2", path, *p.MaxQoS)
	}
	if p.QueueLimit != nil && *p.QueueLimit < 1 {
		return p, fmt.Errorf("profile %s: queue_limit is %d; want 1 or more (leave it out when not known)", path, *p.QueueLimit)
	}
	if a := p.EnhancedAuth; a != nil && (a.Method != "SCRAM-SHA-256" && a.Method != "SCRAM-SHA-512" || a.Username == "") {
		return p, fmt.Errorf("profile %s: enhanced_auth needs method SCRAM-SHA-256 or SCRAM-SHA-512 and a username", path)
	}
	if r := p.Redirect; r != nil && r.ClientID == "" {
		return p, fmt.Errorf("profile %s: redirect needs a client_id", path)
	}
	for i, d := range p.Deviations {
		if d.Statement == "" || d.Reason == "" {
			return p, fmt.Errorf("profile %s: deviation %d needs a statement and a reason", path, i+1)
		}
		if d.Protocol != "" && d.Protocol != "3.1.1" && d.Protocol != "5.0" {
			return p, fmt.Errorf("profile %s: deviation %d: protocol %q; want 3.1.1 or 5.0", path, i+1, d.Protocol)
		}
	}
	if err := p.Security.check(filepath.Dir(path)); err != nil {
		return p, fmt.Errorf("profile %s: %v", path, err)
	}
	return p, nil
}

// deviation returns the known deviation covering a spec, if any.
func (p *Profile) deviation(statements []string, specName string) *Deviation {
	for i, d := range p.Deviations {
		for _, s := range statements {
			if s == d.Statement && (d.Spec == "" || strings.Contains(specName, d.Spec)) {
				return &p.Deviations[i]
			}
		}
	}
	return nil
}
