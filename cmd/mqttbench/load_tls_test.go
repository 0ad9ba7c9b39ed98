package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/certs"
	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/transport"
)

// loadTLSFiles writes a CA (ca.pem, ca-key.pem) and a server certificate
// for 127.0.0.1 (server.pem, server-key.pem) into a directory.
func loadTLSFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA("load test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	cert, skey, err := ca.Server(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ca.pem": ca.CertPEM(), "ca-key.pem": key, "server.pem": cert, "server-key.pem": skey} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// identityListener serves the reference broker on url with client
// certificates required, the user name taken from the certificate, and
// publishing allowed only on c/<user>.
func identityListener(t *testing.T, dir, url string) string {
	t.Helper()
	rules, err := acl.Parse(strings.NewReader("pattern write c/%u\npattern read c/#\n"), "test acl")
	if err != nil {
		t.Fatal(err)
	}
	l, err := transport.Listen(url, transport.ListenOptions{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"),
		ClientCA: filepath.Join(dir, "ca.pem"), RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := broker.New(broker.Options{IdentityAsUsername: true, ACL: rules})
	go srv.Serve(l) //nolint:errcheck // ends with ErrServerClosed
	t.Cleanup(func() { srv.Close() })
	return transport.ListenerURL(l)
}

// Certificates minted per connection from a CA on the command line, over
// mqtts:// and wss://, in one process and over worker processes: every
// message passes the broker's per-identity ACL, and the summary and the
// table name the TLS version, the cipher suite, the handshakes resumed
// and where the certificates came from. The CA's key stays out of the
// results and the output.
func TestLoadTLSMintedCertificates(t *testing.T) {
	dir := loadTLSFiles(t)
	caKey, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	for _, tc := range []struct {
		name, listen string
		workers      string
	}{
		{"mqtts", "tls://127.0.0.1:0", "1"},
		{"wss", "wss://127.0.0.1:0/mqtt", "1"},
		{"mqtts over 2 workers", "tls://127.0.0.1:0", "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := identityListener(t, dir, tc.listen)
			if strings.HasPrefix(url, "tls://") {
				url = "mqtts://" + strings.TrimPrefix(url, "tls://")
			}
			out := t.TempDir()
			code, stdout, stderr := loadCLI(context.Background(), short(out, "--broker", url, "--cacert", filepath.Join(dir, "ca.pem"),
				"--client-ca-cert", filepath.Join(dir, "ca.pem"), "--client-ca-key", filepath.Join(dir, "ca-key.pem"), "--cert-cn", "dev-{i}",
				"--tls-resume", "--publishers", "3", "--subscribers", "3", "--topic", "c/dev-{p}", "--qos", "1", "--workers", tc.workers)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			for _, want := range []string{"tls_handshake", "TLS 1.3 TLS_", "6 handshakes, 0 resumed", `minted per connection by CA "load test CA", common name dev-{i}`} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			res, err := loadgen.ReadResults(out)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Summary
			if s.Messages.Received == 0 || s.Messages.Received != s.Messages.Expected || !s.OK() {
				t.Errorf("delivered %d of %d, violations %v", s.Messages.Received, s.Messages.Expected, s.Violations)
			}
			if s.TLS == nil || s.TLS.Handshakes != 6 || !s.TLS.Resume || len(s.TLS.Negotiated) != 1 {
				t.Errorf("summary TLS %+v", s.TLS)
			}
			if n := res.Histograms["tls_handshake"].TotalCount(); n != 6 {
				t.Errorf("tls_handshake.hlog: %d values, want 6", n)
			}
			noKey := func(where, text string) {
				if strings.Contains(text, strings.TrimSpace(string(caKey))) || strings.Contains(text, "PRIVATE KEY") {
					t.Errorf("%s shows the CA's key", where)
				}
			}
			noKey("stdout", stdout)
			noKey("stderr", stderr)
			b, _ := os.ReadFile(filepath.Join(out, "summary.json"))
			noKey("summary.json", string(b))
		})
	}
}

// Certificate files per connection named by a template, their keys after
// them, as `mqttbench cert` names its files.
func TestLoadTLSCertTemplate(t *testing.T) {
	dir := loadTLSFiles(t)
	ca, err := certs.LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []string{"0", "1", "2", "3"} {
		cert, key, err := ca.Client("dev-" + i)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "client-"+i+".pem"), cert, 0o644)
		os.WriteFile(filepath.Join(dir, "client-"+i+"-key.pem"), key, 0o600)
	}
	url := identityListener(t, dir, "tls://127.0.0.1:0")
	out := t.TempDir()
	code, stdout, stderr := loadCLI(context.Background(), short(out, "--broker", url, "--cacert", filepath.Join(dir, "ca.pem"),
		"--cert-template", filepath.Join(dir, "client-{i}.pem"), "--publishers", "2", "--subscribers", "2", "--topic", "c/dev-{p}", "--qos", "1")...)
	if code != exitOK || !strings.Contains(stdout, "per connection from "+filepath.Join(dir, "client-{i}.pem")) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	res, err := loadgen.ReadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Summary.Messages; m.Received == 0 || m.Received != m.Expected {
		t.Errorf("delivered %d of %d", m.Received, m.Expected)
	}
}

// TLS client flags that do not fit: exit 2 and a one-line error naming
// the flag, before anything connects.
func TestLoadTLSUsageErrors(t *testing.T) {
	dir := loadTLSFiles(t)
	tlsURL := "tls://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"template without {i}", []string{"--broker", tlsURL, "--cert-template", "client.pem"}, `--cert-template "client.pem" has no {i}`},
		{"template and CA", []string{"--broker", tlsURL, "--cert-template", "c-{i}.pem", "--client-ca-cert", "ca.pem", "--client-ca-key", "k.pem"}, "--cert-template and --client-ca-cert"},
		{"template and --cert", []string{"--broker", tlsURL, "--cert-template", "c-{i}.pem", "--cert", "c.pem", "--key", "k.pem"}, "--cert gives every connection one certificate"},
		{"CA without key", []string{"--broker", tlsURL, "--client-ca-cert", filepath.Join(dir, "ca.pem")}, "--client-ca-cert needs --client-ca-key"},
		{"cn without CA", []string{"--broker", tlsURL, "--cert-cn", "dev-{i}"}, "--cert-cn names minted certificates"},
		{"resume on tcp", []string{"--broker", "tcp://127.0.0.1:1", "--tls-resume"}, "is not a TLS URL, yet --tls-resume is given"},
		{"resume in process", []string{"--tls-resume"}, "--tls-resume needs a TLS --broker"},
		{"CA file missing", []string{"--broker", tlsURL, "--cacert", filepath.Join(dir, "ca.pem"), "--client-ca-cert", filepath.Join(dir, "none.pem"), "--client-ca-key", filepath.Join(dir, "ca-key.pem")}, "none.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := loadCLI(context.Background(), append(tc.args, "--out", t.TempDir())...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != exitUsage || !strings.HasPrefix(first, "mqttbench load: ") || !strings.Contains(first, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and %q on the first line", code, stderr, stdout, tc.want)
			}
		})
	}
}
