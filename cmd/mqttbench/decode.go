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

	"github.com/mqttbench/mqttbench/packetgen"
)

const decodeHint = "mqttbench decode --protocol 3.1.1 '30 05 00 01 61 68 69'"

// runDecode decodes hex packets from the arguments (or stdin, one stream
// per line) and prints each packet, or the rule it breaks.
func runDecode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	proto := fs.String("protocol", "3.1.1", "protocol version for packets other than CONNECT: 3.1, 3.1.1 or 5")
	side := fs.String("side", "client", "who sent the bytes: client, server or any")
	max := fs.Int("max-packet-size", 0, "refuse packets larger than this many bytes (0: the specification's limit)")
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
	status := exitOK
	for i, in := range inputs {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(in))
		if err != nil {
			return usageError(stderr, "decode", decodeHint, "input %d is not hex: %v", i+1, err)
		}
		if decodeStream(stdout, d, b) {
			status = exitFailures
		}
	}
	return status
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
