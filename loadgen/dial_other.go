//go:build !linux

package loadgen

import "syscall"

// bindNoPort does nothing off Linux: IP_BIND_ADDRESS_NO_PORT is Linux's.
func bindNoPort(network, address string, c syscall.RawConn) error { return nil }
