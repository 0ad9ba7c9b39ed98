package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/mqttbench/mqttbench/reports"
)

// Payload templates: Scenario.PayloadTemplate names a text/template file
// rendered for every message, with these functions:
//
//	{{index}}      the message's sequence number (per publisher, from 0)
//	{{publisher}}  the publisher's index
//	{{time}}       when the message was due, RFC 3339 with nanoseconds, UTC
//	{{unixms}}     the same in Unix milliseconds
//	{{rand N}}     a random integer in [0, N), from the seed, the
//	               publisher and the sequence number (a resend repeats it)
//	{{json FILE}}  FILE's JSON, compacted (read once; relative to the template)
//	{{header}}     the sequence header, in text (52 ASCII characters)
//
// The sequence header makes a message verifiable: where the template puts
// {{header}} (inside a JSON string, say), or at the front of the payload
// when it does not. It is always the text header, so a text template
// stays text.
type payloadTemplate struct {
	path   string
	dir    string
	seed   uint64
	tmpl   *template.Template
	header bool // the template places the header itself
	sample int  // bytes of a first rendering, for buffer sizes

	jsonMu sync.Mutex
	jsons  map[string]string

	pool sync.Pool // *renderer

	n, sum     atomic.Uint64
	minB, maxB atomic.Int64
}

// headerMark stands for the header while a template renders; it is then
// overwritten in place.
var headerMark = "MBt" + strings.Repeat("~", TextHeaderSize-3)

// renderer is one template clone whose functions read its state.
type renderer struct {
	t      *template.Template
	h      Header
	pcg    *rand.PCG
	rng    *rand.Rand
	called bool // {{header}} ran
	buf    bytes.Buffer
}

// loadTemplate reads and checks a template: it must parse and render.
func loadTemplate(path string, seed uint64) (*payloadTemplate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("payload template: %v", err)
	}
	pt := &payloadTemplate{path: path, dir: filepath.Dir(path), seed: seed, jsons: map[string]string{}}
	pt.minB.Store(-1)
	t, err := template.New(filepath.Base(path)).Option("missingkey=error").Funcs(pt.funcs(&renderer{})).Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("payload template %v", err)
	}
	pt.tmpl = t
	pt.pool.New = func() any { return pt.newRenderer() }
	r := pt.pool.Get().(*renderer)
	out, err := r.render(Header{Due: time.Now().UnixNano()}, seed)
	if err != nil {
		return nil, err
	}
	pt.header, pt.sample = r.called, len(out)
	pt.pool.Put(r)
	return pt, nil
}

func (pt *payloadTemplate) newRenderer() *renderer {
	r := &renderer{pcg: rand.NewPCG(0, 0)}
	r.rng = rand.New(r.pcg)
	r.t = template.Must(pt.tmpl.Clone()).Funcs(pt.funcs(r))
	return r
}

// funcs are the template's functions, bound to r's state.
func (pt *payloadTemplate) funcs(r *renderer) template.FuncMap {
	return template.FuncMap{
		"index":     func() uint64 { return r.h.Seq },
		"publisher": func() uint32 { return r.h.Publisher },
		"time":      func() string { return time.Unix(0, r.h.Due).UTC().Format(time.RFC3339Nano) },
		"unixms":    func() int64 { return r.h.Due / 1e6 },
		"rand": func(n int) (int, error) {
			if n <= 0 {
				return 0, fmt.Errorf("rand %d: want a bound above 0", n)
			}
			return r.rng.IntN(n), nil
		},
		"json": pt.json,
		"header": func() string {
			r.called = true
			return headerMark
		},
	}
}

// json is FILE's JSON, compacted, read once.
func (pt *payloadTemplate) json(file string) (string, error) {
	if !filepath.IsAbs(file) {
		file = filepath.Join(pt.dir, file)
	}
	pt.jsonMu.Lock()
	defer pt.jsonMu.Unlock()
	if s, ok := pt.jsons[file]; ok {
		return s, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return "", fmt.Errorf("json %s: %v", file, err)
	}
	pt.jsons[file] = out.String()
	return out.String(), nil
}

// render renders the payload of the message with header h, header
// included; the bytes are r's until its next render.
func (r *renderer) render(h Header, seed uint64) ([]byte, error) {
	r.h, r.called = h, false
	r.pcg.Seed(seed^uint64(h.Publisher)<<32, h.Seq)
	r.buf.Reset()
	if err := r.t.Execute(&r.buf, nil); err != nil {
		return nil, fmt.Errorf("payload template: %v", err)
	}
	b := r.buf.Bytes()
	if !r.called {
		// No {{header}}: the header goes in front.
		b = append(b, headerMark...)
		copy(b[TextHeaderSize:], b[:len(b)-TextHeaderSize])
		PutTextHeader(b, h)
		return b, nil
	}
	i := bytes.Index(b, []byte(headerMark))
	if i < 0 {
		return nil, errors.New("payload template: the output of {{header}} was changed (pipe it into nothing that alters it)")
	}
	PutTextHeader(b[i:], h)
	return b, nil
}

// render renders message h's payload; done gives the buffer back once
// the payload has been copied.
func (pt *payloadTemplate) render(h Header) (payload []byte, done func(), err error) {
	r := pt.pool.Get().(*renderer)
	b, err := r.render(h, pt.seed)
	if err != nil {
		pt.pool.Put(r)
		return nil, func() {}, err
	}
	pt.note(len(b))
	return b, func() { pt.pool.Put(r) }, nil
}

// note adds a rendering's size to the statistics.
func (pt *payloadTemplate) note(n int) {
	pt.n.Add(1)
	pt.sum.Add(uint64(n))
	for {
		cur := pt.minB.Load()
		if cur >= 0 && cur <= int64(n) || pt.minB.CompareAndSwap(cur, int64(n)) {
			break
		}
	}
	for {
		cur := pt.maxB.Load()
		if cur >= int64(n) || pt.maxB.CompareAndSwap(cur, int64(n)) {
			break
		}
	}
}

func (pt *payloadTemplate) summary() *reports.LoadTemplate {
	out := &reports.LoadTemplate{File: pt.path, HeaderField: pt.header, Messages: pt.n.Load()}
	if out.Messages > 0 {
		out.MinBytes, out.MaxBytes = int(pt.minB.Load()), int(pt.maxB.Load())
		out.MeanBytes = float64(pt.sum.Load()) / float64(out.Messages)
	}
	return out
}

// findTextHeader finds a text header anywhere in a payload, for payloads
// from a template that places it ({{header}}).
func findTextHeader(b []byte) (Header, bool) {
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte("MBt"))
		if i < 0 || off+i+TextHeaderSize > len(b) {
			return Header{}, false
		}
		if h, ok := parseTextHeader(b[off+i:]); ok {
			return h, true
		}
		off += i + 1
	}
}
