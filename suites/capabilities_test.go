package suites_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/onsi/ginkgo/v2"

	"github.com/mqttbench/mqttbench/reports"
)

// brokerProfiles are in-process brokers that lack features and say so in
// CONNACK, or offer the optional profiles. Against each the 5.0 suite
// must pass, and the specs named in mustPass must have run and passed
// (not been skipped): they check that the broker refuses what it said it
// lacks, or the optional profile.
var brokerProfiles = []struct {
	name     string
	args     []string
	mustPass []string
	mustWarn []string
}{
	{"lacking", []string{"-broker-lacks", "wildcard,shared,subids,retain,qos2,aliases,packet-size,keepalive"},
		[]string{"with DISCONNECT 0x9B", "with DISCONNECT 0x9A", "(0x9E)", "(0xA2)", "(0xA1)", "with DISCONNECT 0x95",
			"above the Topic Alias Maximum of its CONNACK", "[MQTT-3.2.2-12]", "[MQTT-3.2.2-13]",
			"[MQTT-3.1.2-22] closes a connection silent"}, nil},
	{"receive maximum, aliases, payload check", []string{"-broker-lacks", "receive-maximum,outbound-aliases,payload-check"},
		[]string{"with DISCONNECT 0x93", "[MQTT-3.1.2-26 MQTT-3.3.2-11 MQTT-3.3.2-8]", "[MQTT-4.3.3-9]"}, nil},
	{"qos0", []string{"-broker-lacks", "qos1"}, []string{"[MQTT-3.2.2-12]"}, nil},
	{"auth redirect", []string{"-broker-auth", "SCRAM-SHA-256", "-broker-redirect", "-ginkgo.label-filter", "auth || redirect"},
		[]string{"[MQTT-4.12.0-2 MQTT-4.12.0-5 MQTT-3.15.2-1]", "[MQTT-4.12.0-4]", "[MQTT-4.12.0-5 MQTT-3.15.2-1]",
			"[MQTT-4.12.1-2]", "[MQTT-3.15.2-2 MQTT-3.15.2-3]", "[MQTT-3.2.2-7] redirects"}, nil},
	{"scram-sha-512", []string{"-broker-auth", "SCRAM-SHA-512", "-ginkgo.label-filter", "auth"},
		[]string{"[MQTT-4.12.0-2 MQTT-4.12.0-5 MQTT-3.15.2-1]", "[MQTT-4.12.1-2]"}, nil},
	// One QoS 1 or 2 message in flight at a time, as ejabberd sends
	// (§4.9): the specs that leave deliveries unacknowledged take what
	// comes, and both versions pass.
	{"send quota 1", []string{"-broker-lacks", "send-quota-1", "-protocol", "all", "-ginkgo.label-filter", "qos1 || qos2 || session || ordering"},
		[]string{"[MQTT-3.3.1-1]", "[MQTT-4.4.0-1] sends unacknowledged", "[MQTT-4.4.0-1 MQTT-4.3.2-3 MQTT-4.3.3-3]", "[MQTT-3.10.4-3]",
			"[MQTT-4.3.2-1] sends", "[MQTT-4.3.2-1 MQTT-4.3.2-2]", "[MQTT-4.3.3-1] sends", "[MQTT-4.3.3-1 MQTT-4.3.3-2 MQTT-4.3.3-4]"}, nil},
	// A broker that closes without saying why breaks only SHOULDs:
	// warnings, never failures.
	{"bare closes", []string{"-fault", "bare-closes", "-broker-auth", "SCRAM-SHA-256", "-ginkgo.label-filter", "disconnect || malformed || auth"},
		nil, []string{"[MQTT-4.13.1-1] closes the connection on a second CONNECT", "[MQTT-4.12.1-2]"}},
}

// TestBrokerProfiles runs the 5.0 suite against brokers of each profile
// in child processes: every behaviour the specification allows a broker
// without a feature passes, and the specs of what it lacks run.
func TestBrokerProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the 5.0 suite once per broker profile")
	}
	if *fault != "" || *brokerAddr != "" || *lacks != "" || *brokerAuth != "" || *redirect {
		t.Skip("inside a child run")
	}
	if suiteConfig, _ := ginkgo.GinkgoConfiguration(); suiteConfig.ParallelTotal > 1 {
		t.Skip("under a parallel ginkgo run: every process would repeat it")
	}
	dir := t.TempDir()
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, bp := range brokerProfiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := filepath.Join(dir, strings.ReplaceAll(bp.name, " ", "-")+".json")
			args := append([]string{"-test.run", "^TestConformance$", "-test.count=1", "-protocol", "5", "-json", out}, bp.args...)
			log, err := exec.Command(os.Args[0], args...).CombinedOutput()
			res, rerr := reports.ReadConformance(out)
			if rerr != nil {
				t.Errorf("profile %d (%s): no result (%v); output:\n%s", i, bp.name, rerr, tail(log))
				return
			}
			for _, s := range res.Specs {
				if s.State == reports.Failed || len(s.Broke) > 0 {
					t.Errorf("profile %s: %s: %s", bp.name, s.Name, s.Message)
				}
			}
			if err != nil && !t.Failed() {
				t.Errorf("profile %s: the run failed: %v\n%s", bp.name, err, tail(log))
			}
			for _, want := range bp.mustWarn {
				warned := false
				for _, s := range res.Specs {
					warned = warned || (strings.Contains(s.Name, want) && s.State == reports.Warning)
				}
				if !warned {
					t.Errorf("profile %s: no spec %q ended with a warning", bp.name, want)
				}
			}
			for _, want := range bp.mustPass {
				ran := false
				for _, s := range res.Specs {
					if strings.Contains(s.Name, want) && (s.State == reports.Passed || s.State == reports.Warning) {
						ran = true
					}
				}
				if !ran {
					t.Errorf("profile %s: no spec %q passed (skipped where it should have run?)", bp.name, want)
				}
			}
		}()
	}
	wg.Wait()
}
