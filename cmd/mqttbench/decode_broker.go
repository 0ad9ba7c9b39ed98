package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

// decodeAtBroker sends the hex streams to a broker on one connection, in
// order, after a valid CONNECT of version v unless the first stream is a
// CONNECT itself, and prints every packet both ways, decoded, until the
// broker closes or has been quiet for wait. It reports whether the broker
// closed the connection or sent bytes that break a rule.
func decodeAtBroker(ctx context.Context, w io.Writer, d *transport.Dialer, v packetgen.Version, streams [][]byte, wait time.Duration) (bad bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(dctx)
	if err != nil {
		return false, fmt.Errorf("cannot reach %s: %v", d.URL(), err)
	}
	if note := tlsDescription(nc, d.URL()); note != "" {
		fmt.Fprintf(w, "# %s\n", note)
	}
	trace := wire.NewTrace()
	c := wire.New(nc, "broker", v, trace)
	defer c.Close()
	first := streams[0]
	if len(first) == 0 || packetgen.Type(first[0]>>4) != packetgen.TypeConnect {
		cp := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60, ClientID: fmt.Sprintf("mbdecode%d", time.Now().UnixNano()%1e9)}
		if _, err := c.Connect(cp, wait+5*time.Second); err != nil {
			printTrace(w, trace)
			return true, fmt.Errorf("%s refused our CONNECT: %v", d.URL(), err)
		}
	}
	for _, b := range streams {
		var what strings.Builder
		decodeStream(&what, packetgen.Decoder{Version: v, Side: packetgen.FromClient}, b)
		if err := c.SendRaw(b, strings.ReplaceAll(strings.TrimSpace(what.String()), "\n", "; ")); err != nil {
			break
		}
	}
	for {
		if ctx.Err() != nil {
			break
		}
		_, err := c.Recv(wait)
		switch {
		case err == nil:
			continue
		case errors.Is(err, wire.ErrTimeout):
		case errors.Is(err, wire.ErrClosed):
			bad = true
		default:
			bad = true // a packet that breaks a rule: the trace names it
		}
		break
	}
	printTrace(w, trace)
	return bad, nil
}

func printTrace(w io.Writer, t *wire.Trace) {
	for _, e := range t.Entries() {
		fmt.Fprintln(w, e.String())
	}
}
