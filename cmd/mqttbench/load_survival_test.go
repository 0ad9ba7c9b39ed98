package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// [issue 16] The survival probes around one process fault of the
// reference broker (re-exec'd by --broker-cmd): with --data-dir and
// --fsync always a kill -9 keeps the acknowledged retained messages and
// the pending will; without --data-dir it loses both, and the run says
// so; a pause loses nothing even in memory.
func TestLoadSurvivalProbes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   string
		durable bool
		kept    int    // retained messages back, of probeRetained
		will    int    // pending wills delivered, of 1
		watcher string // how the watcher got the will, in Wills
		code    int
		viol    []string // in the run's violations
	}{
		{"kill-durable", "kill@2s", true, probeRetained, 1, "Session Present 1", exitOK, nil},
		{"kill-memory", "kill@2s", false, 0, 0, "Session Present 0", exitFailures,
			[]string{"20 of 20 retained messages acknowledged (QoS 1) before it were lost", "a pending will (Will Delay Interval 2s"}},
		{"pause-memory", "pause=1s@2s", false, probeRetained, 1, "on its first connection", exitOK, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := freePort(t)
			out := t.TempDir()
			args := ""
			if tc.durable {
				args = "--data-dir " + t.TempDir() + " --fsync always"
			}
			cmd := fmt.Sprintf("%s=1 exec %s broker --listen %s %s", runMainEnv, os.Args[0], addr, args)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code, stdout, stderr := loadCLI(ctx, "--broker", "tcp://"+addr, "--broker-cmd", cmd, "--fault", tc.fault,
				"--qos", "1", "--clean-session=false", "--publishers", "1", "--subscribers", "1", "--rate", "50",
				"--duration", "4s", "--drain", "2s", "--keepalive", "5s", "--connect-timeout", "5s", "--quiet", "--out", out)
			sum := readSummary(t, out)
			if len(sum.Faults) != 1 || sum.Faults[0].Survival == nil || sum.Faults[0].Error != "" {
				t.Fatalf("exit %d; faults %+v\n%s\n%s", code, sum.Faults, stdout, stderr)
			}
			sv := sum.Faults[0].Survival
			t.Logf("%s: retained %q; wills %q; violations %q", tc.name, sv.Retained, sv.Wills, sv.Violations)
			if sv.RetainedSent != probeRetained || sv.RetainedKept != tc.kept || sv.WillsPending != 1 || sv.WillsDelivered != tc.will {
				t.Errorf("survival %+v; want %d of %d retained kept, %d of 1 will delivered", sv, tc.kept, probeRetained, tc.will)
			}
			if !strings.Contains(sv.Wills, tc.watcher) {
				t.Errorf("wills %q; want it to say %q", sv.Wills, tc.watcher)
			}
			wantRetained := fmt.Sprintf("%d of %d kept", probeRetained, probeRetained)
			if tc.kept == 0 {
				wantRetained = fmt.Sprintf("%d of %d lost", probeRetained, probeRetained)
			}
			// The history checker carries the probes' words and verdicts.
			h := sum.History
			if h == nil || len(h.Faults) != 1 || h.Faults[0].Retained != wantRetained || h.Faults[0].Wills != sv.Wills {
				t.Fatalf("history faults %+v; want retained %q", h, wantRetained)
			}
			for _, v := range tc.viol {
				if !hasSubstring(sum.Violations, v) || !hasSubstring(h.Faults[0].Violations, v) {
					t.Errorf("violations %q (fault %q); want one with %q", sum.Violations, h.Faults[0].Violations, v)
				}
			}
			if len(tc.viol) == 0 && len(sv.Violations) > 0 {
				t.Errorf("survival violations %q; want none", sv.Violations)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d; violations %q", code, tc.code, sum.Violations)
			}
		})
	}
}
