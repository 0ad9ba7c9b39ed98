package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// Tolerable are the statements a run may be told to tolerate
// (Scenario.Tolerate): each acknowledgement's "MUST use one of the Reason
// Codes" rule. A broker that breaks one still says which message it
// acknowledges and whether it succeeded (below 0x80), so the run can go
// on, counting each breach, where it would otherwise close the
// connection as a protocol error. mochi-mqtt 2.7.9 answers every QoS 1
// PUBLISH with PUBACK 0x01 ("granted QoS 1", a SUBACK code): tolerated,
// its throughput can be measured beside other brokers.
var Tolerable = []string{"MQTT-3.4.2-1", "MQTT-3.5.2-1", "MQTT-3.6.2-1", "MQTT-3.7.2-1"}

func (s *Scenario) validateTolerate() error {
	for _, id := range s.Tolerate {
		if !slices.Contains(Tolerable, id) {
			return fmt.Errorf("tolerate: %q cannot be tolerated; the run can go on past a breach of %s only (the acknowledgements' reason codes)",
				id, strings.Join(Tolerable, ", "))
		}
	}
	return nil
}

// tolerated counts the breaches a run tolerated, by statement.
type tolerated struct {
	allow  map[string]bool
	counts sync.Map // statement -> *toleratedCount
}

type toleratedCount struct {
	n      atomic.Uint64
	sample string
}

func newTolerated(ids []string) *tolerated {
	t := &tolerated{allow: map[string]bool{}}
	for _, id := range ids {
		t.allow[id] = true
	}
	return t
}

// ack decodes an acknowledgement whose strict decode failed with err:
// when err breaks a tolerated statement and the body still holds a packet
// identifier and a reason code, it counts the breach and returns them.
func (t *tolerated) ack(body []byte, err error) (id uint16, code byte, ok bool) {
	var v *packetgen.Violation
	if t == nil || len(t.allow) == 0 || !errors.As(err, &v) || !t.allow[v.Rule] || len(body) < 3 {
		return 0, 0, false
	}
	if id = binary.BigEndian.Uint16(body); id == 0 {
		return 0, 0, false
	}
	c, _ := t.counts.LoadOrStore(v.Rule, &toleratedCount{sample: v.Error()})
	c.(*toleratedCount).n.Add(1)
	return id, body[2], true
}

func (t *tolerated) summary() []reports.LoadTolerated {
	if t == nil {
		return nil
	}
	var out []reports.LoadTolerated
	t.counts.Range(func(k, v any) bool {
		c := v.(*toleratedCount)
		out = append(out, reports.LoadTolerated{Statement: k.(string), Count: c.n.Load(), Sample: c.sample})
		return true
	})
	slices.SortFunc(out, func(a, b reports.LoadTolerated) int { return strings.Compare(a.Statement, b.Statement) })
	return out
}

// MergeTolerated adds up the tolerated breaches of several runs.
func MergeTolerated(parts ...[]reports.LoadTolerated) []reports.LoadTolerated {
	var out []reports.LoadTolerated
	for _, p := range parts {
		for _, x := range p {
			i := slices.IndexFunc(out, func(o reports.LoadTolerated) bool { return o.Statement == x.Statement })
			if i < 0 {
				out = append(out, x)
				continue
			}
			out[i].Count += x.Count
		}
	}
	slices.SortFunc(out, func(a, b reports.LoadTolerated) int { return strings.Compare(a.Statement, b.Statement) })
	return out
}
