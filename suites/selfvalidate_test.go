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
}{
	{"drop-will", "will", []string{"MQTT-3.1.2-8"}},
	{"forget-retained", "retain", []string{"MQTT-3.3.1-5", "MQTT-3.3.1-6"}},
	{"qos2-twice", "qos2", []string{"MQTT-4.3.3-2"}},
	{"widen-plus", "wildcard || topics", []string{"MQTT-4.7.1-3"}},
	{"ignore-keepalive", "keepalive", []string{"MQTT-3.1.2-24"}},
	{"resume-as-clean", "session", []string{"MQTT-3.2.2-2", "MQTT-4.1.0-1", "MQTT-3.1.2-4"}},
	{"live-retain-flag", "retain", []string{"MQTT-3.3.1-9"}},
	{"no-dup-on-resend", "session || qos1 || qos2", []string{"MQTT-3.3.1-1", "MQTT-4.4.0-1"}},
	{"dollar-wildcard", "wildcard || topics", []string{"MQTT-4.7.2-1"}},
	{"accept-second-connect", "connect", []string{"MQTT-3.1.0-2"}},
	{"ignore-unsubscribe", "", []string{"MQTT-3.10.4-1", "MQTT-3.10.4-2"}},
	{"grant-invalid-filters", "wildcard || topics", []string{"MQTT-4.7.1-2", "MQTT-4.7.1-3"}},
	{"downgrade-to-qos0", "qos1 || qos2", []string{"MQTT-3.3.5-1", "MQTT-4.3.2-1", "MQTT-4.3.3-1"}},
	{"reverse-queue", "session || ordering", []string{"MQTT-4.6.0-6", "MQTT-4.6.0-5", "MQTT-4.1.0-1"}},
	{"normalise-separators", "topics", []string{"MQTT-4.7.3-4"}},
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
	for _, fc := range faultCatches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := filepath.Join(dir, fc.fault+".json")
			args := []string{"-test.run", "^TestConformance$", "-test.count=1", "-fault", fc.fault, "-json", out}
			if fc.labels != "" {
				args = append(args, "-ginkgo.label-filter", fc.labels)
			}
			cmd := exec.Command(os.Args[0], args...)
			log, err := cmd.CombinedOutput()
			if err == nil {
				t.Errorf("fault %s: the suite passed; it must fail on one of %v", fc.fault, fc.statements)
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
