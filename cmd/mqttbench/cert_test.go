package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCertWritesAWorkingSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs") // created by the command
	code, stdout, stderr := runCLI(context.Background(), "cert", "--out", dir, "--hosts", "127.0.0.1, localhost", "--clients", "2", "--days", "2")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var want []string
	for _, base := range []string{"ca", "server", "client", "client-1", "client-2", "client-expired", "client-unknown-ca"} {
		want = append(want, filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem"))
	}
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(stdout, "PRIVATE") {
		t.Error("a key was printed")
	}
	for _, p := range got {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o644)
		if strings.HasSuffix(p, "-key.pem") {
			wantMode = 0o600
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), wantMode)
		}
	}

	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	load := func(base string) tls.Certificate {
		t.Helper()
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := load("server")
	for _, c := range []struct {
		base, serverName, cn string
	}{
		{"client", "127.0.0.1", "client"},
		{"client-1", "localhost", "client-1"},
		{"client-2", "127.0.0.1", "client-2"},
	} {
		if cn, err := tlsHandshake(t, pool, server, load(c.base), c.serverName); err != nil || cn != c.cn {
			t.Errorf("%s via %s: common name %q, %v", c.base, c.serverName, cn, err)
		}
	}
	var invalid x509.CertificateInvalidError
	if _, err := tlsHandshake(t, pool, server, load("client-expired"), "127.0.0.1"); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("client-expired: %v, want it refused as expired", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := tlsHandshake(t, pool, server, load("client-unknown-ca"), "127.0.0.1"); !errors.As(err, &unknown) {
		t.Errorf("client-unknown-ca: %v, want unknown authority", err)
	}
	// The server certificate names only the hosts asked for.
	if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "::1"}); err == nil {
		t.Error("server.pem verifies for ::1, which --hosts did not name")
	}
}

// tlsHandshake runs a mutual-TLS handshake on 127.0.0.1 and returns the
// server's error and the client certificate's common name.
func tlsHandshake(t *testing.T, pool *x509.CertPool, server, client tls.Certificate, serverName string) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		cn  string
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- res{err: err}
			return
		}
		_, err = tc.Write([]byte("ok"))
		done <- res{tc.ConnectionState().PeerCertificates[0].Subject.CommonName, err}
	}()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		// Send the certificate even when the server's CA list does not name
		// its issuer, so that the server is the one to refuse it.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &client, nil },
		RootCAs:              pool, ServerName: serverName,
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		c.Read(make([]byte, 2))                        //nolint:errcheck
		c.Close()
	} else if !strings.Contains(err.Error(), "remote error") {
		t.Fatalf("client refused the server: %v", err)
	}
	select {
	case r := <-done:
		return r.cn, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("server handshake did not finish")
		return "", nil
	}
}

func TestCertNamedClientsAndForce(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(context.Background(), "cert", "--out", dir, "--client", "alice", "--client", "bob.2")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"client-alice.pem", "client-bob.2-key.pem", "client.pem"} {
		if !strings.Contains(stdout, filepath.Join(dir, f)+"\n") {
			t.Errorf("%s not written:\n%s", f, stdout)
		}
	}
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, "client-alice.pem"), filepath.Join(dir, "client-alice-key.pem"))
	if err != nil || c.Leaf.Subject.CommonName != "alice" {
		t.Errorf("client-alice.pem: %v", err)
	}

	before, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	code, _, stderr = runCLI(context.Background(), "cert", "--out", dir)
	if code != exitUsage || !strings.Contains(stderr, "ca.pem already exists; use --force") {
		t.Errorf("second run without --force: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(before, after) {
		t.Error("the refused run changed ca.pem")
	}
	// A replaced key file keeps mode 0600 even if someone loosened it.
	os.Chmod(filepath.Join(dir, "ca-key.pem"), 0o644) //nolint:errcheck
	if code, _, stderr := runCLI(context.Background(), "cert", "--out", dir, "--force"); code != exitOK {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); bytes.Equal(before, after) {
		t.Error("--force did not replace the CA")
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca-key.pem after --force: %v, %v", fi.Mode(), err)
	}
}

func TestCertUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600) //nolint:errcheck
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--out is required"},
		{[]string{"--out", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"--out", dir, "--days", "0"}, "--days is 0"},
		{[]string{"--out", dir, "--clients", "-1"}, "--clients is -1"},
		{[]string{"--out", dir, "--clients", "2", "--client", "a"}, "cannot be used together"},
		{[]string{"--out", dir, "--client", "../x"}, `--client "../x"`},
		{[]string{"--out", dir, "--client", "expired"}, "negative-test certificate"},
		{[]string{"--out", dir, "--client", "a", "--client", "a"}, "given twice"},
		{[]string{"--out", dir, "--hosts", "a b"}, `--hosts: "a b"`},
		{[]string{"--out", dir, "--hosts", " , "}, "--hosts names no host"},
		{[]string{"--out", dir, "--days", "soon"}, "invalid value"},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"--out", filepath.Join(notDir, "sub")}, "not a directory"},
	} {
		code, stdout, stderr := runCLI(context.Background(), append([]string{"cert"}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitUsage || !strings.HasPrefix(stderr, "mqttbench cert: ") || !strings.Contains(lines[0], c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, stdout, stderr, c.want)
		}
		if len(lines) > 2 {
			t.Errorf("%v: %d lines of error", c.args, len(lines))
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("failed runs left files: %v", entries)
	}
}
