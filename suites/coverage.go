package suites

import (
	"maps"

	"github.com/mqttbench/mqttbench/packetgen"
)

// NotTestable lists, per version, the statements no spec checks, with the
// reason: they bind only clients, or nothing on the wire shows them.
func NotTestable(v packetgen.Version) map[string]string {
	if v == packetgen.V5 {
		return notTestable50
	}
	return notTestable311
}

// notTestable311 is filled in by the section files' init functions, next
// to the specs of the same section.
var notTestable311 = map[string]string{}

// notTestable50 is the same for 5.0, filled by notTestable5.
var notTestable50 = map[string]string{}

// notTestable records a statement no spec can check, with the reason.
func notTestable(id, reason string) {
	if _, dup := notTestable311[id]; dup {
		panic("suites: " + id + " listed twice as not testable")
	}
	notTestable311[id] = reason
}

// notTestable5 records a 5.0 statement no spec can check, with the reason.
func notTestable5(id, reason string) {
	if _, dup := notTestable50[id]; dup {
		panic("suites: " + id + " listed twice as not testable in 5.0")
	}
	notTestable50[id] = reason
}

// notTestableOverWS lists, per version, the statements only MQTT over
// WebSocket makes testable (section 6): their specs run when the broker
// URL is ws:// or wss://, and on other runs the statement is not
// testable, for the reason given.
var notTestableOverWS = map[packetgen.Version]map[string]string{}

// notTestableUnlessWebSocket records a statement that only a WebSocket
// run can check.
func notTestableUnlessWebSocket(v packetgen.Version, id, reason string) {
	if notTestableOverWS[v] == nil {
		notTestableOverWS[v] = map[string]string{}
	}
	notTestableOverWS[v][id] = reason
}

// notTestable is NotTestable(v) with the statements this run's transport
// cannot reach.
func (c *Config) notTestable(v packetgen.Version) map[string]string {
	nt := NotTestable(v)
	if c.overWebSocket() || len(notTestableOverWS[v]) == 0 {
		return nt
	}
	out := maps.Clone(nt)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, notTestableOverWS[v])
	return out
}
