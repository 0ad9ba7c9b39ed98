package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/suites"
)

// Ginkgo runs one spec at a time per process, so conform --concurrency N
// runs N copies of itself (conform --shard i/N), each a shard of the
// specs, and merges what they write. The shards share the seed, so they
// split the same list of specs; each spec still has a world of its own.

// shardRun is one conformance run split over n processes.
type shardRun struct {
	n        int
	cfg      suites.Config // broker name, protocol, seed and profile of the run
	target   string        // the --broker URL the shards dial
	args     []string      // flags every shard repeats
	password string        // handed over in the environment, never on a command line
	env      []string      // more environment: WebSocket headers (dialEnv), never on a command line
	stderr   io.Writer
}

// shardArgs are the flags the user gave that every shard repeats: all but
// those runShards sets itself and the password.
func shardArgs(fs *flag.FlagSet) []string {
	own := map[string]bool{"broker": true, "seed": true, "json": true, "junit": true,
		"concurrency": true, "shard": true, "password": true, "header": true, "html": true, "baseline": true}
	var args []string
	fs.Visit(func(f *flag.Flag) {
		if own[f.Name] {
			return
		}
		if l, ok := f.Value.(*listFlag); ok {
			for _, v := range *l {
				args = append(args, "--"+f.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	return args
}

// shardInterruptWait is how long shards get to write their results after
// SIGINT before they are killed.
const shardInterruptWait = 60 * time.Second

// runShards runs the shards at once and merges their results. SIGINT (ctx
// done) is passed on to every shard, which writes what it has; a shard
// that fails to start or to run (a usage error, an unreachable broker) is
// the run's error.
func runShards(ctx context.Context, r shardRun) (*reports.Conformance, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mqttbench-conform-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	stderr := &syncWriter{w: r.stderr}
	cmds := make([]*exec.Cmd, r.n)
	tails := make([]*bytes.Buffer, r.n)
	outs := make([]string, r.n)
	for i := range r.n {
		outs[i] = filepath.Join(dir, fmt.Sprintf("shard-%d.json", i+1))
		args := append([]string{"conform", "--broker", r.target, "--seed", fmt.Sprint(r.cfg.Seed),
			"--shard", fmt.Sprintf("%d/%d", i+1, r.n), "--json", outs[i]}, r.args...)
		cmd := exec.Command(exe, args...)
		cmd.Env = append(append(os.Environ(), "MQTTBENCH_PASSWORD="+r.password), r.env...)
		tails[i] = &bytes.Buffer{}
		cmd.Stdout = io.Discard // the merged result is printed once, here
		cmd.Stderr = io.MultiWriter(stderr, tails[i])
		// SIGINT from the terminal reaches this process only; it is
		// passed on once, so that no shard sees it twice.
		ownProcessGroup(cmd)
		if err := cmd.Start(); err != nil {
			for _, c := range cmds[:i] {
				c.Process.Kill() //nolint:errcheck
				c.Wait()         //nolint:errcheck
			}
			return nil, fmt.Errorf("starting shard %d/%d: %v", i+1, r.n, err)
		}
		cmds[i] = cmd
	}
	codes := make([]int, r.n)
	done := make(chan int, r.n)
	for i, cmd := range cmds {
		go func() {
			err := cmd.Wait()
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				codes[i] = ee.ExitCode()
			case err != nil:
				codes[i] = exitUsage
			}
			done <- i
		}()
	}
	finished := make([]bool, r.n)
	interrupt := ctx.Done()
	var kill <-chan time.Time
	for left := r.n; left > 0; {
		select {
		case i := <-done:
			finished[i] = true
			left--
		case <-interrupt:
			interrupt = nil
			for i, cmd := range cmds {
				if !finished[i] {
					cmd.Process.Signal(os.Interrupt) //nolint:errcheck
				}
			}
			kill = time.After(shardInterruptWait)
		case <-kill:
			for i, cmd := range cmds {
				if !finished[i] {
					cmd.Process.Kill() //nolint:errcheck
				}
			}
		}
	}
	parts := make([]*reports.Conformance, r.n)
	for i := range cmds {
		if codes[i] == exitUsage {
			return nil, fmt.Errorf("shard %d/%d: %s", i+1, r.n, lastLine(tails[i].String()))
		}
		res, err := reports.ReadConformance(outs[i])
		if err != nil {
			if ctx.Err() != nil {
				continue // killed before it wrote anything: the run is interrupted
			}
			return nil, fmt.Errorf("shard %d/%d wrote no result (exit %d): %v", i+1, r.n, codes[i], err)
		}
		parts[i] = res
	}
	res := suites.Merge(r.cfg, parts)
	res.Interrupted = res.Interrupted || ctx.Err() != nil
	return res, nil
}

// syncWriter serialises the writes of several shards' output copiers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
