//go:build unix

package loadgen

import "syscall"

// raiseNoFile lifts the soft RLIMIT_NOFILE towards need (never above the
// hard limit) and returns the limits in force.
func raiseNoFile(need uint64) (soft, hard uint64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, false
	}
	if rl.Cur < need && rl.Max > rl.Cur {
		want := rl
		want.Cur = min(need, rl.Max)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			rl = want
		}
	}
	return uint64(rl.Cur), uint64(rl.Max), true
}
