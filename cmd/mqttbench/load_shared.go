package main

import (
	"flag"
	"strings"

	"github.com/mqttbench/mqttbench/loadgen"
)

// sharedFlags are load's consumer-group flags: shared subscriptions and
// request/response. Each overrides the scenario file's field.
type sharedFlags struct {
	groups     listFlag
	responders *int
}

func addSharedFlags(fs *flag.FlagSet) *sharedFlags {
	f := &sharedFlags{}
	fs.Var(&f.groups, "shared-group", "subscribe as shared group NAME ($share/NAME/<filter>); repeat, or separate by commas, for several groups: subscribers are dealt out over them in turn and each group is verified as one consumer (MQTT 5.0; at 3.1.1 with a broker that takes $share, as mosquitto does)")
	f.responders = fs.Int("responders", 0, "request/response (MQTT 5.0): N more connections answer every PUBLISH on its Response Topic with its Correlation Data, as shared group "+loadgen.ResponderGroup+"; the round trip is the request_response metric")
	return f
}

// apply sets the scenario field of flag name, if it is one of these.
func (f *sharedFlags) apply(name string, sc *loadgen.Scenario) {
	switch name {
	case "shared-group":
		sc.SharedGroups = nil
		for _, v := range f.groups {
			for _, g := range strings.Split(v, ",") {
				sc.SharedGroups = append(sc.SharedGroups, strings.TrimSpace(g))
			}
		}
	case "responders":
		sc.Responders = *f.responders
	}
}
