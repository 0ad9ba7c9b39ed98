//go:build !unix

package loadgen

func raiseNoFile(need uint64) (soft, hard uint64, ok bool) { return 0, 0, false }
