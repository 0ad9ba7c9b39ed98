package reports

// LoadHistory is the history checker's reading of a load run, after
// Jepsen's checkers: every message a publisher sent is classed by what
// became of it at each subscriber due to receive it, and every fault
// injected during the run (Load.Faults) gets its share of the losses,
// the sessions that came back, the time until the run carried the
// offered rate again, and the latency either side of it.
type LoadHistory struct {
	// Classes are the whole run's, one row per QoS due.
	Classes []LoadHistoryClass `json:"classes"`
	Faults  []LoadFaultHistory `json:"faults,omitempty"`
	// RecoveryThreshold is the share of the offered rate that a second's
	// sends and deliveries must both reach to count as recovered.
	RecoveryThreshold float64 `json:"recovery_threshold"`
	// LatencyWindow is how long, in seconds, before a fault's start and
	// after its end the p99 end-to-end latency is compared.
	LatencyWindow float64  `json:"latency_window_s"`
	Violations    []string `json:"violations,omitempty"`
	Notes         []string `json:"notes,omitempty"`
}

// LoadHistoryClass classes the messages due at one QoS: each message sent
// counts once per subscriber due to receive it (Due), and each such
// delivery is exactly one of Delivered, AckedLost, SessionLost,
// UnackedLost, Failed and Unknown. Duplicated, Reordered and Unexpected
// count deliveries on top, for the whole run only.
type LoadHistoryClass struct {
	QoS     int    `json:"qos"`
	Streams int    `json:"streams"` // (publisher, subscriber) pairs
	Due     uint64 `json:"due"`
	// Delivered at least once.
	Delivered uint64 `json:"delivered"`
	// AckedLost were acknowledged to the publisher and never delivered to
	// a subscriber that kept its session: a violation at QoS 1 and 2.
	AckedLost uint64 `json:"acked_lost"`
	// SessionLost were acknowledged and never delivered to a subscriber
	// whose session the broker did not keep (or that started a clean
	// one): not a violation of the message's QoS; a fault that cost
	// sessions says so in its own row.
	SessionLost uint64 `json:"acked_lost_session_lost"`
	// UnackedLost were never delivered and owed nothing: due at QoS 0.
	UnackedLost uint64 `json:"unacked_lost"`
	// Failed were refused by the broker (MQTT 5.0 reason code >= 0x80)
	// and not delivered.
	Failed uint64 `json:"failed"`
	// Unknown had their connection lost before the acknowledgement (or
	// were in flight at the end) and were not delivered: allowed.
	Unknown uint64 `json:"unknown"`
	// Duplicated deliveries: a violation at QoS 2, counted at QoS 1.
	Duplicated uint64 `json:"duplicated"`
	Reordered  uint64 `json:"reordered"`
	// Unexpected deliveries reached a subscriber whose filter does not
	// match the topic.
	Unexpected uint64 `json:"unexpected"`
	// Unjudged deliveries came from publishers whose ledgers are not
	// here (a shard's own summary): they are not in Due.
	Unjudged   uint64   `json:"unjudged,omitempty"`
	Violations []string `json:"violations,omitempty"`
}

// Fraction is n as a share of the messages due (0 when none was).
func (c LoadHistoryClass) Fraction(n uint64) float64 {
	if c.Due == 0 {
		return 0
	}
	return float64(n) / float64(c.Due)
}

// LoadFaultHistory is what one fault did. Times are seconds since the
// start of the run.
type LoadFaultHistory struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Target    string  `json:"target,omitempty"`
	Start     float64 `json:"start_s"`
	End       float64 `json:"end_s"`
	Recovered float64 `json:"recovered_s,omitempty"` // the broker back, as the injector saw it
	// WindowFrom and WindowTo bound the due times of the messages this
	// fault answers for: from the previous fault's recovery (the run's
	// start for the first) to this one's recovery (the next fault's
	// start if it never recovered; the run's end for the last).
	WindowFrom float64            `json:"window_from_s"`
	WindowTo   float64            `json:"window_to_s"`
	Classes    []LoadHistoryClass `json:"classes"`
	// LossWindow spans the due times of the acknowledged messages lost in
	// this fault's window; nil when none was.
	LossWindow *LoadLossWindow   `json:"loss_window,omitempty"`
	Sessions   LoadFaultSessions `json:"sessions"`
	// RecoverySec is how long after the fault's end the first second
	// ended in which sends and deliveries were both back to
	// RecoveryThreshold of the offered rate (a 1 s resolution: an upper
	// bound); nil when that never happened while publishing.
	RecoverySec *float64 `json:"recovery_s,omitempty"`
	// P99Before and P99After are the highest per-second p99 end-to-end
	// latencies, in µs, in the latency window before the start and after
	// the end (0: no sample).
	P99Before int64 `json:"p99_before_us"`
	P99After  int64 `json:"p99_after_us"`
	// Retained and Wills say whether retained messages and pending wills
	// survived, or why that was not checked ("n/a: ...").
	Retained   string   `json:"retained"`
	Wills      string   `json:"wills"`
	Violations []string `json:"violations,omitempty"`
}

// LoadLossWindow spans the due times of acknowledged messages lost.
type LoadLossWindow struct {
	From     float64 `json:"from_s"`
	To       float64 `json:"to_s"`
	Messages uint64  `json:"messages"` // deliveries lost, as counted in the classes
}

// LoadFaultSessions is what became of sessions when connections came
// back after a fault (reconnections from its start to the next fault's).
type LoadFaultSessions struct {
	// Persistent: the scenario asks brokers to keep sessions (clean
	// session 0); with clean sessions nothing below is expected.
	Persistent bool `json:"persistent"`
	// Dropped connections had been up; each is a session to resume.
	Dropped uint64 `json:"dropped"`
	// Resumed reconnections had Session Present 1, Fresh had 0.
	Resumed uint64 `json:"resumed"`
	Fresh   uint64 `json:"fresh"`
	// SubscribersResumed did not subscribe again; SubscriptionsKept of
	// them then received a message published after they came back.
	SubscribersResumed uint64 `json:"subscribers_resumed"`
	SubscriptionsKept  uint64 `json:"subscriptions_kept"`
}
