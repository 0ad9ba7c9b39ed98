package transport

import (
	"flag"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
)

// Flags are the dial flags every command shares (and go test ./suites
// -args takes): --cacert --cert --key --insecure --servername --alpn
// --tls-min --header. One set, so a user never learns a second one per
// command or transport.
type Flags struct {
	TLS     TLSOptions
	alpn    string
	headers []string
}

// AddFlags registers the dial flags on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.TLS.CACert, "cacert", "", "TLS: PEM file of the certificate authorities to trust (default: the system's)")
	fs.StringVar(&f.TLS.Cert, "cert", "", "TLS: PEM client certificate (needs --key)")
	fs.StringVar(&f.TLS.Key, "key", "", "TLS: PEM private key of --cert")
	fs.BoolVar(&f.TLS.Insecure, "insecure", false, "TLS: do not verify the broker's certificate (testing only)")
	fs.StringVar(&f.TLS.ServerName, "servername", "", "TLS: server name to send (SNI) and verify (default: the URL's host)")
	fs.StringVar(&f.alpn, "alpn", "", "TLS: application protocols to offer, comma separated (e.g. mqtt)")
	fs.StringVar(&f.TLS.MinVersion, "tls-min", "", "TLS: lowest version accepted, 1.2 or 1.3 (default 1.2)")
	fs.Var((*headerList)(&f.headers), "header", "WebSocket: NAME:VALUE added to the upgrade request (repeatable), e.g. 'Authorization: Bearer ...'")
	return f
}

// headerList collects --header as given; it is checked by Options so
// that a bad one is reported without its value (it may be a token).
type headerList []string

func (h *headerList) String() string     { return "" }
func (h *headerList) Set(s string) error { *h = append(*h, s); return nil }

// HeadersGiven reports whether --header was used.
func (f *Flags) HeadersGiven() bool { return len(f.headers) > 0 }

// Options are the dial options the flags say. Errors name the flag,
// never a header's value.
func (f *Flags) Options() (Options, error) {
	o := Options{TLS: f.TLS}
	o.TLS.ALPN = nil
	for _, p := range strings.Split(f.alpn, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.TLS.ALPN = append(o.TLS.ALPN, p)
		}
	}
	h, err := ParseHeaders(f.headers)
	if err != nil {
		return o, err
	}
	o.WebSocket.Headers = h
	return o, nil
}

// ParseHeaders reads NAME:VALUE lines (--header, or one a line from an
// environment variable). Errors never show a value.
func ParseHeaders(lines []string) (http.Header, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	h := http.Header{}
	for i, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("--header #%d: want NAME:VALUE", i+1)
		}
		if strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf("--header %s: a value cannot span lines", name)
		}
		switch textproto.CanonicalMIMEHeaderKey(name) {
		case "Sec-Websocket-Protocol", "Sec-Websocket-Key", "Sec-Websocket-Version", "Upgrade", "Connection":
			return nil, fmt.Errorf("--header %s: the WebSocket handshake sets it", name)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}
