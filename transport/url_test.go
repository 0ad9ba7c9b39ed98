package transport

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Every scheme, its default port, a WebSocket path, and the bad ones
// refused with a one-line error that names what is wrong.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in         string
		want       string // String() of the result
		secure, ws bool
		err        string
	}{
		{in: "tcp://127.0.0.1:1883", want: "tcp://127.0.0.1:1883"},
		{in: "127.0.0.1:1883", want: "tcp://127.0.0.1:1883"},
		{in: "[::1]:1883", want: "tcp://[::1]:1883"},
		{in: "tcp://[::1]", want: "tcp://[::1]:1883"},
		{in: "tcp://broker.example", want: "tcp://broker.example:1883"},
		{in: "mqtt://broker.example", want: "mqtt://broker.example:1883"},
		{in: "MQTT://Broker.example:1884/", want: "mqtt://Broker.example:1884"},
		{in: "tls://broker.example", want: "tls://broker.example:8883", secure: true},
		{in: "ssl://broker.example:8884", want: "ssl://broker.example:8884", secure: true},
		{in: "mqtts://broker.example", want: "mqtts://broker.example:8883", secure: true},
		{in: "ws://broker.example", want: "ws://broker.example:80/mqtt", ws: true},
		{in: "ws://broker.example:8080/", want: "ws://broker.example:8080/", ws: true},
		{in: "wss://broker.example/ws/mqtt?x=1", want: "wss://broker.example:443/ws/mqtt?x=xxxxx", secure: true, ws: true},
		{in: "wss://[::1]:8443", want: "wss://[::1]:8443/mqtt", secure: true, ws: true},
		{in: "tcp://127.0.0.1:0", want: "tcp://127.0.0.1:0"},
		{in: "inproc", want: "inproc"},
		{in: "inproc://", want: "inproc"},
		{in: "inproc://ref", want: "inproc://ref"},

		{in: "", err: "want host:port"},
		{in: "127.0.0.1", err: "want host:port or a URL such as tcp://127.0.0.1"},
		{in: "::1:1883", err: "IPv6 address goes in brackets"},
		{in: "http://127.0.0.1:1883", err: `unknown scheme "http"; want tcp://`},
		{in: "quic://127.0.0.1", err: `unknown scheme "quic"`},
		{in: "tcp://127.0.0.1:", err: "empty port"},
		{in: "tcp://127.0.0.1:65536", err: `bad port "65536"`},
		{in: "tcp://127.0.0.1:x", err: "invalid port"},
		{in: "tcp://:1883", err: "no host"},
		{in: "tcp://127.0.0.1:1883/mqtt", err: "a path is only for ws:// and wss://"},
		{in: "tls://127.0.0.1?x=1", err: "a path is only for ws:// and wss://"},
		{in: "ws://127.0.0.1/mqtt#top", err: "fragment"},
		{in: "inproc://x:1", err: "want inproc or inproc://name"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := Parse(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Parse(%q) = %v, %v; want one line saying %q", tc.in, u, err, tc.err)
				}
				if !strings.Contains(err.Error(), Redact(tc.in)) {
					t.Errorf("the error %q does not name the URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if u.String() != tc.want || u.Secure() != tc.secure || u.WebSocket() != tc.ws {
				t.Errorf("Parse(%q) = %s (secure %v, ws %v); want %s (%v, %v)", tc.in, u, u.Secure(), u.WebSocket(), tc.want, tc.secure, tc.ws)
			}
		})
	}
}

// Credentials are parsed (compare moves them out) but never shown, in
// the URL's String nor in any error, however badly the URL is formed.
func TestPasswordsNeverShown(t *testing.T) {
	const pw = "s3cr3t-Pw"
	for _, in := range []string{
		"tcp://user:" + pw + "@127.0.0.1:1883",
		"user:" + pw + "@127.0.0.1:1883",
		"tcp://user:" + pw + "@@127.0.0.1:1883",
		"mqtts://user:" + pw + "@127.0.0.1",
		"tcp://user:" + pw + "%zz@127.0.0.1:1883",
		"http://user:" + pw + "@127.0.0.1",
		"wss://127.0.0.1/mqtt?token=" + pw,
		"tcp://user:" + pw + "@127.0.0.1:99999",
	} {
		t.Run(in, func(t *testing.T) {
			var shown []string
			u, err := Parse(in)
			if err != nil {
				shown = append(shown, err.Error())
			} else {
				shown = append(shown, u.String())
			}
			if _, err := NewDialer(in, Options{}); err != nil {
				shown = append(shown, err.Error())
			}
			if _, err := Listen(in, ListenOptions{}); err != nil {
				shown = append(shown, err.Error())
			}
			shown = append(shown, Redact(in))
			for _, s := range shown {
				if strings.Contains(s, pw) {
					t.Errorf("the password shows: %s", s)
				}
			}
		})
	}
	if got := Redact("tcp://user:" + pw + "@h:1"); got != "tcp://user:xxxxx@h:1" {
		t.Errorf("Redact = %q", got)
	}
	if _, err := NewDialer("tcp://user:"+pw+"@127.0.0.1:1883", Options{}); err == nil || !strings.Contains(err.Error(), "credentials in the URL are not supported") {
		t.Errorf("a dialer took credentials in the URL: %v", err)
	}
}

// FlagError puts the flag before an error about its URL, and leaves
// errors that name their own flag (a file) alone.
func TestFlagError(t *testing.T) {
	_, err := NewDialer("ftp://127.0.0.1", Options{})
	if got := FlagError("--broker", err).Error(); !strings.HasPrefix(got, `--broker "ftp://127.0.0.1": unknown scheme "ftp"`) {
		t.Errorf("URL error: %s", got)
	}
	_, err = NewDialer("tcp://127.0.0.1", Options{TLS: TLSOptions{CACert: "ca.pem"}})
	if got := FlagError("--broker", err).Error(); !strings.HasPrefix(got, `--broker "tcp://127.0.0.1" is not a TLS URL, yet --cacert is given`) {
		t.Errorf("option for the wrong URL: %s", got)
	}
	_, err = NewDialer("tls://127.0.0.1", Options{TLS: TLSOptions{CACert: "/nonexistent/ca.pem"}})
	if got := FlagError("--broker", err).Error(); got != "--cacert /nonexistent/ca.pem: no such file or directory" {
		t.Errorf("file error: %s", got)
	}
}

// Options travel to worker processes as JSON and come back whole.
func TestOptionsJSON(t *testing.T) {
	in := Options{
		TLS:       TLSOptions{CACert: "ca.pem", Cert: "c.pem", Key: "k.pem", Insecure: true, ServerName: "b", ALPN: []string{"mqtt"}, MinVersion: "1.3"},
		WebSocket: WebSocketOptions{Headers: http.Header{"Authorization": {"Bearer x"}}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Options
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: %+v\nbecame %+v", in, out)
	}
	if b, _ := json.Marshal(Options{}); string(b) != "{}" {
		t.Errorf("zero options marshal as %s", b)
	}
}
