package packetgen_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/packetgen"
)

// The sections a Violation may cite, each with its heading, copied from
// the specifications' tables of contents (3.1.1 and 5.0, OASIS Standard).
// A section missing from a version's list is either absent from that
// specification or means something else there: 5.0 renumbered chapters 1
// and 2, so for instance §2.2.3 (Remaining Length in 3.1.1) does not exist
// in 5.0, and §1.5.3 is the Four Byte Integer, which no check concerns.
var (
	sections311 = map[string]string{
		"1.5.3":   "UTF-8 encoded strings",
		"2.2.1":   "MQTT Control Packet type",
		"2.2.2":   "Flags",
		"2.2.3":   "Remaining Length",
		"2.3":     "Variable header",
		"2.3.1":   "Packet Identifier",
		"3.1.2.1": "Protocol Name",
		"3.1.2.2": "Protocol Level",
		"3.1.2.3": "Connect Flags",
		"3.1.2.6": "Will QoS",
		"3.1.2.7": "Will Retain",
		"3.1.2.8": "User Name Flag",
		"3.1.2.9": "Password Flag",
		"3.1.3":   "Payload (CONNECT)",
		"3.1.3.1": "Client Identifier",
		"3.2.2.1": "Connect Acknowledge Flags",
		"3.2.2.2": "Session Present",
		"3.2.2.3": "Connect Return code",
		"3.3.1.1": "DUP",
		"3.3.1.2": "QoS",
		"3.3.2.1": "Topic Name",
		"3.4":     "PUBACK – Publish acknowledgement",
		"3.5":     "PUBREC – Publish received",
		"3.6":     "PUBREL – Publish release",
		"3.7":     "PUBCOMP – Publish complete",
		"3.8.3":   "Payload (SUBSCRIBE)",
		"3.9.3":   "Payload (SUBACK)",
		"3.10.3":  "Payload (UNSUBSCRIBE)",
		"3.11":    "UNSUBACK – Unsubscribe acknowledgement",
		"3.14":    "DISCONNECT – Disconnect notification",
		"4.7":     "Topic Names and Topic Filters",
	}
	sections5 = map[string]string{
		"1.5.4":       "UTF-8 Encoded String",
		"1.5.5":       "Variable Byte Integer",
		"1.5.6":       "Binary Data",
		"2.1.2":       "MQTT Control Packet type",
		"2.1.3":       "Flags",
		"2.1.4":       "Remaining Length",
		"2.2.1":       "Packet Identifier",
		"2.2.2":       "Properties",
		"2.2.2.1":     "Property Length",
		"2.2.2.2":     "Property",
		"3.1.2.1":     "Protocol Name",
		"3.1.2.2":     "Protocol Version",
		"3.1.2.3":     "Connect Flags",
		"3.1.2.6":     "Will QoS",
		"3.1.2.7":     "Will Retain",
		"3.1.2.8":     "User Name Flag",
		"3.1.2.11.4":  "Maximum Packet Size (CONNECT)",
		"3.1.2.11.10": "Authentication Data (CONNECT)",
		"3.1.3.1":     "Client Identifier (ClientID)",
		"3.1.3.2.6":   "Response Topic (Will Properties)",
		"3.2.2.1":     "Connect Acknowledge Flags",
		"3.2.2.1.1":   "Session Present",
		"3.2.2.2":     "Connect Reason Code",
		"3.2.2.3.6":   "Maximum Packet Size (CONNACK)",
		"3.2.2.3.18":  "Authentication Data (CONNACK)",
		"3.3.1.1":     "DUP",
		"3.3.1.2":     "QoS",
		"3.3.2.1":     "Topic Name",
		"3.3.2.3.5":   "Response Topic",
		"3.3.2.3.8":   "Subscription Identifier (PUBLISH)",
		"3.3.4":       "PUBLISH Actions",
		"3.4.2.1":     "PUBACK Reason Code",
		"3.5.2.1":     "PUBREC Reason Code",
		"3.6.2.1":     "PUBREL Reason Code",
		"3.7.2.1":     "PUBCOMP Reason Code",
		"3.8.2.1.2":   "Subscription Identifier (SUBSCRIBE)",
		"3.8.3":       "SUBSCRIBE Payload",
		"3.8.3.1":     "Subscription Options",
		"3.9.3":       "SUBACK Payload",
		"3.10.3":      "UNSUBSCRIBE Payload",
		"3.11.3":      "UNSUBACK Payload",
		"3.14.2.1":    "Disconnect Reason Code",
		"3.14.2.2.2":  "Session Expiry Interval (DISCONNECT)",
		"3.15.2.1":    "Authenticate Reason Code",
		"3.15.2.2.2":  "Authentication Method (AUTH)",
		"3.15.2.2.3":  "Authentication Data (AUTH)",
		"4.7":         "Topic Names and Topic Filters",
		"4.8.2":       "Shared Subscriptions",
	}
)

// specName is the specification whose numbering v's violations use: 3.1
// has no numbered statements of its own and borrows 3.1.1's.
func specName(v packetgen.Version) string {
	if v == packetgen.V5 {
		return "5.0"
	}
	return "3.1.1"
}

// checkSection fails unless vi cites a section of v's specification.
func checkSection(t *testing.T, v packetgen.Version, vi *packetgen.Violation, what string) {
	t.Helper()
	list, name := sections311, specName(v)
	if v == packetgen.V5 {
		list = sections5
	}
	if _, ok := list[vi.Section]; !ok {
		t.Errorf("%s: %s cites §%s, which is not a %s section the codec may cite\n%v", what, v, vi.Section, name, vi)
	}
}

// statementLists reads the project's lists of statement IDs, keyed by
// version as checkSection sees it ("3.1.1" for 3.1 too), with the two IDs
// TestGoldenRulesAreStatements explains.
func statementLists(t *testing.T) map[string]map[string]bool {
	t.Helper()
	lists := map[string]map[string]bool{}
	for _, v := range []string{"3.1.1", "5.0"} {
		b, err := os.ReadFile(filepath.Join("..", "suites", "statements", "mqtt-"+v+".txt"))
		if err != nil {
			t.Skipf("statement lists not found: %v", err)
		}
		lists[v] = map[string]bool{}
		for _, id := range strings.Fields(string(b)) {
			lists[v][id] = true
		}
	}
	lists["3.1.1"]["MQTT-3.8.3-4"] = true
	lists["5.0"]["MQTT-3.2.2-8"] = true
	return lists
}

// TestViolationSections: every violation the golden table and the
// malformed generators produce cites a section of its own version's
// specification: 5.0 violations carry 5.0 numbers (§1.5.4, §2.1.4, ...),
// 3.1 and 3.1.1 violations 3.1.1 numbers. Their statement IDs are likewise
// the version's own: no 5.0 violation names a 3.1.1 statement.
func TestViolationSections(t *testing.T) {
	lists := statementLists(t)
	check := func(v packetgen.Version, vi *packetgen.Violation, what string) {
		t.Helper()
		checkSection(t, v, vi, what)
		if name := specName(v); !lists[name][vi.Rule] {
			t.Errorf("%s: %s names %s, which is not a %s statement\n%v", what, v, vi.Rule, name, vi)
		}
	}
	for _, c := range loadGolden(t) {
		if !c.Violation() {
			continue
		}
		d := c.Decoder()
		_, _, err := d.Decode(c.Bytes())
		if vi := packetgen.AsViolation(err); vi != nil {
			check(c.Version(), vi, c.Name)
		}
	}
	for _, v := range []packetgen.Version{packetgen.V31, packetgen.V311, packetgen.V5} {
		for _, class := range packetgen.MalformedClasses(v) {
			g := packetgen.NewGen(7, v)
			for i := 0; i < 50; i++ {
				k, err := g.Malformed(class.Name)
				if err != nil {
					t.Fatal(err)
				}
				d := packetgen.Decoder{Version: v, Side: packetgen.FromClient, MaxPacketSize: 1 << 20}
				if k.Phase == packetgen.PhaseFirst && !k.Stateful {
					d.Version = 0
				}
				if name := specName(v); !lists[name][k.Rule] {
					t.Errorf("%s: the class names %s, which is not a %s statement", k, k.Rule, name)
				}
				_, _, err = d.Decode(k.Bytes)
				if vi := packetgen.AsViolation(err); vi != nil {
					check(v, vi, k.String())
				}
			}
		}
	}
}

// TestViolationSectionsPerVersion pins the sections 5.0 renumbered: the
// same fault in the same bytes cites §x in 3.1.1 and §y in 5.0. Each of
// these cited the 3.1.1 number in 5.0 once.
func TestViolationSectionsPerVersion(t *testing.T) {
	cases := []struct {
		name             string
		hex3, hex5       string
		side             packetgen.Side
		max              int
		rule3, rule5     string
		sec3, sec5       string
		reason3, reason5 packetgen.ReasonCode
	}{
		{"ill-formed UTF-8 in a topic name", "30 04 00 02 61 FF", "30 05 00 02 61 FF 00", packetgen.FromClient, 0,
			"MQTT-1.5.3-1", "MQTT-1.5.4-1", "1.5.3", "1.5.4", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"U+0000 in a client identifier", "10 0D 00 04 4D 51 54 54 04 02 00 00 00 01 00", "10 0E 00 04 4D 51 54 54 05 02 00 00 00 00 01 00", packetgen.FromClient, 0,
			"MQTT-1.5.3-2", "MQTT-1.5.4-2", "1.5.3", "1.5.4", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"a topic name running past the packet", "30 03 00 05 61", "30 03 00 05 61", packetgen.FromClient, 0,
			"MQTT-4.8.0-1", "MQTT-4.13.1-1", "1.5.3", "1.5.4", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"a password running past the packet", "10 11 00 04 4D 51 54 54 04 C2 00 00 00 01 61 00 00 00 09", "10 12 00 04 4D 51 54 54 05 C2 00 00 00 00 01 61 00 00 00 09", packetgen.FromClient, 0,
			"MQTT-3.1.2-21", "MQTT-3.1.2-19", "3.1.3", "1.5.6", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"a remaining length of five bytes", "30 80 80 80 80 01", "30 80 80 80 80 01", packetgen.FromClient, 0,
			"MQTT-4.8.0-1", "MQTT-4.13.1-1", "2.2.3", "1.5.5", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"a reserved packet type", "00 00", "00 00", packetgen.FromClient, 0,
			"MQTT-4.8.0-1", "MQTT-4.13.1-1", "2.2.1", "2.1.2", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"a packet only a server sends, from a client", "90 03 00 01 00", "90 04 00 01 00 00", packetgen.FromClient, 0,
			"MQTT-4.8.0-1", "MQTT-4.13.1-1", "2.2.1", "2.1.2", packetgen.ProtocolError, packetgen.ProtocolError},
		{"reserved fixed-header flags", "41 02 00 01", "41 02 00 01", packetgen.FromClient, 0,
			"MQTT-2.2.2-2", "MQTT-2.1.3-1", "2.2.2", "2.1.3", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"packet identifier 0", "40 02 00 00", "40 02 00 00", packetgen.FromClient, 0,
			"MQTT-2.3.1-6", "MQTT-2.2.1-5", "2.3.1", "2.2.1", packetgen.ProtocolError, packetgen.ProtocolError},
		{"a field cut by the remaining length", "40 01 00", "40 01 00", packetgen.FromClient, 0,
			"MQTT-4.8.0-1", "MQTT-4.13.1-1", "2.2.3", "2.1.4", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"trailing bytes", "C0 01 00", "C0 01 00", packetgen.FromClient, 0,
			"MQTT-4.8.0-1", "MQTT-4.13.1-1", "2.2.3", "2.1.4", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"session present with a refusal", "20 02 01 05", "20 03 01 87 00", packetgen.FromServer, 0,
			"MQTT-3.2.2-4", "MQTT-3.2.2-6", "3.2.2.2", "3.2.2.1.1", packetgen.ProtocolError, packetgen.ProtocolError},
		{"reserved subscription option bits", "82 06 00 01 00 01 61 04", "82 07 00 01 00 00 01 61 C0", packetgen.FromClient, 0,
			"MQTT-3.8.3-4", "MQTT-3.8.3-5", "3.8.3", "3.8.3.1", packetgen.MalformedPacket, packetgen.MalformedPacket},
		{"a client's packet over the size limit", "30 FF FF FF 7F", "30 FF FF FF 7F", packetgen.FromClient, 1 << 20,
			"MQTT-4.8.0-1", "MQTT-3.2.2-15", "2.2.3", "3.2.2.3.6", packetgen.PacketTooLarge, packetgen.PacketTooLarge},
		{"a server's packet over the size limit", "30 FF FF FF 7F", "30 FF FF FF 7F", packetgen.FromServer, 1 << 20,
			"MQTT-4.8.0-1", "MQTT-3.1.2-24", "2.2.3", "3.1.2.11.4", packetgen.PacketTooLarge, packetgen.PacketTooLarge},
	}
	for _, c := range cases {
		for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
			hex, rule, section, reason := c.hex3, c.rule3, c.sec3, c.reason3
			if v == packetgen.V5 {
				hex, rule, section, reason = c.hex5, c.rule5, c.sec5, c.reason5
			}
			t.Run(v.String()+"/"+c.name, func(t *testing.T) {
				b := mustHex(t, hex)
				d := packetgen.Decoder{Version: v, Side: c.side, MaxPacketSize: c.max}
				if packetgen.Type(b[0]>>4) == packetgen.TypeConnect {
					d.Version = 0
				}
				_, _, err := d.Decode(b)
				var vi *packetgen.Violation
				if !errors.As(err, &vi) {
					t.Fatalf("Decode(%s) = %v, want %s §%s", hex, err, rule, section)
				}
				if vi.Rule != rule || vi.Section != section || vi.Reason != reason {
					t.Errorf("Decode(%s) = %s §%s %s, want %s §%s %s\n%v", hex, vi.Rule, vi.Section, vi.Reason, rule, section, reason, vi)
				}
			})
		}
	}
}
