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
	// Broker names the target in reports ("tcp://127.0.0.1:1883", "inproc").
	Broker string
	// Version is the protocol the specs speak (3.1.1 for now).
	Version packetgen.Version
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
	// Username and Password are sent in every CONNECT when set. The
	// password never appears in reports.
	Username string `yaml:"username" json:"username,omitempty"`
	Password string `yaml:"password" json:"-"`
	// Deviations are statements the broker is known to break.
	Deviations []Deviation `yaml:"deviations" json:"deviations,omitempty"`
}

// Deviation is a known departure from a statement.
type Deviation struct {
	Statement string `yaml:"statement" json:"statement"`
	// Spec, when set, narrows the deviation to specs whose name contains it.
	Spec   string `yaml:"spec" json:"spec,omitempty"`
	Reason string `yaml:"reason" json:"reason"`
}

func (p *Profile) withDefaults() {
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
	for i, d := range p.Deviations {
		if d.Statement == "" || d.Reason == "" {
			return p, fmt.Errorf("profile %s: deviation %d needs a statement and a reason", path, i+1)
		}
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
