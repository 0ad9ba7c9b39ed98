package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
)

const decodeHint = "mqttbench decode --protocol 3.1.1 '30 05 00 01 61 68 69' (add --broker URL to send it to a broker)"

// runDecode decodes hex packets from the arguments (or stdin, one stream
// per line) and prints each packet, or the rule it breaks. With --broker
// it sends them to a broker instead and prints both directions.
func runDecode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	proto := fs.String("protocol", "3.1.1", "protocol version for packets other than CONNECT: 3.1, 3.1.1 or 5")
	side := fs.String("side", "client", "who sent the bytes: client, server or any")
	max := fs.Int("max-packet-size", 0, "refuse packets larger than this many bytes (0: the specification's limit)")
	brokerURL := fs.String("broker", "", "send the packets to this broker (after a CONNECT unless the first is one) and decode what it answers")
	wait := fs.Duration("wait", time.Second, "with --broker: how long the broker may stay quiet before we stop listening")
	df := addDialFlags(fs)
	if code, ok := parseFlags(fs, args, stderr, decodeHint); !ok {
		return code
	}
	v, err := packetgen.ParseVersion(*proto)
	if err != nil {
		return usageError(stderr, "decode", decodeHint, "%v", err)
	}
	d := packetgen.Decoder{Version: v, MaxPacketSize: *max}
	switch *side {
	case "client":
		d.Side = packetgen.FromClient
	case "server":
		d.Side = packetgen.FromServer
	case "any":
		d.Side = packetgen.AnySide
	default:
		return usageError(stderr, "decode", decodeHint, "--side is %q; want client, server or any", *side)
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<28)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				inputs = append(inputs, line)
			}
		}
	}
	if len(inputs) == 0 {
		return usageError(stderr, "decode", decodeHint, "no packets given")
	}
	streams := make([][]byte, len(inputs))
	for i, in := range inputs {
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(in))
		if err != nil {
			return usageError(stderr, "decode", decodeHint, "input %d is not hex: %v", i+1, err)
		}
		streams[i] = b
	}
	if *brokerURL != "" {
		return decodeBroker(ctx, *brokerURL, df, v, streams, *wait, stdout, stderr)
	}
	if flag := dialFlagSet(fs); flag != "" {
		return usageError(stderr, "decode", decodeHint, "%s needs --broker", flag)
	}
	status := exitOK
	for _, b := range streams {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		if decodeStream(stdout, d, b) {
			status = exitFailures
		}
	}
	return status
}

// decodeBroker is decode --broker: exit 1 when the broker closed the
// connection or answered with bytes that break a rule.
func decodeBroker(ctx context.Context, url string, df *dialFlags, v packetgen.Version, streams [][]byte, wait time.Duration, stdout, stderr io.Writer) int {
	if wait <= 0 {
		return usageError(stderr, "decode", decodeHint, "--wait is %s; want more than 0", wait)
	}
	o, err := df.dialOptions()
	if err != nil {
		return usageError(stderr, "decode", decodeHint, "%v", err)
	}
	d, err := transport.NewDialer(url, o)
	if err != nil {
		return usageError(stderr, "decode", decodeHint, "%v", transport.FlagError("--broker", err))
	}
	warnInsecure(stderr, "decode", o)
	bad, err := decodeAtBroker(ctx, stdout, d, v, streams, wait)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "mqttbench decode: %v\n", err)
		return exitUsage
	case ctx.Err() != nil:
		return exitInterrupted
	case bad:
		return exitFailures
	}
	return exitOK
}

// decodeStream decodes every packet in b, printing one line each, and
// reports whether any broke a rule.
func decodeStream(w io.Writer, d packetgen.Decoder, b []byte) (bad bool) {
	for off := 0; off < len(b); {
		p, n, err := d.Decode(b[off:])
		switch {
		case errors.Is(err, packetgen.ErrIncomplete):
			fmt.Fprintf(w, "INCOMPLETE at byte %d: % X\n", off, b[off:])
			return true
		case err != nil:
			fmt.Fprintf(w, "VIOLATION at byte %d: %v\n", off, err)
			if p != nil {
				fmt.Fprintf(w, "  decoded as far as: %s\n", packetgen.Format(p))
			}
			return true
		}
		fmt.Fprintln(w, packetgen.Format(p))
		if c, ok := p.(*packetgen.Connect); ok && d.Version == 0 {
			d.Version = c.ProtocolLevel
		}
		off += n
	}
	return false
}
