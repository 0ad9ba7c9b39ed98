package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// workerRun is how the parent spreads a run.
type workerRun struct {
	workers int
	dir     string
	quiet   bool
	startAt time.Time
	runID   uint32
	// transport reaches the workers in their configuration, on stdin:
	// headers may hold a token.
	transport transport.Options
	tls       loadgen.ClientTLS
	// slo is checked on the merged results (--slo).
	slo loadgen.SLO
	// saturation are the workers' limits on themselves (--saturation).
	saturation loadgen.SaturationLimits
	// metrics, when set, serves the sum of the workers' running totals.
	metrics *metricsServer
	// faults are run by the parent, on its clock (nil: none).
	faults *faultRun
}

// worker is the parent's handle on one worker process.
type worker struct {
	i    int
	cmd  *exec.Cmd
	mu   sync.Mutex // guards enc
	enc  *json.Encoder
	in   io.WriteCloser
	gone bool // exited; the wait loop's
	code int  // exit code, set before the worker's index is sent on exits
}

func (w *worker) send(m workerMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enc.Encode(m) //nolint:errcheck // a worker gone shows in its exit code
}

// runWorkers runs sc as wr.workers shards in worker processes (this
// executable, re-run as `load-worker`), coordinates their phases, shows
// one progress line for all of them, and merges their results (each in
// DIR/shard-i) into DIR exactly as `mqttbench merge` would. SIGINT stops
// every worker; what they collected is merged and written (exit 130).
func runWorkers(ctx context.Context, sc loadgen.Scenario, wr workerRun, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		return usageError(stderr, "load", "", "finding this executable to start workers: %v", err)
	}
	runID := wr.runID
	if runID == 0 {
		var b [4]byte
		crand.Read(b[:]) //nolint:errcheck // never fails on Linux
		runID = binary.BigEndian.Uint32(b[:]) | 1
	}
	n := wr.workers
	wr.faults.begin()
	group := loadgen.NewGroup(n, 100*time.Millisecond)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var errMu sync.Mutex
	agg := &progressAgg{latest: make([]*reports.LoadSecond, n), e2e: make([]*loadgen.Histogram, n)}
	workers := make([]*worker, n)
	exits := make(chan int, n)
	for i := range n {
		w := &worker{i: i}
		w.cmd = exec.Command(exe, "load-worker")
		w.cmd.Stderr = &prefixWriter{mu: &errMu, w: stderr, prefix: fmt.Sprintf("mqttbench load: worker %d: ", i)}
		in, err1 := w.cmd.StdinPipe()
		out, err2 := w.cmd.StdoutPipe()
		if err := errors.Join(err1, err2); err != nil {
			return usageError(stderr, "load", "", "starting worker %d: %v", i, err)
		}
		if err := w.cmd.Start(); err != nil {
			for _, o := range workers[:i] {
				o.cmd.Process.Kill() //nolint:errcheck
			}
			return usageError(stderr, "load", "", "starting worker %d: %v", i, err)
		}
		w.in, w.enc = in, json.NewEncoder(in)
		workers[i] = w
		cfg := workerConfig{Scenario: sc, Shard: loadgen.Shard{Index: i, Count: n}, RunID: runID,
			Out: filepath.Join(wr.dir, fmt.Sprintf("shard-%d", i)), StartAt: wr.startAt, Transport: wr.transport, TLS: wr.tls,
			Live: wr.metrics != nil, Saturation: wr.saturation}
		w.mu.Lock()
		w.enc.Encode(cfg) //nolint:errcheck
		w.mu.Unlock()

		readDone := make(chan struct{})
		go func() { // the worker's reports
			defer close(readDone)
			dec := json.NewDecoder(out)
			for {
				var m workerMsg
				if err := dec.Decode(&m); err != nil {
					return
				}
				switch m.T {
				case "tick":
					agg.tick(i, m)
				case "live":
					if wr.metrics != nil && m.Live != nil {
						wr.metrics.exp.Update(i, m.Live)
					}
				case "connected":
					go func() {
						if at, err := group.Connect(runCtx); err == nil {
							w.send(workerMsg{T: "publish", At: at.UnixNano()})
						}
					}()
				case "drain":
					if m.Drain != nil && group.Report(i, *m.Drain) {
						for _, o := range workers {
							o.send(workerMsg{T: "drained"})
						}
					}
				}
			}
		}()
		go func() {
			<-readDone // Wait closes stdout: read the last reports first
			err := w.cmd.Wait()
			w.code = 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				w.code = ee.ExitCode()
			} else if err != nil {
				w.code = exitUsage
			}
			exits <- i
		}()
	}

	// Wait for every worker, showing progress; stop them all on SIGINT or
	// when one fails.
	total := sc.TotalConnections()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	var rss rssSample
	failed := -1
	stopping := false
	stopAll := func() {
		if stopping {
			return
		}
		stopping = true
		for _, w := range workers {
			if !w.gone {
				w.send(workerMsg{T: "stop"})
				w.cmd.Process.Signal(os.Interrupt) //nolint:errcheck
			}
		}
	}
	var killAt <-chan time.Time
	for remaining := n; remaining > 0; {
		select {
		case i := <-exits:
			w := workers[i]
			w.gone = true
			w.in.Close()
			remaining--
			if w.code != exitOK && w.code != exitInterrupted && failed < 0 {
				failed = i
				cancel()
				stopAll()
				killAt = time.After(30 * time.Second)
			}
		case <-runCtx.Done():
			if !stopping {
				stopAll()
				killAt = time.After(30 * time.Second)
			}
		case <-killAt:
			for _, w := range workers {
				if !w.gone {
					w.cmd.Process.Kill() //nolint:errcheck
				}
			}
		case now := <-tick.C:
			if s, ok := agg.second(now.Sub(start).Seconds()); ok {
				if s.Phase == "hold" || s.Phase == "publish" {
					rss.take(workers)
				}
				if !wr.quiet {
					agg.print(stderr, s, total, n)
				}
			}
		}
	}
	if s, ok := agg.second(time.Since(start).Seconds()); ok && !wr.quiet {
		agg.print(stderr, s, total, n) // the workers' last (partial) seconds
	}
	if failed >= 0 && ctx.Err() == nil {
		return usageError(stderr, "load", "", "worker %d failed (exit %d); the run was stopped", failed, workers[failed].code)
	}

	var parts []*loadgen.Results
	for i := range n {
		r, err := loadgen.ReadResults(filepath.Join(wr.dir, fmt.Sprintf("shard-%d", i)))
		if err != nil {
			if ctx.Err() != nil {
				continue // interrupted before it had anything to write
			}
			return usageError(stderr, "load", "", "reading worker %d's results: %v", i, err)
		}
		parts = append(parts, r)
	}
	if len(parts) == 0 {
		fmt.Fprintln(stderr, "mqttbench load: interrupted before any worker had results")
		return exitInterrupted
	}
	merged, err := loadgen.Merge(parts)
	if err != nil {
		return usageError(stderr, "load", "", "merging the workers' results: %v", err)
	}
	merged.Summary.SLO = wr.slo.Check(merged.Summary)
	if rss.bytes > 0 && merged.Summary.Connections.Target > 0 {
		c := &merged.Summary.Connections
		c.MemPerConn = float64(rss.bytes) / float64(c.Target)
		c.MemNote = fmt.Sprintf("summed RSS of %d generator processes (%d workers and their parent)", rss.procs, rss.procs-1)
	}
	wr.faults.record(merged.Summary, merged.Verify)
	if err := merged.Write(wr.dir); err != nil {
		return usageError(stderr, "load", "", "writing the merged results: %v", err)
	}
	return printLoad(stdout, merged.Summary, wr.dir)
}

// progressAgg sums the workers' latest seconds into one progress line.
type progressAgg struct {
	mu             sync.Mutex
	latest         []*reports.LoadSecond
	e2e            []*loadgen.Histogram
	errors, missed uint64
}

func (a *progressAgg) tick(i int, m workerMsg) {
	if m.Second == nil {
		return
	}
	var h *loadgen.Histogram
	if len(m.E2E) > 0 {
		h, _ = hdr.Decode(m.E2E)
	}
	a.mu.Lock()
	a.latest[i], a.e2e[i] = m.Second, h
	a.errors += m.Second.Errors
	a.missed += m.Second.Missed
	a.mu.Unlock()
}

func (a *progressAgg) print(w io.Writer, s reports.LoadSecond, total, workers int) {
	a.mu.Lock()
	errs, missed := a.errors, a.missed
	a.mu.Unlock()
	fmt.Fprintf(w, "[%5.0fs %-7s] conns %d/%d  sent %d/s  recv %d/s  p99 e2e %s  errors %d  missed %d  (%d workers)\n",
		s.T, s.Phase, s.Connections, total, s.Sent, s.Received, micros(s.P99E2E), errs, missed, workers)
}

// second is the sum of the latest second of every worker, its p99 that of
// their end-to-end histograms merged.
func (a *progressAgg) second(t float64) (reports.LoadSecond, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := reports.LoadSecond{T: t}
	h := loadgen.NewHistogram()
	any := false
	for i, l := range a.latest {
		if l == nil {
			continue
		}
		any = true
		if s.Phase == "" {
			s.Phase = strings.TrimSuffix(l.Phase, " (partial)")
		}
		s.Sent += l.Sent
		s.Received += l.Received
		s.Connections += l.Connections
		if a.e2e[i] != nil {
			h.Merge(a.e2e[i])
		}
	}
	s.P99E2E = h.ValueAtQuantile(99)
	return s, any
}

// rssSample is the summed resident memory of the generator's processes.
type rssSample struct {
	bytes uint64
	procs int
}

func (r *rssSample) take(workers []*worker) {
	sum, procs := rssOf(os.Getpid()), 1
	for _, w := range workers {
		if w.gone {
			continue
		}
		v := rssOf(w.cmd.Process.Pid)
		if v == 0 {
			return // gone or unreadable: keep the last full sample
		}
		sum += v
		procs++
	}
	if sum > 0 {
		r.bytes, r.procs = sum, procs
	}
}

// rssOf reads a process's resident set size from /proc (0 if it cannot).
func rssOf(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
