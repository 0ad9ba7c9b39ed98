package main

import (
	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/suites"
)

// applyLoadProfile takes from a broker profile, the file conform reads,
// what a load run needs to know of the broker: how many messages it
// keeps per offline session (queue_limit) and who to connect as
// (username, password). What a flag or the scenario file says wins:
// set names the flags given.
func applyLoadProfile(path string, sc *loadgen.Scenario, set map[string]bool) error {
	p, err := suites.LoadProfile(path)
	if err != nil {
		return err
	}
	if p.QueueLimit != nil && !set["broker-queue-limit"] && sc.Churn.BrokerQueueLimit == 0 {
		sc.Churn.BrokerQueueLimit = *p.QueueLimit
	}
	if p.Username != "" && !set["username"] && sc.Username == "" {
		sc.Username = p.Username
		if !set["password"] && sc.Password == "" {
			sc.Password = p.Password
		}
	}
	return nil
}
