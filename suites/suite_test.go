package suites_test

import (
	"flag"
	"net"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/suites"
	"github.com/mqttbench/mqttbench/wire"
)

// go test ./suites -args --broker 127.0.0.1:1883 runs the specs against
// a broker; without it they run against the in-process reference broker.
var (
	brokerAddr = flag.String("broker", "", "host:port of the broker under test (default: in-process reference broker)")
	profile    = flag.String("profile", "", "capability profile (YAML)")
	grace      = flag.Duration("grace", 0, "extra time allowed beyond the specification's timings")
	fault      = flag.String("fault", "", "break one behaviour of the in-process broker (self-validation)")
	jsonOut    = flag.String("json", "", "write the conformance result as JSON here")
)

func TestConformance(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	cfg := suites.Config{Broker: *brokerAddr, Grace: *grace, Seed: uint64(ginkgo.GinkgoRandomSeed())}
	if *profile != "" {
		p, err := suites.LoadProfile(*profile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Profile = p
	}
	if *brokerAddr == "" {
		opts := broker.Options{Listen: []string{"127.0.0.1:0"}}
		if *fault != "" && !broker.ParseFault(*fault, &opts.Faults) {
			t.Fatalf("unknown fault %q (known: %v)", *fault, broker.FaultNames())
		}
		srv := broker.New(opts)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cfg.Broker = srv.Addrs()[0].String()
	}
	cfg.Dial = wire.TCP(cfg.Broker)
	if c, err := net.DialTimeout("tcp", cfg.Broker, 2*time.Second); err != nil {
		t.Fatalf("broker %s is unreachable: %v", cfg.Broker, err)
	} else {
		c.Close()
	}
	suites.Register(&cfg)
	if *jsonOut != "" {
		ginkgo.ReportAfterSuite("json", func(r types.Report) {
			if err := suites.Convert(r, cfg).WriteJSON(*jsonOut); err != nil {
				t.Errorf("writing %s: %v", *jsonOut, err)
			}
		})
	}
	ginkgo.RunSpecs(t, "mqttbench conformance")
}
