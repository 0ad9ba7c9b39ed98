// Package transport is the one way mqttbench reaches a broker and the one
// way its reference broker listens: a URL names the whole path (tcp://,
// tls://, ws://, wss://, inproc), a Dialer built once from it and Options
// dials every connection, and Listen serves the same URLs. WebSocket and
// TLS become a plain net.Conn, so nothing above this package knows they
// are there; TLSInfo and PeerCertificates see through the wrapping.
package transport

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// URL is a parsed broker URL.
type URL struct {
	// Scheme is as written, lower case: tcp, mqtt, tls, ssl, mqtts, ws,
	// wss or inproc (host:port alone is tcp).
	Scheme string
	// Host is host:port, the scheme's default port filled in; empty for
	// inproc.
	Host string
	// Path is the WebSocket request path, /mqtt by default, and RawQuery
	// its query; both empty for the other schemes.
	Path     string
	RawQuery string
	// Name is the registered name of an inproc server ("" by default).
	Name string
	// User holds credentials written in the URL, nil when there are
	// none. Dialers refuse them; commands that take them (compare) move
	// them out first.
	User *url.Userinfo
}

// kinds maps each accepted scheme to what it means.
var kinds = map[string]struct {
	tls, ws bool
	port    string
}{
	"tcp":   {port: "1883"},
	"mqtt":  {port: "1883"},
	"tls":   {tls: true, port: "8883"},
	"ssl":   {tls: true, port: "8883"},
	"mqtts": {tls: true, port: "8883"},
	"ws":    {ws: true, port: "80"},
	"wss":   {tls: true, ws: true, port: "443"},
}

const schemes = "tcp://, mqtt://, tls://, ssl://, mqtts://, ws://, wss:// or inproc"

// Secure reports whether the URL speaks TLS (tls, ssl, mqtts, wss).
func (u *URL) Secure() bool { return kinds[u.Scheme].tls }

// WebSocket reports whether the URL speaks MQTT over WebSocket.
func (u *URL) WebSocket() bool { return kinds[u.Scheme].ws }

// Inproc reports whether the URL names an in-process server.
func (u *URL) Inproc() bool { return u.Scheme == "inproc" }

// Hostname is the host without the port.
func (u *URL) Hostname() string {
	h, _, _ := net.SplitHostPort(u.Host)
	return h
}

// String is the URL for people: without credentials, query values
// masked (they may be a token), the port always shown.
func (u *URL) String() string {
	switch {
	case u.Inproc() && u.Name == "":
		return "inproc"
	case u.Inproc():
		return "inproc://" + u.Name
	}
	s := u.Scheme + "://" + u.Host + u.Path
	if u.RawQuery != "" {
		s = Redact(s + "?" + u.RawQuery)
	}
	return s
}

// Parse reads a broker URL: scheme://host[:port], host:port alone for
// tcp, a path (and query) for ws:// and wss://, inproc or inproc://name.
// Errors name the URL with any password masked.
func Parse(raw string) (*URL, error) {
	if strings.EqualFold(raw, "inproc") {
		return &URL{Scheme: "inproc"}, nil
	}
	bare := !strings.Contains(raw, "://")
	s := raw
	if bare {
		if raw == "" {
			return nil, errors.New(`"": want host:port or a URL such as tcp://host:1883`)
		}
		s = "tcp://" + raw
	}
	pu, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && !strings.Contains(raw, "@") {
			return nil, urlError(raw, ": %v", ue.Err)
		}
		return nil, urlError(raw, ": not a URL") // the reason may quote the password
	}
	scheme := strings.ToLower(pu.Scheme)
	if scheme == "inproc" {
		if pu.User != nil || pu.Port() != "" || (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" {
			return nil, urlError(raw, ": want inproc or inproc://name")
		}
		return &URL{Scheme: "inproc", Name: pu.Host}, nil
	}
	kind, ok := kinds[scheme]
	if !ok {
		return nil, urlError(raw, ": unknown scheme %q; want %s", pu.Scheme, schemes)
	}
	u := &URL{Scheme: scheme, User: pu.User}
	switch {
	case pu.Hostname() == "":
		return nil, urlError(raw, ": no host")
	case pu.Fragment != "" || strings.HasSuffix(s, "#"):
		return nil, urlError(raw, ": a fragment means nothing to a broker")
	case !kind.ws && ((pu.Path != "" && pu.Path != "/") || pu.RawQuery != ""):
		return nil, urlError(raw, ": a path is only for ws:// and wss://")
	case bare && pu.Port() == "":
		return nil, urlError(raw, ": want host:port or a URL such as tcp://%s", Redact(raw))
	case strings.HasSuffix(pu.Host, ":"):
		return nil, urlError(raw, ": empty port")
	case strings.Count(pu.Host, ":") > 1 && !strings.HasPrefix(pu.Host, "["):
		return nil, urlError(raw, ": an IPv6 address goes in brackets, as in [::1]:1883")
	}
	port := pu.Port()
	if port == "" {
		port = kind.port
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, urlError(raw, ": bad port %q", port)
	}
	u.Host = net.JoinHostPort(pu.Hostname(), port)
	if kind.ws {
		u.Path, u.RawQuery = pu.EscapedPath(), pu.RawQuery
		if u.Path == "" {
			u.Path = "/mqtt"
		}
	}
	return u, nil
}

// URLError is a URL that cannot be used. Its message starts with the
// URL, quoted and redacted, so that FlagError can put the flag that gave
// it first.
type URLError struct {
	URL    string // redacted
	Reason string // what follows the URL: ": unknown scheme ..."
}

func (e *URLError) Error() string { return strconv.Quote(e.URL) + e.Reason }

func urlError(raw, format string, args ...any) error {
	return &URLError{URL: Redact(raw), Reason: fmt.Sprintf(format, args...)}
}

// FlagError names the flag that gave a bad URL: --broker "x": ...; other
// errors (a file, an option) already name their own flag.
func FlagError(flag string, err error) error {
	var ue *URLError
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %w", flag, err)
	}
	return err
}

// Redact masks the password of scheme://user:password@host (or
// user:password@host) as xxxxx, and the values of a query (which may be a
// token or a signature). A URL that does not parse is masked the same way.
func Redact(raw string) string {
	s := raw
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		start := 0
		if i := strings.Index(s, "://"); i >= 0 && i < at {
			start = i + 3
		}
		if user, _, ok := strings.Cut(s[start:at], ":"); ok {
			s = s[:start] + user + ":xxxxx" + s[at:]
		}
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		q := strings.Split(s[i+1:], "&")
		for j, kv := range q {
			if k, _, ok := strings.Cut(kv, "="); ok {
				q[j] = k + "=xxxxx"
			}
		}
		s = s[:i+1] + strings.Join(q, "&")
	}
	return s
}

// defaultPort reports whether u's port is its scheme's default, which a
// WebSocket request leaves out of the Host header, as browsers do.
func (u *URL) defaultPort() bool {
	_, port, _ := net.SplitHostPort(u.Host)
	return port == kinds[u.Scheme].port
}
