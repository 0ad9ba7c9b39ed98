package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// TLS in a load run, beyond what every connection shares (--cacert,
// --cert, ...): a client certificate per connection, session resumption,
// and what the handshakes negotiated, for the summary.

// DefaultCommonName is the common name of minted client certificates
// when none is given: {i} is the connection index.
const DefaultCommonName = "mqttbench-{i}"

// ClientTLS says how a run's TLS connections present themselves. Each
// field is the `mqttbench load` flag named beside it; errors name the
// flag. Paths travel to worker processes, never a key's content.
type ClientTLS struct {
	// CertTemplate names each connection's PEM certificate, {i} standing
	// for the connection index from 0 (--cert-template). KeyTemplate
	// names its key (--key-template); by default the certificate's name
	// with "-key" before ".pem", as `mqttbench cert` names its files.
	CertTemplate string `json:"cert_template,omitempty"`
	KeyTemplate  string `json:"key_template,omitempty"`
	// MintCA and MintKey are the PEM files of a CA that signs one client
	// certificate per connection at the start (--client-ca-cert,
	// --client-ca-key), its common name CommonName with {i} the
	// connection index (--cert-cn, default DefaultCommonName).
	MintCA     string `json:"mint_ca,omitempty"`
	MintKey    string `json:"mint_key,omitempty"`
	CommonName string `json:"common_name,omitempty"`
	// Resume keeps TLS sessions so that later handshakes resume them
	// (--tls-resume). A session is reused only by connections with the
	// same identity: without per-connection certificates every
	// connection shares one cache (after the first full handshake with a
	// broker, connects and reconnects alike resume); with them each
	// connection keeps its own session, since a resumed session carries
	// the certificate of the handshake that made it, and only its
	// reconnects resume.
	Resume bool `json:"resume,omitempty"`
}

// IsZero reports whether nothing is set.
func (t ClientTLS) IsZero() bool { return t == ClientTLS{} }

// PerConnection reports whether each connection has its own certificate.
func (t ClientTLS) PerConnection() bool { return t.CertTemplate != "" || t.MintCA != "" }

// keyTemplate is KeyTemplate or the name derived from CertTemplate.
func (t ClientTLS) keyTemplate() string {
	if t.KeyTemplate != "" {
		return t.KeyTemplate
	}
	return strings.TrimSuffix(t.CertTemplate, ".pem") + "-key.pem"
}

// set names the first option given, for errors.
func (t ClientTLS) set() string {
	switch {
	case t.CertTemplate != "":
		return "--cert-template"
	case t.KeyTemplate != "":
		return "--key-template"
	case t.MintCA != "":
		return "--client-ca-cert"
	case t.MintKey != "":
		return "--client-ca-key"
	case t.CommonName != "":
		return "--cert-cn"
	case t.Resume:
		return "--tls-resume"
	}
	return ""
}

// Validate checks the options against the broker URLs and the shared
// transport options: every broker must be a TLS one, and a connection
// has one certificate, from one place.
func (t ClientTLS) Validate(brokers []string, shared transport.TLSOptions) error {
	switch {
	case t.IsZero():
		return nil
	case t.CertTemplate != "" && t.MintCA != "":
		return errors.New("--cert-template and --client-ca-cert both give each connection a certificate: use one")
	case t.KeyTemplate != "" && t.CertTemplate == "":
		return errors.New("--key-template needs --cert-template")
	case t.CertTemplate != "" && !strings.Contains(t.CertTemplate, "{i}"):
		return fmt.Errorf("--cert-template %q has no {i}: every connection would use one file (give it with --cert)", t.CertTemplate)
	case t.CertTemplate != "" && t.KeyTemplate == "" && !strings.HasSuffix(t.CertTemplate, ".pem"):
		return fmt.Errorf("--cert-template %q does not end in .pem, so its key's name cannot be derived: give --key-template", t.CertTemplate)
	case t.MintCA != "" && t.MintKey == "":
		return errors.New("--client-ca-cert needs --client-ca-key, the CA's private key")
	case t.MintKey != "" && t.MintCA == "":
		return errors.New("--client-ca-key needs --client-ca-cert")
	case t.CommonName != "" && t.MintCA == "":
		return errors.New("--cert-cn names minted certificates: it needs --client-ca-cert and --client-ca-key")
	case t.PerConnection() && (shared.Cert != "" || shared.Key != ""):
		return fmt.Errorf("--cert gives every connection one certificate, %s each its own: use one", t.set())
	case len(brokers) == 0:
		return fmt.Errorf("%s needs a TLS --broker (tls://, mqtts:// or wss://): the in-process broker is reached over net.Pipe", t.set())
	}
	for _, b := range brokers {
		u, err := transport.Parse(b)
		if err != nil {
			return err
		}
		if !u.Secure() {
			return fmt.Errorf("%s is not a TLS URL, yet %s is given; use tls://, mqtts:// or wss://", transport.Redact(b), t.set())
		}
	}
	return nil
}

// connIndexKey keys the connection index in a dial's context.
type connIndexKey struct{}

// tlsRun is a run's TLS state: the certificates, the session caches and
// the handshakes counted.
type tlsRun struct {
	opts  ClientTLS
	certs *certStore // nil without per-connection certificates
	// shared gives each broker URL a session cache for connections
	// without certificates of their own; own holds one session per
	// connection (by position in the shard) for those with.
	shared bool
	own    []sessionSlot
	shard  Shard
	// wrap gives TLS connections the wrapper the idle watcher reads
	// through (the run has idle connections).
	wrap bool

	mu         sync.Mutex
	negotiated map[[3]uint16]uint64 // version, cipher suite, key exchange
	handshakes uint64
	resumed    uint64
}

// newTLSRun reads the CA to mint from, if any; certificates are made by
// prepare.
func newTLSRun(opts ClientTLS, sh Shard, total int) (*tlsRun, error) {
	rt := &tlsRun{opts: opts, shard: sh}
	if opts.PerConnection() {
		cs, err := newCertStore(opts, sh, total)
		if err != nil {
			return nil, err
		}
		rt.certs = cs
	}
	if opts.Resume {
		if opts.PerConnection() {
			rt.own = make([]sessionSlot, sh.Size(total))
		} else {
			rt.shared = true
		}
	}
	return rt, nil
}

// shardPosition is connection i's place in shard sh, or -1 when another
// shard owns it.
func shardPosition(sh Shard, i int) int {
	switch {
	case !sh.Owns(i):
		return -1
	case sh.Whole():
		return i
	}
	return (i - sh.Index) / sh.Count
}

// configureShared is the transport's TLSConfig hook, once per broker
// URL: a session cache of the broker's own (crypto/tls keys sessions by
// server name, which brokers on one host share), and the certificate of
// each connection found by the index its dial carries, so that no
// connection needs a config of its own for it.
func (rt *tlsRun) configureShared(cfg *tls.Config) {
	if rt.shared {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	if rt.certs != nil {
		// Always the connection's certificate, whatever CAs the broker
		// says it accepts: what it does with it is what is measured.
		cfg.Certificates = nil
		cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			i, ok := cri.Context().Value(connIndexKey{}).(int)
			if !ok {
				return &tls.Certificate{}, nil // none: not one of the run's dials
			}
			return rt.certs.get(i)
		}
	}
}

// configure is the transport's TLSConn hook for connections with
// sessions of their own: it gives each its slot, found by the index its
// dial carries.
func (rt *tlsRun) configure(ctx context.Context, cfg *tls.Config) {
	i, ok := ctx.Value(connIndexKey{}).(int)
	if !ok {
		return
	}
	if pos := shardPosition(rt.shard, i); rt.own != nil && pos >= 0 {
		cfg.ClientSessionCache = &rt.own[pos]
	}
}

// observe counts a connection's handshake.
func (rt *tlsRun) observe(nc net.Conn) {
	st, ok := transport.ConnectionState(nc)
	if !ok {
		return
	}
	rt.mu.Lock()
	if rt.negotiated == nil {
		rt.negotiated = map[[3]uint16]uint64{}
	}
	rt.negotiated[[3]uint16{st.Version, st.CipherSuite, uint16(st.CurveID)}]++
	rt.handshakes++
	if st.DidResume {
		rt.resumed++
	}
	rt.mu.Unlock()
}

// summary is what the handshakes negotiated; nil when there was none and
// nothing was asked for.
func (rt *tlsRun) summary() *reports.LoadTLS {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.handshakes == 0 && rt.opts.IsZero() {
		return nil
	}
	l := &reports.LoadTLS{Handshakes: rt.handshakes, Resumed: rt.resumed, Resume: rt.opts.Resume}
	if rt.certs != nil {
		l.ClientCerts = rt.certs.describe()
	}
	for k, n := range rt.negotiated {
		p := reports.LoadTLSParams{Version: tls.VersionName(k[0]), Cipher: tls.CipherSuiteName(k[1]), Count: n}
		if k[2] != 0 {
			p.Group = tls.CurveID(k[2]).String()
		}
		l.Negotiated = append(l.Negotiated, p)
	}
	sortNegotiated(l.Negotiated)
	return l
}

func sortNegotiated(ps []reports.LoadTLSParams) {
	slices.SortFunc(ps, func(a, b reports.LoadTLSParams) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Version+" "+a.Cipher+" "+a.Group, b.Version+" "+b.Cipher+" "+b.Group)
	})
}

// mergeTLS adds up the TLS summaries of several parts of a run.
func mergeTLS(a, b *reports.LoadTLS) *reports.LoadTLS {
	switch {
	case b == nil:
		return a
	case a == nil:
		c := *b
		c.Negotiated = slices.Clone(b.Negotiated)
		return &c
	}
	a.Handshakes += b.Handshakes
	a.Resumed += b.Resumed
	a.Resume = a.Resume || b.Resume
	if a.ClientCerts == "" {
		a.ClientCerts = b.ClientCerts
	}
	for _, p := range b.Negotiated {
		i := slices.IndexFunc(a.Negotiated, func(q reports.LoadTLSParams) bool {
			return q.Version == p.Version && q.Cipher == p.Cipher && q.Group == p.Group
		})
		if i < 0 {
			a.Negotiated = append(a.Negotiated, p)
		} else {
			a.Negotiated[i].Count += p.Count
		}
	}
	sortNegotiated(a.Negotiated)
	return a
}

// sessionSlot is one connection's TLS session cache: the last session
// its broker gave it.
type sessionSlot struct {
	mu  sync.Mutex
	key string
	cs  *tls.ClientSessionState
}

func (s *sessionSlot) Get(key string) (*tls.ClientSessionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cs == nil || s.key != key {
		return nil, false
	}
	return s.cs, true
}

// Put keeps cs; a nil cs forgets the session (crypto/tls does so with one
// the broker would not resume).
func (s *sessionSlot) Put(key string, cs *tls.ClientSessionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs == nil {
		if key == s.key {
			s.cs = nil
		}
		return
	}
	s.key, s.cs = key, cs
}
