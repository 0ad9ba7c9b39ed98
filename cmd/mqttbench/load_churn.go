package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
)

const churnHint = "mqttbench load --clean-session=false --qos 1 --flap-rate 5 --flap-group subscribers --duration 30s"

// churnFlags are load's churn and payload template flags; each overrides
// the scenario file's field of the same meaning (churn: section,
// payload_template).
type churnFlags struct {
	flapRate, offlineSubs                 *float64
	flapGroup, willPrefix, retainedPrefix *string
	flapCount, queueLimit                 *int
	flapClean                             *bool
	offlineAt, offlineFor, willAt         *time.Duration
	willStorm, retained, retainedSubs     *int
	template                              *string
}

func addChurnFlags(fs *flag.FlagSet) *churnFlags {
	return &churnFlags{
		flapRate:       fs.Float64("flap-rate", 0, "churn: drop connections of --flap-group abruptly (no DISCONNECT) at this many per second during publishing; they reconnect with the usual backoff"),
		flapGroup:      fs.String("flap-group", "all", "churn: which connections flap: publishers, subscribers, idle or all"),
		flapCount:      fs.Int("flap-count", 0, "churn: only the group's first N connections flap (0: all of the group)"),
		flapClean:      fs.Bool("flap-clean-start", false, "churn: flapping connections reconnect with a clean start (sessions lost, losses excused) instead of resuming"),
		offlineSubs:    fs.Float64("offline-subscribers", 0, "churn: take subscribers offline, sessions kept (below 1: a fraction, else a count); needs --clean-session=false"),
		offlineAt:      fs.Duration("offline-at", 0, "churn: when into the publish phase they go (default a quarter of --duration)"),
		offlineFor:     fs.Duration("offline-for", 0, "churn: how long they stay away"),
		queueLimit:     fs.Int("broker-queue-limit", 0, "messages the broker keeps per offline session (mosquitto's max_queued_messages, 1000 by default): losses beyond it are not violations (0: no limit known)"),
		willStorm:      fs.Int("will-storm", 0, "churn: open N connections with wills (QoS 1) and close them all at once, abruptly, during publishing; a watcher times each will"),
		willAt:         fs.Duration("will-storm-at", 0, "churn: when into the publish phase the storm comes (default half of --duration)"),
		willPrefix:     fs.String("will-prefix", loadgen.DefaultWillPrefix, "churn: topic prefix of the wills"),
		retained:       fs.Int("retained", 0, "churn: set N retained topics (QoS 1) before publishing, then time --retained-subscribers fetching them with a wildcard"),
		retainedSubs:   fs.Int("retained-subscribers", 1, "churn: subscribers fetching the retained topics at once"),
		retainedPrefix: fs.String("retained-prefix", loadgen.DefaultRetainedPrefix, "churn: topic prefix of the retained topics"),
		template:       fs.String("payload-template", "", "render every payload from this text/template file: {{index}} {{publisher}} {{time}} {{unixms}} {{rand N}} {{json FILE}} {{header}} (the sequence header; in front when absent)"),
	}
}

// apply sets the scenario field of flag name, if it is one of these.
func (f *churnFlags) apply(name string, sc *loadgen.Scenario) error {
	c := &sc.Churn
	switch name {
	case "flap-rate":
		c.Flap.Rate = *f.flapRate
	case "flap-group":
		c.Flap.Group = *f.flapGroup
	case "flap-count":
		c.Flap.Count = *f.flapCount
	case "flap-clean-start":
		c.Flap.CleanStart = *f.flapClean
	case "offline-subscribers":
		c.Offline.Subscribers = *f.offlineSubs
	case "offline-at":
		c.Offline.At = *f.offlineAt
	case "offline-for":
		c.Offline.For = *f.offlineFor
	case "broker-queue-limit":
		if *f.queueLimit < 0 {
			return fmt.Errorf("--broker-queue-limit is %d; want 0 (unknown) or more", *f.queueLimit)
		}
		c.BrokerQueueLimit = *f.queueLimit
	case "will-storm":
		c.WillStorm.Connections = *f.willStorm
	case "will-storm-at":
		c.WillStorm.At = *f.willAt
	case "will-prefix":
		c.WillStorm.Prefix = *f.willPrefix
	case "retained":
		c.Retained.Topics = *f.retained
	case "retained-subscribers":
		c.Retained.Subscribers = *f.retainedSubs
	case "retained-prefix":
		c.Retained.Prefix = *f.retainedPrefix
	case "payload-template":
		sc.PayloadTemplate = *f.template
	}
	return nil
}

// churnConflict names what churn cannot combine with: it must see every
// connection and delivery, so it runs in one process.
func churnConflict(sc *loadgen.Scenario, sharded bool, workers int) error {
	if !sc.Churn.Active() {
		return nil
	}
	switch {
	case sharded:
		return fmt.Errorf("churn (--flap-rate, --offline-subscribers, --will-storm, --retained) runs in one process: it does not combine with --shard")
	case workers > 1:
		return fmt.Errorf("churn (--flap-rate, --offline-subscribers, --will-storm, --retained) runs in one process: it does not combine with --workers %d", workers)
	}
	return nil
}
