package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// An MQTT 5.0 run's summary shows what CONNACK allowed, the reason codes
// counted and the topic alias savings, in the terminal table and the
// HTML report alike.
func TestLoadV5Sections(t *testing.T) {
	run := fixtureLoad("v5", 0)
	l := run.Summary
	l.Scenario.Protocol, l.Scenario.TopicAlias, l.Scenario.UserProperties, l.Scenario.UserPropertySize = "5.0", true, 2, 16
	l.Scenario.MessageExpiry = time.Minute
	ka := 30
	l.Connack = &LoadConnack{ReceiveMaximum: 20, MaximumPacketSize: 1024, TopicAliasMaximum: 10, MaximumQoS: 2, ServerKeepAlive: &ka, InflightWindow: 20}
	l.ReasonCodes = []LoadReasonCode{{Packet: "PUBACK", Code: 0x10, Name: "No matching subscribers", Count: 7}, {Packet: "DISCONNECT", Code: 0x8D, Name: "Keep Alive timeout", Count: 1}}
	l.Messages.MissedTooLarge, l.Messages.Rejected, l.Messages.TopicAliased, l.Messages.TopicAliasBytesSaved = 3, 4, 9990, 99900

	var term bytes.Buffer
	WriteLoadTable(&term, l)
	var page bytes.Buffer
	if err := WriteLoadHTML(&page, []LoadRun{run}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		where, text string
		want        []string
	}{
		{"terminal", term.String(), []string{"20 (window 20), 1024; topic alias max 10, max QoS 2, server keep alive 30s", "Reason codes", "0x10", "No matching subscribers", "0x8D", "above maximum packet size", "9990, 99900"}},
		{"html", page.String(), []string{"receive maximum 20 (window 20), maximum packet size 1024", "Reason codes", "0x8D", "Keep Alive timeout", "2 user properties of 16 B", "9990 sent with a topic alias (99900 B saved)"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.text, w) {
				t.Errorf("%s lacks %q:\n%s", c.where, w, c.text)
			}
		}
	}
}
