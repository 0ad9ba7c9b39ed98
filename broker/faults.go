package broker

import (
	"strings"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// Faults each break one behaviour on purpose. They exist so mqttbench can
// prove that its conformance suite catches a broker that gets that
// behaviour wrong (suites' self-validation); never set one otherwise.
type Faults struct {
	DropWill            bool // never publish a will
	ForgetRetained      bool // store no retained message
	QoS2Twice           bool // deliver a repeated QoS 2 PUBLISH again before PUBREL
	WidenPlus           bool // '+' also matches several levels
	IgnoreKeepalive     bool // never drop a silent client
	ResumeAsClean       bool // discard persistent sessions on reconnect
	LiveRetainFlag      bool // keep RETAIN 1 on live deliveries
	NoDupOnResend       bool // re-send unacknowledged messages with DUP 0
	DollarWildcard      bool // let '#' and '+' match topics starting with '$'
	AcceptSecondConnect bool // answer a second CONNECT instead of closing
	IgnoreUnsubscribe   bool // UNSUBACK but keep delivering
	GrantInvalidFilters bool // accept 'a/#/b' and friends in SUBSCRIBE
	DowngradeToQoS0     bool // deliver everything at QoS 0
	ReverseQueue        bool // deliver queued messages newest first
	NormaliseSeparators bool // match '.' as '/', as brokers mapping topics onto AMQP routing keys do

	// MQTT 5.0.
	IgnoreNoLocal        bool // deliver to the publisher despite No Local
	DropSubscriptionIDs  bool // deliver without subscription identifiers
	BroadcastShared      bool // every member of a shared group gets every message
	NeverExpire          bool // ignore Message Expiry Interval
	IgnoreReceiveMax     bool // send more unacknowledged QoS 1/2 PUBLISH than the client's Receive Maximum
	DropUserProperties   bool // forward messages without their user properties
	IgnoreMaxPacketSize  bool // send packets larger than the client's Maximum Packet Size
	IgnoreRetainHandling bool // send retained messages whatever the Retain Handling
	SharedQoS2Elsewhere  bool // hand a QoS 2 message in flight to another shared member when a session ends
	SessionsNeverExpire  bool // keep offline sessions whatever their Session Expiry Interval
	AliasBeyondMaximum   bool // give topics aliases past the client's Topic Alias Maximum
	BareCloses           bool // close 5.0 connections without the DISCONNECT that says why (a SHOULD)
	AckGrantedQoS        bool // acknowledge a 5.0 QoS 1 PUBLISH with PUBACK 0x01, the granted-QoS code (mochi-mqtt 2.7.9's way)
	ReusePacketIDs       bool // give a new QoS 1/2 delivery the identifier of the oldest one still unacknowledged
	ReverseResend        bool // on a resumed session, re-send the unacknowledged PUBLISH packets newest first
	RepublishReleased    bool // on a resumed session, re-send a QoS 2 PUBLISH already released by PUBREL instead of the PUBREL

	// PanicTopic, when set, makes the reader panic on a PUBLISH to this
	// topic name. It is for the broker's own tests, which prove that a
	// panic ends only its connection; no suite checks it, so it has no
	// name below.
	PanicTopic string
}

// Fault names as the command line and the self-validation spell them.
var faultNames = map[string]func(*Faults){
	"drop-will":              func(f *Faults) { f.DropWill = true },
	"forget-retained":        func(f *Faults) { f.ForgetRetained = true },
	"qos2-twice":             func(f *Faults) { f.QoS2Twice = true },
	"widen-plus":             func(f *Faults) { f.WidenPlus = true },
	"ignore-keepalive":       func(f *Faults) { f.IgnoreKeepalive = true },
	"resume-as-clean":        func(f *Faults) { f.ResumeAsClean = true },
	"live-retain-flag":       func(f *Faults) { f.LiveRetainFlag = true },
	"no-dup-on-resend":       func(f *Faults) { f.NoDupOnResend = true },
	"dollar-wildcard":        func(f *Faults) { f.DollarWildcard = true },
	"accept-second-connect":  func(f *Faults) { f.AcceptSecondConnect = true },
	"ignore-unsubscribe":     func(f *Faults) { f.IgnoreUnsubscribe = true },
	"grant-invalid-filters":  func(f *Faults) { f.GrantInvalidFilters = true },
	"downgrade-to-qos0":      func(f *Faults) { f.DowngradeToQoS0 = true },
	"reverse-queue":          func(f *Faults) { f.ReverseQueue = true },
	"normalise-separators":   func(f *Faults) { f.NormaliseSeparators = true },
	"ignore-no-local":        func(f *Faults) { f.IgnoreNoLocal = true },
	"drop-subscription-ids":  func(f *Faults) { f.DropSubscriptionIDs = true },
	"broadcast-shared":       func(f *Faults) { f.BroadcastShared = true },
	"never-expire":           func(f *Faults) { f.NeverExpire = true },
	"ignore-receive-maximum": func(f *Faults) { f.IgnoreReceiveMax = true },
	"drop-user-properties":   func(f *Faults) { f.DropUserProperties = true },
	"ignore-max-packet-size": func(f *Faults) { f.IgnoreMaxPacketSize = true },
	"ignore-retain-handling": func(f *Faults) { f.IgnoreRetainHandling = true },
	"shared-qos2-elsewhere":  func(f *Faults) { f.SharedQoS2Elsewhere = true },
	"sessions-never-expire":  func(f *Faults) { f.SessionsNeverExpire = true },
	"alias-beyond-maximum":   func(f *Faults) { f.AliasBeyondMaximum = true },
	"bare-closes":            func(f *Faults) { f.BareCloses = true },
	"ack-granted-qos":        func(f *Faults) { f.AckGrantedQoS = true },
	"reuse-packet-ids":       func(f *Faults) { f.ReusePacketIDs = true },
	"reverse-resend":         func(f *Faults) { f.ReverseResend = true },
	"republish-released":     func(f *Faults) { f.RepublishReleased = true },
}

// FaultNames lists the faults by name.
func FaultNames() []string {
	names := make([]string, 0, len(faultNames))
	for n := range faultNames {
		names = append(names, n)
	}
	return names
}

// ParseFault sets the named fault.
func ParseFault(name string, f *Faults) bool {
	set, ok := faultNames[name]
	if ok {
		set(f)
	}
	return ok
}

// widenedMatch is Match with the WidenPlus fault: '+' takes one or more
// levels.
func widenedMatch(filter, name string) bool {
	if topic.Match(filter, name) {
		return true
	}
	return widen(strings.Split(filter, "/"), strings.Split(name, "/"))
}

func widen(f, n []string) bool {
	if len(f) == 0 {
		return len(n) == 0
	}
	switch f[0] {
	case "#":
		return true
	case "+":
		for i := 1; i <= len(n); i++ {
			if widen(f[1:], n[i:]) {
				return true
			}
		}
		return false
	}
	return len(n) > 0 && f[0] == n[0] && widen(f[1:], n[1:])
}

// panicOn panics when name is the PanicTopic fault's topic.
func (f *Faults) panicOn(name []byte) {
	if f.PanicTopic != "" && string(name) == f.PanicTopic {
		panic("injected fault: a PUBLISH to " + f.PanicTopic)
	}
}
