//go:build !unix

package loadgen

import "time"

// processCPU is not measured here: the CPU test of saturation is skipped.
func processCPU() (time.Duration, bool) { return 0, false }
