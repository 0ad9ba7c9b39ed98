package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on the broker process's waits.
const (
	// StopTimeout is how long a broker has to exit after SIGTERM before
	// SIGKILL.
	StopTimeout = 10 * time.Second
	// ReadyTimeout is how long a (re)started broker has to accept TCP
	// connections.
	ReadyTimeout = 30 * time.Second
)

// Broker is the broker process that process faults act on: a process
// given by PID, or one this process started (the --broker-cmd, or the
// restart command after a kill). Its methods are safe for concurrent use
// and run one at a time.
type Broker struct {
	// Addr is the broker's host:port, dialed to tell it is up.
	Addr string
	// Command starts the broker in the foreground (sh -c): the process
	// it starts is the broker from then on. "" cannot restart.
	Command string
	// Log receives the started broker's stdout and stderr; nil discards.
	Log *os.File

	mu    sync.Mutex
	pid   int
	child *child // nil when pid is not ours
}

// child is a broker process this process started, in its own process
// group so that a signal reaches the shell and what it runs.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// NewBroker is a broker already running as pid (0: none yet).
func NewBroker(pid int, addr, command string, log *os.File) *Broker {
	return &Broker{pid: pid, Addr: addr, Command: command, Log: log}
}

// PID is the broker's current process id (0 when none runs).
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pid
}

// Start runs the command and waits until the broker accepts connections.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.start(ctx)
}

func (b *Broker) start(ctx context.Context) error {
	if b.Command == "" {
		return errors.New("no command to start the broker with (--restart or --broker-cmd)")
	}
	cmd := exec.Command("sh", "-c", b.Command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if b.Log != nil {
		cmd.Stdout, cmd.Stderr = b.Log, b.Log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the broker (%s): %w", b.Command, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }() //nolint:errcheck // its exit is what done says
	b.pid, b.child = cmd.Process.Pid, c
	return b.waitReady(ctx, c)
}

// waitReady dials Addr until it answers, the child exits or the time is
// up.
func (b *Broker) waitReady(ctx context.Context, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	var d net.Dialer
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		nc, err := d.DialContext(dctx, "tcp", b.Addr)
		dcancel()
		if err == nil {
			nc.Close()
			return nil
		}
		if c != nil {
			select {
			case <-c.done:
				return fmt.Errorf("the broker (%s) exited before accepting connections on %s: %v", b.Command, b.Addr, c.cmd.ProcessState)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the broker did not accept connections on %s within %s", b.Addr, ReadyTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// signal sends sig to the broker: to the process group of a child, to
// the process otherwise.
func (b *Broker) signal(sig syscall.Signal) error {
	if b.pid == 0 {
		return errors.New("no broker process (--broker-pid or --broker-cmd)")
	}
	pid := b.pid
	if b.child != nil {
		pid = -pid
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("%s to broker pid %d: %w", sigName(sig), b.pid, err)
	}
	return nil
}

// waitExit waits, at most timeout, for the broker to exit.
func (b *Broker) waitExit(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if b.child != nil {
		select {
		case <-b.child.done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for !exited(b.pid) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// exited reports whether pid is gone or a zombie (dead, not yet reaped
// by a parent that is not us).
func exited(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false // no /proc: signal 0 is all we know
	}
	// The state follows the command name in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

// Kill sends SIGKILL and waits for the broker to be gone.
func (b *Broker) Kill(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kill(ctx)
}

func (b *Broker) kill(ctx context.Context) error {
	if err := b.signal(syscall.SIGKILL); err != nil {
		return err
	}
	if !b.waitExit(ctx, StopTimeout) {
		return fmt.Errorf("broker pid %d still there %s after SIGKILL", b.pid, StopTimeout)
	}
	b.pid, b.child = 0, nil
	return nil
}

// Stop sends SIGTERM, waits StopTimeout for the broker to exit, then
// sends SIGKILL.
func (b *Broker) Stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stop(ctx)
}

func (b *Broker) stop(ctx context.Context) error {
	if b.pid == 0 {
		return nil
	}
	// A stopped process acts on SIGTERM only once continued.
	if err := b.signal(syscall.SIGTERM); err != nil {
		return err
	}
	b.signal(syscall.SIGCONT) //nolint:errcheck // as good as SIGTERM got
	if b.waitExit(ctx, StopTimeout) {
		b.pid, b.child = 0, nil
		return nil
	}
	return b.kill(ctx)
}

// Restarted runs the command after a kill or stop and waits until the
// broker accepts connections.
func (b *Broker) Restarted(ctx context.Context) error { return b.Start(ctx) }

// Pause sends SIGSTOP; Resume sends SIGCONT.
func (b *Broker) Pause() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.signal(syscall.SIGSTOP)
}

// Resume continues a paused broker and waits until it accepts
// connections.
func (b *Broker) Resume(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.signal(syscall.SIGCONT); err != nil {
		return err
	}
	return b.waitReady(ctx, b.child)
}

// Close stops a broker this process started (SIGTERM, then SIGKILL); a
// broker given by PID is left as it is.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.child == nil {
		return nil
	}
	return b.stop(context.Background())
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGSTOP:
		return "SIGSTOP"
	case syscall.SIGCONT:
		return "SIGCONT"
	}
	return sig.String()
}
