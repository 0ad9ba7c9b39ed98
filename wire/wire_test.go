package wire

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Passwords never reach a trace: decoded packets show only the length and
// the hex of any packet holding a redacted secret is withheld, whether it
// was sent as a packet or as raw bytes.
func TestTraceRedactsSecrets(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	tr := NewTrace()
	tr.Redact("s3cret-pw")
	c := New(a, "c", packetgen.V311, tr)
	defer c.Close()
	cp := &packetgen.Connect{ProtocolLevel: 4, ClientID: "x", CleanStart: true,
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("s3cret-pw")}
	if err := c.Send(cp); err != nil {
		t.Fatal(err)
	}
	if err := c.SendRaw(packetgen.AppendUnchecked(nil, cp, 4), "raw CONNECT"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	secretHex := strings.ToUpper(strings.Join(strings.Fields(spaced([]byte("s3cret-pw"))), " "))
	for _, e := range tr.Entries() {
		if strings.Contains(e.Packet, "s3cret") || strings.Contains(e.Hex, secretHex) || strings.Contains(e.Hex, "73 33 63") {
			t.Fatalf("secret in trace: %+v", e)
		}
	}
	if len(tr.Entries()) < 2 || !strings.Contains(tr.Entries()[0].Hex, "withheld") {
		t.Fatalf("trace %+v", tr.Entries())
	}
}

func spaced(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		s.WriteString(strings.ToUpper(string("0123456789abcdef"[c>>4])) + strings.ToUpper(string("0123456789abcdef"[c&15])) + " ")
	}
	return s.String()
}
