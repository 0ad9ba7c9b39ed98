package suites

import (
	"strings"
	"testing"
)

// The suite's --broker (go test ./suites -args --broker ...) takes what
// mqttbench conform --broker takes: tcp://host:port or host:port, and no
// credentials in the URL (errors never show the password).
func TestBrokerAddr(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"tcp://127.0.0.1:1883", "127.0.0.1:1883", ""},
		{"127.0.0.1:1883", "127.0.0.1:1883", ""},
		{"tcp://localhost:18831", "localhost:18831", ""},
		{"broker.example:1883", "broker.example:1883", ""},
		{"tcp://[::1]:1883", "[::1]:1883", ""},
		{"[::1]:1883", "[::1]:1883", ""},
		{"ws://127.0.0.1:8080", "", "only tcp://"},
		{"mqtts://127.0.0.1:8883", "", "only tcp://"},
		{"tcp://127.0.0.1", "", "want tcp://host:port"},
		{"127.0.0.1", "", "want tcp://host:port"},
		{"tcp://127.0.0.1:", "", "want tcp://host:port"},
		{"::1:1883", "", "want tcp://host:port"},
		{"", "", "want tcp://host:port"},
		{"tcp://user:secret@127.0.0.1:1883", "", "credentials in the URL"},
		{"user:secret@127.0.0.1:1883", "", "credentials in the URL"},
		{"ws://user:secret@127.0.0.1:8080", "", "only tcp://"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := BrokerAddr(tc.in)
			switch {
			case tc.err == "" && (err != nil || got != tc.want):
				t.Errorf("BrokerAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("BrokerAddr(%q) = %q, %v; want an error saying %q", tc.in, got, err, tc.err)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("BrokerAddr(%q): the error shows the password: %v", tc.in, err)
			}
		})
	}
}
