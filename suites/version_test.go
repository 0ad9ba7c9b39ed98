package suites

import (
	"slices"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// Every statement a step relies on has its 5.0 number: each list of
// rules5 turns into statements of the 5.0 list, and every rule of
// step.go that 5.0 numbers differently is in rules5.
func TestRules5(t *testing.T) {
	all5 := AllStatements(packetgen.V5)
	w := &World{cfg: &Config{Version: packetgen.V5}}
	for _, rules := range [][]string{ruleConnack, ruleConnackOK, ruleClientID, ruleSuback, ruleSubackID, ruleSubackN,
		ruleSubackRC, ruleUnsuback, ruleUnsubackID, rulePuback, rulePubackID, rulePubrec, rulePubrecID, rulePubcomp,
		rulePubcompID, rulePubrel, rulePubrelID, rulePacketID, ruleNoRename} {
		for _, id := range w.versionRules(rules) {
			if !slices.Contains(all5, id) {
				t.Errorf("%v becomes %s in 5.0, which is no 5.0 statement", rules, id)
			}
		}
	}
	w311 := &World{cfg: &Config{Version: packetgen.V311}}
	if got := w311.versionRules(rulePubrec); !slices.Equal(got, rulePubrec) {
		t.Errorf("3.1.1 rules were translated: %v", got)
	}
}

func TestParseProtocols(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []packetgen.Version
		err  bool
	}{
		{"3.1.1", []packetgen.Version{packetgen.V311}, false},
		{"5", []packetgen.Version{packetgen.V5}, false},
		{"5.0", []packetgen.Version{packetgen.V5}, false},
		{"all", []packetgen.Version{packetgen.V311, packetgen.V5}, false},
		{"3.1", nil, true},
		{"6", nil, true},
	} {
		got, err := ParseProtocols(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v", tc.in, got, err)
		}
	}
}

// A spec that ended with warnings is a warning, counted among the passed;
// a run of two versions has each spec's version and verdicts per version.
func TestConvertWarningsAndVersions(t *testing.T) {
	r := types.Report{SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "[MQTT-3.1.4-3] closes the existing connection, after DISCONNECT 0x8E",
			LeafNodeLabels: []string{"v5", "connect"}, ContainerHierarchyTexts: []string{"3.1 CONNECT"},
			State: types.SpecStateSkipped, Failure: types.Failure{Message: warningPrefix + "[MQTT-3.1.4-3] expected DISCONNECT 0x8E"}},
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "[MQTT-3.1.0-1] closes on a first packet other than CONNECT",
			LeafNodeLabels: []string{"v3.1.1"}, ContainerHierarchyTexts: []string{"3.1 CONNECT"}, State: types.SpecStatePassed},
	}}
	res := Convert(r, Config{Broker: "inproc", Versions: []packetgen.Version{packetgen.V311, packetgen.V5}})
	if res.Protocol != "3.1.1+5.0" {
		t.Errorf("protocol %q", res.Protocol)
	}
	if res.Specs[0].State != reports.Warning || res.Specs[0].Protocol != "5.0" || !strings.HasPrefix(res.Specs[0].Message, "[MQTT-3.1.4-3]") {
		t.Errorf("warning spec %+v", res.Specs[0])
	}
	if res.Specs[1].Protocol != "3.1.1" || !res.OK() {
		t.Errorf("3.1.1 spec %+v, run OK %v", res.Specs[1], res.OK())
	}
	n := map[string]int{}
	verdict := map[string]string{}
	for _, st := range res.Statements {
		n[st.Protocol]++
		verdict[st.ID+" "+st.Protocol] = st.Verdict
	}
	if n["3.1.1"] != len(AllStatements(packetgen.V311)) || n["5.0"] != len(AllStatements(packetgen.V5)) {
		t.Errorf("statements per version %v", n)
	}
	if verdict["MQTT-3.1.4-3 5.0"] != reports.Warning || verdict["MQTT-3.1.0-1 3.1.1"] != reports.Passed ||
		verdict["MQTT-3.1.0-1 5.0"] != "not-covered" {
		t.Errorf("verdicts %v", verdict)
	}
}

// A 5.0 run works with what the broker advertised: the profile is
// narrowed to it, and a capability the profile set otherwise is noted.
func TestCapsNarrow(t *testing.T) {
	yes, two := true, 2
	p := Profile{Retain: &yes, MaxQoS: &two, SharedSubscriptions: &yes}
	p.withDefaults()
	ack := &packetgen.Connack{}
	ack.Properties.Set(packetgen.PropRetainAvailable, byte(0))
	ack.Properties.Set(packetgen.PropMaximumQoS, byte(1))
	ack.Properties.Set(packetgen.PropMaximumPacketSize, uint32(1000))
	c := &Caps{MaximumQoS: 2, RetainAvailable: true, WildcardAvailable: true, SharedAvailable: true, SubIDsAvailable: true, ReceiveMaximum: 65535}
	c.read(ack)
	got := c.narrow(p)
	if *got.Retain || *got.MaxQoS != 1 || !*got.Wildcards || got.MaxPayload != 500 {
		t.Errorf("narrowed profile retain=%v max_qos=%d wildcards=%v max_payload=%d", *got.Retain, *got.MaxQoS, *got.Wildcards, got.MaxPayload)
	}
	if *p.Retain != true {
		t.Error("narrow changed the profile it was given")
	}
	notes := strings.Join(c.Notes, "\n")
	for _, want := range []string{"retain: true; the broker's CONNACK advertises false", "max_qos: 2; the broker's CONNACK advertises 1"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	if strings.Contains(notes, "shared_subscriptions") || strings.Contains(notes, "wildcards") {
		t.Errorf("notes on capabilities that agree or were not set: %q", notes)
	}
}
