//go:build !linux

package loadgen

import "net"

// idleWatcher is Linux's (idle_linux.go); elsewhere every connection has
// its reader goroutine.
type idleWatcher struct{}

func newIdleWatcher(*attack) *idleWatcher { return nil }

func (*idleWatcher) watch(int, *client, net.Conn, *reader, *connState) bool { return false }

func (*idleWatcher) wait() {}

// wrapNonblocking is the Linux watcher's; elsewhere connections stay as
// they are.
func wrapNonblocking(nc net.Conn) net.Conn { return nc }
