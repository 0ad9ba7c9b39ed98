package fuzz

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// PanicWatch is a slog.Handler for a broker under test: it counts the
// error records that mention a panic (a broker that recovers panics per
// connection logs them and goes on, so only its log shows the crash) and
// keeps the last one. Everything else is dropped.
type PanicWatch struct {
	n    atomic.Int64
	mu   sync.Mutex
	last string
}

// Count is the number of panics logged so far.
func (w *PanicWatch) Count() int64 { return w.n.Load() }

// Last is the last panic record, message and attributes.
func (w *PanicWatch) Last() string { w.mu.Lock(); defer w.mu.Unlock(); return w.last }

func (w *PanicWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (w *PanicWatch) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	if s := b.String(); strings.Contains(strings.ToLower(s), "panic") {
		w.mu.Lock()
		w.last = s
		w.mu.Unlock()
		w.n.Add(1)
	}
	return nil
}

func (w *PanicWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *PanicWatch) WithGroup(string) slog.Handler      { return w }
