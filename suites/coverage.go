package suites

import "github.com/mqttbench/mqttbench/packetgen"

// NotTestable lists, per version, the statements no spec checks, with the
// reason: they bind only clients, or nothing on the wire shows them.
func NotTestable(v packetgen.Version) map[string]string {
	if v == packetgen.V5 {
		return nil
	}
	return notTestable311
}

// notTestable311 is filled in by the section files' init functions, next
// to the specs of the same section.
var notTestable311 = map[string]string{}

// notTestable records a statement no spec can check, with the reason.
func notTestable(id, reason string) {
	if _, dup := notTestable311[id]; dup {
		panic("suites: " + id + " listed twice as not testable")
	}
	notTestable311[id] = reason
}
