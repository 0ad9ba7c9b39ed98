package suites

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/wire"
)

// A spec checks its own statements, but to get there it relies on steps
// it does not check: a CONNECT answered by CONNACK, a QoS 2 PUBLISH by
// PUBREC, a SUBSCRIBE by a SUBACK with the same identifier. When a broker
// gets such a step wrong, the spec has learnt nothing about its own
// statements, and the statement that obliges the broker to the step is the
// one broken. So every verdict goes to the statement it is about:
//
//   - a step that breaks a statement the spec checks fails the spec, as
//     any check does;
//   - a step that breaks another statement fails that statement (a breach,
//     reported with the spec's trace) and leaves the spec inconclusive. A
//     step breaks a statement by a wrong answer (PUBACK for a QoS 2
//     PUBLISH, a SUBACK with another identifier, a malformed packet); a
//     close is no answer at all and stays the spec's to judge;
//   - an answer owed that does not come within the timeout proves nothing
//     (the specification sets no time for answers, and a loaded broker is
//     slow): the spec is inconclusive, "no answer in T", unless it is
//     about timing itself (keep alive). Waiting for a close is the check
//     of closing specs and stays a failure.

// Statements that oblige a broker to complete the steps specs rely on
// (MQTT 3.1.1).
var (
	ruleConnack    = []string{"MQTT-3.2.0-1"}                 // the server's first packet is CONNACK
	ruleConnackOK  = []string{"MQTT-3.1.4-4"}                 // a valid CONNECT is accepted with CONNACK 0
	ruleClientID   = []string{"MQTT-3.1.3-5"}                 // 1-23 characters of 0-9a-zA-Z are accepted
	ruleSuback     = []string{"MQTT-3.8.4-1"}                 // SUBSCRIBE is answered by SUBACK
	ruleSubackID   = []string{"MQTT-3.8.4-2", "MQTT-2.3.1-7"} // with the SUBSCRIBE's packet identifier
	ruleSubackN    = []string{"MQTT-3.8.4-5"}                 // one return code per filter
	ruleSubackRC   = []string{"MQTT-3.9.3-2"}                 // codes 0x00, 0x01, 0x02 and 0x80 only
	ruleUnsuback   = []string{"MQTT-3.10.4-4"}                // UNSUBSCRIBE is answered by UNSUBACK
	ruleUnsubackID = []string{"MQTT-3.10.4-4", "MQTT-2.3.1-7"}
	rulePuback     = []string{"MQTT-3.3.4-1", "MQTT-4.3.2-2"} // a QoS 1 PUBLISH is answered by PUBACK
	rulePubackID   = []string{"MQTT-2.3.1-6", "MQTT-4.3.2-2"}
	rulePubrec     = []string{"MQTT-3.3.4-1", "MQTT-4.3.3-2"} // a QoS 2 PUBLISH is answered by PUBREC
	rulePubrecID   = []string{"MQTT-2.3.1-6", "MQTT-4.3.3-2"}
	rulePubcomp    = []string{"MQTT-4.3.3-2"} // a PUBREL is answered by PUBCOMP
	rulePubcompID  = []string{"MQTT-2.3.1-6", "MQTT-4.3.3-2"}
	rulePubrel     = []string{"MQTT-4.3.3-1"} // the QoS 2 sender answers PUBREC with PUBREL
	rulePubrelID   = []string{"MQTT-2.3.1-6", "MQTT-4.3.3-1"}
	rulePacketID   = []string{"MQTT-2.3.1-1"} // QoS 1 and 2 PUBLISH carry a non-zero identifier
	ruleNoRename   = []string{"MQTT-4.7.3-4"} // topic names are delivered as published
)

// timingLabels mark specs about timers: there an answer that does not
// come in time is the finding, not a lack of one.
var timingLabels = []string{"keepalive"}

const (
	// inconclusivePrefix starts the Ginkgo failure or skip message of an
	// inconclusive spec, for Convert.
	inconclusivePrefix = "INCONCLUSIVE "
	breachEntryName    = "statement broken in a step"
)

// breachValue is a report entry's value: the breach, printed as Ginkgo
// shows report entries.
type breachValue reports.Breach

func (b breachValue) String() string {
	s := b.Message
	if b.Deviation != "" {
		s += " (known deviation: " + b.Deviation + ")"
	}
	return s
}

// checks reports whether the spec checks any of statements.
func (w *World) checks(statements []string) bool {
	for _, s := range statements {
		if slices.Contains(w.Statements, s) {
			return true
		}
	}
	return false
}

// stepFailed ends the spec on a step that went wrong. rules are the
// statements that oblige the broker to the step: if the spec checks one
// of them (or none are given), it fails as any check does; otherwise the
// broker broke another statement, which is failed in the spec's place.
func (w *World) stepFailed(rules []string, format string, args ...any) {
	rules = w.versionRules(rules)
	msg := fmt.Sprintf(format, args...)
	if len(rules) == 0 || w.checks(rules) {
		w.Failf("%s", msg)
		return
	}
	b := reports.Breach{Statements: rules, Message: "[" + strings.Join(rules, " ") + "] " + msg}
	if dev := w.cfg.Profile.deviation(rules, w.name); dev != nil {
		b.Deviation = dev.Statement + ": " + dev.Reason
	}
	ginkgo.AddReportEntry(breachEntryName, breachValue(b), ginkgo.ReportEntryVisibilityFailureOrVerbose)
	cause := fmt.Sprintf("%sa step broke %s, which this spec does not check: %s", inconclusivePrefix, strings.Join(rules, " "), msg)
	if b.Deviation != "" {
		// The profile knows: a deviation of that statement, and no
		// failure of the run.
		ginkgo.Skip(cause + " (known deviation " + b.Deviation + ")")
	}
	ginkgo.Fail(cause, 2)
}

// inconclusive ends the spec without a verdict, for why.
func (w *World) inconclusive(format string, args ...any) {
	ginkgo.Skip(inconclusivePrefix + fmt.Sprintf(format, args...))
}

// noAnswer ends the spec when an answer it was owed (packet, such as
// "SUBACK") did not come within the timeout: inconclusive, unless the spec
// is about timing.
func (w *World) noAnswer(packet, expected, at string) {
	answerTimes.missed(packet)
	msg := fmt.Sprintf("expected %s at %s; got nothing in %s", expected, at, w.cfg.Timeout)
	if w.timing {
		w.Failf("%s", msg)
		return
	}
	w.inconclusive("no answer in %s: %s", w.cfg.Timeout, msg)
}

// ifNoAnswer ends the spec as noAnswer when err, from waiting for an
// answer owed to the spec, says nothing came in time; other errors are
// left to the caller.
func (w *World) ifNoAnswer(err error, expected, at string) {
	if errors.Is(err, wire.ErrTimeout) {
		w.noAnswer(packetWord(expected), expected, at)
	}
}

// packetWord is the packet an expectation starts with ("PUBREC for the
// repeated PUBLISH"), or "answer".
func packetWord(expected string) string {
	if f := strings.Fields(expected); len(f) > 0 && f[0] == strings.ToUpper(f[0]) {
		return f[0]
	}
	return "answer"
}

// answered records how long an answer took.
func (w *World) answered(packet string, since time.Time) {
	answerTimes.took(packet, time.Since(since), w.cfg.Timeout)
}

// answerName is a packet's name as messages and answer times show it.
func answerName(p packetgen.Packet) string {
	return strings.ToUpper(strings.TrimPrefix(fmt.Sprintf("%T", p), "*packetgen."))
}

// isAnswer reports packets that only ever answer a client's packet: one
// of them in place of the answer due is a wrong answer, while a PUBLISH
// may come at any time and is the spec's business.
func isAnswer(p packetgen.Packet) bool {
	switch p.(type) {
	case *packetgen.Connack, *packetgen.Puback, *packetgen.Pubrec, *packetgen.Pubrel, *packetgen.Pubcomp,
		*packetgen.Suback, *packetgen.Unsuback, *packetgen.Pingresp:
		return true
	}
	return false
}

// answerRules are the statements that owe an answer of p's type in place
// of another answer, or nil where none does (PINGRESP: a spec pings to
// see what comes first).
func answerRules(p packetgen.Packet) []string {
	switch p.(type) {
	case *packetgen.Connack:
		return ruleConnack
	case *packetgen.Puback:
		return rulePuback
	case *packetgen.Pubrec:
		return rulePubrec
	case *packetgen.Pubrel:
		return rulePubrel
	case *packetgen.Pubcomp:
		return rulePubcomp
	case *packetgen.Suback:
		return ruleSuback
	case *packetgen.Unsuback:
		return ruleUnsuback
	}
	return nil
}

// recvAnswer waits, until the timeout from since, for the next packet
// while an answer (packet, described by expected) is owed. Nothing in time
// is noAnswer; a malformed packet breaks the statement its violation
// names. A close fails the spec as a check would: a broker closes for a
// reason it does not say, most often something the spec sent on purpose
// (a filter of 30,000 levels, say), which is the spec's to judge.
func (c *Client) recvAnswer(packet string, since time.Time, expected string) packetgen.Packet {
	p, err := c.Recv(max(time.Until(since.Add(c.w.cfg.Timeout)), time.Millisecond))
	if err == nil {
		return p
	}
	switch v := packetgen.AsViolation(err); {
	case errors.Is(err, wire.ErrTimeout):
		c.w.noAnswer(packet, expected, c.Name)
	case v != nil:
		c.w.stepFailed([]string{v.Rule}, "expected %s at %s; got a malformed packet: %v", expected, c.Name, err)
	default:
		c.w.Failf("expected %s at %s; got %s", expected, c.Name, describeErr(err))
	}
	return nil
}

// expectAnswer waits for the answer of type T owed since since. Held
// PUBLISH packets come first (as with Next) and, like any PUBLISH in
// place of the answer, fail the spec as a check would; another answer in
// its place breaks rules.
func expectAnswer[T packetgen.Packet](c *Client, since time.Time, rules []string, expected string) T {
	var zero T
	packet := answerName(zero)
	var p packetgen.Packet
	if len(c.held) > 0 {
		p, c.held = c.held[0], c.held[1:]
	} else {
		p = c.recvAnswer(packet, since, expected)
	}
	t, ok := p.(T)
	if !ok {
		c.wrongAnswer(rules, expected, p)
	}
	c.w.answered(packet, since)
	return t
}

// wrongAnswer fails the spec on p, which came in place of the answer
// expected: another answer in its place breaks rules, anything else is
// the spec's failure.
func (c *Client) wrongAnswer(rules []string, expected string, p packetgen.Packet) {
	if isAnswer(p) {
		c.w.stepFailed(rules, "expected %s at %s; got %s", expected, c.Name, packetgen.Format(p))
	}
	c.w.Failf("expected %s at %s; got %s", expected, c.Name, packetgen.Format(p))
}
