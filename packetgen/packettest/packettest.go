// Package packettest loads the golden packet table, testdata/packets.json,
// which the codec tests, the broker's tests and the conformance suites'
// self-tests share.
//
// Each case is a byte string written by hand from the specification's byte
// layouts and exactly one expectation:
//
//   - packet: the bytes are one valid packet; the text is what
//     packetgen.Format prints for it.
//   - rule and reason: the bytes break the normative statement rule, and a
//     5.0 receiver reports reason (0x81 Malformed Packet, 0x82 Protocol
//     Error, ...). 3.1 and 3.1.1 have no reason codes; there reason is the
//     class packetgen.Violation documents for the same fault.
//   - incomplete: the bytes are only the start of a packet.
//
// A note that contains the word "non-canonical" marks a valid input that
// packetgen.Append does not reproduce byte for byte (a non-minimal
// remaining length in 3.1.1, a 3.1 DUP bit, a 5.0 acknowledgement that
// spells out what it may omit).
package packettest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Case is one entry of testdata/packets.json.
type Case struct {
	// Name is unique in the table, for example "v5-publish-topic-alias-0".
	Name string `json:"name"`
	// VersionName is the protocol version the bytes are in: "3.1", "3.1.1"
	// or "5.0".
	VersionName string `json:"version"`
	// Side is who sent the bytes: "client", "server" or "any".
	Side string `json:"side"`
	// Hex is the packet in hexadecimal; spaces are ignored.
	Hex string `json:"hex"`
	// Packet is packetgen.Format of the decoded packet (valid cases only).
	Packet string `json:"packet,omitempty"`
	// Rule is the statement ID the bytes break (violations only).
	Rule string `json:"rule,omitempty"`
	// Reason is the reason code in hexadecimal, "0x81" (violations only).
	Reason string `json:"reason,omitempty"`
	// Incomplete marks a prefix that needs more bytes.
	Incomplete bool `json:"incomplete,omitempty"`
	// Note says why, citing the specification section.
	Note string `json:"note"`
}

// Path is where the table lives, relative to the module root.
const Path = "testdata/packets.json"

// Load reads the table from the module that contains the working
// directory, so the tests of any package can call it: it walks up from the
// working directory to the first go.mod and reads Path beside it.
func Load() ([]Case, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return LoadFile(filepath.Join(dir, Path))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("packettest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LoadFile reads and checks a table. Every entry must have a unique name,
// a known version and side, well-formed hex and exactly one expectation;
// the first entry that does not is reported by name.
func LoadFile(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cases []Case
	if err := dec.Decode(&cases); err != nil {
		return nil, fmt.Errorf("packettest: %s: %w", path, err)
	}
	seen := make(map[string]bool, len(cases))
	for i, c := range cases {
		if c.Name == "" {
			return nil, fmt.Errorf("packettest: %s: entry %d has no name", path, i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("packettest: %s: case %q appears twice", path, c.Name)
		}
		seen[c.Name] = true
		if err := c.check(); err != nil {
			return nil, fmt.Errorf("packettest: %s: case %q: %w", path, c.Name, err)
		}
	}
	return cases, nil
}

func (c Case) check() error {
	if _, err := packetgen.ParseVersion(c.VersionName); err != nil || !strings.Contains(c.VersionName, ".") {
		return fmt.Errorf("unknown version %q (want 3.1, 3.1.1 or 5.0)", c.VersionName)
	}
	if _, err := parseSide(c.Side); err != nil {
		return err
	}
	if _, err := decodeHex(c.Hex); err != nil {
		return err
	}
	n := 0
	if c.Packet != "" {
		n++
	}
	if c.Rule != "" || c.Reason != "" {
		n++
		if c.Rule == "" || c.Reason == "" {
			return errors.New("a violation needs both rule and reason")
		}
		if !strings.HasPrefix(c.Rule, "MQTT-") {
			return fmt.Errorf("rule %q is not a statement ID", c.Rule)
		}
		if _, err := parseReason(c.Reason); err != nil {
			return err
		}
	}
	if c.Incomplete {
		n++
	}
	if n != 1 {
		return fmt.Errorf("has %d expectations, want exactly one of packet, rule+reason or incomplete", n)
	}
	if c.Note == "" {
		return errors.New("has no note")
	}
	return nil
}

// Bytes returns the packet bytes (a new slice each call).
func (c Case) Bytes() []byte {
	b, _ := decodeHex(c.Hex)
	return b
}

// Version is the protocol version the case is written in.
func (c Case) Version() packetgen.Version {
	v, _ := packetgen.ParseVersion(c.VersionName)
	return v
}

// ReasonCode is the expected reason of a violation case.
func (c Case) ReasonCode() packetgen.ReasonCode {
	r, _ := parseReason(c.Reason)
	return r
}

// Decoder is a decoder set up for the case: its version and side. For a
// CONNECT the version is left 0, so the packet's own protocol level
// decides the rules, as on a server that has not yet seen the level.
func (c Case) Decoder() packetgen.Decoder {
	s, _ := parseSide(c.Side)
	d := packetgen.Decoder{Version: c.Version(), Side: s}
	if b := c.Bytes(); len(b) > 0 && packetgen.Type(b[0]>>4) == packetgen.TypeConnect {
		d.Version = 0
	}
	return d
}

// Valid, Violation and Waiting tell which expectation the case has.
func (c Case) Valid() bool     { return c.Packet != "" }
func (c Case) Violation() bool { return c.Rule != "" }
func (c Case) Waiting() bool   { return c.Incomplete }

// NonCanonical reports whether the note marks valid bytes that Append does
// not reproduce exactly.
func (c Case) NonCanonical() bool { return strings.Contains(c.Note, "non-canonical") }

func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("bad hex %q: %w", s, err)
	}
	return b, nil
}

func parseSide(s string) (packetgen.Side, error) {
	switch s {
	case "client":
		return packetgen.FromClient, nil
	case "server":
		return packetgen.FromServer, nil
	case "any":
		return packetgen.AnySide, nil
	}
	return 0, fmt.Errorf("unknown side %q (want client, server or any)", s)
}

func parseReason(s string) (packetgen.ReasonCode, error) {
	if !strings.HasPrefix(s, "0x") || len(s) != 4 {
		return 0, fmt.Errorf("reason %q is not of the form 0x81", s)
	}
	x, err := strconv.ParseUint(s[2:], 16, 8)
	if err != nil {
		return 0, fmt.Errorf("reason %q: %w", s, err)
	}
	return packetgen.ReasonCode(x), nil
}
