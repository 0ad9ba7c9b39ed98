package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/certs"
)

const certHint = "mqttbench cert --out certs --hosts 127.0.0.1,localhost --clients 2"

// certFile is one file to write: a certificate (0644) or a key (0600).
type certFile struct {
	name string
	data []byte
	mode os.FileMode
}

// runCert writes a throwaway CA, a server certificate and client
// certificates for TLS tests, plus two that a broker must refuse: an
// expired client certificate and one from a CA it does not trust. It
// prints the paths it wrote, never a key.
func runCert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write to (created if missing)")
	hosts := fs.String("hosts", strings.Join(certs.DefaultHosts, ","), "comma-separated IP addresses and DNS names of the server certificate")
	clients := fs.Int("clients", 0, "also write client-1.pem ... client-N.pem (common names client-1 ...)")
	var names listFlag
	fs.Var(&names, "client", "also write client-NAME.pem with common name NAME, repeatable")
	days := fs.Int("days", 365, "validity of the CA and the certificates, in days")
	force := fs.Bool("force", false, "replace a CA already in --out")
	if code, ok := parseFlags(fs, args, stderr, certHint); !ok {
		return code
	}
	fail := func(format string, args ...any) int { return usageError(stderr, "cert", certHint, format, args...) }
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *out == "":
		return fail("--out is required")
	case *days < 1:
		return fail("--days is %d; want at least 1", *days)
	case *clients < 0:
		return fail("--clients is %d; want 0 or more", *clients)
	case *clients > 0 && len(names) > 0:
		return fail("--clients and --client cannot be used together")
	}
	var hostList []string
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			if err := certs.CheckHost(h); err != nil {
				return fail("--hosts: %q is neither an IP address nor a DNS name", h)
			}
			hostList = append(hostList, h)
		}
	}
	if len(hostList) == 0 {
		return fail("--hosts names no host")
	}
	cls := []clientCert{{"client", "client"}}
	for i := 1; i <= *clients; i++ {
		n := "client-" + strconv.Itoa(i)
		cls = append(cls, clientCert{n, n})
	}
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case n == "" || strings.IndexFunc(n, notFileNameRune) >= 0:
			return fail("--client %q: use letters, digits, '.', '_' and '-' (it names a file)", n)
		case n == "expired" || n == "unknown-ca":
			return fail("--client %q would overwrite client-%s.pem, a negative-test certificate", n, n)
		case seen[n]:
			return fail("--client %q given twice", n)
		}
		seen[n] = true
		cls = append(cls, clientCert{"client-" + n, n})
	}
	if !*force {
		for _, f := range []string{"ca.pem", "ca-key.pem"} {
			if _, err := os.Stat(filepath.Join(*out, f)); err == nil {
				return fail("%s already exists; use --force to replace the CA", filepath.Join(*out, f))
			}
		}
	}

	// Make everything before writing anything, so that a failure leaves no
	// half-written directory.
	files, err := makeCerts(ctx, hostList, cls, time.Duration(*days)*24*time.Hour)
	if ctx.Err() != nil {
		return exitInterrupted
	}
	if err != nil {
		return fail("%v", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail("%v", err)
	}
	for _, f := range files {
		path := filepath.Join(*out, f.name)
		if err := writeFileMode(path, f.data, f.mode); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(stdout, path)
	}
	return exitOK
}

// clientCert is a client certificate to write: file "client-1" has common
// name "client-1", file "client-NAME" (from --client NAME) has NAME.
type clientCert struct{ file, cn string }

// makeCerts issues every certificate.
func makeCerts(ctx context.Context, hosts []string, cls []clientCert, validity time.Duration) ([]certFile, error) {
	var files []certFile
	// add("x")(cert, key, err) records x.pem and x-key.pem.
	add := func(base string) func(cert, key []byte, err error) error {
		return func(cert, key []byte, err error) error {
			if err != nil {
				return err
			}
			files = append(files, certFile{base + ".pem", cert, 0o644}, certFile{base + "-key.pem", key, 0o600})
			return nil
		}
	}
	ca, err := certs.NewCA("mqttbench CA", validity)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err := add("ca")(ca.CertPEM(), caKey, err); err != nil {
		return nil, err
	}
	if err := add("server")(ca.IssuePEM(certs.Leaf{CommonName: hosts[0], Hosts: hosts, Server: true})); err != nil {
		return nil, err
	}
	for _, c := range cls {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := add(c.file)(ca.Client(c.cn)); err != nil {
			return nil, err
		}
	}
	if err := add("client-expired")(ca.ClientExpired("client-expired")); err != nil {
		return nil, err
	}
	other, err := certs.NewCA("mqttbench other CA (not trusted)", validity)
	if err != nil {
		return nil, err
	}
	if err := add("client-unknown-ca")(other.Client("client-unknown-ca")); err != nil {
		return nil, err
	}
	return files, nil
}

func notFileNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
}

// writeFileMode replaces path with data, mode set before any byte is
// written (a key is never readable by others, even briefly) and whatever
// the mode of a file it replaces.
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cert-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
