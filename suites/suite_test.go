package suites_test

import (
	"context"
	"flag"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/suites"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

// go test ./suites -args --broker tcp://127.0.0.1:1883 runs the specs
// against a broker (any URL mqttbench conform takes: host:port, tls://,
// wss://..., with its TLS flags --cacert --cert --key --insecure
// --servername --alpn --tls-min and --header); without it they run
// against the in-process reference broker on a loopback port, and with
// --broker inproc against one over net.Pipe.
var (
	brokerAddr = flag.String("broker", "", "broker under test: tcp://, tls://, ws://, wss://, inproc or host:port (default: in-process reference broker)")
	dialFlags  = transport.AddFlags(flag.CommandLine)
	profile    = flag.String("profile", "", "capability profile (YAML)")
	grace      = flag.Duration("grace", 0, "extra time allowed beyond the specification's timings")
	fault      = flag.String("fault", "", "break one behaviour of the in-process broker (self-validation)")
	jsonOut    = flag.String("json", "", "write the conformance result as JSON here")
	protocol   = flag.String("protocol", "all", "protocol version of the specs: 3.1.1, 5 or all")
	brokerAuth = flag.String("broker-auth", "", "offer this SCRAM method on the in-process broker to one user and turn the enhanced_auth profile on (5.0)")
	redirect   = flag.Bool("broker-redirect", false, "make the in-process broker redirect one client and turn the redirect profile on (5.0)")
	lacks      = flag.String("broker-lacks", "", "comma-separated features the in-process broker lacks and says so, or options it takes (5.0): "+strings.Join(lackNames(), ", "))
)

// brokerLacks are the in-process broker's options that take a feature
// away, so that a run proves the suite skips what a broker says it lacks
// and checks that it refuses it.
var brokerLacks = map[string]func(o *broker.Options){
	"wildcard":         func(o *broker.Options) { o.DisableWildcard = true },
	"shared":           func(o *broker.Options) { o.DisableShared = true },
	"subids":           func(o *broker.Options) { o.DisableSubscriptionIDs = true },
	"retain":           func(o *broker.Options) { o.DisableRetain = true },
	"qos2":             func(o *broker.Options) { o.MaxQoS = 1 },
	"qos1":             func(o *broker.Options) { o.MaxQoSZero = true },
	"aliases":          func(o *broker.Options) { o.TopicAliasMaximum = -1 },
	"receive-maximum":  func(o *broker.Options) { o.ReceiveMaximum = 2 },
	"packet-size":      func(o *broker.Options) { o.MaxPacketSize = 4096 },
	"keepalive":        func(o *broker.Options) { o.ServerKeepAlive = 2 },
	"outbound-aliases": func(o *broker.Options) { o.OutboundTopicAliases = true },
	"payload-check":    func(o *broker.Options) { o.ValidatePayloadFormat = true },
	// One QoS 1 or 2 message in flight per client, as ejabberd sends:
	// §4.9 lets a server send fewer than Receive Maximum.
	"send-quota-1": func(o *broker.Options) { o.InflightWindow = 1 },
}

func lackNames() []string {
	var names []string
	for n := range brokerLacks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestConformance(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	cfg := suites.Config{Grace: *grace, Seed: uint64(ginkgo.GinkgoRandomSeed())}
	versions, err := suites.ParseProtocols(*protocol)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Versions = versions
	if *profile != "" {
		p, err := suites.LoadProfile(*profile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Profile = p
	}
	opts := broker.Options{}
	if *fault != "" && !broker.ParseFault(*fault, &opts.Faults) {
		t.Fatalf("unknown fault %q (known: %v)", *fault, broker.FaultNames())
	}
	for _, l := range strings.FieldsFunc(*lacks, func(r rune) bool { return r == ',' }) {
		take, ok := brokerLacks[l]
		if !ok {
			t.Fatalf("-broker-lacks %q: want some of %v", l, lackNames())
		}
		take(&opts)
	}
	if *brokerAuth != "" {
		const user, password = "mqttbench", "scram-secret"
		creds, err := auth.NewCredentials(map[string]string{user: password})
		if err != nil {
			t.Fatal(err)
		}
		if opts.AuthMethod, err = auth.Lookup(*brokerAuth, creds); err != nil {
			t.Fatal(err)
		}
		opts.AllowAnonymous = true
		cfg.Profile.EnhancedAuth = &suites.EnhancedAuth{Method: opts.AuthMethod.Name(), Username: user, Password: password}
	}
	if *redirect {
		const id = "mqttbenchredirected"
		opts.ServerReference, opts.RedirectClients = "elsewhere.invalid:1883", []string{id}
		cfg.Profile.Redirect = &suites.Redirect{ClientID: id}
	}
	url := *brokerAddr
	switch url {
	case "":
		opts.Listen = []string{"127.0.0.1:0"}
		srv := broker.New(opts)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		url = srv.Addrs()[0].String()
	case "inproc":
		srv := broker.New(opts)
		unregister, err := transport.RegisterInproc("", func(nc net.Conn) { srv.ServeConn(nc) }) //nolint:errcheck
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unregister(); srv.Close() })
	}
	cfg.Broker = url
	dialOpts, err := dialFlags.Options()
	if err != nil {
		t.Fatal(err)
	}
	d, err := suites.BrokerDialer(url, dialOpts)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dial = wire.Transport(d)
	cfg.Transport = d
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c, err := cfg.Dial(ctx)
	cancel()
	if err != nil {
		t.Fatalf("broker %s is unreachable: %v", cfg.Broker, err)
	}
	c.Close()
	suites.Register(&cfg)
	if *jsonOut != "" {
		ginkgo.ReportAfterSuite("json", func(r types.Report) {
			if err := suites.Convert(r, cfg).WriteJSON(*jsonOut); err != nil {
				t.Errorf("writing %s: %v", *jsonOut, err)
			}
		})
	}
	suiteConfig, reporterConfig := ginkgo.GinkgoConfiguration()
	suiteConfig.RandomizeAllSpecs = randomizeAll(flag.CommandLine, suiteConfig.RandomizeAllSpecs, reporterConfig.FdOutput)
	ginkgo.RunSpecs(t, "mqttbench conformance", suiteConfig, reporterConfig)
}

// randomizeAll decides Ginkgo's RandomizeAllSpecs as mqttbench conform
// does: every spec in random order (the seed is printed, and recorded in
// the JSON result), so that specs that depend on each other's order show.
// Ginkgo's own default only shuffles the top-level containers, here whole
// sections. An explicit -ginkgo.randomize-all (true or false; under the
// ginkgo CLI pass it after "--") or -ginkgo.fd, which runs specs in
// declaration order, is the user's choice and is kept.
func randomizeAll(fs *flag.FlagSet, given, fdOutput bool) bool {
	explicit := fdOutput
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ginkgo.randomize-all" || f.Name == "ginkgo.randomizeAllSpecs" {
			explicit = true
		}
	})
	if explicit {
		return given
	}
	return true
}

// Under go test and the ginkgo CLI every spec is shuffled, as mqttbench
// conform does, unless the user chose an order.
func TestRandomizeAll(t *testing.T) {
	for _, tc := range []struct {
		args []string
		fd   bool
		want bool
	}{
		{nil, false, true},
		{[]string{"-ginkgo.seed=7"}, false, true},
		{[]string{"-ginkgo.randomize-all"}, false, true},
		{[]string{"-ginkgo.randomize-all=false"}, false, false},
		{[]string{"-ginkgo.randomizeAllSpecs=false"}, false, false},
		{nil, true, false}, // -ginkgo.fd runs specs in declaration order
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		given := fs.Bool("ginkgo.randomize-all", false, "")
		fs.BoolVar(given, "ginkgo.randomizeAllSpecs", false, "")
		fs.Int64("ginkgo.seed", 0, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := randomizeAll(fs, *given, tc.fd); got != tc.want {
			t.Errorf("%v (fd %v): randomize all %v, want %v", tc.args, tc.fd, got, tc.want)
		}
	}
}
