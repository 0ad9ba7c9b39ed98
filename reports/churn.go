package reports

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// LoadChurn is what a load run's churn did and measured: a flapping
// group, subscribers taken offline, a will storm, a retained fleet, and
// payloads from a template. Latencies are in the run's histograms
// (reconnect, will, retained_fetch).
type LoadChurn struct {
	Flap      *LoadFlap      `json:"flap,omitempty"`
	Backlog   *LoadBacklog   `json:"offline,omitempty"`
	WillStorm *LoadWillStorm `json:"will_storm,omitempty"`
	Retained  *LoadRetained  `json:"retained,omitempty"`
	Template  *LoadTemplate  `json:"payload_template,omitempty"`
}

// LoadFlap is a group of connections dropped abruptly at a rate.
type LoadFlap struct {
	Group       string  `json:"group"` // publishers, subscribers, idle or all
	Connections int     `json:"connections"`
	Rate        float64 `json:"rate"` // drops per second asked for
	CleanStart  bool    `json:"clean_start"`
	Drops       uint64  `json:"drops"`
	// Skipped drops were due when no connection of the group was up.
	Skipped     uint64  `json:"skipped,omitempty"`
	DropsPerSec float64 `json:"drops_per_second"`
	// Reconnected counts reconnections timed from drop to CONNACK (the
	// reconnect histogram), drops of any cause included.
	Reconnected int64 `json:"reconnected"`
}

// LoadBacklog is subscribers taken offline, with their sessions, while
// publishers went on.
type LoadBacklog struct {
	Subscribers int           `json:"subscribers"`
	At          time.Duration `json:"at_ns"`  // into the publish phase
	For         time.Duration `json:"for_ns"` // as asked
	AwaySec     float64       `json:"away_seconds"`
	Returned    int           `json:"returned"` // came back (CONNACK) before the end
	// Due were published to them while away; Delivered of those reached
	// them after they came back.
	Due       uint64 `json:"due"`
	Delivered uint64 `json:"delivered"`
	// DrainSec is the longest time from a subscriber's return to its last
	// backlog message; DrainRate is backlog messages per second from the
	// first return to the last backlog message.
	DrainSec  float64 `json:"drain_seconds"`
	DrainRate float64 `json:"drain_per_second"`
	// QueueLimit is what the broker promises to keep per session (0: no
	// known limit). LostByQoS are the offline subscribers' losses by the
	// QoS due; LostQueueLimit of them were beyond the limit: the broker
	// was allowed to drop them.
	QueueLimit     int       `json:"queue_limit,omitempty"`
	LostByQoS      [3]uint64 `json:"lost_by_qos"`
	LostQueueLimit uint64    `json:"lost_queue_limit"`
}

// LoadWillStorm is connections with wills closed abruptly at once.
type LoadWillStorm struct {
	Connections int     `json:"connections"`
	Connected   int     `json:"connected"`
	Prefix      string  `json:"prefix"`
	At          float64 `json:"at_s"` // since the start of the run; 0: no storm
	Expected    uint64  `json:"expected"`
	Received    uint64  `json:"received"`
	Duplicates  uint64  `json:"duplicates,omitempty"`
	// Early wills came before their connection was closed.
	Early uint64 `json:"early,omitempty"`
	Error string `json:"error,omitempty"`
}

// LoadRetained is a retained fleet: topics set, then fetched by new
// subscribers to a wildcard over them.
type LoadRetained struct {
	Topics      int     `json:"topics"`
	Subscribers int     `json:"subscribers"`
	Set         int     `json:"set"` // retained messages acknowledged
	SetSec      float64 `json:"set_seconds"`
	// RetainAvailable is false when a 5.0 broker said it has no retain.
	RetainAvailable bool   `json:"retain_available"`
	Complete        int    `json:"complete"` // subscribers that got every topic
	Missing         uint64 `json:"missing"`
	// DroppedQueueLimit were not delivered to subscribers that got at
	// least the broker's queue limit (QueueLimit, what it keeps queued per
	// session): the broker keeping its word, not a violation.
	QueueLimit        int     `json:"queue_limit,omitempty"`
	DroppedQueueLimit uint64  `json:"dropped_queue_limit,omitempty"`
	Unflagged         uint64  `json:"unflagged,omitempty"` // delivered without RETAIN set
	FetchMaxSec       float64 `json:"fetch_max_seconds,omitempty"`
	Statement         string  `json:"statement"`
	Error             string  `json:"error,omitempty"`
}

// LoadTemplate is payloads rendered from a template.
type LoadTemplate struct {
	File        string  `json:"file"`
	HeaderField bool    `json:"header_field"` // {{header}} placed it; else in front
	Messages    uint64  `json:"messages"`
	MinBytes    int     `json:"min_bytes"`
	MaxBytes    int     `json:"max_bytes"`
	MeanBytes   float64 `json:"mean_bytes"`
}

// WriteChurnTable prints the churn section of a load summary.
func WriteChurnTable(w io.Writer, c *LoadChurn) {
	rows := c.Rows()
	if len(rows) == 0 {
		return
	}
	t := newLoadTable(w)
	t.Header("Churn", "Value")
	for _, r := range rows {
		t.Append(r[0], r[1]) //nolint:errcheck
	}
	t.Render() //nolint:errcheck
}

// Rows are the churn section as (what, value) rows, for the terminal
// table and the HTML report.
func (c *LoadChurn) Rows() [][2]string {
	if c == nil {
		return nil
	}
	var rows [][2]string
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	if f := c.Flap; f != nil {
		clean := "resumed"
		if f.CleanStart {
			clean = "clean start"
		}
		rows = append(rows,
			[2]string{"flap: group, connections, sessions", fmt.Sprintf("%s, %d, %s", f.Group, f.Connections, clean)},
			[2]string{"flap: drops (per second), skipped", fmt.Sprintf("%d (%s/s of %g), %d", f.Drops, f2(f.DropsPerSec), f.Rate, f.Skipped)},
			[2]string{"flap: reconnections timed", fmt.Sprint(f.Reconnected)})
	}
	if b := c.Backlog; b != nil {
		limit := "none given"
		if b.QueueLimit > 0 {
			limit = fmt.Sprint(b.QueueLimit)
		}
		rows = append(rows,
			[2]string{"offline: subscribers, away, returned", fmt.Sprintf("%d, %ss, %d", b.Subscribers, f2(b.AwaySec), b.Returned)},
			[2]string{"offline: backlog delivered / due", fmt.Sprintf("%d / %d", b.Delivered, b.Due)},
			[2]string{"offline: drain time, rate", fmt.Sprintf("%s, %s/s", us(int64(b.DrainSec*1e6)), strconv.FormatFloat(b.DrainRate, 'f', 0, 64))},
			[2]string{"offline: lost QoS 0/1/2, queue limit", fmt.Sprintf("%d/%d/%d, %s (%d beyond it)", b.LostByQoS[0], b.LostByQoS[1], b.LostByQoS[2], limit, b.LostQueueLimit)})
	}
	if s := c.WillStorm; s != nil {
		v := fmt.Sprintf("%d / %d of %d connected (%d connections)", s.Received, s.Expected, s.Connected, s.Connections)
		if s.Duplicates > 0 || s.Early > 0 {
			v += fmt.Sprintf("; %d duplicates, %d early", s.Duplicates, s.Early)
		}
		if s.Error != "" {
			v += "; " + s.Error
		}
		rows = append(rows, [2]string{"will storm: wills received / expected", v})
	}
	if r := c.Retained; r != nil {
		v := fmt.Sprintf("%d topics set in %s; %d of %d subscribers got all, %d missing", r.Topics, us(int64(r.SetSec*1e6)), r.Complete, r.Subscribers, r.Missing)
		if r.DroppedQueueLimit > 0 {
			v += fmt.Sprintf(", %d beyond the broker's queue limit (%d)", r.DroppedQueueLimit, r.QueueLimit)
		}
		if r.FetchMaxSec > 0 {
			v += ", slowest " + us(int64(r.FetchMaxSec*1e6))
		}
		if !r.RetainAvailable {
			v += " (retain not available)"
		}
		if r.Error != "" {
			v += "; " + r.Error
		}
		rows = append(rows, [2]string{"retained fleet", v})
	}
	if t := c.Template; t != nil {
		where := "in front"
		if t.HeaderField {
			where = "{{header}}"
		}
		rows = append(rows, [2]string{"payload template: bytes min/mean/max", fmt.Sprintf("%d/%.0f/%d over %d messages (header %s)", t.MinBytes, t.MeanBytes, t.MaxBytes, t.Messages, where)})
	}
	return rows
}
