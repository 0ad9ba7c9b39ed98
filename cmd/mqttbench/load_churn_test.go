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

// Every churn flag at once against the reference broker: the churn table
// prints, the results hold it, nothing is lost.
func TestLoadChurnFlags(t *testing.T) {
	out := t.TempDir()
	tmpl := filepath.Join(t.TempDir(), "t.tmpl")
	os.WriteFile(tmpl, []byte(`{"mb":"{{header}}","n":{{index}},"r":{{rand 10}}}`), 0o644)
	code, stdout, stderr := loadCLI(context.Background(), "--duration", "2s", "--rate", "300", "--max-lag", "0", "--drain", "5s", "--quiet", "--out", out,
		"--publishers", "2", "--subscribers", "3", "--qos", "1", "--clean-session=false",
		"--flap-rate", "4", "--flap-group", "publishers",
		"--offline-subscribers", "1", "--offline-at", "300ms", "--offline-for", "700ms", "--broker-queue-limit", "1000",
		"--will-storm", "20", "--will-storm-at", "1s",
		"--retained", "100", "--retained-subscribers", "2",
		"--payload-template", tmpl)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Churn", "flap: drops", "offline: backlog delivered", "will storm: wills received / expected │ 20 / 20",
		"2 of 2 subscribers got all, 0 missing", "payload template", "reconnect", "retained_fetch"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	res, err := loadgen.ReadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Summary.Churn
	if c == nil || c.Flap == nil || c.Flap.Group != "publishers" || c.Backlog == nil || c.Backlog.QueueLimit != 1000 ||
		c.WillStorm == nil || c.Retained == nil || c.Template == nil {
		t.Fatalf("summary churn %+v", c)
	}
	if res.Histograms["will"].TotalCount() != 20 || res.Histograms["retained_fetch"].TotalCount() != 2 {
		t.Errorf("histograms: will %d, retained_fetch %d", res.Histograms["will"].TotalCount(), res.Histograms["retained_fetch"].TotalCount())
	}
}

// A broker that drops wills: exit 1 and the statement named.
func TestLoadChurnWillViolation(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Faults: broker.Faults{DropWill: true}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, stdout, stderr := loadCLI(context.Background(), short(t.TempDir(), "--broker", "tcp://"+srv.Addrs()[0].String(), "--will-storm", "5")...)
	if code != exitFailures || !strings.Contains(stdout, "VIOLATION: [MQTT-3.1.2-8] 5 of 5 wills") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestLoadChurnUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad group", []string{"--flap-rate", "1", "--flap-group", "pubs"}, `churn.flap.group: "pubs" is not one of`},
		{"offline clean session", []string{"--offline-subscribers", "1", "--offline-for", "1s"}, "need clean_session false"},
		{"offline without for", []string{"--clean-session=false", "--offline-subscribers", "1"}, "churn.offline.for"},
		{"negative queue limit", []string{"--broker-queue-limit", "-1"}, "--broker-queue-limit is -1"},
		{"missing template", []string{"--payload-template", filepath.Join(dir, "none.tmpl")}, "payload template: open"},
		{"workers", []string{"--broker", "tcp://127.0.0.1:1", "--workers", "2", "--flap-rate", "1"}, "does not combine with --workers 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := loadCLI(context.Background(), append(tc.args, "--out", dir)...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.HasPrefix(first, "mqttbench load: ") || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q on the first line", code, stderr, stdout, tc.want)
			}
		})
	}
}

// --profile: the broker's queue limit comes from the profile conform
// reads. The reference broker keeps 50 messages per offline session: with
// a profile saying so its drops are its promise kept (exit 0), with a
// profile that does not know the limit they are violations (exit 1), and
// --broker-queue-limit wins over the profile.
func TestLoadProfileQueueLimit(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, MaxQueued: 50})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, profile string
		extra         []string
		code          int
		limit         int
	}{
		{"profile names the limit", "name: ref\nqueue_limit: 50\n", nil, exitOK, 50},
		{"profile without it", "name: ref\n", nil, exitFailures, 0},
		{"flag over profile", "name: ref\nqueue_limit: 5000\n", []string{"--broker-queue-limit", "50"}, exitOK, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prof := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			os.WriteFile(prof, []byte(tc.profile), 0o644)
			out := t.TempDir()
			args := append([]string{"--broker", "tcp://" + srv.Addrs()[0].String(), "--profile", prof, "--protocol", "5",
				"--duration", "2s", "--rate", "200", "--max-lag", "0", "--drain", "3s", "--quiet", "--out", out,
				"--publishers", "1", "--subscribers", "1", "--qos", "1", "--clean-session=false",
				"--offline-subscribers", "1", "--offline-at", "300ms", "--offline-for", "1s"}, tc.extra...)
			code, stdout, stderr := loadCLI(context.Background(), args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, stdout, stderr)
			}
			res, err := loadgen.ReadResults(out)
			if err != nil {
				t.Fatal(err)
			}
			b := res.Summary.Churn.Backlog
			if b == nil || b.QueueLimit != tc.limit || b.LostByQoS[1] == 0 {
				t.Fatalf("backlog %+v: want losses beyond 50 and limit %d", b, tc.limit)
			}
			if tc.code == exitOK && b.LostQueueLimit != b.LostByQoS[1] {
				t.Errorf("backlog %+v: every loss is within the limit's excuse", b)
			}
		})
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nqueue_limit: 0\n"), 0o644)
	code, _, stderr := loadCLI(context.Background(), "--profile", bad, "--out", dir)
	if first, _, _ := strings.Cut(stderr, "\n"); code != exitUsage || !strings.Contains(first, "queue_limit is 0") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
