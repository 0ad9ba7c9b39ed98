package suites

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The profile's 5.0 capabilities and optional profiles load; bad values
// are one-line errors naming the file; the SCRAM password never reaches
// the report's profile summary.
func TestProfile5(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", `name: b
shared_subscriptions: false
subscription_identifiers: true
topic_alias_maximum: 10
receive_maximum: 20
max_packet_size: 4096
server_keep_alive: 30
enhanced_auth: {method: SCRAM-SHA-512, username: u, password: s3cret-pw}
redirect: {client_id: moved, moved: true}
deviations:
  - {statement: MQTT-3.1.4-3, reason: no 0x8E, protocol: "5.0"}
`)
	p, err := LoadProfile(good)
	if err != nil {
		t.Fatal(err)
	}
	if *p.SharedSubscriptions || !*p.SubscriptionIdentifiers || *p.TopicAliasMaximum != 10 || *p.ReceiveMaximum != 20 ||
		*p.MaxPacketSize != 4096 || *p.ServerKeepAlive != 30 || p.EnhancedAuth.Method != "SCRAM-SHA-512" ||
		p.EnhancedAuth.Password != "s3cret-pw" || p.Redirect.ClientID != "moved" || !p.Redirect.Moved || p.Deviations[0].Protocol != "5.0" {
		t.Errorf("loaded %+v", p)
	}
	b, err := json.Marshal(p.summary())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret-pw") || !strings.Contains(string(b), "SCRAM-SHA-512 as u") {
		t.Errorf("summary %s", b)
	}
	// A deviation for 5.0 is not one of the 3.1.1 specs of the same run.
	cfg := &Config{Profile: p}
	if d := cfg.forVersion(3).Profile.Deviations; len(d) != 0 {
		t.Errorf("3.1.1 deviations %v", d)
	}
	for name, body := range map[string]string{
		"method.yaml":   "enhanced_auth: {method: PLAIN, username: u}\n",
		"redirect.yaml": "redirect: {moved: true}\n",
		"dev.yaml":      "deviations: [{statement: MQTT-3.1.0-1, reason: r, protocol: \"4\"}]\n",
	} {
		if _, err := LoadProfile(write(name, body)); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v", name, err)
		}
	}
}
