package suites

import "syscall"

// stdoutToStderr points file descriptor 1 at stderr until restore is
// called: Ginkgo's reporter writes progress to the stdout it captured at
// start-up, and mqttbench keeps stdout for results.
func stdoutToStderr() (restore func()) {
	saved, err := syscall.Dup(1)
	if err != nil {
		return func() {}
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		syscall.Close(saved)
		return func() {}
	}
	return func() {
		syscall.Dup3(saved, 1, 0) //nolint:errcheck
		syscall.Close(saved)
	}
}
