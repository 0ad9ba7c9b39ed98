package suites

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
)

// The profile's security section: read with certificate paths made
// absolute against the profile's directory, refused when a field is
// wrong (naming the field, never a password), and never shown with its
// passwords in a report's profile summary.
func TestSecurityProfile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("certs/client-expired.pem", "not read here")
	abs := write("client-expired-key.pem", "not read here")
	good := write("good.yaml", `
name: secured
security:
  users:
    - name: alice
      password: alice-s3cret
      may_publish: ["sec/public/#"]
      may_subscribe: ["sec/public/#"]
      denied_publish: ["sec/secret/x"]
      denied_subscribe: ["#", "+/secret/#"]
    - name: "+"
      password: plus-s3cret
  refused_user: {name: mallory, password: mallory-s3cret}
  patterns: ["sec/c/%c/#", "sec/u/%u"]
  require_client_cert: true
  client_certs:
    expired: {cert: certs/client-expired.pem, key: `+abs+`}
`)
	p, err := LoadProfile(good)
	if err != nil {
		t.Fatal(err)
	}
	sec := p.Security
	if sec == nil || len(sec.Users) != 2 || sec.RefusedUser.Name != "mallory" || !sec.RequireClientCert {
		t.Fatalf("read %+v", sec)
	}
	if got, want := sec.ClientCerts.Expired.Cert, filepath.Join(dir, "certs/client-expired.pem"); got != want {
		t.Errorf("relative certificate path read as %s, want %s", got, want)
	}
	if got := sec.ClientCerts.Expired.Key; got != abs {
		t.Errorf("absolute key path read as %s", got)
	}
	if got := strings.Join(sec.secrets(), " "); got != "alice-s3cret plus-s3cret mallory-s3cret" {
		t.Errorf("secrets %q", got)
	}
	b, err := json.Marshal(p.summary())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), `"mallory"`) {
		t.Errorf("the profile summary shows a password or hides the users: %s", b)
	}
	if b, _ := json.Marshal(p); strings.Contains(string(b), "s3cret") {
		t.Errorf("the profile as JSON shows a password: %s", b)
	}

	for _, tc := range []struct{ body, err string }{
		{"security: {users: [{password: x}]}", "security.users[0]: a user needs a name"},
		{"security: {users: [{name: a}, {name: a}]}", `user "a" is named twice`},
		{"security: {users: [{name: a, may_publish: ['a/#/b']}]}", `(a) may_publish "a/#/b"`},
		{"security: {users: [{name: a, denied_subscribe: ['']}]}", `denied_subscribe ""`},
		{"security: {refused_user: {password: x}}", "refused_user needs a name"},
		{"security: {patterns: ['a/b']}", "holds %c or %u"},
		{"security: {patterns: ['a/x%c/#']}", "fill a whole level"},
		{"security: {patterns: ['a/%c/#/b']}", `patterns "a/%c/#/b"`},
		{"security: {client_certs: {expired: {cert: a.pem}}}", "client_certs.expired needs both cert and key"},
		{"security: {client_certs: {unknown_ca: {cert: gone.pem, key: gone-key.pem}}}", "client_certs.unknown_ca: stat " + filepath.Join(dir, "gone.pem")},
		{"security: {users: [{name: a, password: hunter2, secret: 1}]}", "field secret not found"},
	} {
		_, err := LoadProfile(write("bad.yaml", tc.body))
		switch {
		case err == nil || !strings.Contains(err.Error(), tc.err):
			t.Errorf("%s: %v; want an error saying %q", tc.body, err, tc.err)
		case strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: the error shows the password: %v", tc.body, err)
		}
	}
}

// Over ws:// and wss:// the section 6 statements have specs; over other
// transports they are not testable, for a reason that says how to test
// them. MQTT-6.0.0-3 binds only the client.
func TestWebSocketStatementsTestableOverWebSocket(t *testing.T) {
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
		cited := citedStatements(v)
		for _, tc := range []struct {
			url    string
			testOK bool
		}{{"tcp://127.0.0.1:1883", false}, {"tls://127.0.0.1:8883", false}, {"ws://127.0.0.1:8080/mqtt", true}, {"wss://127.0.0.1/mqtt", true}, {"", false}} {
			cfg := &Config{Version: v}
			if tc.url != "" {
				d, err := transport.NewDialer(tc.url, transport.Options{})
				if err != nil {
					t.Fatal(err)
				}
				cfg.Transport = d
			}
			nt := cfg.notTestable(v)
			for _, id := range []string{"MQTT-6.0.0-1", "MQTT-6.0.0-2", "MQTT-6.0.0-4"} {
				if !cited[id] {
					t.Errorf("%s %s: no spec cites it", v, id)
				}
				reason, listed := nt[id]
				switch {
				case tc.testOK && listed:
					t.Errorf("%s over %q: %s listed as not testable (%s)", v, tc.url, id, reason)
				case !tc.testOK && !strings.Contains(reason, "ws://"):
					t.Errorf("%s over %q: %s not testable for the reason %q; want one naming ws://", v, tc.url, id, reason)
				}
			}
			if nt["MQTT-6.0.0-3"] == "" || cited["MQTT-6.0.0-3"] {
				t.Errorf("%s over %q: MQTT-6.0.0-3 must be not testable and cited by no spec", v, tc.url)
			}
		}
		if len(NotTestable(v)["MQTT-6.0.0-1"]) > 0 {
			t.Errorf("%s: MQTT-6.0.0-1 is in the static not-testable table; it belongs only to runs without WebSocket", v)
		}
	}
}
