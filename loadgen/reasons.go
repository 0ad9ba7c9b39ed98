package loadgen

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

// Every reason code other than success that the broker sends is counted
// by packet and code: refused CONNACKs and SUBACKs (3.1.1 return codes
// too), and in MQTT 5.0 the acknowledgements (0x10 "no matching
// subscribers" included: the message was accepted, but it tells the
// reader something) and the broker's DISCONNECT.

// reasonPacket is a packet that carries a reason code.
type reasonPacket uint8

const (
	rpConnack reasonPacket = iota
	rpSuback
	rpPuback
	rpPubrec
	rpPubrel
	rpPubcomp
	rpDisconnect
	numReasonPackets
)

var reasonPackets = [numReasonPackets]packetgen.Type{
	packetgen.TypeConnack, packetgen.TypeSuback, packetgen.TypePuback, packetgen.TypePubrec,
	packetgen.TypePubrel, packetgen.TypePubcomp, packetgen.TypeDisconnect,
}

// reasonOf maps an acknowledgement's type to its counter.
func reasonOf(t packetgen.Type) reasonPacket {
	switch t {
	case packetgen.TypePuback:
		return rpPuback
	case packetgen.TypePubrec:
		return rpPubrec
	case packetgen.TypePubrel:
		return rpPubrel
	}
	return rpPubcomp
}

// reasonCounts counts codes without locks or allocation: one counter per
// packet and code.
type reasonCounts [numReasonPackets][256]atomic.Uint64

func (r *reasonCounts) add(p reasonPacket, code byte) { r[p][code].Add(1) }

// summary lists the counts, by packet then code, named as version v names
// them.
func (r *reasonCounts) summary(v packetgen.Version) []reports.LoadReasonCode {
	var out []reports.LoadReasonCode
	for p := range numReasonPackets {
		for code := range 256 {
			if n := r[p][code].Load(); n > 0 {
				t := reasonPackets[p]
				out = append(out, reports.LoadReasonCode{Packet: t.String(), Code: code, Name: reasonName(v, t, byte(code)), Count: n})
			}
		}
	}
	return out
}

// reasonName is what the specification of version v calls code in a
// packet of type t.
func reasonName(v packetgen.Version, t packetgen.Type, code byte) string {
	if v != packetgen.V5 {
		switch {
		case t == packetgen.TypeConnack:
			if s, ok := connackCodes[code]; ok {
				return s
			}
		case t == packetgen.TypeSuback && code == 0x80:
			return "Failure"
		}
		return fmt.Sprintf("return code 0x%02X", code)
	}
	if t == packetgen.TypeDisconnect && code == 0 {
		return "Normal disconnection"
	}
	return packetgen.ReasonCode(code).String()
}

// MergeReasonCodes adds up the reason code counts of several runs, in
// packet then code order.
func MergeReasonCodes(parts ...[]reports.LoadReasonCode) []reports.LoadReasonCode {
	var out []reports.LoadReasonCode
	for _, part := range parts {
		for _, r := range part {
			i := slices.IndexFunc(out, func(o reports.LoadReasonCode) bool { return o.Packet == r.Packet && o.Code == r.Code })
			if i < 0 {
				out = append(out, r)
				continue
			}
			out[i].Count += r.Count
		}
	}
	order := map[string]int{}
	for i, t := range reasonPackets {
		order[t.String()] = i
	}
	slices.SortFunc(out, func(a, b reports.LoadReasonCode) int {
		if d := order[a.Packet] - order[b.Packet]; d != 0 {
			return d
		}
		return a.Code - b.Code
	})
	return out
}

// DisconnectError is a DISCONNECT from the broker (MQTT 5.0), which
// closes the connection with a reason.
type DisconnectError struct {
	Code   byte
	Reason string // the Reason String property, if any
}

func (e *DisconnectError) Error() string {
	s := fmt.Sprintf("the broker sent DISCONNECT 0x%02X (%s)", e.Code, reasonName(packetgen.V5, packetgen.TypeDisconnect, e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// UnsupportedError is a broker whose CONNACK rules out what the scenario
// does (MQTT 5.0): a Maximum QoS below its QoS, no Subscription
// Identifiers when it sends them. The client would break the protocol if
// it went on, so the connection is closed.
type UnsupportedError struct{ Detail string }

func (e *UnsupportedError) Error() string { return e.Detail }
