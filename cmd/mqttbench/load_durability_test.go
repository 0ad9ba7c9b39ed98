package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// Durability under repeated kill -9: the reference broker, started and
// restarted by --broker-cmd, is killed every 2 s of an 8 s run with
// persistent sessions. The history checker's verdict is the test's.

const (
	killEvery    = 2 * time.Second
	killDuration = 8 * time.Second
)

// killRun runs load at qos against a reference broker started with
// brokerArgs and killed every killEvery, and returns its exit code and
// summary.
func killRun(t *testing.T, qos int, duration, drain time.Duration, brokerArgs ...string) (int, *reports.Load) {
	t.Helper()
	addr := freePort(t)
	out := t.TempDir()
	cmd := fmt.Sprintf("%s=1 exec %s broker --listen %s %s", runMainEnv, os.Args[0], addr, strings.Join(brokerArgs, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, stdout, stderr := loadCLI(ctx, "--broker", "tcp://"+addr, "--broker-cmd", cmd,
		"--fault", "kill@every="+killEvery.String(), "--qos", fmt.Sprint(qos), "--clean-session=false",
		"--publishers", "2", "--subscribers", "2", "--rate", "200", "--duration", duration.String(),
		"--drain", drain.String(), "--keepalive", "5s", "--connect-timeout", "5s", "--quiet", "--out", out)
	if code != exitOK && code != exitFailures {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sum := readSummary(t, out)
	if sum.History == nil {
		t.Fatalf("no history in summary.json (exit %d)\n%s", code, stderr)
	}
	return code, sum
}

// [issue 16] With --data-dir and --fsync always, repeated kill -9 during
// QoS 1 and QoS 2 traffic loses no acknowledged message, delivers no QoS
// 2 message twice, and every reconnection finds its session.
func TestLoadKillEveryDurable(t *testing.T) {
	for _, qos := range []int{1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			t.Parallel()
			code, sum := killRun(t, qos, killDuration, 10*time.Second, "--data-dir", t.TempDir(), "--fsync", "always")
			h := sum.History
			if code != exitOK || len(sum.Violations) > 0 || len(h.Violations) > 0 {
				t.Errorf("exit %d; violations %q; history %q", code, sum.Violations, h.Violations)
			}
			if len(h.Classes) != 1 || h.Classes[0].QoS != qos {
				t.Fatalf("classes %+v; want one row at QoS %d", h.Classes, qos)
			}
			c := h.Classes[0]
			t.Logf("QoS %d: %+v", qos, c)
			// Unknown (connection lost before the acknowledgement, never
			// delivered) is allowed; anything acknowledged must arrive.
			if c.Due == 0 || c.AckedLost != 0 || c.SessionLost != 0 || c.Delivered+c.Unknown != c.Due {
				t.Errorf("QoS %d classes %+v", qos, c)
			}
			if qos == 2 && c.Duplicated != 0 {
				t.Errorf("QoS 2: %d delivered twice", c.Duplicated)
			}
			var during, resumed int // kills while publishing; kills after which sessions came back
			for _, f := range h.Faults {
				rec := "never"
				if f.RecoverySec != nil {
					rec = fmt.Sprintf("%.1fs", *f.RecoverySec)
				}
				t.Logf("fault at %.2fs, broker back at %.2fs: sessions %+v, rate back after %s, p99 %dµs -> %dµs, classes %+v",
					f.Start, f.Recovered, f.Sessions, rec, f.P99Before, f.P99After, f.Classes)
				if f.Kind != "kill" || f.Recovered <= f.Start || f.Sessions.Fresh != 0 || len(f.Violations) > 0 {
					t.Errorf("fault %+v", f)
				}
				for _, fc := range f.Classes {
					if fc.AckedLost != 0 || fc.SessionLost != 0 {
						t.Errorf("fault at %.1fs lost acknowledged messages: %+v", f.Start, fc)
					}
				}
				if f.Start < killDuration.Seconds()-1 {
					during++
				}
				// A reconnection slowed past the next kill counts under it:
				// count kills with resumed sessions, not each kill.
				if f.Sessions.Resumed > 0 && f.Sessions.SubscribersResumed > 0 {
					resumed++
				}
			}
			for _, f := range sum.Faults {
				if f.Error != "" {
					t.Errorf("fault %+v", f)
				}
			}
			if during < 3 || resumed < 3 {
				t.Errorf("%d kills while publishing, %d followed by resumed sessions; want at least 3 of each", during, resumed)
			}
		})
	}
	// The same without --data-dir: the broker comes back empty, and the
	// checker must say so (the test above is not vacuous). --fsync never
	// would not do: kill -9 leaves the page cache, so nothing is lost.
	t.Run("no-data-dir", func(t *testing.T) {
		t.Parallel()
		code, sum := killRun(t, 1, 5*time.Second, 3*time.Second)
		h := sum.History
		if code != exitFailures {
			t.Errorf("exit %d; want %d (violations)", code, exitFailures)
		}
		var fresh uint64
		for _, f := range h.Faults {
			fresh += f.Sessions.Fresh
			if f.Sessions.Fresh > 0 && !hasSubstring(f.Violations, "found no session (Session Present 0)") {
				t.Errorf("fault at %.1fs: %d fresh sessions and violations %q", f.Start, f.Sessions.Fresh, f.Violations)
			}
		}
		if fresh == 0 || !hasSubstring(sum.Violations, "though the scenario keeps sessions") {
			t.Errorf("sessions lost on %d reconnections; violations %q", fresh, sum.Violations)
		}
		t.Logf("without --data-dir: classes %+v; violations %q", h.Classes, sum.Violations)
	})
}

func hasSubstring(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// [issue 16] A partition of half the subscribers (blackhole on
// group=subscribers/2, then healed) with persistent sessions: exactly
// the first half reconnect, find their sessions, and no QoS 1 message is
// lost; the other half and the publishers never notice.
func TestLoadPartitionHalfSubscribers(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, stdout, stderr := loadCLI(ctx, "--broker", "tcp://"+srv.Addrs()[0].String(),
		"--fault", "blackhole@2s+3s:group=subscribers/2", "--qos", "1", "--clean-session=false",
		"--publishers", "2", "--subscribers", "4", "--rate", "200", "--duration", "6s", "--drain", "5s",
		"--keepalive", "1s", "--connect-timeout", "1s", "--quiet", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sum := readSummary(t, out)
	h := sum.History
	if len(sum.Faults) != 1 || sum.Faults[0].Target != "subscribers/2" || sum.Faults[0].Error != "" || h == nil || len(h.Faults) != 1 {
		t.Fatalf("faults %+v; history %+v", sum.Faults, h)
	}
	f := h.Faults[0]
	t.Logf("partition: sessions %+v, classes %+v, p99 %dµs -> %dµs", f.Sessions, h.Classes, f.P99Before, f.P99After)
	if s := f.Sessions; s.Dropped != 2 || s.Resumed != 2 || s.Fresh != 0 || s.SubscribersResumed != 2 {
		t.Errorf("sessions %+v; want the 2 subscribers of the first half dropped and resumed", s)
	}
	// Reconnects count attempts: the partitioned half retries until healed.
	if sum.Connections.Reconnects < 2 || sum.Connections.Ready != 6 {
		t.Errorf("connections %+v", sum.Connections)
	}
	if len(h.Classes) != 1 || h.Classes[0].Due == 0 || h.Classes[0].Delivered != h.Classes[0].Due || len(h.Violations) > 0 {
		t.Errorf("classes %+v; violations %q", h.Classes, h.Violations)
	}
}
