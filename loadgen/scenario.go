// Package loadgen is mqttbench's load generator: it connects many MQTT
// clients to a broker, publishes on a fixed schedule (an open model: a
// slow broker does not slow the generator down), and measures connect,
// subscribe, publish-acknowledgement and end-to-end latency in
// HdrHistograms, the latter two from the intended send time so that
// coordinated omission cannot hide a stall. Subscribers check every
// message's publisher and sequence number, so loss, duplicates and
// reordering are counted per QoS.
//
// The files are the architecture: scenario.go (what to run), pacer.go
// (when to send), client.go (one lean MQTT connection), idle_linux.go (idle
// connections without a goroutine each), attack.go (running a scenario),
// metrics.go (histograms and time series), verify.go (sequence checks),
// ledger.go (what verification needs, saved for merging), shard.go (a
// scenario split over processes, and lining them up), results.go (the
// results directory) and merge.go (shards' results made one). MQTT 5.0
// adds properties.go (what every PUBLISH carries, read back and checked
// without allocating), connack.go (what the broker's CONNACK allows:
// receive maximum, packet size, topic aliases) and reasons.go (reason
// codes counted by packet).
package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mqttbench/mqttbench/faults"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
	"github.com/mqttbench/mqttbench/transport"
)

// Scenario says what to run. Start from DefaultScenario: its zero value
// is not a usable scenario (clean session, for one, defaults to true).
//
// Connections are numbered: publishers take indexes 0 to Publishers-1,
// subscribers the next Subscribers indexes, idle connections the rest.
type Scenario struct {
	// Brokers are broker URLs (tcp://, tls://, ws://, wss:// or
	// host:port); connection i goes to Brokers[i % len(Brokers)]. Empty means an in-process reference
	// broker reached over net.Pipe.
	Brokers []string
	// SourceIPs are local addresses that TCP connections bind to, round
	// robin, so that each (source, broker) pair has its own ephemeral
	// port range.
	SourceIPs []netip.Addr

	Connections int // total connections; 0 means Publishers + Subscribers
	Publishers  int
	Subscribers int

	QoS packetgen.QoS
	// Rate is the total offered rate in messages per second over all
	// publishers; RatePerPublisher, when set, replaces it with
	// RatePerPublisher × Publishers.
	Rate             float64
	RatePerPublisher float64
	// Payload is the message size in bytes, at least HeaderSize.
	Payload int
	// Topic is the publish topic template: {p} is the publisher index,
	// {i} the connection index. Without a placeholder every publisher
	// shares one topic (fan-in, fan-out, many-to-many).
	Topic string
	// Filter is the subscription template, Topic when empty. Subscriber j
	// expands it with {p} = j mod Publishers and {i} the index of that
	// publisher's connection, so "bench/{p}" with as many subscribers as
	// publishers is point-to-point.
	Filter string

	Ramp           float64       // connections per second; 0: as fast as possible
	ConnectTimeout time.Duration // for each CONNECT→CONNACK and SUBSCRIBE→SUBACK
	Duration       time.Duration // the steady publishing phase
	Drain          time.Duration // longest wait for deliveries after publishing
	// MaxLag is how late a send may go out: sends due longer ago than
	// this are not made but counted as missed. Shorter delays are sent
	// late, their latency measured from when they were due.
	MaxLag time.Duration

	Keepalive    time.Duration
	CleanSession bool
	Username     string // never logged or written to results
	Password     string // never logged or written to results
	// Inflight bounds a publisher's unacknowledged QoS 1 and 2 messages
	// (at most 65535, the packet identifier space); a send that finds the
	// window full is counted as missed.
	Inflight int
	Seed     uint64

	// Protocol is the MQTT version every connection speaks: packetgen.V311
	// (0 means it too) or packetgen.V5. The fields below are 5.0's and
	// need it.
	Protocol packetgen.Version
	// SessionExpiry is the Session Expiry Interval sent in CONNECT, in
	// whole seconds. With CleanSession false, 0 means the session never
	// expires (0xFFFFFFFF), as a 3.1.1 persistent session: a 5.0 session
	// with interval 0 ends with its connection, and nothing would resume.
	SessionExpiry time.Duration
	// MessageExpiry is the Message Expiry Interval of every PUBLISH, in
	// whole seconds; 0 sends none.
	MessageExpiry time.Duration
	// UserProperties is the number of user properties on every PUBLISH,
	// named u0, u1, ..., each with a UserPropertySize-byte value.
	UserProperties   int
	UserPropertySize int
	// ContentType is the Content Type of every PUBLISH; "" sends none.
	ContentType string
	// PayloadFormat marks every payload as UTF-8 (Payload Format
	// Indicator 1); the sequence header is then written in text
	// (TextHeaderSize bytes), so payloads must be at least that long.
	PayloadFormat bool
	// TopicAlias makes each publisher give its topic alias 1 on the first
	// PUBLISH of a connection and send the alias with an empty topic
	// afterwards, when the broker's Topic Alias Maximum allows one.
	TopicAlias bool
	// SubscriptionID makes subscriber j subscribe with Subscription
	// Identifier j+1 and checks every delivery carries it.
	SubscriptionID bool

	// SharedGroups are share names: subscriber j joins group j mod
	// len(SharedGroups) and subscribes "$share/NAME/<its filter>"; each
	// group is verified as one consumer (shared.go).
	SharedGroups []string
	// Responders, when above 0, makes the run request/response (MQTT
	// 5.0): that many connections after the subscribers answer every
	// PUBLISH on its Response Topic (reqresp.go).
	Responders int
	// Tolerate names statements (of Tolerable) the broker may break
	// without ending the connection: each breach is counted
	// (tolerate.go) and the run goes on.
	Tolerate []string

	// Faults are the faults to inject during the run (the file's faults:
	// list); the command runs them (see package faults), not Run.
	Faults []faults.Spec

	// Churn is flapping, offline subscribers, a will storm and a retained
	// fleet (churn.go); PayloadTemplate, a text/template file every
	// payload is rendered from (template.go).
	Churn           Churn
	PayloadTemplate string
}

// Defaults.
const (
	DefaultPayload = 64
	DefaultTopic   = "mqttbench/{p}"
	MaxConnections = 1 << 20

	// DefaultUserPropertySize is the value size of user properties when
	// a scenario file gives their number only.
	DefaultUserPropertySize = 16
)

// DefaultScenario is one publisher and one subscriber on a point-to-point
// topic at 1,000 messages per second for 10 seconds.
func DefaultScenario() Scenario {
	return Scenario{
		Publishers: 1, Subscribers: 1, Rate: 1000, Payload: DefaultPayload,
		Topic: DefaultTopic, Ramp: 1000, ConnectTimeout: 10 * time.Second,
		Duration: 10 * time.Second, Drain: 2 * time.Second, MaxLag: time.Second,
		Keepalive: 30 * time.Second, CleanSession: true, Inflight: 65535,
	}
}

// TotalConnections is Connections, or Publishers + Subscribers when 0.
func (s *Scenario) TotalConnections() int {
	if s.Connections == 0 {
		return s.Publishers + s.Subscribers + s.Responders
	}
	return s.Connections
}

// TotalRate is the offered rate over all publishers, in messages per second.
func (s *Scenario) TotalRate() float64 {
	if s.RatePerPublisher > 0 {
		return s.RatePerPublisher * float64(s.Publishers)
	}
	return s.Rate
}

// Validate checks the scenario and names the field at fault.
func (s *Scenario) Validate() error {
	n := s.TotalConnections()
	switch {
	case s.Publishers < 0 || s.Subscribers < 0 || s.Connections < 0:
		return errors.New("connections, publishers and subscribers cannot be negative")
	case n == 0:
		return errors.New("connections: nothing to run (0 connections, publishers and subscribers)")
	case n < s.Publishers+s.Subscribers+s.Responders:
		return fmt.Errorf("connections: %d is fewer than publishers + subscribers + responders (%d)", n, s.Publishers+s.Subscribers+s.Responders)
	case n > MaxConnections:
		return fmt.Errorf("connections: %d is more than %d", n, MaxConnections)
	case s.QoS > 2:
		return fmt.Errorf("qos: %d is not 0, 1 or 2", s.QoS)
	case s.Rate < 0 || s.RatePerPublisher < 0:
		return errors.New("rate: cannot be negative")
	case s.Publishers > 0 && s.TotalRate() == 0:
		return errors.New("rate: publishers need a rate above 0")
	case s.TotalRate() > 10_000_000:
		return fmt.Errorf("rate: %g messages/s is more than one process can offer", s.TotalRate())
	case s.Payload < HeaderSize:
		return fmt.Errorf("payload: %d bytes is less than the %d-byte header (publisher, sequence, send time)", s.Payload, HeaderSize)
	case s.Payload > 256<<20:
		return fmt.Errorf("payload: %d bytes is more than MQTT allows", s.Payload)
	case s.Duration <= 0:
		return errors.New("duration: must be above 0 (every run is bounded)")
	case s.Ramp < 0:
		return errors.New("ramp: cannot be negative")
	case s.ConnectTimeout <= 0:
		return errors.New("connect timeout: must be above 0")
	case s.Drain < 0 || s.MaxLag < 0:
		return errors.New("drain and max_lag cannot be negative")
	case s.Keepalive < 0 || s.Keepalive > 65535*time.Second:
		return fmt.Errorf("keepalive: %s is not between 0 and 65535s", s.Keepalive)
	case s.Inflight < 1 || s.Inflight > 65535:
		return fmt.Errorf("inflight: %d is not between 1 and 65535", s.Inflight)
	case s.Password != "" && s.Username == "" && !s.V5():
		return errors.New("password: MQTT 3.1.1 sends a password only with a user name")
	}
	if err := s.validate5(); err != nil {
		return err
	}
	if err := s.validateShared(); err != nil {
		return err
	}
	if err := s.validateResponders(); err != nil {
		return err
	}
	if err := s.validateChurn(); err != nil {
		return err
	}
	if err := s.validateTolerate(); err != nil {
		return err
	}
	for _, b := range s.Brokers {
		if err := checkBroker(b); err != nil {
			return err
		}
	}
	if len(s.Brokers) == 0 && len(s.SourceIPs) > 0 {
		return errors.New("source_ips: only TCP connections bind to source addresses; give a broker URL")
	}
	if s.Publishers > 0 {
		for _, p := range []int{0, s.Publishers - 1} {
			name := s.PublisherTopic(p)
			if err := topic.ValidateName(name, false); err != nil {
				return fmt.Errorf("topic: %q expands to %q: %v", s.Topic, name, err)
			}
		}
	}
	if s.Subscribers > 0 {
		f := s.SubscriberFilter(0)
		if err := topic.ValidateFilter(f, false); err != nil {
			return fmt.Errorf("filter: %q expands to %q: %v", s.filterTemplate(), f, err)
		}
		if s.Publishers == 0 && strings.Contains(s.filterTemplate(), "{") {
			return errors.New("filter: {p} and {i} need publishers")
		}
	}
	return nil
}

// PublisherTopic is the topic publisher p publishes to.
func (s *Scenario) PublisherTopic(p int) string {
	return expand(s.Topic, p, p)
}

func (s *Scenario) filterTemplate() string {
	if s.Filter != "" {
		return s.Filter
	}
	return s.Topic
}

// SubscriberFilter is the filter subscriber j subscribes to.
func (s *Scenario) SubscriberFilter(j int) string {
	p := 0
	if s.Publishers > 0 {
		p = j % s.Publishers
	}
	return expand(s.filterTemplate(), p, p)
}

func expand(tmpl string, p, i int) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	r := strings.NewReplacer("{p}", strconv.Itoa(p), "{i}", strconv.Itoa(i))
	return r.Replace(tmpl)
}

// checkBroker checks a broker URL: any transport (tcp://, tls://, ws://,
// wss://, host:port), no credentials (they have their own fields), not
// inproc (no broker URL means the in-process broker).
func checkBroker(url string) error {
	u, err := transport.Parse(url)
	switch {
	case err != nil:
		return fmt.Errorf("broker %v", err)
	case u.Inproc():
		return errors.New("broker inproc: leave the broker URL out for the in-process broker")
	case u.User != nil:
		return fmt.Errorf("broker %q: credentials in the URL are not supported; give username and password", transport.Redact(url))
	}
	return nil
}

// ParseSourceIPs reads "127.0.0.2-127.0.0.40" ranges and single addresses,
// comma separated.
func ParseSourceIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("source IPs %q: %v", part, err)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil {
			return nil, fmt.Errorf("source IPs %q: %v", part, err)
		}
		if a.Is4() != b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("source IPs %q: not an ascending range of one family", part)
		}
		for x := a; ; x = x.Next() {
			out = append(out, x)
			if len(out) > 65536 {
				return nil, fmt.Errorf("source IPs %q: more than 65536 addresses", part)
			}
			if x == b {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source IPs %q: no address", s)
	}
	return out, nil
}

// The scenario file. Phases hold what changes over a run; the rest
// describes the clients and their messages.
//
//	brokers: [tcp://127.0.0.1:1883]
//	connections: 1000
//	publishers: 100
//	subscribers: 100
//	qos: 1
//	payload: 64
//	topic: bench/{p}
//	protocol: 5             # MQTT 5.0; then also session_expiry,
//	user_properties: 2      # message_expiry, user_property_size,
//	content_type: text/csv  # payload_format, topic_alias, subscription_id
//	shared_groups: [g0, g1] # subscribers split over $share/g0/..., $share/g1/...
//	responders: 4           # request/response (5.0): 4 connections answer
//	phases:
//	  connect: {ramp: 500, timeout: 10s}
//	  publish: {duration: 30s, rate: 10000}
//	  drain:   {duration: 2s}
//	payload_template: body.tmpl  # rendered per message (template.go)
//	churn:                  # flapping, offline, wills, retained (churn.go)
//	  flap: {rate: 5, group: subscribers}
//	faults:                 # the keys of --fault (see package faults)
//	  - {kind: kill, at: 10s}
//	  - {kind: latency, at: 5s, for: 10s, latency: 200ms, group: subscribers}
type scenarioFile struct {
	Brokers      []string      `yaml:"brokers"`
	SourceIPs    string        `yaml:"source_ips"`
	Connections  int           `yaml:"connections"`
	Publishers   int           `yaml:"publishers"`
	Subscribers  int           `yaml:"subscribers"`
	QoS          int           `yaml:"qos"`
	Payload      int           `yaml:"payload"`
	Topic        string        `yaml:"topic"`
	Filter       string        `yaml:"filter"`
	Keepalive    time.Duration `yaml:"keepalive"`
	CleanSession bool          `yaml:"clean_session"`
	Username     string        `yaml:"username"`
	Password     string        `yaml:"password"`
	Inflight     int           `yaml:"inflight"`
	Seed         uint64        `yaml:"seed"`
	Phases       phasesFile    `yaml:"phases"`

	// MQTT 5.0 (protocol: 5)
	Protocol         string        `yaml:"protocol"`
	SessionExpiry    time.Duration `yaml:"session_expiry"`
	MessageExpiry    time.Duration `yaml:"message_expiry"`
	UserProperties   int           `yaml:"user_properties"`
	UserPropertySize *int          `yaml:"user_property_size"` // default DefaultUserPropertySize
	ContentType      string        `yaml:"content_type"`
	PayloadFormat    bool          `yaml:"payload_format"`
	TopicAlias       bool          `yaml:"topic_alias"`
	SubscriptionID   bool          `yaml:"subscription_id"`
	Responders       int           `yaml:"responders"` // request/response

	SharedGroups []string `yaml:"shared_groups"`
	Tolerate     []string `yaml:"tolerate"`

	Faults []faults.Spec `yaml:"faults"`

	Churn           *churnFile `yaml:"churn"`            // churn.go
	PayloadTemplate string     `yaml:"payload_template"` // template.go
}

type phasesFile struct {
	Connect connectPhase `yaml:"connect"`
	Publish publishPhase `yaml:"publish"`
	Drain   drainPhase   `yaml:"drain"`
}

type connectPhase struct {
	Ramp    float64       `yaml:"ramp"`
	Timeout time.Duration `yaml:"timeout"`
}

type publishPhase struct {
	Duration         time.Duration `yaml:"duration"`
	Rate             float64       `yaml:"rate"`
	RatePerPublisher float64       `yaml:"rate_per_publisher"`
	MaxLag           time.Duration `yaml:"max_lag"`
}

type drainPhase struct {
	Duration time.Duration `yaml:"duration"`
}

// LoadScenario reads a scenario file over base (usually DefaultScenario):
// fields the file leaves out keep base's values. Errors are one line that
// names the file, the line and the field.
func LoadScenario(path string, base Scenario) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return base, err
	}
	return ParseScenario(path, b, base)
}

// ParseScenario is LoadScenario on bytes; name labels errors.
func ParseScenario(name string, b []byte, base Scenario) (Scenario, error) {
	f := scenarioFile{
		Brokers: base.Brokers, Connections: base.Connections, Publishers: base.Publishers,
		Subscribers: base.Subscribers, QoS: int(base.QoS), Payload: base.Payload, Topic: base.Topic,
		Filter: base.Filter, Keepalive: base.Keepalive, CleanSession: base.CleanSession,
		Username: base.Username, Password: base.Password, Inflight: base.Inflight, Seed: base.Seed,
		SessionExpiry: base.SessionExpiry, MessageExpiry: base.MessageExpiry, UserProperties: base.UserProperties,
		ContentType: base.ContentType, PayloadFormat: base.PayloadFormat,
		TopicAlias: base.TopicAlias, SubscriptionID: base.SubscriptionID,
		SharedGroups: base.SharedGroups, Responders: base.Responders, Tolerate: base.Tolerate,
		Phases: phasesFile{
			Connect: connectPhase{Ramp: base.Ramp, Timeout: base.ConnectTimeout},
			Publish: publishPhase{Duration: base.Duration, Rate: base.Rate, RatePerPublisher: base.RatePerPublisher, MaxLag: base.MaxLag},
			Drain:   drainPhase{Duration: base.Drain},
		},
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // an empty file changes nothing
		return base, fmt.Errorf("%s: %s", name, yamlError(err))
	}
	if f.QoS < 0 || f.QoS > 2 {
		return base, fmt.Errorf("%s: qos: %d is not 0, 1 or 2", name, f.QoS)
	}
	s := base
	s.Brokers, s.Connections, s.Publishers, s.Subscribers = f.Brokers, f.Connections, f.Publishers, f.Subscribers
	s.QoS, s.Payload, s.Topic, s.Filter = packetgen.QoS(f.QoS), f.Payload, f.Topic, f.Filter
	s.Keepalive, s.CleanSession, s.Username, s.Password = f.Keepalive, f.CleanSession, f.Username, f.Password
	s.Inflight, s.Seed = f.Inflight, f.Seed
	s.SessionExpiry, s.MessageExpiry, s.ContentType = f.SessionExpiry, f.MessageExpiry, f.ContentType
	s.UserProperties = f.UserProperties
	if f.UserPropertySize != nil {
		s.UserPropertySize = *f.UserPropertySize
	} else if s.UserProperties > 0 && s.UserPropertySize == 0 {
		s.UserPropertySize = DefaultUserPropertySize
	}
	s.PayloadFormat, s.TopicAlias, s.SubscriptionID = f.PayloadFormat, f.TopicAlias, f.SubscriptionID
	s.SharedGroups, s.Responders, s.Tolerate = f.SharedGroups, f.Responders, f.Tolerate
	if f.Protocol != "" {
		v, err := ParseProtocol(f.Protocol)
		if err != nil {
			return base, fmt.Errorf("%s: protocol: %v", name, err)
		}
		s.Protocol = v
	}
	s.Ramp, s.ConnectTimeout = f.Phases.Connect.Ramp, f.Phases.Connect.Timeout
	s.Duration, s.Rate, s.RatePerPublisher, s.MaxLag = f.Phases.Publish.Duration, f.Phases.Publish.Rate,
		f.Phases.Publish.RatePerPublisher, f.Phases.Publish.MaxLag
	s.Drain = f.Phases.Drain.Duration
	if f.SourceIPs != "" {
		ips, err := ParseSourceIPs(f.SourceIPs)
		if err != nil {
			return base, fmt.Errorf("%s: source_ips: %v", name, err)
		}
		s.SourceIPs = ips
	}
	if f.Churn != nil {
		f.Churn.apply(&s.Churn)
	}
	if f.PayloadTemplate != "" {
		s.PayloadTemplate = f.PayloadTemplate
		if !filepath.IsAbs(s.PayloadTemplate) { // relative to the scenario file
			s.PayloadTemplate = filepath.Join(filepath.Dir(name), s.PayloadTemplate)
		}
	}
	if f.Faults != nil {
		s.Faults = f.Faults
		for i := range s.Faults {
			if err := s.Faults[i].Validate(); err != nil {
				return base, fmt.Errorf("%s: faults[%d]: %v", name, i, err)
			}
		}
	}
	if err := s.Validate(); err != nil {
		return base, fmt.Errorf("%s: %v", name, err)
	}
	return s, nil
}

var (
	reUnknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)
	reLine         = regexp.MustCompile(`line (\d+): (.*)`)
)

// yamlError makes yaml.v3's multi-line errors one line that names the
// field: "line 3: unknown field "rampp"".
func yamlError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		first := te.Errors[0]
		more := ""
		if len(te.Errors) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(te.Errors)-1)
		}
		if m := reUnknownField.FindStringSubmatch(first); m != nil {
			return fmt.Sprintf("line %s: unknown field %q%s", m[1], m[2], more)
		}
		if m := reLine.FindStringSubmatch(first); m != nil {
			return fmt.Sprintf("line %s: %s%s", m[1], m[2], more)
		}
		return first + more
	}
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", " ")
}
