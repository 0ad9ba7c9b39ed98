package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// securedBroker is a reference broker behind mutual TLS with users and an
// ACL, the profile that describes it, and what a conform run needs to
// reach it. Passwords are made up per test, so that a search of every
// output for them means something.
type securedBroker struct {
	url, profile string
	tlsFlags     []string
	passwords    []string
}

const securityACL = `user suite
topic readwrite #
user alice
topic readwrite sec/public/#
topic write sec/alice/#
user bob
topic readwrite sec/secret/#
topic read sec/alice/#
topic write sec/public/#
pattern readwrite sec/c/%c/#
pattern readwrite sec/u/%u/#
`

// startSecuredBroker starts the broker. permissive starts it with none of
// the protections the profile names: every client admitted whatever its
// password or certificate, every topic open to all.
func startSecuredBroker(t *testing.T, permissive bool) securedBroker {
	t.Helper()
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if code, _, stderr := runCLI(context.Background(), "cert", "--out", certDir); code != exitOK {
		t.Fatalf("mqttbench cert: exit %d: %s", code, stderr)
	}
	tag := fmt.Sprintf("%x", os.Getpid())
	pw := map[string]string{}
	for _, u := range []string{"suite", "alice", "bob", "+", "mallory"} {
		pw[u] = "pw-" + strings.Trim(u, "+") + "-" + tag + "-Zq7"
	}
	opts := broker.Options{}
	lopts := transport.ListenOptions{Cert: filepath.Join(certDir, "server.pem"), Key: filepath.Join(certDir, "server-key.pem")}
	if !permissive {
		opts.Users = map[string]string{"suite": pw["suite"], "alice": pw["alice"], "bob": pw["bob"], "+": pw["+"]}
		a, err := acl.Parse(strings.NewReader(securityACL), "acl")
		if err != nil {
			t.Fatal(err)
		}
		opts.ACL = a
		lopts.ClientCA, lopts.RequireClientCert = filepath.Join(certDir, "ca.pem"), true
	}
	srv := broker.New(opts)
	l, err := transport.Listen("tls://127.0.0.1:0", lopts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })

	// Certificate paths relative to the profile: the profile reads them so.
	profile := filepath.Join(dir, "profile.yaml")
	body := fmt.Sprintf(`name: reference-secured
username: suite
password: %q
security:
  users:
    - name: alice
      password: %q
      may_publish: ["sec/public/#", "sec/alice/#"]
      may_subscribe: ["sec/public/#"]
      denied_publish: ["sec/secret/#"]
      denied_subscribe: ["sec/secret/#", "sec/#", "#", "+/secret/#"]
    - name: bob
      password: %q
      may_publish: ["sec/secret/#", "sec/public/#"]
      may_subscribe: ["sec/secret/#", "sec/alice/#"]
      denied_publish: ["sec/alice/#"]
      denied_subscribe: ["sec/public/#"]
    - name: "+"
      password: %q
  refused_user: {name: mallory, password: %q}
  patterns: ["sec/c/%%c/#", "sec/u/%%u/#"]
  require_client_cert: true
  client_certs:
    expired: {cert: certs/client-expired.pem, key: certs/client-expired-key.pem}
    unknown_ca: {cert: certs/client-unknown-ca.pem, key: certs/client-unknown-ca-key.pem}
`, pw["suite"], pw["alice"], pw["bob"], pw["+"], pw["mallory"])
	if err := os.WriteFile(profile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	b := securedBroker{url: transport.ListenerURL(l), profile: profile, tlsFlags: []string{
		"--cacert", filepath.Join(certDir, "ca.pem"),
		"--cert", filepath.Join(certDir, "client.pem"), "--key", filepath.Join(certDir, "client-key.pem"),
	}}
	for _, p := range pw {
		b.passwords = append(b.passwords, p)
	}
	return b
}

// The security specs pass against a broker that enforces what the profile
// says (users, an ACL, %c and %u patterns, client certificates), and every
// one of them fails against the same broker without those protections.
// Neither run shows a password anywhere: stdout, stderr, the JSON and
// JUnit results, the HTML report; traces show password=<redacted>.
func TestConformSecuritySpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the security specs twice")
	}
	const specs = 9
	for _, tc := range []struct {
		name       string
		permissive bool
		code       int
		state      string
	}{
		{"enforcing", false, exitOK, reports.Passed},
		{"permissive", true, exitFailures, reports.Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startSecuredBroker(t, tc.permissive)
			args := append([]string{"--broker", b.url, "--profile", b.profile, "--label-filter", "security"}, b.tlsFlags...)
			code, stdout, stderr, res, junit := conformChild(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			if len(res.Specs) != specs {
				t.Errorf("%d specs ran, want the %d security specs", len(res.Specs), specs)
			}
			for _, s := range res.Specs {
				if s.State != tc.state {
					t.Errorf("%s: %s (%s), want %s", s.Name, s.State, s.Message, tc.state)
				}
			}

			// The password of every CONNECT is redacted, its bytes withheld.
			redacted := false
			for _, s := range res.Specs {
				for _, e := range s.Trace {
					redacted = redacted || strings.Contains(e.Packet, "password=<redacted>")
				}
			}
			if !redacted {
				t.Error("no trace shows password=<redacted>")
			}
			html := filepath.Join(t.TempDir(), "report.html")
			jsonPath := filepath.Join(t.TempDir(), "c.json")
			if err := res.WriteJSON(jsonPath); err != nil {
				t.Fatal(err)
			}
			// report exits 1 when the results hold failures, as conform does.
			if code, _, stderr := runCLI(context.Background(), "report", jsonPath, "-o", html); code != tc.code {
				t.Fatalf("mqttbench report: exit %d: %s", code, stderr)
			}
			page, err := os.ReadFile(html)
			if err != nil {
				t.Fatal(err)
			}
			jsonOut, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			outputs := map[string]string{"stdout": stdout, "stderr": stderr, "JSON": string(jsonOut), "JUnit": string(junit), "HTML": string(page)}
			for _, pw := range b.passwords {
				for name, out := range outputs {
					for _, form := range []string{pw, fmt.Sprintf("% X", pw), fmt.Sprintf("%X", pw), fmt.Sprintf("% x", pw)} {
						if strings.Contains(out, form) {
							t.Errorf("the %s output holds a password (as %q)", name, form)
						}
					}
				}
			}
		})
	}
}

// Plain MQTT to a TLS port fails before any spec, in one line that points
// at TLS, with the usage exit code.
func TestConformPlainToTLSPort(t *testing.T) {
	b := startSecuredBroker(t, true)
	plain := "tcp://" + strings.TrimPrefix(b.url, "tls://")
	code, stdout, stderr := runCLI(context.Background(), "conform", "--broker", plain)
	if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "does it speak TLS on this port?") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one line asking whether the port speaks TLS", code, stdout, stderr, exitUsage)
	}
}
