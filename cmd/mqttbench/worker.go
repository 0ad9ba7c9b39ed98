package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// `mqttbench load` spreads a TCP scenario over worker processes: itself,
// re-executed as the hidden `load-worker` command, each running one shard.
// The parent and a worker talk in JSON lines: the worker's stdin carries
// its configuration first (credentials included, so they never show in a
// command line) and then the parent's orders; its stdout carries its
// progress. Its stderr is the parent's, line by line.

// workerConfig is the first line a worker reads.
type workerConfig struct {
	Scenario loadgen.Scenario `json:"scenario"`
	Shard    loadgen.Shard    `json:"shard"`
	RunID    uint32           `json:"run_id"`
	Out      string           `json:"out"`
	StartAt  time.Time        `json:"start_at"`
	// Transport holds TLS files and WebSocket headers for the brokers.
	Transport transport.Options `json:"transport"`
	// TLS names each connection's certificate files, or the CA files to
	// mint them from, and whether sessions resume.
	TLS loadgen.ClientTLS `json:"tls,omitzero"`
	// Live asks for the running totals every second (--metrics-addr).
	Live bool `json:"live,omitempty"`
	// Saturation are the generator's limits on itself (--saturation).
	Saturation loadgen.SaturationLimits `json:"saturation,omitzero"`
}

// workerMsg is a line either way.
type workerMsg struct {
	T string `json:"t"` // tick, live, connected, drain, rss; publish, drained, stop

	Second *reports.LoadSecond `json:"second,omitempty"`
	E2E    []byte              `json:"e2e,omitempty"` // the second's end-to-end histogram, compressed
	Ready  int64               `json:"ready,omitempty"`
	Drain  *loadgen.DrainState `json:"drain,omitempty"`
	At     int64               `json:"at,omitempty"` // publish: Unix ns
	Live   *loadgen.Live       `json:"live,omitempty"`
}

// runLoadWorker is one worker: it runs its shard and writes the results to
// the directory its configuration names. Exit codes: 0 done (the parent
// judges the merged run), 2 the shard could not start, 130 interrupted.
func runLoadWorker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		return usageError(stderr, "load-worker", "", "takes no arguments: it is started by mqttbench load")
	}
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return usageError(stderr, "load-worker", "", "reading the configuration on stdin: %v", err)
	}
	var cfg workerConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return usageError(stderr, "load-worker", "", "configuration: %v", err)
	}
	sc := cfg.Scenario
	if err := sc.Validate(); err != nil {
		return usageError(stderr, "load-worker", "", "%v", err)
	}
	if err := loadgen.Preflight(sc, cfg.Shard, 1); err != nil {
		return usageError(stderr, "load-worker", "", "%v", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	co := &pipeCoordinator{out: json.NewEncoder(stdout), publish: make(chan time.Time, 1)}
	go func() { // the parent's orders; EOF means the parent is gone
		defer cancel()
		dec := json.NewDecoder(in)
		for {
			var m workerMsg
			if err := dec.Decode(&m); err != nil {
				return
			}
			switch m.T {
			case "publish":
				co.publish <- time.Unix(0, m.At)
			case "drained":
				co.drained.Store(true)
			case "stop":
				return
			}
		}
	}()
	opts := loadgen.Options{
		Out: cfg.Out, Shard: cfg.Shard, RunID: cfg.RunID, Coordinator: co, StartAt: cfg.StartAt, Transport: cfg.Transport, TLS: cfg.TLS,
		Saturation: cfg.Saturation,
		Interval: func(s reports.LoadSecond, e2e *loadgen.Histogram) {
			m := workerMsg{T: "tick", Second: &s}
			if e2e != nil && e2e.TotalCount() > 0 {
				m.E2E, _ = e2e.Encode(hdr.V2CompressedEncodingCookieBase)
			}
			co.send(m)
		},
	}
	if cfg.Live {
		opts.Live = func(l *loadgen.Live) { co.send(workerMsg{T: "live", Live: l}) }
	}
	res, err := loadgen.Run(ctx, sc, opts)
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return usageError(stderr, "load-worker", "", "%v", err)
	}
	if res.Summary.Interrupted {
		return exitInterrupted
	}
	return exitOK
}

// pipeCoordinator is a worker's side of the parent's loadgen.Group.
type pipeCoordinator struct {
	mu      sync.Mutex
	out     *json.Encoder
	publish chan time.Time
	drained atomic.Bool
	last    loadgen.DrainState
	lastAt  time.Time
}

func (c *pipeCoordinator) send(m workerMsg) {
	c.mu.Lock()
	c.out.Encode(m) //nolint:errcheck // a parent gone shows as EOF on stdin
	c.mu.Unlock()
}

func (c *pipeCoordinator) Connected(ctx context.Context, ready int64) (time.Time, error) {
	c.send(workerMsg{T: "connected", Ready: ready})
	select {
	case at := <-c.publish:
		return at, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// Drained sends the state when it changed, at most every 20 ms, and
// answers what the parent last said.
func (c *pipeCoordinator) Drained(st loadgen.DrainState) bool {
	if now := time.Now(); st != c.last || now.Sub(c.lastAt) > 200*time.Millisecond {
		if now.Sub(c.lastAt) >= 20*time.Millisecond {
			c.send(workerMsg{T: "drain", Drain: &st})
			c.last, c.lastAt = st, now
		}
	}
	return c.drained.Load()
}

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
	}
}
