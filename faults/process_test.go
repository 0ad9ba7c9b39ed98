package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// brokerEnv makes the test binary a broker process listening on its
// value (a broker that process faults can kill).
const brokerEnv = "FAULTS_TEST_BROKER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(brokerEnv); addr != "" {
		srv := broker.New(broker.Options{Listen: []string{addr}})
		if err := srv.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		srv.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// freeAddr is a 127.0.0.1 port nobody listens on (a broker restarted on
// it must get the same one).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// childBroker starts the test binary as a broker via a command, as
// --broker-cmd does.
func childBroker(t *testing.T) *Broker {
	t.Helper()
	addr := freeAddr(t)
	log, err := os.Create(filepath.Join(t.TempDir(), "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	b := NewBroker(0, addr, fmt.Sprintf("%s=%s exec %s", brokerEnv, addr, os.Args[0]), log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// connack connects to addr and waits at most d for a CONNACK.
func connackWithin(addr string, d time.Duration) error {
	nc, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(d)) //nolint:errcheck
	if _, err := nc.Write(connectPacket("probe")); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := nc.Read(got); err != nil {
		return err
	}
	if got[0] != 0x20 {
		return fmt.Errorf("got % x; want a CONNACK", got)
	}
	return nil
}

// runSchedule runs specs against b for d and returns what happened.
func runSchedule(t *testing.T, b *Broker, d time.Duration, specs ...string) []reports.LoadFault {
	t.Helper()
	var sps []Spec
	for _, s := range specs {
		sp, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		sps = append(sps, sp)
	}
	s := NewScheduler(sps, nil, b)
	t0 := time.Now()
	s.Start(t0)
	time.Sleep(d)
	return s.Stop(t0)
}

// kill@1s: SIGKILL, the command run again, the broker back on its port;
// the record says when.
func TestKillRestarts(t *testing.T) {
	b := childBroker(t)
	pid := b.PID()
	got := runSchedule(t, b, 3*time.Second, "kill@1s")
	if len(got) != 1 {
		t.Fatalf("faults %+v", got)
	}
	f := got[0]
	if f.Error != "" || f.Kind != "kill" || f.Name != "kill@1s" || f.Start < 1 || f.Start > 1.5 || f.Recovered <= f.Start || f.End < f.Start {
		t.Fatalf("fault %+v", f)
	}
	if b.PID() == pid || b.PID() == 0 {
		t.Fatalf("pid %d before, %d after", pid, b.PID())
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("the killed broker (pid %d) is still there", pid)
	}
	if err := connackWithin(b.Addr, 5*time.Second); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

// restart: SIGTERM (the broker shuts down cleanly), then the command.
func TestRestart(t *testing.T) {
	b := childBroker(t)
	pid := b.PID()
	got := runSchedule(t, b, 2*time.Second, "restart@200ms")
	if len(got) != 1 || got[0].Error != "" || got[0].Recovered <= got[0].Start {
		t.Fatalf("faults %+v", got)
	}
	if b.PID() == pid {
		t.Fatal("same pid after the restart")
	}
	if err := connackWithin(b.Addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// pause: the broker answers nothing while stopped, then answers again.
func TestPause(t *testing.T) {
	b := childBroker(t)
	pid := b.PID()
	sp, _ := Parse("pause=1500ms@0s")
	s := NewScheduler([]Spec{sp}, nil, b)
	t0 := time.Now()
	s.Start(t0)
	time.Sleep(200 * time.Millisecond)
	if err := connackWithin(b.Addr, 500*time.Millisecond); err == nil {
		t.Fatal("a CONNACK from a stopped broker")
	}
	time.Sleep(1500 * time.Millisecond)
	if err := connackWithin(b.Addr, 5*time.Second); err != nil {
		t.Fatalf("after SIGCONT: %v", err)
	}
	got := s.Stop(t0)
	if len(got) != 1 || got[0].Error != "" || got[0].End < 1.5 || got[0].Recovered < got[0].End || b.PID() != pid {
		t.Fatalf("faults %+v, pid %d then %d", got, pid, b.PID())
	}
}

// A run that ends while the broker is down still brings it back, and
// faults due after the end never happen.
func TestStopHeals(t *testing.T) {
	b := childBroker(t)
	start := time.Now()
	got := runSchedule(t, b, time.Second, "kill@100ms+30s", "restart@20s")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Stop took %s", took)
	}
	if len(got) != 1 || got[0].Kind != "kill" || got[0].Recovered == 0 || got[0].Error != "" {
		t.Fatalf("faults %+v", got)
	}
	if err := connackWithin(b.Addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// kill@every=: one occurrence per interval, each recovered.
func TestKillEvery(t *testing.T) {
	b := childBroker(t)
	got := runSchedule(t, b, 2300*time.Millisecond, "kill@every=700ms")
	if len(got) < 2 {
		t.Fatalf("faults %+v", got)
	}
	for i, f := range got {
		if f.Error != "" || f.Recovered <= f.Start || i > 0 && f.Start <= got[i-1].Recovered {
			t.Fatalf("fault %d: %+v", i, got)
		}
	}
}

// Process faults without a way to act are recorded as errors, not
// crashes.
func TestProcessFaultErrors(t *testing.T) {
	got := runSchedule(t, nil, 300*time.Millisecond, "kill@0s", "latency=10ms@0s")
	if len(got) != 2 || !strings.Contains(got[0].Error+got[1].Error, "needs the broker process") ||
		!strings.Contains(got[0].Error+got[1].Error, "needs the fault proxy") {
		t.Fatalf("faults %+v", got)
	}
	b := NewBroker(0, freeAddr(t), "", nil)
	got = runSchedule(t, b, 300*time.Millisecond, "pause=1s@0s")
	if len(got) != 1 || !strings.Contains(got[0].Error, "no broker process") {
		t.Fatalf("faults %+v", got)
	}
}
