package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqttbench/mqttbench/certs"
)

// certStore holds a client certificate per connection of the shard:
// read from files named by a template, or minted from a CA. prepare makes
// them all before the first connection, so the ramp measures the broker,
// not our signing; get makes one on demand for a connection of another
// shard (the probe).
type certStore struct {
	opts  ClientTLS
	ca    *certs.CA // minting
	shard Shard
	total int
	byPos []*tls.Certificate // nil until prepare
}

func newCertStore(opts ClientTLS, sh Shard, total int) (*certStore, error) {
	s := &certStore{opts: opts, shard: sh, total: total}
	if opts.MintCA != "" {
		ca, err := certs.LoadCA(opts.MintCA, opts.MintKey)
		if err != nil {
			// LoadCA names the file; the flags say which one it was.
			return nil, fmt.Errorf("--client-ca-cert, --client-ca-key: %v", strings.TrimPrefix(err.Error(), "certs: "))
		}
		s.ca = ca
	}
	return s, nil
}

// expandIndex puts connection i's index in a template.
func expandIndex(template string, i int) string {
	return strings.ReplaceAll(template, "{i}", strconv.Itoa(i))
}

// make reads or mints connection i's certificate. The parsed leaf is
// dropped: a client sends the DER and signs with the key, and a parsed
// certificate would cost each connection about 1.5 KiB more.
func (s *certStore) make(i int) (*tls.Certificate, error) {
	var c tls.Certificate
	if s.ca != nil {
		var err error
		if c, err = s.ca.ClientCertificate(expandIndex(s.commonName(), i)); err != nil {
			return nil, fmt.Errorf("--client-ca-cert: minting connection %d's certificate: %v", i, err)
		}
	} else {
		certPath, keyPath := expandIndex(s.opts.CertTemplate, i), expandIndex(s.opts.keyTemplate(), i)
		var err error
		if c, err = loadClientPair(certPath, keyPath); err != nil {
			return nil, err
		}
	}
	c.Leaf = nil
	return &c, nil
}

func (s *certStore) commonName() string {
	if s.opts.CommonName != "" {
		return s.opts.CommonName
	}
	return DefaultCommonName
}

// loadClientPair reads one connection's certificate and key; errors name
// the flags and files, never a key's content.
func loadClientPair(certPath, keyPath string) (tls.Certificate, error) {
	read := func(flag, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			hint := ""
			if errors.Is(err, fs.ErrNotExist) {
				hint = " ({i} counts connections from 0)"
			}
			return nil, fmt.Errorf("%s: %s: %v%s", flag, path, err, hint)
		}
		return b, nil
	}
	certPEM, err := read("--cert-template", certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := read("--key-template", keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--cert-template %s, --key-template %s: %v", certPath, keyPath, err)
	}
	return c, nil
}

// prepare makes the certificate of every connection of the shard, on all
// cores. A failure stops it; the error is the lowest connection's that
// failed (every lower one was handed out before it, so has been tried).
func (s *certStore) prepare() error {
	n := s.shard.Size(s.total)
	byPos := make([]*tls.Certificate, n)
	var next atomic.Int64
	var failed atomic.Bool
	var mu sync.Mutex
	var first error
	firstPos := n
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				pos := int(next.Add(1) - 1)
				if pos >= n {
					return
				}
				i := pos
				if !s.shard.Whole() {
					i = s.shard.Index + pos*s.shard.Count
				}
				c, err := s.make(i)
				if err != nil {
					mu.Lock()
					if pos < firstPos {
						first, firstPos = err, pos
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
				byPos[pos] = c
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	s.byPos = byPos
	return nil
}

// get is connection i's certificate.
func (s *certStore) get(i int) (*tls.Certificate, error) {
	if pos := shardPosition(s.shard, i); s.byPos != nil && pos >= 0 && pos < len(s.byPos) {
		return s.byPos[pos], nil
	}
	return s.make(i)
}

// describe says where the certificates came from, for the summary.
func (s *certStore) describe() string {
	if s.ca != nil {
		return fmt.Sprintf("minted per connection by CA %q, common name %s", s.ca.Cert.Subject.CommonName, s.commonName())
	}
	return fmt.Sprintf("per connection from %s and %s", s.opts.CertTemplate, s.opts.keyTemplate())
}
