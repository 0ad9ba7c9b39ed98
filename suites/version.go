package suites

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// MQTT 5.0 keeps most rules of 3.1.1 and renumbers many. A 5.0 section
// adds specs of its own and reuses the 3.1.1 specs whose rule did not
// change (Reuse), so both versions run the same code: the World and the
// Client speak the version of their Config, and the statements a step
// relies on are translated (versionRules).

// addSection5 is addSection for the specs of MQTT 5.0.
func addSection5(number, title string, specs func(s *S)) {
	sections = append(sections, section{packetgen.V5, number, title, specs})
}

// versions lists the versions a run covers.
func (c *Config) versions() []packetgen.Version {
	if len(c.Versions) > 0 {
		return c.Versions
	}
	return []packetgen.Version{c.Version}
}

// ParseProtocols reads mqttbench conform's --protocol: "3.1.1", "5" (or
// "5.0") or "all" (3.1.1 and 5.0 in one run).
func ParseProtocols(s string) ([]packetgen.Version, error) {
	if s == "all" {
		return []packetgen.Version{packetgen.V311, packetgen.V5}, nil
	}
	v, err := packetgen.ParseVersion(s)
	if err != nil || (v != packetgen.V311 && v != packetgen.V5) {
		return nil, fmt.Errorf("--protocol %q: want 3.1.1, 5 or all", s)
	}
	return []packetgen.Version{v}, nil
}

// forVersion is the configuration the specs of v run with: a copy of c
// speaking v. For 5.0 it holds what the broker advertised in CONNACK,
// and its profile is narrowed to that (a 5.0 broker says what it lacks,
// so specs needing it are skipped, not failed); disagreements with the
// profile are noted in the report.
func (c *Config) forVersion(v packetgen.Version) *Config {
	vc := *c
	vc.Version, vc.Versions, vc.perVersion = v, nil, nil
	vc.Profile.Deviations = nil
	for _, d := range c.Profile.Deviations {
		if d.Protocol == "" || d.Protocol == v.String() {
			vc.Profile.Deviations = append(vc.Profile.Deviations, d)
		}
	}
	if v == packetgen.V5 {
		vc.caps = discover(&vc)
		vc.Profile = vc.caps.narrow(vc.Profile)
	}
	return &vc
}

// versionOf returns the configuration of version v's specs after
// Register, or c itself.
func (c *Config) versionOf(v packetgen.Version) *Config {
	if vc := c.perVersion[v]; vc != nil {
		return vc
	}
	return c
}

// Reuse adds to this 5.0 section every spec of 3.1.1 section `number`
// whose statements are exactly ids311, under the 5.0 statements ids5:
// the rule is the same, only its number changed. "IDs: words" takes only
// the specs whose text starts with words. rename holds pairs of (old,
// new) words for the spec's text, for a rule that reads the same under
// another name ("clean session 1" is "Clean Start 1" in 5.0).
func (s *S) Reuse(number, ids311, ids5 string, rename ...string) {
	ids311, prefix, _ := strings.Cut(ids311, ":")
	prefix = strings.TrimSpace(prefix)
	want := strings.Fields(ids311)
	found := false
	for _, sec := range sections {
		if sec.version != packetgen.V311 || sec.number != number {
			continue
		}
		sec.specs(&S{cfg: s.cfg, section: number, capture: func(ids, text string, args []any) {
			if !slices.Equal(strings.Fields(ids), want) || !strings.HasPrefix(text, prefix) {
				return
			}
			found = true
			if len(rename) > 0 {
				text = strings.NewReplacer(rename...).Replace(text)
			}
			s.Spec(ids5, text, args...)
		}})
	}
	if !found {
		panic(fmt.Sprintf("suites: Reuse: no 3.1.1 spec in section %s cites %q", number, ids311))
	}
}

// rules5 translates the statements a step relies on (step.go) from 3.1.1
// to 5.0, whole lists at a time: one 3.1.1 statement may become several
// 5.0 ones, told apart by the list it is in.
var rules5 = map[string][]string{
	"MQTT-3.1.4-4":               {"MQTT-3.1.4-5"},                 // a valid CONNECT is accepted with 0x00
	"MQTT-3.8.4-2 MQTT-2.3.1-7":  {"MQTT-3.8.4-2", "MQTT-2.2.1-6"}, // SUBACK with the SUBSCRIBE's identifier
	"MQTT-3.8.4-5":               {"MQTT-3.8.4-6"},                 // a code per filter
	"MQTT-3.10.4-4 MQTT-2.3.1-7": {"MQTT-3.10.4-4", "MQTT-2.2.1-6"},
	"MQTT-3.3.4-1 MQTT-4.3.2-2":  {"MQTT-3.3.4-1", "MQTT-4.3.2-4"}, // PUBACK for QoS 1
	"MQTT-2.3.1-6 MQTT-4.3.2-2":  {"MQTT-2.2.1-5", "MQTT-4.3.2-4"},
	"MQTT-3.3.4-1 MQTT-4.3.3-2":  {"MQTT-3.3.4-1", "MQTT-4.3.3-8"}, // PUBREC for QoS 2
	"MQTT-2.3.1-6 MQTT-4.3.3-2":  {"MQTT-2.2.1-5"},
	"MQTT-4.3.3-2":               {"MQTT-4.3.3-11"}, // PUBCOMP for PUBREL
	"MQTT-4.3.3-1":               {"MQTT-4.3.3-4"},  // PUBREL for PUBREC
	"MQTT-2.3.1-6 MQTT-4.3.3-1":  {"MQTT-2.2.1-5", "MQTT-4.3.3-4"},
	"MQTT-2.3.1-1":               {"MQTT-2.2.1-4"}, // a server's QoS > 0 PUBLISH has an identifier
}

// versionRules returns the statements of rules in the world's version.
// Lists not in rules5 are the same in both versions (or already 5.0
// statements, such as a decoder's violation).
func (w *World) versionRules(rules []string) []string {
	if w.cfg.Version != packetgen.V5 {
		return rules
	}
	if r, ok := rules5[strings.Join(rules, " ")]; ok {
		return r
	}
	return rules
}

// is5 reports whether the world speaks MQTT 5.0.
func (w *World) is5() bool { return w.cfg.Version == packetgen.V5 }

// protocolName names the versions of a run in reports: "5.0", or
// "3.1.1+5.0" for --protocol all.
func (c *Config) protocolName() string {
	var names []string
	for _, v := range c.versions() {
		names = append(names, v.String())
	}
	return strings.Join(names, "+")
}

// versionLabel is the label of every spec of version v: "v3.1.1", "v5"
// (select with --label-filter v5).
func versionLabel(v packetgen.Version) string {
	if v == packetgen.V5 {
		return "v5"
	}
	return "v" + v.String()
}

// protocolOfLabels reads a spec's version from its version label.
func protocolOfLabels(labels []string) string {
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
		if slices.Contains(labels, versionLabel(v)) {
			return v.String()
		}
	}
	return ""
}

// setVerdicts gives each statement of each version of the run its
// verdict, from the specs of that version.
func setVerdicts(res *reports.Conformance, cfg Config) {
	var all []reports.Statement
	for _, v := range cfg.versions() {
		part := &reports.Conformance{}
		for _, s := range res.Specs {
			if s.Protocol == v.String() || s.Protocol == "" {
				part.Specs = append(part.Specs, s)
			}
		}
		part.Verdicts(AllStatements(v), cfg.notTestable(v))
		for i := range part.Statements {
			part.Statements[i].Protocol = v.String()
		}
		all = append(all, part.Statements...)
	}
	res.Statements = all
}
