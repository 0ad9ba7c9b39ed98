package loadgen

import (
	"strings"
	"testing"

	"github.com/mqttbench/mqttbench/broker"
)

// A broker that acknowledges QoS 1 with PUBACK 0x01 (mochi-mqtt 2.7.9's
// way) breaks MQTT-3.4.2-1: strictly, every connection closes on it with
// a protocol error; told to tolerate it, the run goes on, every breach
// counted, and delivery is verified as usual.
func TestTolerateAckReasonCode(t *testing.T) {
	opts := Options{Broker: broker.Options{Faults: broker.Faults{AckGrantedQoS: true}}}
	sc := quick5(2, 2, 1, "bench/{p}")

	strict := run(t, sc, opts)
	if strict.Errors[ClassProtocol.String()] == 0 || !strings.Contains(strict.ErrorSample[ClassProtocol.String()], "MQTT-3.4.2-1") {
		t.Fatalf("strict: errors %v, %v; want protocol errors naming MQTT-3.4.2-1", strict.Errors, strict.ErrorSample)
	}
	if len(strict.Tolerated) != 0 {
		t.Errorf("strict: tolerated %+v", strict.Tolerated)
	}

	sc.Tolerate = []string{"MQTT-3.4.2-1"}
	l := run(t, sc, opts)
	checkClean(t, l, 1)
	if len(l.Errors) != 0 || len(l.Violations) != 0 {
		t.Fatalf("tolerant: errors %v, violations %v", l.Errors, l.Violations)
	}
	if len(l.Tolerated) != 1 || l.Tolerated[0].Statement != "MQTT-3.4.2-1" || l.Tolerated[0].Count != l.Messages.Sent ||
		!strings.Contains(l.Tolerated[0].Sample, "reason code 0x01") {
		t.Fatalf("tolerated %+v; want one MQTT-3.4.2-1 breach per message sent (%d)", l.Tolerated, l.Messages.Sent)
	}
	if n := reasonCount(l, "PUBACK", 0x01); n != l.Messages.Sent {
		t.Errorf("PUBACK 0x01 counted %d times, %d sent", n, l.Messages.Sent)
	}
	if l.Messages.Acked != l.Messages.Sent {
		t.Errorf("acked %d of %d: 0x01 is below 0x80, a success", l.Messages.Acked, l.Messages.Sent)
	}
	if l.Scenario.Tolerate[0] != "MQTT-3.4.2-1" {
		t.Errorf("scenario %+v", l.Scenario.Tolerate)
	}

	// A conformant broker: nothing to tolerate, nothing counted.
	ok := run(t, sc, Options{})
	if len(ok.Tolerated) != 0 || len(ok.Errors) != 0 {
		t.Errorf("conformant broker: tolerated %+v, errors %v", ok.Tolerated, ok.Errors)
	}
}

func TestTolerateValidate(t *testing.T) {
	sc := quick5(1, 1, 1, "t")
	sc.Tolerate = []string{"MQTT-3.4.2-1", "MQTT-3.7.2-1"}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	sc.Tolerate = []string{"MQTT-3.3.1-4"}
	if err := sc.Validate(); err == nil || !strings.Contains(err.Error(), `tolerate: "MQTT-3.3.1-4" cannot be tolerated`) {
		t.Fatalf("%v", err)
	}
}
