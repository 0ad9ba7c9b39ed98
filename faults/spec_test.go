package faults

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"kill@10s", Spec{Kind: Kill, At: 10 * time.Second}},
		{"restart@10s", Spec{Kind: Restart, At: 10 * time.Second}},
		{"kill@10s+3s", Spec{Kind: Kill, At: 10 * time.Second, For: 3 * time.Second}},
		{"pause=3s@10s", Spec{Kind: Pause, At: 10 * time.Second, For: 3 * time.Second}},
		{"pause@10s+3s", Spec{Kind: Pause, At: 10 * time.Second, For: 3 * time.Second}},
		{"kill@every=20s", Spec{Kind: Kill, Every: 20 * time.Second}},
		{"kill@5s,every=20s", Spec{Kind: Kill, At: 5 * time.Second, Every: 20 * time.Second}},
		{"latency=200ms,jitter=50ms@5s+10s", Spec{Kind: Latency, Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond, At: 5 * time.Second, For: 10 * time.Second}},
		{"bandwidth=64KB@5s+10s", Spec{Kind: Bandwidth, Bandwidth: 64000, At: 5 * time.Second, For: 10 * time.Second}},
		{"bandwidth=1MiB/s@0s", Spec{Kind: Bandwidth, Bandwidth: 1 << 20}},
		{"slicer=8@5s+10s", Spec{Kind: Slicer, Slicer: 8, At: 5 * time.Second, For: 10 * time.Second}},
		{"slicer=8,delay=1ms@5s", Spec{Kind: Slicer, Slicer: 8, Delay: time.Millisecond, At: 5 * time.Second}},
		{"reset@12s", Spec{Kind: Reset, At: 12 * time.Second}},
		{"blackhole@5s+5s:group=subscribers", Spec{Kind: Blackhole, At: 5 * time.Second, For: 5 * time.Second, Group: "subscribers"}},
		{"latency=100ms@1s:group=all", Spec{Kind: Latency, Latency: 100 * time.Millisecond, At: time.Second}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Name = tc.in
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			// What String writes reads back the same.
			again, err := Parse(got.String())
			if err != nil {
				t.Fatalf("%s: %v", got.String(), err)
			}
			again.Name = got.Name
			if again != got {
				t.Fatalf("%s reads back as %+v", got.String(), again)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"kill", "want one @"},
		{"kill@10s@20s", "want one @"},
		{"explode@10s", `unknown kind "explode"; want one of kill, restart, pause, latency, bandwidth, slicer, reset, blackhole`},
		{"kill@soon", `"soon": want a time`},
		{"kill@-1s", `"-1s": want a time`},
		{"kill@every=0s", "want an interval above 0"},
		{"kill@10s+0s", "want a duration above 0"},
		{"latency@5s", "latency needs a value"},
		{"latency=fast@5s", "latency=fast: want a duration"},
		{"latency=10ms,jitter=20ms@5s", "jitter: 20ms is more than the latency 10ms"},
		{"latency=1500us@5s", "whole milliseconds"},
		{"latency=10ms,color=red@5s", "color=red: unknown key; latency takes latency=DURATION and jitter=DURATION"},
		{"latency=10ms,10@5s", `"10": want KEY=VALUE`},
		{"bandwidth=lots@5s", `bandwidth "lots": want a rate`},
		{"bandwidth=500B@5s", "less than toxiproxy's 1KB/s step"},
		{"slicer=0@5s", "slicer=0: want the largest write in bytes"},
		{"pause@10s", "pause: needs how long"},
		{"pause=2s@10s+3s", "the pause is given twice"},
		{"kill=3@10s", "kill takes no value"},
		{"kill@10s:group=subscribers", "kill acts on the broker process"},
		{"reset@10s:group=lefties", `group: "lefties" is not one of all, publishers, subscribers, idle`},
		{"reset@10s:team=a", `"team=a": want :group=NAME`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `fault "`+tc.in+`"`) {
				t.Fatalf("error %q; want it to name the fault and say %q", err, tc.want)
			}
		})
	}
}

// A scenario's faults: list uses the same fields as keys.
func TestSpecYAML(t *testing.T) {
	const doc = `
- {kind: latency, at: 5s, for: 10s, latency: 200ms, jitter: 50ms, group: subscribers}
- {kind: bandwidth, at: 1s, bandwidth: 64KB}
- {kind: kill, every: 20s, for: 2s}
`
	var specs []Spec
	if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
		t.Fatal(err)
	}
	want := []string{"latency=200ms,jitter=50ms@5s+10s:group=subscribers", "bandwidth=64KB@1s", "kill@every=20s+2s"}
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			t.Fatal(err)
		}
		if specs[i].Name != want[i] {
			t.Errorf("spec %d is %q; want %q", i, specs[i].Name, want[i])
		}
	}
	bad := Spec{Kind: Kill, Latency: time.Second}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "latency: kill takes no value") {
		t.Errorf("kill with a latency: %v", err)
	}
}
