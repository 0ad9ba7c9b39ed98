package loadgen

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// MQTT 5.0 in a load run: the properties every PUBLISH carries, and how a
// subscriber reads and checks them on the hot path without allocating
// (the codec copies every string property it decodes; a delivery that the
// fast reader does not take goes through the codec instead).

// maxExpiry is the largest Session and Message Expiry Interval, in
// seconds; as a Session Expiry Interval it means "never".
const maxExpiry = 0xFFFFFFFF

// ParseProtocol reads the protocol a load run speaks: "3.1.1" (or "4") and
// "5" (or "5.0").
func ParseProtocol(s string) (packetgen.Version, error) {
	v, err := packetgen.ParseVersion(strings.TrimSpace(s))
	if err != nil || v == packetgen.V31 {
		return 0, fmt.Errorf("%q: want 3.1.1 or 5", s)
	}
	return v, nil
}

// V5 reports a scenario that speaks MQTT 5.0.
func (s *Scenario) V5() bool { return s.Protocol == packetgen.V5 }

// version is the protocol level of every CONNECT.
func (s *Scenario) version() packetgen.Version {
	if s.V5() {
		return packetgen.V5
	}
	return packetgen.V311
}

// validate5 checks the 5.0 fields, and that a 3.1.1 scenario has none.
func (s *Scenario) validate5() error {
	if s.Protocol != 0 && s.Protocol != packetgen.V311 && s.Protocol != packetgen.V5 {
		return fmt.Errorf("protocol: %s: want 3.1.1 or 5", s.Protocol)
	}
	if !s.V5() {
		for _, f := range []struct {
			set  bool
			name string
		}{
			{s.SessionExpiry != 0, "session_expiry"}, {s.MessageExpiry != 0, "message_expiry"},
			{s.UserProperties != 0, "user_properties"}, {s.UserPropertySize != 0, "user_property_size"},
			{s.ContentType != "", "content_type"}, {s.PayloadFormat, "payload_format"},
			{s.TopicAlias, "topic_alias"}, {s.SubscriptionID, "subscription_id"},
		} {
			if f.set {
				return fmt.Errorf("%s (--%s): an MQTT 5.0 property; set protocol 5 (--protocol 5)", f.name, strings.ReplaceAll(f.name, "_", "-"))
			}
		}
		return nil
	}
	switch {
	case s.SessionExpiry < 0 || s.SessionExpiry > maxExpiry*time.Second:
		return fmt.Errorf("session_expiry: %s is not between 0 and %ds", s.SessionExpiry, uint32(maxExpiry))
	case s.MessageExpiry < 0 || s.MessageExpiry > maxExpiry*time.Second:
		return fmt.Errorf("message_expiry: %s is not between 0 and %ds", s.MessageExpiry, uint32(maxExpiry))
	case s.MessageExpiry > 0 && s.MessageExpiry < time.Second:
		return fmt.Errorf("message_expiry: %s is less than a second, the interval's unit", s.MessageExpiry)
	case s.SessionExpiry > 0 && s.SessionExpiry < time.Second:
		return fmt.Errorf("session_expiry: %s is less than a second, the interval's unit", s.SessionExpiry)
	case s.UserProperties < 0 || s.UserProperties > 1000:
		return fmt.Errorf("user_properties: %d is not between 0 and 1000", s.UserProperties)
	case s.UserPropertySize < 0 || s.UserPropertySize > packetgen.MaxStringLength:
		return fmt.Errorf("user_property_size: %d is not between 0 and %d", s.UserPropertySize, packetgen.MaxStringLength)
	case len(s.ContentType) > packetgen.MaxStringLength:
		return fmt.Errorf("content_type: %d bytes is more than %d", len(s.ContentType), packetgen.MaxStringLength)
	case s.PayloadFormat && s.Payload < TextHeaderSize:
		return fmt.Errorf("payload: %d bytes is less than the %d-byte text header a UTF-8 payload (payload_format) starts with", s.Payload, TextHeaderSize)
	}
	if err := topic.ValidUTF8(s.ContentType, true); err != nil {
		return fmt.Errorf("content_type: %v", err)
	}
	if n := s.Payload + s.UserProperties*(s.UserPropertySize+12) + len(s.ContentType) + 64<<10; n > packetgen.MaxPacketSize {
		return fmt.Errorf("user_properties: %d of %d bytes on a %d-byte payload make a PUBLISH larger than MQTT allows", s.UserProperties, s.UserPropertySize, s.Payload)
	}
	return nil
}

// sessionExpiry is the Session Expiry Interval CONNECT carries.
func (s *Scenario) sessionExpiry() uint32 {
	if s.SessionExpiry == 0 && !s.CleanSession {
		return maxExpiry
	}
	return uint32(s.SessionExpiry / time.Second)
}

// userProperties are the user properties of every PUBLISH: u0, u1, ...
// with values of UserPropertySize bytes of printable ASCII.
func (s *Scenario) userProperties() []packetgen.UserProperty {
	if s.UserProperties == 0 {
		return nil
	}
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	v := make([]byte, s.UserPropertySize)
	for i := range v {
		v[i] = alphabet[i%len(alphabet)]
	}
	out := make([]packetgen.UserProperty, s.UserProperties)
	for i := range out {
		out[i] = packetgen.UserProperty{Key: "u" + itoa(i), Value: string(v)}
	}
	return out
}

// publishProperties are the properties of every PUBLISH, topic alias aside.
func (s *Scenario) publishProperties() packetgen.Properties {
	var p packetgen.Properties
	if !s.V5() {
		return p
	}
	if s.PayloadFormat {
		p.Set(packetgen.PropPayloadFormatIndicator, byte(1))
	}
	if s.MessageExpiry > 0 {
		p.Set(packetgen.PropMessageExpiryInterval, uint32(s.MessageExpiry/time.Second))
	}
	if s.ContentType != "" {
		p.Set(packetgen.PropContentType, s.ContentType)
	}
	p.UserProperties = s.userProperties()
	return p
}

// delivery is a 5.0 PUBLISH from the broker as a subscriber checks it;
// its slices alias the read buffer.
type delivery struct {
	qos         packetgen.QoS
	packetID    uint16
	payload     []byte
	pfi         int8  // -1: absent
	expiry      int64 // -1: absent
	contentType []byte
	hasType     bool
	subIDs      [4]uint32
	nSubIDs     int
	// userProps: the user properties were exactly those the publishers
	// send, in their order.
	userProps bool
}

// readDelivery reads a 5.0 PUBLISH body from the broker into d. The fast
// path takes the properties the generator's own messages carry; anything
// else, a fault included, is decoded by the codec (into scratch), which
// names the rule a fault breaks.
func readDelivery(flags byte, body []byte, d *delivery, want []packetgen.UserProperty, scratch *packetgen.Publish) error {
	if fastDelivery(flags, body, d, want) {
		return nil
	}
	if err := scratch.DecodeBody(flags, body, packetgen.V5, packetgen.FromServer); err != nil {
		return &ProtocolError{Err: err}
	}
	pp := &scratch.Properties
	if pp.Has(packetgen.PropTopicAlias) {
		return &ProtocolError{Detail: fmt.Sprintf("a PUBLISH with Topic Alias %d, although this client's CONNECT allows none (MQTT-3.1.2-27)", pp.TopicAlias)}
	}
	*d = delivery{qos: scratch.QoS, packetID: scratch.PacketID, payload: scratch.Payload, pfi: -1, expiry: -1}
	if pp.Has(packetgen.PropPayloadFormatIndicator) {
		d.pfi = int8(pp.PayloadFormatIndicator)
	}
	if pp.Has(packetgen.PropMessageExpiryInterval) {
		d.expiry = int64(pp.MessageExpiryInterval)
	}
	if pp.Has(packetgen.PropContentType) {
		d.contentType, d.hasType = []byte(pp.ContentType), true
	}
	d.nSubIDs = copy(d.subIDs[:], pp.SubscriptionIdentifiers)
	d.userProps = len(pp.UserProperties) == len(want)
	for i, u := range pp.UserProperties {
		if i < len(want) && u != want[i] {
			d.userProps = false
		}
	}
	return nil
}

// fastDelivery reads the common shape of a delivery: a valid topic, and
// only the Payload Format Indicator, Message Expiry Interval, Content
// Type, Subscription Identifiers (up to four) and User Properties, each
// well formed. It reports false for anything else; it never takes what
// the codec would refuse.
func fastDelivery(flags byte, body []byte, d *delivery, want []packetgen.UserProperty) bool {
	*d = delivery{qos: packetgen.QoS(flags >> 1 & 3), pfi: -1, expiry: -1}
	t, i, ok := field(body, 0, len(body))
	if !ok || len(t) == 0 || topic.ValidateName(t, true) != nil {
		return false
	}
	if d.qos > 0 {
		if i+2 > len(body) {
			return false
		}
		d.packetID = binary.BigEndian.Uint16(body[i:])
		if d.packetID == 0 {
			return false
		}
		i += 2
	}
	n, w := varint(body[i:])
	if w == 0 || i+w+int(n) > len(body) {
		return false
	}
	i += w
	end := i + int(n)
	var seen uint64
	up := 0
	d.userProps = true
	for i < end {
		id := body[i]
		i++
		if id != byte(packetgen.PropUserProperty) && id != byte(packetgen.PropSubscriptionIdentifier) {
			if id >= 64 || seen&(1<<id) != 0 {
				return false
			}
			seen |= 1 << id
		}
		switch packetgen.PropID(id) {
		case packetgen.PropPayloadFormatIndicator:
			if i >= end || body[i] > 1 {
				return false
			}
			d.pfi = int8(body[i])
			i++
		case packetgen.PropMessageExpiryInterval:
			if i+4 > end {
				return false
			}
			d.expiry = int64(binary.BigEndian.Uint32(body[i:]))
			i += 4
		case packetgen.PropContentType:
			var s []byte
			if s, i, ok = field(body, i, end); !ok || topic.ValidUTF8(s, true) != nil {
				return false
			}
			d.contentType, d.hasType = s, true
		case packetgen.PropSubscriptionIdentifier:
			x, w := varint(body[i:end])
			if w == 0 || x == 0 || d.nSubIDs == len(d.subIDs) {
				return false
			}
			d.subIDs[d.nSubIDs] = x
			d.nSubIDs++
			i += w
		case packetgen.PropUserProperty:
			var k, v []byte
			if k, i, ok = field(body, i, end); !ok || topic.ValidUTF8(k, true) != nil {
				return false
			}
			if v, i, ok = field(body, i, end); !ok || topic.ValidUTF8(v, true) != nil {
				return false
			}
			if up >= len(want) || string(k) != want[up].Key || string(v) != want[up].Value {
				d.userProps = false
			}
			up++
		default:
			return false
		}
	}
	d.userProps = d.userProps && up == len(want)
	d.payload = body[end:]
	return true
}

// field reads a two-byte length and that many bytes at b[i:], within end.
func field(b []byte, i, end int) ([]byte, int, bool) {
	if i+2 > end {
		return nil, i, false
	}
	n := int(binary.BigEndian.Uint16(b[i:]))
	if i+2+n > end {
		return nil, i, false
	}
	return b[i+2 : i+2+n], i + 2 + n, true
}

// varint reads a Variable Byte Integer in its minimal encoding
// (MQTT-1.5.5-1); w is 0 for a short, long or non-minimal one.
func varint(b []byte) (x uint32, w int) {
	var shift uint
	for w < len(b) && w < 4 {
		c := b[w]
		w++
		x |= uint32(c&0x7F) << shift
		if c&0x80 == 0 {
			if c == 0 && w > 1 {
				return 0, 0 // a trailing zero byte: not minimal
			}
			return x, w
		}
		shift += 7
	}
	return 0, 0
}

// Property faults: a 5.0 broker must forward each of these unaltered
// (the statement is in faultRules).
const (
	faultSubscriptionID = iota
	faultUserProperties
	faultContentType
	faultPayloadFormat
	faultMessageExpiry
	numFaults
)

var faultNames = [numFaults]string{"subscription_identifier", "user_properties", "content_type", "payload_format", "message_expiry"}

var faultRules = map[string]string{
	"subscription_identifier": "without the subscriber's Subscription Identifier (MQTT-3.3.4-3)",
	"user_properties":         "with user properties altered, missing or reordered (MQTT-3.3.2-17, MQTT-3.3.2-18)",
	"content_type":            "with the Content Type altered (MQTT-3.3.2-20)",
	"payload_format":          "with the Payload Format Indicator altered, or a payload marked UTF-8 that is not (MQTT-3.3.2-4)",
	"message_expiry":          "with a Message Expiry Interval missing, added or above the one sent (MQTT-3.3.2-6)",
}

// checkDelivery counts what a broker changed in one of the run's messages.
func (a *attack) checkDelivery(d *delivery, s *subscriber) {
	sc := &a.sc
	if sc.SubscriptionID {
		found := false
		for _, x := range d.subIDs[:d.nSubIDs] {
			found = found || x == s.subID
		}
		if !found {
			s.log.Faults[faultSubscriptionID]++
		}
	}
	if !d.userProps {
		s.log.Faults[faultUserProperties]++
	}
	if d.hasType != (sc.ContentType != "") || string(d.contentType) != sc.ContentType {
		s.log.Faults[faultContentType]++
	}
	if sc.PayloadFormat {
		if d.pfi != 1 || !utf8.Valid(d.payload) {
			s.log.Faults[faultPayloadFormat]++
		}
	} else if d.pfi == 1 {
		s.log.Faults[faultPayloadFormat]++
	}
	sent := int64(sc.MessageExpiry / time.Second)
	if (sent == 0) != (d.expiry < 0) || d.expiry > sent {
		s.log.Faults[faultMessageExpiry]++
	}
}

// publishSize is the size of publisher p's PUBLISH with its topic in
// full and no alias.
func (a *attack) publishSize(p int) int {
	sc := &a.sc
	pkt := &packetgen.Publish{Topic: []byte(sc.PublisherTopic(max(p, 0))), QoS: sc.QoS, Properties: a.props, Payload: a.filler}
	if sc.QoS > 0 {
		pkt.PacketID = 1
	}
	return packetgen.Size(pkt, sc.version())
}
