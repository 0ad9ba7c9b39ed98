package broker

import (
	"os"
	"testing"

	"github.com/mqttbench/mqttbench/store"
)

// withTestStore gives every test broker a store when MQTTBENCH_TEST_STORE
// is set (always, interval=10ms or never): the whole suite then checks
// that a durable broker behaves as the in-memory one does.
func withTestStore(t *testing.T, opts *Options) {
	t.Helper()
	mode := os.Getenv("MQTTBENCH_TEST_STORE")
	if mode == "" || opts.Store != nil {
		return
	}
	f, err := store.ParseFsync(mode)
	if err != nil {
		t.Fatalf("MQTTBENCH_TEST_STORE: %v", err)
	}
	st, err := store.Open(t.TempDir(), store.Options{Fsync: f})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = st
}
