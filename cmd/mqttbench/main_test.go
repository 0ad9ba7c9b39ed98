package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for mqttbench when a test (or
// `mqttbench load`, which re-executes itself for its workers) runs it as
// a separate process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "load-worker" || os.Getenv("MQTTBENCH_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}
