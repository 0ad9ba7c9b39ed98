//go:build !linux

package suites

// stdoutToStderr is a no-op where descriptors cannot be swapped: Ginkgo's
// progress then shares stdout with the results.
func stdoutToStderr() (restore func()) { return func() {} }
