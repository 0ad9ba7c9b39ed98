package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

// compare's conformance runs per protocol version: each broker is asked
// (a 5.0 CONNECT) or told (--protocol NAME=...) which versions it speaks,
// and runs the suite of each, one child process per version. The 3.1.1
// results stay where compare always put them (conform.json, compare.json,
// report.html); the 5.0 ones go beside them (conform-5.0.json,
// compare-5.0.json, report-5.0.html), so every file reads as before.

// Values of compare's --protocol.
const (
	protoAuto = "auto" // probe: 3.1.1 and 5.0 for a broker that speaks 5.0, else 3.1.1
	proto311  = "3.1.1"
	proto5    = "5.0"
)

// parseCompareProtocol reads one --protocol value: auto, 3.1.1, 5 (5.0)
// or all, as the versions to run ([] for auto).
func parseCompareProtocol(s string) ([]string, error) {
	switch s {
	case protoAuto:
		return nil, nil
	case "3.1.1":
		return []string{proto311}, nil
	case "5", "5.0":
		return []string{proto5}, nil
	case "all":
		return []string{proto311, proto5}, nil
	}
	return nil, fmt.Errorf("--protocol %q: want auto, 3.1.1, 5 or all", s)
}

// probe5 reports whether the broker at url speaks MQTT 5.0: it answers a
// 5.0 CONNECT with a 5.0 CONNACK. A refusal with a 5.0 reason code
// (0x80 or more, but 0x84 Unsupported Protocol Version) still speaks
// 5.0; a 3.1.1 CONNACK (return code 1: unacceptable protocol version),
// a malformed answer or a close does not. why says what came.
func probe5(ctx context.Context, b comparedBroker, url string) (ok bool, why string) {
	d, err := transport.NewDialer(url, b.transport)
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, wire.Transport(d), "probe", packetgen.V5, nil)
	if err != nil {
		return false, "connecting: " + err.Error()
	}
	defer c.Close() //nolint:errcheck
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, CleanStart: true, KeepAlive: 30,
		ClientID: fmt.Sprintf("mqttbench-probe-%d", time.Now().UnixNano()%1e9)}
	if b.username != "" {
		cp.UsernameFlag, cp.Username = true, b.username
		cp.PasswordFlag, cp.Password = true, []byte(b.password)
	}
	ack, err := c.Connect(cp, 5*time.Second)
	switch {
	case packetgen.AsViolation(err) != nil:
		// 3.1.1's CONNACK (20 02 00 01) has no 5.0 property length.
		return false, "not a 5.0 CONNACK in answer to a 5.0 CONNECT: " + err.Error()
	case err != nil:
		return false, "no CONNACK to a 5.0 CONNECT: " + err.Error()
	case ack.ReasonCode == packetgen.UnsupportedProtocolVersion:
		return false, "CONNACK 0x84 (Unsupported Protocol Version) to a 5.0 CONNECT"
	case ack.ReasonCode != 0 && !ack.ReasonCode.IsError():
		return false, fmt.Sprintf("CONNACK code 0x%02X to a 5.0 CONNECT (a 3.1.1 refusal)", byte(ack.ReasonCode))
	}
	if ack.ReasonCode == 0 {
		c.Send(&packetgen.Disconnect{}) //nolint:errcheck
	}
	return true, ""
}

// versionRun is one broker's conformance results by version, and why it
// has no 5.0 run when it does not speak 5.0.
type versionRun struct {
	name         string
	byVersion    map[string]*reports.Conformance
	notSupported string
}

// writeConformanceByVersion prints the conformance summary with one
// column per broker and version, side by side, then per version the
// statements whose verdicts differ between brokers. A broker that does
// not speak 5.0 shows "not supported" in its 5.0 column.
func writeConformanceByVersion(w io.Writer, runs []versionRun, versions []string) {
	var head []string
	var entries []reports.Entry
	var unsupported []bool
	for _, r := range runs {
		for _, v := range versions {
			head = append(head, r.name+" "+v)
			entries = append(entries, reports.Entry{Name: r.name, Conformance: r.byVersion[v]})
			unsupported = append(unsupported, v == proto5 && r.notSupported != "")
		}
	}
	rows := reports.ConformanceRows(entries)
	for _, row := range rows {
		for i := range entries {
			if unsupported[i] {
				row[i+1] = "not supported"
			}
		}
	}
	table(w, append([]string{"Conformance"}, head...), rows)
	for _, v := range versions {
		var names []string
		var es []reports.Entry
		for _, r := range runs {
			if c := r.byVersion[v]; c != nil {
				names = append(names, r.name)
				es = append(es, reports.Entry{Name: r.name, Conformance: c})
			}
		}
		var differ [][]string
		for _, m := range reports.Matrix(es) {
			if m.Differs {
				differ = append(differ, append([]string{m.Statement}, m.Verdicts...))
			}
		}
		if len(differ) > 0 {
			table(w, append([]string{"Statements that differ (" + v + ")"}, names...), differ)
		}
	}
	for _, r := range runs {
		if r.notSupported != "" {
			fmt.Fprintf(w, "%s: MQTT 5.0 not supported (%s)\n", r.name, r.notSupported)
		}
	}
}

func table(w io.Writer, header []string, rows [][]string) {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header(header)
	for _, r := range rows {
		t.Append(r) //nolint:errcheck
	}
	t.Render() //nolint:errcheck
}

// conformFile names a version's conformance result in a broker's
// directory: conform.json for 3.1.1 (where compare always wrote it),
// conform-5.0.json for 5.0.
func conformFile(version, ext string) string {
	if version == proto311 {
		return "conform" + ext
	}
	return "conform-" + version + ext
}

// joinVersions is "3.1.1 and 5.0".
func joinVersions(vs []string) string { return strings.Join(vs, " and ") }
