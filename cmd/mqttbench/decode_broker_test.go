package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
)

// decode --broker sends the bytes to a real broker over TCP and prints
// both directions: an answer and exit 0 for a valid packet; the broker's
// DISCONNECT, the close and exit 1 for a malformed one.
func TestDecodeAtBroker(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url := "tcp://" + srv.Addrs()[0].String()

	// PUBLISH QoS 1 id 1 topic "a" payload "hi": PUBACK 0x10 (nobody subscribed).
	code, stdout, stderr := runCLI(context.Background(), "decode", "--broker", url, "--protocol", "5", "32 07 00 01 61 00 01 00 68")
	if code != exitOK || !strings.Contains(stdout, "<- broker PUBACK id=1") || !strings.Contains(stdout, "code=0x10") ||
		!strings.Contains(stdout, "-> broker PUBLISH qos=1 id=1 topic=\"a\"") {
		t.Errorf("valid PUBLISH: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	// PINGREQ with a body: Malformed Packet, DISCONNECT 0x81, close.
	code, stdout, stderr = runCLI(context.Background(), "decode", "--broker", url, "--protocol", "5", "--wait", "2s", "C0 01 00")
	if code != exitFailures || !strings.Contains(stdout, "DISCONNECT") || !strings.Contains(stdout, "closed") {
		t.Errorf("malformed PINGREQ: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

// A broker that is not there, and a transport flag without --broker, are
// one line and exit 2.
func TestDecodeAtBrokerUsage(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"decode", "--broker", "tcp://" + addr, "C0 00"},
		{"decode", "--broker", "ftp://" + addr, "C0 00"},
		{"decode", "--cacert", "ca.pem", "C0 00"},
	} {
		code, _, stderr := runCLI(context.Background(), args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "mqttbench decode: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
