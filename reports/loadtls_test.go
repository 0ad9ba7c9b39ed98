package reports

import (
	"bytes"
	"strings"
	"testing"
)

// A TLS run's summary names what the handshakes negotiated, how many
// resumed and where the client certificates came from, in the terminal
// table and the HTML report alike; the connect phases are metrics like
// any other.
func TestLoadTLSSection(t *testing.T) {
	run := fixtureLoad("tls", 0)
	l := run.Summary
	l.TLS = &LoadTLS{Handshakes: 1200, Resumed: 200, Resume: true, ClientCerts: "minted per connection by CA \"test CA\", common name dev-{i}",
		Negotiated: []LoadTLSParams{{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", Count: 1200}}}
	l.Latency = append([]LoadLatency{{Metric: "tls_handshake", Count: 1200, P50: 1500, P90: 2500, P99: 4000, P999: 5000, Max: 6000}}, l.Latency...)

	var term bytes.Buffer
	WriteLoadTable(&term, l)
	var page bytes.Buffer
	if err := WriteLoadHTML(&page, []LoadRun{run}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		where, text string
		want        []string
	}{
		{"terminal", term.String(), []string{"tls_handshake", "TLS 1.3 TLS_AES_128_GCM_SHA256; 1200 handshakes, 200 resumed", "dev-{i}"}},
		{"html", page.String(), []string{"tls_handshake", "TLS 1.3 TLS_AES_128_GCM_SHA256; 1200 handshakes, 200 resumed", "common name dev-{i}"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.text, w) {
				t.Errorf("%s lacks %q:\n%s", c.where, w, c.text)
			}
		}
	}
	// Without TLS there is no TLS row.
	l.TLS = nil
	term.Reset()
	WriteLoadTable(&term, l)
	if strings.Contains(term.String(), "handshakes") {
		t.Errorf("a run without TLS shows a TLS row:\n%s", term.String())
	}
}
