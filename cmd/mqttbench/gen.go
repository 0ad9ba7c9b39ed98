package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

const genHint = "mqttbench gen --protocol 5 --malformed all --count 3 --seed 1"

// runGen prints seeded packets, one per line: hex, then a description.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	proto := fs.String("protocol", "3.1.1", "protocol version: 3.1, 3.1.1 or 5")
	seed := fs.Uint64("seed", 0, "seed (0: from the clock; the seed used is printed on stderr)")
	count := fs.Int("count", 10, "packets to print (per class with --malformed all)")
	malformed := fs.String("malformed", "", "print malformed cases of this class, or 'all' classes ('list' lists them)")
	if code, ok := parseFlags(fs, args, stderr, genHint); !ok {
		return code
	}
	v, err := packetgen.ParseVersion(*proto)
	if err != nil {
		return usageError(stderr, "gen", genHint, "%v", err)
	}
	if *count < 1 {
		return usageError(stderr, "gen", genHint, "--count must be at least 1, got %d", *count)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	classes := packetgen.MalformedClassNames(v)
	switch *malformed {
	case "list":
		for _, c := range packetgen.MalformedClasses(v) {
			fmt.Fprintf(stdout, "%-26s %s\n", c.Name, c.Desc)
		}
		return exitOK
	case "", "all":
	default:
		known := false
		for _, c := range classes {
			known = known || c == *malformed
		}
		if !known {
			return usageError(stderr, "gen", "mqttbench gen --protocol "+v.String()+" --malformed list",
				"unknown malformed class %q for MQTT %s (known: %s)", *malformed, v, joinNames(classes))
		}
		classes = []string{*malformed}
	}
	fmt.Fprintf(stderr, "mqttbench gen: MQTT %s, seed %d\n", v, *seed)
	g := packetgen.NewGen(*seed, v)
	if *malformed == "" {
		for i := 0; i < *count && ctx.Err() == nil; i++ {
			p := g.Packet()
			fmt.Fprintf(stdout, "%X  %s\n", packetgen.AppendUnchecked(nil, p, v), packetgen.Format(p))
		}
	} else {
		for _, class := range classes {
			for i := 0; i < *count && ctx.Err() == nil; i++ {
				k, err := g.Malformed(class)
				if err != nil {
					return usageError(stderr, "gen", genHint, "%v", err)
				}
				fmt.Fprintf(stdout, "%X  %s [%s] %s; expect %s (%s)\n", k.Bytes, k.Class, k.Rule, k.Detail, k.Expect, k.Phase)
			}
		}
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitOK
}
