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

// Two shared groups over TCP, spread over two worker processes so that
// each group has members in both: the merged summary judges every group
// as one consumer and shows the spread in the table, summary.json and the
// HTML report.
func TestLoadSharedGroupsWorkers(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), "--broker", "tcp://"+srv.Addrs()[0].String(), "--protocol", "5",
		"--publishers", "3", "--subscribers", "6", "--shared-group", "alpha", "--shared-group", "beta", "--topic", "bench/{p}",
		"--filter", "bench/+", "--qos", "2", "--rate-per-publisher", "100", "--duration", "500ms", "--max-lag", "0",
		"--drain", "10s", "--ramp", "0", "--workers", "2", "--quiet", "--out", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Shared group", "alpha", "beta", "Per member min / mean / max"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Shared == nil || len(s.Shared.Groups) != 2 || len(s.Scenario.SharedGroups) != 2 {
		t.Fatalf("shared %+v, scenario %+v", s.Shared, s.Scenario)
	}
	sent := s.Messages.Sent
	for _, g := range s.Shared.Groups {
		if g.Members != 3 || g.Received != sent || g.Lost != 0 || g.Duplicates != 0 || g.Unjudged != 0 || g.QoS != 2 {
			t.Errorf("group %+v: want 3 members receiving %d messages once", g, sent)
		}
	}
	if s.Messages.Expected != 2*sent || s.Messages.Received != s.Messages.Expected {
		t.Errorf("messages %+v: want 2 groups × %d expected and received", s.Messages, sent)
	}
	html := filepath.Join(t.TempDir(), "r.html")
	if code, out, errs := runCLI(context.Background(), "report", dir, "-o", html); code != exitOK {
		t.Fatalf("report: exit %d %s %s", code, out, errs)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Shared subscriptions") || !strings.Contains(string(b), "$share/alpha/bench/") { // its + is escaped in the attribute
		t.Errorf("the HTML report has no shared-subscription table")
	}
}

// A broker that gives every member every message fails the run.
func TestLoadSharedBroadcastFault(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}, Faults: broker.Faults{BroadcastShared: true}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, stdout, stderr := loadCLI(context.Background(), short(t.TempDir(), "--broker", "tcp://"+srv.Addrs()[0].String(),
		"--protocol", "5", "--publishers", "2", "--subscribers", "4", "--shared-group", "g", "--filter", "mqttbench/+", "--qos", "2")...)
	if code != exitFailures || !strings.Contains(stdout, "VIOLATION: shared group g: ") || !strings.Contains(stdout, "delivered twice across the group") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// Request/response on the in-process broker: every request answered, the
// round trip its own metric and .hlog.
func TestLoadRequestResponse(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), short(dir, "--protocol", "5", "--publishers", "2", "--subscribers", "0",
		"--responders", "2", "--qos", "1")...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"request_response", "Request/response", "answered / unanswered"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	res, err := loadgen.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Summary.RequestResponse
	if r == nil || r.Requests == 0 || r.Answered != r.Requests || res.Summary.Scenario.Responders != 2 ||
		res.Histograms["request_response"].TotalCount() != int64(r.Answered) {
		t.Errorf("request/response %+v, histogram %d", r, res.Histograms["request_response"].TotalCount())
	}
}

func TestLoadSharedUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad share name", []string{"--protocol", "5", "--subscribers", "2", "--shared-group", "a/b"}, "MQTT-4.8.2-2"},
		{"empty share name", []string{"--protocol", "5", "--subscribers", "2", "--shared-group", "a,"}, "MQTT-4.8.2-1"},
		{"more groups than subscribers", []string{"--protocol", "5", "--shared-group", "a,b"}, "2 groups need at least as many subscribers"},
		{"3.1.1 on the in-process broker", []string{"--shared-group", "a"}, "the in-process reference broker shares subscriptions at 5.0 only"},
		{"responders at 3.1.1", []string{"--responders", "2"}, "request/response needs MQTT 5.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := loadCLI(context.Background(), short(t.TempDir(), tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
				t.Errorf("exit %d, stderr %q, want %q\n%s", code, stderr, tc.want, stdout)
			}
		})
	}
}
