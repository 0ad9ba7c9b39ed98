package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/loadgen"
)

// v5Args are every MQTT 5.0 flag of load.
var v5Args = []string{"--protocol", "5", "--session-expiry", "30s", "--message-expiry", "60s", "--user-properties", "2",
	"--user-property-size", "16", "--content-type", "text/plain", "--payload-format", "--topic-alias", "--subscription-id"}

// --protocol 5 with every property flag, over TCP and spread over worker
// processes: the merged summary carries the 5.0 scenario, what CONNACK
// said and the reason codes; the table shows them.
func TestLoadV5Workers(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, ReceiveMaximum: 40, TopicAliasMaximum: 5})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "tcp://" + srv.Addrs()[0].String()
	dir := t.TempDir()
	args := append([]string{"--broker", url, "--publishers", "4", "--subscribers", "3", "--connections", "8", "--qos", "2",
		"--rate-per-publisher", "100", "--duration", "500ms", "--max-lag", "0", "--drain", "10s", "--ramp", "0",
		"--workers", "2", "--quiet", "--out", dir}, v5Args...)
	code, stdout, stderr := loadCLI(context.Background(), args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "MQTT 5.0, QoS 2") {
		t.Errorf("the first line does not name the protocol:\n%s", stderr)
	}
	for _, want := range []string{"CONNACK: receive maximum", "40 (window 40), none; topic alias max 5", "topic aliases: messages, bytes saved", "Reason codes", "PUBREC", "0x10", "No matching subscribers"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	sc := s.Scenario
	if sc.Protocol != "5.0" || sc.UserProperties != 2 || sc.UserPropertySize != 16 || sc.ContentType != "text/plain" ||
		!sc.PayloadFormat || !sc.TopicAlias || !sc.SubscriptionID || sc.MessageExpiry.Seconds() != 60 || sc.SessionExpiry.Seconds() != 30 {
		t.Errorf("scenario %+v", sc)
	}
	// Publisher 3 has no subscriber (3 subscribers hear publishers 0-2).
	m := s.Messages
	if s.Connack == nil || s.Connack.InflightWindow != 40 || m.TopicAliasBytesSaved <= 0 || m.Received != m.Expected || len(s.Violations) != 0 {
		t.Errorf("connack %+v, messages %+v, violations %v", s.Connack, m, s.Violations)
	}
	var noSub uint64
	for _, r := range s.ReasonCodes {
		if r.Packet == "PUBREC" && r.Code == 0x10 {
			noSub = r.Count
		}
	}
	if noSub != 50 {
		t.Errorf("PUBREC 0x10 × %d, want 50 (publisher 3's messages): %+v", noSub, s.ReasonCodes)
	}
}

func TestLoadV5UsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown protocol", []string{"--protocol", "6"}, `--protocol "6": want 3.1.1 or 5`},
		{"5.0 flag at 3.1.1", []string{"--topic-alias"}, "topic_alias (--topic-alias): an MQTT 5.0 property; set protocol 5 (--protocol 5)"},
		{"short UTF-8 payload", []string{"--protocol", "5", "--payload-format", "--payload", "40"}, "less than the 52-byte text header"},
		{"expiry below a second", []string{"--protocol", "5", "--message-expiry", "10ms"}, "message_expiry: 10ms is less than a second"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := loadCLI(context.Background(), append(tc.args, "--quiet", "--out", t.TempDir())...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, stderr, tc.want)
			}
		})
	}
}

// --tolerate: a broker answering QoS 1 with PUBACK 0x01 fails a strict run
// (exit 1, protocol errors); tolerated, the run is clean (exit 0) and
// says what it tolerated. A statement that cannot be tolerated is a
// usage error.
func TestLoadTolerate(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Faults: broker.Faults{AckGrantedQoS: true}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	args := []string{"--broker", "tcp://" + srv.Addrs()[0].String(), "--protocol", "5", "--qos", "1", "--publishers", "2", "--subscribers", "2",
		"--rate", "200", "--duration", "1s", "--max-lag", "0", "--quiet"}
	code, stdout, stderr := loadCLI(context.Background(), append(args, "--out", t.TempDir())...)
	if code != exitFailures || !strings.Contains(stdout, "MQTT-3.4.2-1") {
		t.Fatalf("strict: exit %d\n%s\n%s", code, stdout, stderr)
	}
	dir := t.TempDir()
	code, stdout, stderr = loadCLI(context.Background(), append(args, "--out", dir, "--tolerate", "MQTT-3.4.2-1")...)
	if code != exitOK || !strings.Contains(stdout, "TOLERATED: [MQTT-3.4.2-1] broken 200 times, the run went on (--tolerate); first: ") {
		t.Fatalf("tolerant: exit %d\n%s\n%s", code, stdout, stderr)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if code, out, errb := runCLI(context.Background(), "report", dir, "-o", page); code != exitOK {
		t.Fatalf("report: exit %d\n%s\n%s", code, out, errb)
	}
	html, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(html), "Tolerated breaches") {
		t.Errorf("report.html: %v, tolerated breaches shown: %v", err, strings.Contains(string(html), "Tolerated breaches"))
	}
	code, _, stderr = loadCLI(context.Background(), "--tolerate", "MQTT-3.3.1-4", "--out", t.TempDir())
	if first, _, _ := strings.Cut(stderr, "\n"); code != exitUsage || !strings.Contains(first, `"MQTT-3.3.1-4" cannot be tolerated`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
