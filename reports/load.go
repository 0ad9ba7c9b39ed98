package reports

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Load is the summary of one load run (summary.json in its results
// directory). Latencies are in microseconds. User names and passwords are
// never part of it.
type Load struct {
	Kind        string        `json:"kind"` // "load"
	RunID       string        `json:"run_id"`
	Target      string        `json:"target"` // broker URLs, or "in-process (net.Pipe)"
	Started     time.Time     `json:"started"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Interrupted bool          `json:"interrupted,omitempty"`
	Scenario    LoadScenario  `json:"scenario"`

	Connections LoadConnections    `json:"connections"`
	Messages    LoadMessages       `json:"messages"`
	Latency     []LoadLatency      `json:"latency"`
	Errors      map[string]uint64  `json:"errors"`
	ErrorSample map[string]string  `json:"error_samples,omitempty"` // first error of each class
	Verify      []LoadVerification `json:"verification"`
	Violations  []string           `json:"violations,omitempty"`
	Series      []LoadSecond       `json:"series"`
	Files       map[string]string  `json:"files,omitempty"` // metric -> .hlog file in the results directory
	Notes       []string           `json:"notes,omitempty"`

	// ReasonCodes counts every reason code other than success the broker
	// sent, by packet and code: refused CONNACK and SUBACK (3.1.1 return
	// codes too) and, in MQTT 5.0, acknowledgements and DISCONNECT.
	ReasonCodes []LoadReasonCode `json:"reason_codes,omitempty"`
	// Tolerated counts the breaches of statements the run was told to
	// tolerate (load --tolerate): the broker broke them, the run went on.
	Tolerated []LoadTolerated `json:"tolerated,omitempty"`
	// Connack is what the broker's CONNACKs allowed (MQTT 5.0 runs).
	Connack *LoadConnack `json:"connack,omitempty"`
	// TLS is what the TLS handshakes negotiated (tls://, mqtts://, wss://).
	TLS *LoadTLS `json:"tls,omitempty"`
	// Faults are the faults injected during the run (--fault, a
	// scenario's faults: section), in the order they began.
	Faults []LoadFault `json:"faults,omitempty"`
	// History classes every message and reads each fault (history.go).
	History *LoadHistory `json:"history,omitempty"`
	// Generator is the generator's watch on itself (see LoadGenerator).
	Generator *LoadGenerator `json:"generator,omitempty"`
	// SLO are the latency objectives given (--slo), met or not.
	SLO []LoadObjective `json:"slo,omitempty"`
	// Churn is what the run's churn did: flapping, offline subscribers,
	// a will storm, a retained fleet, payload templates (churn.go).
	Churn *LoadChurn `json:"churn,omitempty"`
	// Shared is the verification of shared groups (--shared-group);
	// RequestResponse counts a request/response run (--responders).
	Shared          *LoadShared          `json:"shared,omitempty"`
	RequestResponse *LoadRequestResponse `json:"request_response,omitempty"`
}

// LoadFault is one fault injected during a run: a process fault on the
// broker (kill, restart, pause) or a network fault in the fault proxy
// (latency, bandwidth, slicer, reset, blackhole), on every connection or
// on a named group. Times are seconds since the start of the run.
type LoadFault struct {
	Name   string  `json:"name"`             // as given, e.g. "kill@10s" or "latency=200ms@5s+10s"
	Kind   string  `json:"kind"`             // kill, restart, pause, latency, bandwidth, slicer, reset, blackhole
	Target string  `json:"target,omitempty"` // a group name; "" for every connection or the broker process
	Start  float64 `json:"start_s"`
	End    float64 `json:"end_s"` // when it was healed (== Start for an instant fault such as kill)
	// Recovered is when the broker was back: a restarted process
	// accepting connections again, or the proxy healed (0 if never).
	Recovered float64 `json:"recovered_s,omitempty"`
	Error     string  `json:"error,omitempty"` // why the fault could not be injected or healed
	// Survival is what the survival probes found around a process
	// fault; nil when none ran (network faults, --survival-probes=false).
	Survival *LoadSurvival `json:"survival,omitempty"`
}

// LoadSurvival is whether retained messages and a pending will that the
// probes left with the broker just before a fault outlived it.
type LoadSurvival struct {
	// RetainedSent retained messages were acknowledged (QoS 1) before
	// the fault; RetainedKept of them came back, payload intact.
	RetainedSent int `json:"retained_sent"`
	RetainedKept int `json:"retained_kept"`
	// WillsPending wills were waiting out their delay when the fault
	// struck; WillsDelivered of them reached the watcher afterwards.
	WillsPending   int `json:"wills_pending"`
	WillsDelivered int `json:"wills_delivered"`
	// Retained and Wills say it in words, or why it was not checked
	// ("n/a: ...").
	Retained string `json:"retained"`
	Wills    string `json:"wills"`
	// Violations: acknowledged retained messages or a pending will lost.
	Violations []string `json:"violations,omitempty"`
}

// LoadTLS counts a run's TLS handshakes.
type LoadTLS struct {
	Handshakes uint64 `json:"handshakes"`
	// Resumed handshakes took up an earlier session instead of a full
	// handshake (--tls-resume).
	Resumed uint64 `json:"resumed"`
	Resume  bool   `json:"resume,omitempty"` // --tls-resume was given
	// Negotiated counts handshakes by version and cipher suite, the most
	// frequent first.
	Negotiated []LoadTLSParams `json:"negotiated,omitempty"`
	// ClientCerts says where per-connection client certificates came
	// from ("" when there were none, or one for all).
	ClientCerts string `json:"client_certs,omitempty"`
}

// LoadTLSParams is a TLS version, cipher suite and key exchange, by
// name, and how many handshakes negotiated them.
type LoadTLSParams struct {
	Version string `json:"version"`         // "TLS 1.3"
	Cipher  string `json:"cipher"`          // "TLS_AES_128_GCM_SHA256"
	Group   string `json:"group,omitempty"` // "X25519MLKEM768"; "" when not known
	Count   uint64 `json:"count"`
}

// Summary is "TLS 1.3 TLS_AES_128_GCM_SHA256 X25519MLKEM768" (others
// added with their counts), then the handshakes and how many resumed.
func (t *LoadTLS) Summary() string {
	var b strings.Builder
	for i, p := range t.Negotiated {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Version + " " + p.Cipher)
		if p.Group != "" {
			b.WriteString(" " + p.Group)
		}
		if len(t.Negotiated) > 1 {
			fmt.Fprintf(&b, " (%d)", p.Count)
		}
	}
	if b.Len() == 0 {
		b.WriteString("no handshake")
	}
	fmt.Fprintf(&b, "; %d handshakes, %d resumed", t.Handshakes, t.Resumed)
	if !t.Resume {
		b.WriteString(" (no --tls-resume)")
	}
	return b.String()
}

// LoadScenario is the scenario as run, credentials left out.
type LoadScenario struct {
	Brokers        []string      `json:"brokers,omitempty"`
	SourceIPs      int           `json:"source_ips,omitempty"`
	Connections    int           `json:"connections"`
	Publishers     int           `json:"publishers"`
	Subscribers    int           `json:"subscribers"`
	QoS            int           `json:"qos"`
	Rate           float64       `json:"rate"` // offered, messages/s over all publishers
	Payload        int           `json:"payload"`
	Topic          string        `json:"topic"`
	Filter         string        `json:"filter,omitempty"`
	Ramp           float64       `json:"ramp"`
	Duration       time.Duration `json:"duration_ns"`
	Drain          time.Duration `json:"drain_ns"`
	MaxLag         time.Duration `json:"max_lag_ns"`
	Keepalive      time.Duration `json:"keepalive_ns"`
	CleanSession   bool          `json:"clean_session"`
	Authenticated  bool          `json:"authenticated,omitempty"`
	Inflight       int           `json:"inflight"`
	Seed           uint64        `json:"seed"`
	ConnectTimeout time.Duration `json:"connect_timeout_ns"`

	// Protocol is "3.1.1" or "5.0" (empty in summaries from before 5.0).
	Protocol string `json:"protocol,omitempty"`
	// MQTT 5.0 only: what every CONNECT and PUBLISH carried.
	SessionExpiry    time.Duration `json:"session_expiry_ns,omitempty"`
	MessageExpiry    time.Duration `json:"message_expiry_ns,omitempty"`
	UserProperties   int           `json:"user_properties,omitempty"`
	UserPropertySize int           `json:"user_property_size,omitempty"`
	ContentType      string        `json:"content_type,omitempty"`
	PayloadFormat    bool          `json:"payload_format,omitempty"`
	TopicAlias       bool          `json:"topic_alias,omitempty"`
	SubscriptionID   bool          `json:"subscription_id,omitempty"`

	SharedGroups []string `json:"shared_groups,omitempty"`
	Responders   int      `json:"responders,omitempty"`
	Tolerate     []string `json:"tolerate,omitempty"`
}

// LoadTolerated is a statement the broker broke that the run tolerated.
type LoadTolerated struct {
	Statement string `json:"statement"`
	Count     uint64 `json:"count"`
	Sample    string `json:"sample"` // the first breach, as the codec named it
}

// LoadReasonCode is how often the broker sent one reason code.
type LoadReasonCode struct {
	Packet string `json:"packet"` // PUBACK, SUBACK, DISCONNECT, ...
	Code   int    `json:"code"`
	Name   string `json:"name"`
	Count  uint64 `json:"count"`
}

// LoadConnack is what the broker's CONNACKs allowed, the smallest value
// over connections when they differed (MQTT 5.0 §3.2.2.3).
type LoadConnack struct {
	ReceiveMaximum    int   `json:"receive_maximum"`     // 65535 when not sent
	MaximumPacketSize int64 `json:"maximum_packet_size"` // 0: none sent (the protocol's limit)
	TopicAliasMaximum int   `json:"topic_alias_maximum"`
	MaximumQoS        int   `json:"maximum_qos"`
	ServerKeepAlive   *int  `json:"server_keep_alive,omitempty"` // seconds, when sent
	// InflightWindow is each publisher's QoS 1/2 window: the smaller of
	// the scenario's in-flight limit and the Receive Maximum.
	InflightWindow int  `json:"inflight_window"`
	Varied         bool `json:"varied,omitempty"` // connections were told different values
}

// LoadConnections counts connections.
type LoadConnections struct {
	Target     int     `json:"target"`
	Peak       int64   `json:"peak"`       // most open at once
	Ready      int64   `json:"ready"`      // ready when publishing began
	Attempts   uint64  `json:"attempts"`   // dials, reconnects included
	Reconnects uint64  `json:"reconnects"` // attempts after a connection was lost
	ConnectSec float64 `json:"connect_seconds"`
	// MemPerConn is the process's heap and stack growth per connection
	// after the connect phase (the in-process broker's share included
	// when it runs in the same process), in bytes.
	MemPerConn float64 `json:"mem_per_conn_bytes,omitempty"`
	MemNote    string  `json:"mem_note,omitempty"`
}

// LoadMessages counts messages over the publishing phase.
type LoadMessages struct {
	Offered uint64 `json:"offered"` // due by the schedule
	Sent    uint64 `json:"sent"`
	// Missed sends were due but not made: the generator fell behind by
	// more than max_lag, the publisher was not connected, its QoS 1/2
	// window was full, or (MQTT 5.0) the message was too large.
	Missed             uint64  `json:"missed"`
	MissedLate         uint64  `json:"missed_late"`
	MissedDisconnected uint64  `json:"missed_disconnected"`
	MissedWindow       uint64  `json:"missed_window"`
	Acked              uint64  `json:"acked"`    // PUBACK or PUBCOMP received
	Received           uint64  `json:"received"` // distinct deliveries, drain included
	Expected           uint64  `json:"expected"` // deliveries due: (sent - rejected) × matching subscribers
	PublishSec         float64 `json:"publish_seconds"`
	SentRate           float64 `json:"sent_per_second"`
	ReceivedRate       float64 `json:"received_per_second"` // deliveries during the publishing phase per second

	// MissedTooLarge were larger than the broker's Maximum Packet Size
	// (MQTT 5.0), which a client must not send (MQTT-3.2.2-15).
	MissedTooLarge uint64 `json:"missed_too_large,omitempty"`
	// Rejected QoS 1/2 messages got a PUBACK or PUBREC with a reason
	// code of 0x80 or more (MQTT 5.0): the broker refused them.
	Rejected uint64 `json:"rejected,omitempty"`
	// TopicAliased messages went with an empty topic and a topic alias;
	// TopicAliasBytesSaved is what that saved over sending every topic in
	// full (less the alias properties' own bytes).
	TopicAliased         uint64 `json:"topic_aliased,omitempty"`
	TopicAliasBytesSaved int64  `json:"topic_alias_bytes_saved,omitempty"`
}

// LoadLatency summarises one metric's histogram, in microseconds.
type LoadLatency struct {
	Metric string  `json:"metric"`
	Count  int64   `json:"count"`
	Mean   float64 `json:"mean_us"`
	P50    int64   `json:"p50_us"`
	P90    int64   `json:"p90_us"`
	P99    int64   `json:"p99_us"`
	P999   int64   `json:"p99_9_us"`
	Max    int64   `json:"max_us"`
}

// LoadVerification is the sequence check for messages due at one QoS.
type LoadVerification struct {
	QoS       int    `json:"qos"`
	Streams   int    `json:"streams"` // (publisher, subscriber) pairs
	Sent      uint64 `json:"sent"`
	Confirmed uint64 `json:"confirmed"` // acknowledged to the publisher (QoS 0: sent)
	Received  uint64 `json:"received"`
	Lost      uint64 `json:"lost"`
	// LostExcused were lost by subscribers whose session was lost too.
	LostExcused uint64   `json:"lost_session_lost"`
	Duplicates  uint64   `json:"duplicates"`
	Reordered   uint64   `json:"reordered"`
	Downgraded  uint64   `json:"downgraded"`
	Foreign     uint64   `json:"foreign,omitempty"`
	Violations  []string `json:"violations,omitempty"`
	// LostQueueLimit were lost by offline subscribers beyond the queue
	// limit the broker promises (--broker-queue-limit): not violations.
	LostQueueLimit uint64 `json:"lost_queue_limit,omitempty"`
}

// LoadSecond is one second of the run's time series: counts within that
// second, connections open at its end.
type LoadSecond struct {
	T           float64 `json:"t"` // seconds since the start, at the end of the interval
	Phase       string  `json:"phase"`
	Sent        uint64  `json:"sent"`
	Received    uint64  `json:"received"`
	Acked       uint64  `json:"acked"`
	Missed      uint64  `json:"missed"`
	Connects    uint64  `json:"connects"`
	Errors      uint64  `json:"errors"`
	Connections int64   `json:"connections"`
	P99E2E      int64   `json:"p99_e2e_us"`
}

// OK reports a run without violations or protocol errors (the broker
// broke the protocol) whose latency objectives were met.
func (l *Load) OK() bool {
	return len(l.Violations) == 0 && len(l.BrokenObjectives()) == 0 && l.Errors["protocol"] == 0
}

// WriteJSON writes l to path.
func (l *Load) WriteJSON(path string) error { return writeJSON(path, l) }

// ReadLoad reads a summary written by WriteJSON.
func ReadLoad(path string) (*Load, error) {
	var l Load
	if err := readResult(path, "load", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// WriteLoadTable prints a load run's summary as terminal tables:
// latency percentiles per metric, messages and throughput, the sequence
// checks per QoS, and errors by class.
func WriteLoadTable(w io.Writer, l *Load) {
	lat := newLoadTable(w)
	lat.Header("Latency", "Count", "p50", "p90", "p99", "p99.9", "Max")
	for _, m := range l.Latency {
		if m.Count == 0 {
			continue
		}
		lat.Append(m.Metric, fmt.Sprint(m.Count), us(m.P50), us(m.P90), us(m.P99), us(m.P999), us(m.Max)) //nolint:errcheck
	}
	lat.Render() //nolint:errcheck

	m := l.Messages
	c := l.Connections
	msg := newLoadTable(w)
	msg.Header("Messages", "Value")
	rows := [][2]string{
		{"connections ready / target", fmt.Sprintf("%d / %d (peak %d)", c.Ready, c.Target, c.Peak)},
		{"offered", fmt.Sprintf("%d (%s/s)", m.Offered, rate(float64(m.Offered), m.PublishSec))},
		{"sent", fmt.Sprintf("%d (%s/s)", m.Sent, rate(float64(m.Sent), m.PublishSec))},
		{"missed (late, disconnected, window)", fmt.Sprintf("%d (%d, %d, %d)", m.Missed, m.MissedLate, m.MissedDisconnected, m.MissedWindow)},
		{"acknowledged", fmt.Sprint(m.Acked)},
		{"delivered / expected", fmt.Sprintf("%d / %d (%s/s while publishing)", m.Received, m.Expected, strconv.FormatFloat(m.ReceivedRate, 'f', 0, 64))},
	}
	if c.MemPerConn > 0 {
		rows = append(rows, [2]string{"memory per connection", fmt.Sprintf("%.0f B (%s)", c.MemPerConn, c.MemNote)})
	}
	if t := l.TLS; t != nil {
		rows = append(rows, [2]string{"TLS", t.Summary()})
		if t.ClientCerts != "" {
			rows = append(rows, [2]string{"client certificates", t.ClientCerts})
		}
	}
	rows = append(rows, v5Rows(l)...)
	for _, r := range rows {
		msg.Append(r[0], r[1]) //nolint:errcheck
	}
	msg.Render() //nolint:errcheck

	if len(l.Verify) > 0 {
		v := newLoadTable(w)
		v.Header("QoS", "Streams", "Confirmed", "Received", "Lost", "Lost (session lost)", "Duplicates", "Reordered", "Downgraded", "Verdict")
		for _, r := range l.Verify {
			verdict := "ok"
			if len(r.Violations) > 0 {
				verdict = "VIOLATION"
			}
			v.Append(fmt.Sprint(r.QoS), fmt.Sprint(r.Streams), fmt.Sprint(r.Confirmed), fmt.Sprint(r.Received), //nolint:errcheck
				fmt.Sprint(r.Lost), fmt.Sprint(r.LostExcused), fmt.Sprint(r.Duplicates), fmt.Sprint(r.Reordered),
				fmt.Sprint(r.Downgraded), verdict)
		}
		v.Render() //nolint:errcheck
	}

	WriteSharedTable(w, l)
	WriteHistoryTable(w, l.History)
	WriteChurnTable(w, l.Churn)

	if len(l.ReasonCodes) > 0 {
		rc := newLoadTable(w)
		rc.Header("Reason codes", "Code", "Name", "Count")
		for _, r := range l.ReasonCodes {
			rc.Append(r.Packet, fmt.Sprintf("0x%02X", r.Code), r.Name, fmt.Sprint(r.Count)) //nolint:errcheck
		}
		rc.Render() //nolint:errcheck
	}

	if len(l.Errors) > 0 {
		classes := make([]string, 0, len(l.Errors))
		for k := range l.Errors {
			classes = append(classes, k)
		}
		sort.Strings(classes)
		e := newLoadTable(w)
		e.Header("Errors", "Count", "First seen")
		for _, k := range classes {
			e.Append(k, fmt.Sprint(l.Errors[k]), l.ErrorSample[k]) //nolint:errcheck
		}
		e.Render() //nolint:errcheck
	}
	writeFaultTable(w, l.Faults)
}

// writeFaultTable lists the faults injected during a run, times in
// seconds from its start.
func writeFaultTable(w io.Writer, faults []LoadFault) {
	if len(faults) == 0 {
		return
	}
	sec := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "s" }
	t := newLoadTable(w)
	t.Header("Faults", "Target", "Start", "End", "Recovered", "Error")
	for _, f := range faults {
		target, rec := f.Target, "-"
		if target == "" {
			target = "all"
			if f.Kind == "kill" || f.Kind == "restart" || f.Kind == "pause" {
				target = "broker process"
			}
		}
		if f.Recovered > 0 {
			rec = sec(f.Recovered)
		}
		t.Append(f.Name, target, sec(f.Start), sec(f.End), rec, f.Error) //nolint:errcheck
	}
	t.Render() //nolint:errcheck
}

// v5Rows are the messages table's MQTT 5.0 rows: what CONNACK allowed,
// messages too large or refused, and what topic aliases saved.
func v5Rows(l *Load) [][2]string {
	var rows [][2]string
	m := l.Messages
	if ca := l.Connack; ca != nil {
		size := "none"
		if ca.MaximumPacketSize > 0 {
			size = fmt.Sprint(ca.MaximumPacketSize)
		}
		ka := ""
		if ca.ServerKeepAlive != nil {
			ka = fmt.Sprintf(", server keep alive %ds", *ca.ServerKeepAlive)
		}
		varied := ""
		if ca.Varied {
			varied = " (smallest of differing CONNACKs)"
		}
		rows = append(rows, [2]string{"CONNACK: receive maximum, max packet size",
			fmt.Sprintf("%d (window %d), %s; topic alias max %d, max QoS %d%s%s", ca.ReceiveMaximum, ca.InflightWindow, size, ca.TopicAliasMaximum, ca.MaximumQoS, ka, varied)})
	}
	if m.MissedTooLarge > 0 {
		rows = append(rows, [2]string{"missed: above maximum packet size", fmt.Sprint(m.MissedTooLarge)})
	}
	if m.Rejected > 0 {
		rows = append(rows, [2]string{"rejected (reason code >= 0x80)", fmt.Sprint(m.Rejected)})
	}
	if l.Scenario.TopicAlias {
		rows = append(rows, [2]string{"topic aliases: messages, bytes saved", fmt.Sprintf("%d, %d", m.TopicAliased, m.TopicAliasBytesSaved)})
	}
	return rows
}

// us prints microseconds in the unit that reads best.
func us(v int64) string {
	switch {
	case v >= 10_000_000:
		return strconv.FormatFloat(float64(v)/1e6, 'f', 1, 64) + "s"
	case v >= 10_000:
		return strconv.FormatFloat(float64(v)/1e3, 'f', 1, 64) + "ms"
	case v >= 1_000:
		return strconv.FormatFloat(float64(v)/1e3, 'f', 2, 64) + "ms"
	}
	return strconv.FormatInt(v, 10) + "µs"
}

func rate(n, sec float64) string {
	if sec <= 0 {
		return "-"
	}
	return strconv.FormatFloat(n/sec, 'f', 0, 64)
}

// newLoadTable is a table whose headers print as written (p99.9 stays
// p99.9 rather than auto-formatted "P 99 . 9").
func newLoadTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
}
