package suites

import (
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/transport"
)

// The suite's --broker (go test ./suites -args --broker ...) takes what
// mqttbench conform --broker takes: any transport URL or host:port, and
// no credentials in the URL (errors never show the password).
func TestBrokerDialer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		opts transport.Options
		err  string
	}{
		{in: "tcp://127.0.0.1:1883"},
		{in: "127.0.0.1:1883"},
		{in: "tcp://localhost"},
		{in: "[::1]:1883"},
		{in: "mqtt://broker.example:1883"},
		{in: "tls://broker.example", opts: transport.Options{TLS: transport.TLSOptions{Insecure: true}}},
		{in: "mqtts://broker.example:8883"},
		{in: "ws://127.0.0.1:8080/mqtt"},
		{in: "wss://127.0.0.1/mqtt"},
		{in: "inproc"},
		{in: "http://127.0.0.1:8080", err: `--broker "http://127.0.0.1:8080": unknown scheme "http"`},
		{in: "127.0.0.1", err: `--broker "127.0.0.1": want host:port`},
		{in: "tcp://127.0.0.1:", err: "empty port"},
		{in: "::1:1883", err: "IPv6 address goes in brackets"},
		{in: "", err: "want host:port"},
		{in: "tcp://127.0.0.1:1883", opts: transport.Options{TLS: transport.TLSOptions{CACert: "ca.pem"}}, err: "is not a TLS URL, yet --cacert is given"},
		{in: "tls://127.0.0.1", opts: transport.Options{TLS: transport.TLSOptions{CACert: "/nonexistent/ca.pem"}}, err: "--cacert /nonexistent/ca.pem: no such file"},
		{in: "tcp://user:secret@127.0.0.1:1883", err: "credentials in the URL"},
		{in: "user:secret@127.0.0.1:1883", err: "credentials in the URL"},
		{in: "ws://user:secret@127.0.0.1:8080", err: "credentials in the URL"},
		{in: "ftp://user:secret@127.0.0.1:8080", err: "unknown scheme"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			d, err := BrokerDialer(tc.in, tc.opts)
			switch {
			case tc.err == "" && (err != nil || d == nil):
				t.Errorf("BrokerDialer(%q): %v", tc.in, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("BrokerDialer(%q): %v; want an error saying %q", tc.in, err, tc.err)
			case err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n")):
				t.Errorf("BrokerDialer(%q): the error shows the password or spans lines: %v", tc.in, err)
			}
		})
	}
}
