package store

import (
	"fmt"
	"strings"
	"time"
)

// Fsync is when the store forces what it has written to the disk. Every
// mode writes each batch to the file (into the operating system's page
// cache) before anything in it is acknowledged, so a crash of the broker
// process alone (kill -9, a panic, an out-of-memory kill) loses nothing
// acknowledged in any mode. The modes differ only when the machine itself
// stops (power loss, kernel panic, a virtual machine killed):
//
//   - always (the default): each batch is fsynced before anything in it is
//     acknowledged (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK), so nothing
//     acknowledged is ever lost. Cost: an acknowledgement waits for a
//     commit and its two fdatasyncs (bbolt syncs its pages, then its meta
//     page), 2-3 ms on an idle virtual disk, tens of ms on a busy machine;
//     batches grow while a commit runs (group commit), so throughput holds
//     up while latency grows.
//   - interval=D: acknowledgements wait only for the write; one fsync every
//     D. A machine crash loses what was acknowledged in the last D at most,
//     and, since bbolt orders its writes by fsync, may leave a file that
//     fails its check at the next start (a clear error, never a silent
//     loss; see the package documentation for the repair).
//   - never: acknowledgements wait only for the write; the operating system
//     writes back when it likes (on Linux within about 30 s). A machine
//     crash loses an unbounded window, with the same risk to the file.
type Fsync struct {
	Mode     FsyncMode
	Interval time.Duration // for FsyncInterval
}

// FsyncMode is one of the policies of Fsync.
type FsyncMode int

const (
	FsyncAlways FsyncMode = iota
	FsyncInterval
	FsyncNever
)

// ParseFsync reads "always", "never" or "interval=DURATION" (such as
// interval=100ms).
func ParseFsync(s string) (Fsync, error) {
	switch {
	case s == "always":
		return Fsync{Mode: FsyncAlways}, nil
	case s == "never":
		return Fsync{Mode: FsyncNever}, nil
	case strings.HasPrefix(s, "interval="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "interval="))
		if err != nil || d <= 0 {
			return Fsync{}, fmt.Errorf("fsync %q: want interval=DURATION with a positive duration such as interval=100ms", s)
		}
		return Fsync{Mode: FsyncInterval, Interval: d}, nil
	}
	return Fsync{}, fmt.Errorf("fsync %q: want always, interval=DURATION (such as interval=100ms) or never", s)
}

func (f Fsync) String() string {
	switch f.Mode {
	case FsyncInterval:
		return "interval=" + f.Interval.String()
	case FsyncNever:
		return "never"
	}
	return "always"
}
