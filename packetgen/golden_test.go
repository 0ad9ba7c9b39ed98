package packetgen_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/packettest"
)

// knownCodecBug lists golden cases the codec gets wrong today, by name, with
// what is wrong. Such a case is skipped while it fails and fails once it
// passes, so whoever fixes the codec removes the entry.
var knownCodecBug = map[string]string{}

func loadGolden(t *testing.T) []packettest.Case {
	t.Helper()
	cases, err := packettest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestGolden decodes every case of testdata/packets.json and checks the
// outcome exactly: a valid case decodes without error, takes every byte,
// formats as the table says and re-encodes to the same bytes; a violation
// names exactly the rule and reason of the table; a prefix is incomplete.
func TestGolden(t *testing.T) {
	cases := loadGolden(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			err := checkGolden(c)
			why, known := knownCodecBug[c.Name]
			switch {
			case err != nil && known:
				t.Skipf("known codec bug (%s): %v", why, err)
			case err != nil:
				t.Errorf("%v\nhex:  %s\nnote: %s", err, c.Hex, c.Note)
			case known:
				t.Errorf("passes now: remove %q from knownCodecBug", c.Name)
			}
		})
	}
	for name := range knownCodecBug {
		if !hasCase(cases, name) {
			t.Errorf("knownCodecBug names %q, which is not in the table", name)
		}
	}
}

func hasCase(cases []packettest.Case, name string) bool {
	for _, c := range cases {
		if c.Name == name {
			return true
		}
	}
	return false
}

// checkGolden returns what is wrong with the codec's answer to c, or nil.
func checkGolden(c packettest.Case) error {
	b := c.Bytes()
	d := c.Decoder()
	p, n, err := d.Decode(b)
	switch {
	case c.Valid():
		if err != nil {
			return fmt.Errorf("expected %s\nactual error %v", c.Packet, err)
		}
		if n != len(b) {
			return fmt.Errorf("took %d of %d bytes", n, len(b))
		}
		if got := packetgen.Format(p); got != c.Packet {
			return fmt.Errorf("expected %s\nactual   %s", c.Packet, got)
		}
		return checkReencode(c, p)
	case c.Violation():
		var v *packetgen.Violation
		if !errors.As(err, &v) {
			got := "no error"
			if err != nil {
				got = err.Error()
			} else if p != nil {
				got = "decoded " + packetgen.Format(p)
			}
			return fmt.Errorf("expected %s %s\nactual %s", c.Rule, c.Reason, got)
		}
		if v.Rule != c.Rule || v.Reason != c.ReasonCode() {
			return fmt.Errorf("expected %s 0x%02X\nactual   %s 0x%02X (%v)", c.Rule, byte(c.ReasonCode()), v.Rule, byte(v.Reason), v)
		}
		return nil
	default:
		if !errors.Is(err, packetgen.ErrIncomplete) {
			return fmt.Errorf("expected ErrIncomplete, actual %v (n=%d)", err, n)
		}
		return nil
	}
}

// checkReencode appends the decoded packet again. Canonical input must come
// back byte for byte; for input the note calls non-canonical the encoding
// must at least decode to the same packet.
func checkReencode(c packettest.Case, p packetgen.Packet) error {
	out, err := packetgen.Append(nil, p, c.Version())
	if err != nil {
		return fmt.Errorf("decodes but Append refuses it: %v", err)
	}
	if !c.NonCanonical() {
		if !bytes.Equal(out, c.Bytes()) {
			return fmt.Errorf("re-encodes differently\nexpected % X\nactual   % X", c.Bytes(), out)
		}
		return nil
	}
	if bytes.Equal(out, c.Bytes()) {
		return fmt.Errorf("the note says non-canonical but Append reproduces the input")
	}
	d := c.Decoder()
	q, _, err := d.Decode(out)
	if err != nil {
		return fmt.Errorf("re-encoding % X does not decode: %v", out, err)
	}
	if got := packetgen.Format(q); got != c.Packet {
		return fmt.Errorf("re-encoding decodes to %s", got)
	}
	return nil
}

// TestGoldenPrefixes: every proper prefix of a valid packet is incomplete,
// never a violation, since the checks that look at the first bytes pass
// for the whole packet.
func TestGoldenPrefixes(t *testing.T) {
	for _, c := range loadGolden(t) {
		if !c.Valid() {
			continue
		}
		b := c.Bytes()
		d := c.Decoder()
		for i := range len(b) {
			if _, _, err := d.Decode(b[:i]); !errors.Is(err, packetgen.ErrIncomplete) {
				t.Errorf("%s: %d of %d bytes: %v", c.Name, i, len(b), err)
				break
			}
		}
	}
}

// TestGoldenCoverage: the table holds a valid packet of every type each
// version defines.
func TestGoldenCoverage(t *testing.T) {
	seen := map[packetgen.Version]map[packetgen.Type]bool{}
	for _, c := range loadGolden(t) {
		if b := c.Bytes(); c.Valid() && len(b) > 0 {
			if seen[c.Version()] == nil {
				seen[c.Version()] = map[packetgen.Type]bool{}
			}
			seen[c.Version()][packetgen.Type(b[0]>>4)] = true
		}
	}
	for _, v := range []packetgen.Version{packetgen.V31, packetgen.V311, packetgen.V5} {
		for t0 := packetgen.TypeConnect; t0 <= packetgen.TypeAuth; t0++ {
			if t0 == packetgen.TypeAuth && v != packetgen.V5 {
				continue
			}
			if !seen[v][t0] {
				t.Errorf("no valid %s case for %s", t0, v)
			}
		}
	}
}

// TestGoldenRulesAreStatements: every rule the table names is a statement
// ID of the project's lists (suites/statements), except the two the lists
// miss: the 3.1.1 specification prints the SUBSCRIBE options statement as
// MQTT-3-8.3-4 (the list has the truncated MQTT-3-8; we cite it as
// MQTT-3.8.3-4), and the
// 5.0 CONNACK reason code statement MQTT-3.2.2-8 is garbled in the
// Markdown the list was made from. 3.1 cases name 3.1.1 statements.
func TestGoldenRulesAreStatements(t *testing.T) {
	lists := statementLists(t)
	for _, c := range loadGolden(t) {
		v := c.VersionName
		if v == "3.1" {
			v = "3.1.1"
		}
		if c.Violation() && !lists[v][c.Rule] {
			t.Errorf("%s: %s is not a %s statement", c.Name, c.Rule, v)
		}
	}
}

// TestGoldenLoaderErrors: a bad entry is refused with its name.
func TestGoldenLoaderErrors(t *testing.T) {
	bad := map[string]string{
		"two expectations": `{"name": "x1", "version": "3.1.1", "side": "any", "hex": "C0 00", "packet": "PINGREQ", "incomplete": true, "note": "n"}`,
		"no expectation":   `{"name": "x1", "version": "3.1.1", "side": "any", "hex": "C0 00", "note": "n"}`,
		"bad hex":          `{"name": "x1", "version": "3.1.1", "side": "any", "hex": "C0 0", "packet": "PINGREQ", "note": "n"}`,
		"unknown version":  `{"name": "x1", "version": "4", "side": "any", "hex": "C0 00", "packet": "PINGREQ", "note": "n"}`,
		"unknown side":     `{"name": "x1", "version": "5.0", "side": "broker", "hex": "C0 00", "packet": "PINGREQ", "note": "n"}`,
		"rule, no reason":  `{"name": "x1", "version": "5.0", "side": "any", "hex": "00 00", "rule": "MQTT-4.13.1-1", "note": "n"}`,
		"bad reason":       `{"name": "x1", "version": "5.0", "side": "any", "hex": "00 00", "rule": "MQTT-4.13.1-1", "reason": "129", "note": "n"}`,
		"no note":          `{"name": "x1", "version": "5.0", "side": "any", "hex": "C0 00", "packet": "PINGREQ"}`,
	}
	for what, entry := range bad {
		path := filepath.Join(t.TempDir(), "packets.json")
		if err := os.WriteFile(path, []byte("["+entry+"]"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := packettest.LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), `"x1"`) {
			t.Errorf("%s: error %v does not name the case", what, err)
		}
	}
}
