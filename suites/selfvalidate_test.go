package suites_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onsi/ginkgo/v2"

	"github.com/mqttbench/mqttbench/reports"
)

// faultCatches says, for each broker fault, which statements a conformance
// run must fail (any one of them) and which labels select the specs that
// can see it, so each run stays short.
var faultCatches = []struct {
	fault, labels string
	statements    []string
	protocol      string // "" is 3.1.1
	args          []string
}{
	{"drop-will", "will", []string{"MQTT-3.1.2-8"}, "", nil},
	{"forget-retained", "retain", []string{"MQTT-3.3.1-5", "MQTT-3.3.1-6"}, "", nil},
	{"qos2-twice", "qos2", []string{"MQTT-4.3.3-2"}, "", nil},
	{"widen-plus", "wildcard || topics", []string{"MQTT-4.7.1-3"}, "", nil},
	{"ignore-keepalive", "keepalive", []string{"MQTT-3.1.2-24"}, "", nil},
	{"resume-as-clean", "session", []string{"MQTT-3.2.2-2", "MQTT-4.1.0-1", "MQTT-3.1.2-4"}, "", nil},
	{"live-retain-flag", "retain", []string{"MQTT-3.3.1-9"}, "", nil},
	{"no-dup-on-resend", "session || qos1 || qos2", []string{"MQTT-3.3.1-1", "MQTT-4.4.0-1"}, "", nil},
	{"dollar-wildcard", "wildcard || topics", []string{"MQTT-4.7.2-1"}, "", nil},
	{"accept-second-connect", "connect", []string{"MQTT-3.1.0-2"}, "", nil},
	{"ignore-unsubscribe", "", []string{"MQTT-3.10.4-1", "MQTT-3.10.4-2"}, "", nil},
	{"grant-invalid-filters", "wildcard || topics", []string{"MQTT-4.7.1-2", "MQTT-4.7.1-3"}, "", nil},
	{"downgrade-to-qos0", "qos1 || qos2", []string{"MQTT-3.3.5-1", "MQTT-4.3.2-1", "MQTT-4.3.3-1"}, "", nil},
	{"reverse-queue", "session || ordering", []string{"MQTT-4.6.0-6", "MQTT-4.6.0-5", "MQTT-4.1.0-1"}, "", nil},
	{"normalise-separators", "topics", []string{"MQTT-4.7.3-4"}, "", nil},

	// MQTT 5.0: its own faults, and those of 3.1.1 whose rule 5.0 keeps.
	{"ignore-no-local", "subscription-options", []string{"MQTT-3.8.3-3"}, "5", nil},
	{"drop-subscription-ids", "subscription-ids", []string{"MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5"}, "5", nil},
	{"broadcast-shared", "shared", []string{"MQTT-4.8.2-3"}, "5", nil},
	{"never-expire", "expiry", []string{"MQTT-3.3.2-5", "MQTT-3.3.2-6"}, "5", nil},
	{"ignore-receive-maximum", "flow", []string{"MQTT-3.3.4-9", "MQTT-4.9.0-2"}, "5", nil},
	{"drop-user-properties", "properties", []string{"MQTT-3.3.2-17", "MQTT-3.3.2-18"}, "5", nil},
	{"ignore-max-packet-size", "packet-size", []string{"MQTT-3.1.2-24"}, "5", nil},
	{"ignore-retain-handling", "subscription-options", []string{"MQTT-3.3.1-10", "MQTT-3.3.1-11"}, "5", nil},
	{"shared-qos2-elsewhere", "shared", []string{"MQTT-4.8.2-5"}, "5", nil},
	{"sessions-never-expire", "session", []string{"MQTT-4.1.0-2"}, "5", nil},
	{"drop-will", "will", []string{"MQTT-3.1.2-8"}, "5", nil},
	{"forget-retained", "retain", []string{"MQTT-3.3.1-5", "MQTT-3.3.1-9"}, "5", nil},
	{"qos2-twice", "qos2", []string{"MQTT-4.3.3-10"}, "5", nil},
	{"widen-plus", "wildcard || topics", []string{"MQTT-4.7.1-2"}, "5", nil},
	{"ignore-keepalive", "keepalive", []string{"MQTT-3.1.2-22", "MQTT-3.2.2-22"}, "5", nil},
	{"resume-as-clean", "session", []string{"MQTT-3.1.2-5", "MQTT-3.2.2-3", "MQTT-3.1.2-23"}, "5", nil},
	{"live-retain-flag", "retain", []string{"MQTT-3.3.1-12"}, "5", nil},
	{"no-dup-on-resend", "session", []string{"MQTT-3.3.1-1", "MQTT-4.4.0-1"}, "5", nil},
	// With one message in flight at a time (ejabberd's way) too.
	{"no-dup-on-resend", "session", []string{"MQTT-3.3.1-1"}, "", []string{"-broker-lacks", "send-quota-1"}},
	{"no-dup-on-resend", "session", []string{"MQTT-3.3.1-1"}, "5", []string{"-broker-lacks", "send-quota-1"}},
	{"downgrade-to-qos0", "qos1 || qos2", []string{"MQTT-4.3.2-1", "MQTT-4.3.3-1"}, "", []string{"-broker-lacks", "send-quota-1"}},
	{"accept-second-connect", "connect", []string{"MQTT-3.1.0-2", "MQTT-3.2.0-2"}, "5", nil},
	{"downgrade-to-qos0", "qos1 || qos2", []string{"MQTT-3.8.4-8", "MQTT-4.3.2-2", "MQTT-4.3.3-2"}, "5", nil},
	{"ack-granted-qos", "qos1", []string{"MQTT-3.4.2-1"}, "5", nil},
	// Identifiers, resend order and what follows PUBREL, both versions.
	{"reuse-packet-ids", "qos1 || qos2", []string{"MQTT-4.3.2-1", "MQTT-4.3.3-1"}, "", nil},
	{"reuse-packet-ids", "qos1 || qos2", []string{"MQTT-4.3.2-1", "MQTT-4.3.3-1"}, "5", nil},
	{"reverse-resend", "ordering", []string{"MQTT-4.6.0-1"}, "", nil},
	{"republish-released", "qos2 && session", []string{"MQTT-4.3.3-1"}, "", nil},
	{"republish-released", "qos2 && session", []string{"MQTT-4.3.3-6"}, "5", nil},
	// A broker that uses topic aliases, and uses one past the client's
	// Topic Alias Maximum.
	{"alias-beyond-maximum", "topic-alias", []string{"MQTT-3.3.2-11", "MQTT-3.1.2-26"}, "5", []string{"-broker-lacks", "outbound-aliases"}},
}

// TestSelfValidation proves the suite catches brokers that get a behaviour
// wrong: for each fault it runs the specs against the in-process broker
// with that one behaviour broken, in a child test process, and requires
// the run to fail on one of the statements the fault breaks: a failing
// spec citing it, or a step of another spec breaking it.
func TestSelfValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("self-validation runs the suite once per fault")
	}
	if *fault != "" || *brokerAddr != "" {
		t.Skip("inside a child run")
	}
	if suiteConfig, _ := ginkgo.GinkgoConfiguration(); suiteConfig.ParallelTotal > 1 {
		t.Skip("under a parallel ginkgo run: every process would repeat it")
	}
	dir := t.TempDir()
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, fc := range faultCatches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := filepath.Join(dir, fmt.Sprintf("%d-%s-%s.json", i, fc.fault, fc.protocol))
			protocol := fc.protocol
			if protocol == "" {
				protocol = "3.1.1"
			}
			args := append([]string{"-test.run", "^TestConformance$", "-test.count=1", "-fault", fc.fault, "-json", out, "-protocol", protocol}, fc.args...)
			if fc.labels != "" {
				args = append(args, "-ginkgo.label-filter", fc.labels)
			}
			cmd := exec.Command(os.Args[0], args...)
			log, err := cmd.CombinedOutput()
			if err == nil {
				t.Errorf("fault %s (%s): the suite passed; it must fail on one of %v", fc.fault, protocol, fc.statements)
				return
			}
			res, rerr := reports.ReadConformance(out)
			if rerr != nil {
				t.Errorf("fault %s: no result (%v); output:\n%s", fc.fault, rerr, tail(log))
				return
			}
			var failed []string
			for _, s := range res.Specs {
				if s.State != reports.Failed {
					continue
				}
				for _, id := range s.Statements {
					for _, want := range fc.statements {
						if id == want {
							t.Logf("fault %s caught by %s", fc.fault, s.Name)
							return
						}
					}
				}
				failed = append(failed, s.Name)
			}
			for _, st := range res.Statements {
				if st.Verdict == reports.Failed && len(st.BrokenIn) > 0 && slices.Contains(fc.statements, st.ID) {
					t.Logf("fault %s caught: %s broken in steps of %v", fc.fault, st.ID, st.BrokenIn)
					return
				}
			}
			t.Errorf("fault %s: no failing spec cites %v, no step broke them; failed: %v", fc.fault, fc.statements, failed)
		}()
	}
	wg.Wait()
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return strings.TrimSpace(fmt.Sprint(s))
}
