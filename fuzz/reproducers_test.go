package fuzz

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

// The reference broker passes every reproducer kept under
// testdata/reproducers, 3.1.1 and 5.0 alike: the bugs other brokers had
// are regression seeds.
func TestReferencePassesReproducers(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "reproducers", "*", "*.json"))
	if len(files) == 0 {
		t.Skip("no reproducers under testdata/reproducers")
	}
	ref, watch := reference(t)
	for _, path := range files {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			rep, err := ReadReproducer(path)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := rep.ToCase()
			o := ref.Exec(context.Background(), c, fast)
			if o.Skipped != "" {
				t.Fatalf("%s: not run: %s", path, o.Skipped)
			}
			if class, why := Classify(c, o); class != "" {
				t.Fatalf("%s (%s from %s): %s: %s\nlast panic: %s", path, rep.Finding, rep.Broker, class, why, watch.Last())
			}
		})
	}
}

// A reproducer survives a write and a read.
func TestReproducerRoundTrip(t *testing.T) {
	c := Generate(1, 17, packetgen.V5)
	c.Splits, c.Delay = []int{1}, 3
	r := NewReproducer(SpecDeviation, "seen", "tcp://x", c, c)
	path := filepath.Join(t.TempDir(), r.FileName())
	if err := r.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReproducer(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.ToCase()
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Bytes) != string(c.Bytes) || got.Phase != c.Phase || got.Expect != c.Expect || got.Version != c.Version ||
		got.Pings != c.Pings || len(got.Splits) != 1 || got.Delay != 3 || got.Index != 17 {
		t.Fatalf("round trip:\n%s\n%s", got, c)
	}
	os.WriteFile(path, []byte(`{"kind":"other"}`), 0o644) //nolint:errcheck
	if _, err := ReadReproducer(path); err == nil {
		t.Fatal("a file of another kind was read")
	}
}
