package loadgen

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const jsonTemplate = `{"mb":"{{header}}","i":{{index}},"p":{{publisher}},"t":"{{time}}","ms":{{unixms}},"r":{{rand 1000000}},"body":{{json "body.json"}}}`

type rendered struct {
	MB   string          `json:"mb"`
	I    uint64          `json:"i"`
	P    uint32          `json:"p"`
	T    string          `json:"t"`
	MS   int64           `json:"ms"`
	R    int             `json:"r"`
	Body json.RawMessage `json:"body"`
}

// Every field renders, the header is where the template put it, and a
// message renders the same twice (a resend repeats it).
func TestTemplateRender(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t.tmpl": jsonTemplate, "body.json": "{\n  \"kind\": \"sensor\",  \"v\": [1, 2]\n}\n"})
	pt, err := loadTemplate(filepath.Join(dir, "t.tmpl"), 7)
	if err != nil {
		t.Fatal(err)
	}
	if !pt.header {
		t.Fatal("the template's {{header}} was not noticed")
	}
	due := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	h := Header{QoS: 1, Run: 0xabcdef01, Publisher: 3, Seq: 42, Due: due}
	render := func(h Header) ([]byte, rendered) {
		b, done, err := pt.render(h)
		if err != nil {
			t.Fatal(err)
		}
		out := append([]byte(nil), b...)
		done()
		var r rendered
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		return out, r
	}
	b1, r1 := render(h)
	if r1.I != 42 || r1.P != 3 || r1.T != "2026-01-02T03:04:05.000000006Z" || r1.MS != due/1e6 || string(r1.Body) != `{"kind":"sensor","v":[1,2]}` {
		t.Errorf("rendered %+v", r1)
	}
	got, ok := findTextHeader(b1)
	if !ok || got != h || !strings.HasPrefix(r1.MB, "MBt1abcdef01") {
		t.Errorf("header %+v (%v) in %s, want %+v", got, ok, b1, h)
	}
	b2, _ := render(h)
	if string(b1) != string(b2) {
		t.Errorf("one message rendered twice differs:\n%s\n%s", b1, b2)
	}
	h.Seq++
	_, r3 := render(h)
	if r3.R == r1.R {
		t.Errorf("{{rand}} gave %d for two messages", r3.R)
	}
	if s := pt.summary(); s.Messages != 3 || s.MinBytes == 0 || s.MaxBytes < s.MinBytes {
		t.Errorf("summary %+v", s)
	}
}

// Without {{header}} the header goes in front, where ParseHeader reads it.
func TestTemplateHeaderInFront(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t.tmpl": "reading {{index}} of sensor {{publisher}}"})
	pt, err := loadTemplate(filepath.Join(dir, "t.tmpl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := Header{QoS: 2, Run: 9, Publisher: 1, Seq: 5, Due: 123}
	b, done, err := pt.render(h)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if got, ok := ParseHeader(b); !ok || got != h || string(b[TextHeaderSize:]) != "reading 5 of sensor 1" {
		t.Errorf("payload %q: header %+v %v", b, got, ok)
	}
}

func TestTemplateErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"syntax.tmpl": "{{index", "rand.tmpl": "{{rand 0}}", "json.tmpl": `{{json "bad.json"}}`, "bad.json": "{nope",
		"nofile.tmpl": `{{json "none.json"}}`, "altered.tmpl": `{{header | printf "%.5s"}}`,
	})
	for name, want := range map[string]string{
		"syntax.tmpl": "payload template", "rand.tmpl": "want a bound above 0", "json.tmpl": "bad.json",
		"nofile.tmpl": "none.json", "altered.tmpl": "output of {{header}} was changed",
	} {
		_, err := loadTemplate(filepath.Join(dir, name), 0)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}

// A run with a template: the payloads on the wire are the template's,
// and verification still finds every message.
func TestTemplateRun(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t.tmpl": jsonTemplate, "body.json": `{"kind":"sensor"}`})
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addrs()[0].String()

	// A subscriber of our own sees the bytes the broker delivers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spy, err := wire.Dial(ctx, wire.TCP(addr), "spy", packetgen.V311, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	spy.Send(&packetgen.Connect{ProtocolLevel: packetgen.V311, CleanStart: true, ClientID: "spy"})
	spy.Send(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "tmpl/#"}}})
	for range 2 { // CONNACK, SUBACK
		if _, err := spy.Recv(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}

	sc := quick(2, 2, 1, "tmpl/{p}")
	sc.Brokers = []string{"tcp://" + addr}
	sc.PayloadTemplate = filepath.Join(dir, "t.tmpl")
	l := run(t, sc, Options{})
	checkClean(t, l, 1)
	if tp := l.Churn.Template; tp == nil || tp.Messages != l.Messages.Sent || !tp.HeaderField || tp.MinBytes < 100 {
		t.Errorf("template summary %+v", l.Churn.Template)
	}
	p, err := spy.Recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r rendered
	pub := p.(*packetgen.Publish)
	if err := json.Unmarshal(pub.Payload, &r); err != nil || string(r.Body) != `{"kind":"sensor"}` || r.T == "" {
		t.Errorf("payload %s: %v", pub.Payload, err)
	}
	if h, ok := findTextHeader(pub.Payload); !ok || h.Seq != r.I || h.Publisher != r.P {
		t.Errorf("header %+v %v, fields i=%d p=%d", h, ok, r.I, r.P)
	}
}
