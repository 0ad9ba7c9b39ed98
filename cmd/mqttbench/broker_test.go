package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// brokerOutput is an io.Writer the broker command writes to from its own
// goroutine while the test reads it.
type brokerOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *brokerOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *brokerOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// runningBroker is `mqttbench broker` running in the background.
type runningBroker struct {
	addr      string // the address it printed
	interrupt func() // stands for SIGINT: main cancels run's context
	exited    chan struct{}
	code      int // the exit code, once exited is closed
	stdout    *brokerOutput
	stderr    *brokerOutput
}

// brokerCommand runs `mqttbench broker --listen 127.0.0.1:0 args...` and
// waits for the "listening on" line; the test's cleanup interrupts it.
func brokerCommand(t *testing.T, args ...string) *runningBroker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &runningBroker{interrupt: cancel, exited: make(chan struct{}), stdout: &brokerOutput{}, stderr: &brokerOutput{}}
	go func() {
		defer close(b.exited)
		b.code = run(ctx, append([]string{"broker", "--listen", "127.0.0.1:0"}, args...), b.stdout, b.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			t.Error("mqttbench broker still running 10 s after the interrupt")
		}
	})
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)\n`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := listening.FindStringSubmatch(b.stdout.String()); m != nil {
			if strings.HasSuffix(m[1], ":0") {
				t.Fatalf("printed the unresolved address %s", m[1])
			}
			b.addr = m[1]
			return b
		}
		select {
		case <-b.exited:
			t.Fatalf("mqttbench broker exited %d before listening\nstdout: %s\nstderr: %s", b.code, b.stdout, b.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"listening on\" line in 5 s\nstdout: %s\nstderr: %s", b.stdout, b.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exchange writes the encoding of p to nc and returns the bytes of the one
// packet that comes back, read as they are (the answers here are short:
// a one-byte remaining length).
func exchange(t *testing.T, nc net.Conn, p packetgen.Packet) []byte {
	t.Helper()
	b, err := packetgen.Append(nil, p, packetgen.V311)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, err := nc.Write(b); err != nil {
		t.Fatalf("writing %s: %v", packetgen.Format(p), err)
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(nc, head); err != nil {
		t.Fatalf("answer to %s: %v", packetgen.Format(p), err)
	}
	if head[1] >= 0x80 {
		t.Fatalf("answer to %s: header % X, want a short packet", packetgen.Format(p), head)
	}
	body := make([]byte, head[1])
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatalf("answer to %s: header % X: %v", packetgen.Format(p), head, err)
	}
	return append(head, body...)
}

// `mqttbench broker` on port 0 prints the address it took, serves MQTT on
// it, and on SIGINT (the cancelled context main passes) closes its
// connections and listeners and exits 130, as the README documents for an
// interrupt.
func TestBrokerCommand(t *testing.T) {
	b := brokerCommand(t)
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	connack := exchange(t, nc, &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: "cmd", CleanStart: true, KeepAlive: 30})
	if !bytes.Equal(connack, []byte{0x20, 0x02, 0x00, 0x00}) {
		t.Fatalf("CONNACK % X, want 20 02 00 00", connack)
	}
	if got := exchange(t, nc, &packetgen.Pingreq{}); !bytes.Equal(got, []byte{0xD0, 0x00}) {
		t.Fatalf("PINGRESP % X, want D0 00", got)
	}

	b.interrupt()
	select {
	case <-b.exited:
		if b.code != exitInterrupted {
			t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", b.code, exitInterrupted, b.stdout, b.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after the interrupt\nstderr: %s", b.stderr)
	}
	// The connection was closed by the broker before it returned.
	nc.SetReadDeadline(time.Now().Add(time.Second)) //nolint:errcheck
	if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client connection after exit: read %d bytes, %v; want EOF", n, err)
	}
	if c, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after exit", b.addr)
	}
	errs := b.stderr.String()
	if !strings.Contains(errs, "shutting down") || strings.Contains(errs, "shutdown:") || strings.Contains(errs, "level=ERROR") {
		t.Fatalf("stderr: %s", errs)
	}
}

// The flags reach the broker: --max-qos caps SUBACK, --password-file
// refuses a client without a user name (return code 5) and a wrong
// password (4) and admits the right one.
func TestBrokerCommandOptions(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# test\nu:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := brokerCommand(t, "--max-qos", "1", "--password-file", users)
	for _, tc := range []struct {
		name   string
		user   string
		pass   []byte
		answer []byte
	}{
		{"anonymous", "", nil, []byte{0x20, 0x02, 0x00, 0x05}},
		{"wrong password", "u", []byte("nope"), []byte{0x20, 0x02, 0x00, 0x04}},
		{"right password", "u", []byte("pw"), []byte{0x20, 0x02, 0x00, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			cp := &packetgen.Connect{ProtocolLevel: packetgen.V311, ClientID: "opt", CleanStart: true,
				UsernameFlag: tc.user != "", Username: tc.user, PasswordFlag: tc.pass != nil, Password: tc.pass}
			if got := exchange(t, nc, cp); !bytes.Equal(got, tc.answer) {
				t.Fatalf("CONNACK % X, want % X", got, tc.answer)
			}
			if tc.answer[3] != 0 {
				return
			}
			suback := exchange(t, nc, &packetgen.Subscribe{PacketID: 9, Subscriptions: []packetgen.Subscription{{Filter: "a", QoS: 2}}})
			if want := []byte{0x90, 0x03, 0x00, 0x09, 0x01}; !bytes.Equal(suback, want) {
				t.Fatalf("SUBACK % X, want % X (QoS 2 capped at 1)", suback, want)
			}
		})
	}
}

// Bad flags are a one-line error with a hint and exit 2.
func TestBrokerCommandUsageErrors(t *testing.T) {
	dir := t.TempDir()
	badACL, users := filepath.Join(dir, "bad.acl"), filepath.Join(dir, "users")
	os.WriteFile(badACL, []byte("topic sometimes a/b\n"), 0o600) //nolint:errcheck
	os.WriteFile(users, []byte("u:pw\n"), 0o600)                 //nolint:errcheck
	for _, args := range [][]string{
		{"--max-qos", "3"},
		{"--keepalive-grace", "0.5"},
		{"--password-file", filepath.Join(t.TempDir(), "missing")},
		{"--listen", "256.0.0.1:0"},
		{"extra"},
		{"--acl-file", filepath.Join(t.TempDir(), "missing.acl")},
		{"--acl-file", badACL},
		{"--topic-alias-max", "70000"},
		{"--receive-max", "0"},
		{"--server-moved"},
		{"--auth-method", "SCRAM-SHA-256"},
		{"--auth-method", "SCRAM-SHA-1", "--auth-file", users},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"broker"}, args...), &out, &errb)
		if code != exitUsage || !strings.HasPrefix(errb.String(), "mqttbench broker: ") ||
			!strings.Contains(errb.String(), "Try: "+brokerHint) || strings.Count(errb.String(), "\n") != 2 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if out.Len() > 0 {
			t.Errorf("%v: stdout %q", args, out.String())
		}
	}
}
