package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/packetgen"
)

const brokerHint = "mqttbench broker --listen 127.0.0.1:1883"

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// runBroker runs the reference broker until SIGINT or SIGTERM.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	var listen listFlag
	fs.Var(&listen, "listen", "URL to listen on, repeatable: host:port, tcp://, tls://, ws://, wss://host:port[/path] (default 127.0.0.1:1883; port 0 picks one)")
	listenTLS := addListenFlags(fs)
	maxQoS := fs.Int("max-qos", 2, "highest QoS granted in SUBACK: 0, 1 or 2")
	noRetain := fs.Bool("no-retain", false, "ignore the RETAIN flag (store no retained messages)")
	maxPacket := fs.Int("max-packet-size", 0, "largest packet accepted, in bytes (0: the protocol maximum)")
	inflight := fs.Int("inflight", 1024, "outgoing QoS 1/2 messages awaiting acknowledgement per client (a 5.0 client's Receive Maximum may make it smaller)")
	maxQueued := fs.Int("max-queued", 10000, "messages queued per session beyond the in-flight window")
	queueQoS0 := fs.Bool("queue-qos0", false, "also queue QoS 0 messages for offline persistent sessions")
	passwords := fs.String("password-file", "", "file of user:password lines; clients must authenticate")
	anonymous := fs.Bool("allow-anonymous", false, "with --password-file, also admit clients without a user name")
	aclFile := fs.String("acl-file", "", "authorize publish and subscribe by a mosquitto-style ACL file (user, topic, pattern lines)")
	identity := fs.Bool("identity-as-username", false, "take the user name from the client certificate's common name (TLS with client certificates)")
	grace := fs.Float64("keepalive-grace", 1.5, "a silent client is dropped after keep alive x this factor")
	verbose := fs.Bool("v", false, "log every connection (debug level)")
	durable := addStoreFlags(fs)
	var v5 brokerV5Flags
	v5.register(fs)
	if code, ok := parseFlags(fs, args, stderr, brokerHint); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "broker", brokerHint, "unexpected argument %q", fs.Arg(0))
	}
	if *maxQoS < 0 || *maxQoS > 2 {
		return usageError(stderr, "broker", brokerHint, "--max-qos is %d; want 0, 1 or 2", *maxQoS)
	}
	if *grace < 1 {
		return usageError(stderr, "broker", brokerHint, "--keepalive-grace is %g; want at least 1", *grace)
	}
	if len(listen) == 0 {
		listen = listFlag{"127.0.0.1:1883"}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := broker.Options{
		MaxQoS: packetgen.QoS(*maxQoS), MaxQoSZero: *maxQoS == 0,
		DisableRetain: *noRetain, MaxPacketSize: *maxPacket, InflightWindow: *inflight,
		MaxQueued: *maxQueued, QueueQoS0: *queueQoS0, AllowAnonymous: *anonymous,
		KeepaliveGrace: *grace,
		Logger:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *passwords != "" {
		users, err := broker.ReadUsers(*passwords)
		if err != nil {
			return usageError(stderr, "broker", brokerHint, "reading --password-file: %v", err)
		}
		opts.Users = users
	}
	if *aclFile != "" {
		a, err := acl.Load(*aclFile)
		if err != nil {
			return usageError(stderr, "broker", brokerHint, "reading --acl-file: %v", err)
		}
		opts.ACL = a
	}
	opts.IdentityAsUsername = *identity
	if err := v5.apply(&opts); err != nil {
		return usageError(stderr, "broker", brokerHint, "%v", err)
	}
	if err := durable.check(fs); err != nil {
		return usageError(stderr, "broker", brokerHint, "%v", err)
	}
	st, err := durable.open()
	if err != nil {
		return usageError(stderr, "broker", storeHint(err), "%v", err)
	}
	opts.Store = st
	srv := broker.New(opts)
	if err := serveListeners(srv, listen, listenTLS, opts.Logger, stdout); err != nil {
		srv.Close()
		return usageError(stderr, "broker", brokerHint, "%v", err)
	}
	var failed <-chan struct{}
	if st != nil {
		failed = st.Failed()
	}
	select {
	case <-ctx.Done():
	case <-failed:
		// Nothing more can be made durable, so nothing more acknowledged.
		fmt.Fprintf(stderr, "mqttbench broker: %v\n", st.Err())
		srv.Close()
		return 1
	}
	fmt.Fprintln(stderr, "mqttbench broker: shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		fmt.Fprintf(stderr, "mqttbench broker: shutdown: %v\n", err)
	}
	if st != nil {
		c := st.Stats()
		opts.Logger.Info("store closed", "path", st.Path(), "fsync", st.Fsync().String(), "commits", c.Commits, "syncs", c.Syncs, "writes", c.Writes, "busy", c.Busy.Round(time.Millisecond))
	}
	return exitInterrupted
}
