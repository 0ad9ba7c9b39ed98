package suites

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// Caps is what a 5.0 broker says of itself in the properties of CONNACK
// (§3.2.2.3), read once per run by a CONNECT of the suite's own, with
// the defaults the specification gives absent properties.
type Caps struct {
	MaximumQoS        packetgen.QoS
	RetainAvailable   bool
	WildcardAvailable bool
	SharedAvailable   bool
	SubIDsAvailable   bool
	ReceiveMaximum    uint16
	MaximumPacketSize uint32 // 0: no limit stated
	TopicAliasMaximum uint16
	// ServerKeepAlive is set when the broker replaces the client's keep
	// alive (the discovery CONNECT asks for 60 seconds).
	ServerKeepAlive *uint16
	// Ack is the CONNACK read; nil when Err says why there is none.
	Ack *packetgen.Connack
	Err string
	// Notes are the disagreements between the CONNACK and the profile.
	Notes []string
}

// discover connects once as a 5.0 client and reads the CONNACK.
func discover(cfg *Config) *Caps {
	caps := &Caps{MaximumQoS: 2, RetainAvailable: true, WildcardAvailable: true, SharedAvailable: true,
		SubIDsAvailable: true, ReceiveMaximum: 65535}
	if cfg.Dial == nil {
		caps.Err = "no broker to ask"
		return caps
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	c, err := wire.Dial(ctx, cfg.Dial, "discovery", packetgen.V5, nil)
	if err != nil {
		caps.Err = "connecting: " + err.Error()
		return caps
	}
	defer c.Close() //nolint:errcheck
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, CleanStart: true, KeepAlive: 60,
		ClientID: fmt.Sprintf("m%xcaps%d", cfg.Seed&0xFFFF, time.Now().UnixNano()%1e6)}
	if u := cfg.Profile.Username; u != "" {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, u, true, []byte(cfg.Profile.Password)
	}
	ack, err := c.Connect(cp, cfg.Timeout)
	switch {
	case err != nil:
		caps.Err = "no CONNACK to a 5.0 CONNECT: " + describeErr(err)
		return caps
	case ack.ReasonCode != 0:
		caps.Err = "the broker refused a 5.0 CONNECT: " + packetgen.Format(ack)
		return caps
	}
	c.Send(&packetgen.Disconnect{}) //nolint:errcheck
	caps.read(ack)
	return caps
}

// read takes the capabilities from a CONNACK.
func (c *Caps) read(ack *packetgen.Connack) {
	p := &ack.Properties
	c.Ack = ack
	if p.Has(packetgen.PropMaximumQoS) {
		c.MaximumQoS = packetgen.QoS(p.MaximumQoS)
	}
	if p.Has(packetgen.PropRetainAvailable) {
		c.RetainAvailable = p.RetainAvailable == 1
	}
	if p.Has(packetgen.PropWildcardSubscriptionAvailable) {
		c.WildcardAvailable = p.WildcardSubscriptionAvailable == 1
	}
	if p.Has(packetgen.PropSharedSubscriptionAvailable) {
		c.SharedAvailable = p.SharedSubscriptionAvailable == 1
	}
	if p.Has(packetgen.PropSubscriptionIdentifierAvailable) {
		c.SubIDsAvailable = p.SubscriptionIdentifierAvailable == 1
	}
	if p.Has(packetgen.PropReceiveMaximum) {
		c.ReceiveMaximum = p.ReceiveMaximum
	}
	if p.Has(packetgen.PropMaximumPacketSize) {
		c.MaximumPacketSize = p.MaximumPacketSize
	}
	if p.Has(packetgen.PropTopicAliasMaximum) {
		c.TopicAliasMaximum = p.TopicAliasMaximum
	}
	if p.Has(packetgen.PropServerKeepAlive) {
		k := p.ServerKeepAlive
		c.ServerKeepAlive = &k
	}
}

// narrow returns the profile a 5.0 run works with: what the profile
// allows and the broker advertises (the specs of 3.1.1 that 5.0 reuses
// read the profile), noting each capability the two disagree on.
func (c *Caps) narrow(p Profile) Profile {
	if c.Ack == nil {
		return p
	}
	note := func(key string, profile, advertised any) {
		c.Notes = append(c.Notes, fmt.Sprintf("the profile says %s: %v; the broker's CONNACK advertises %v", key, profile, advertised))
	}
	if *p.MaxQoS != int(c.MaximumQoS) && p.explicit["max_qos"] {
		note("max_qos", *p.MaxQoS, c.MaximumQoS)
	}
	if q := min(*p.MaxQoS, int(c.MaximumQoS)); q != *p.MaxQoS {
		p.MaxQoS = &q
	}
	flag := func(key string, v **bool, advertised bool) {
		if **v != advertised && p.explicit[key] {
			note(key, **v, advertised)
		}
		if **v && !advertised {
			f := false
			*v = &f
		}
	}
	if m := int(c.MaximumPacketSize); m > 0 && p.MaxPayload > m/2 {
		// Payload, topic and headers must fit in one packet.
		p.MaxPayload = m / 2
	}
	flag("retain", &p.Retain, c.RetainAvailable)
	flag("wildcards", &p.Wildcards, c.WildcardAvailable)
	optFlag := func(key string, v *bool, advertised bool) {
		if v != nil && *v != advertised {
			note(key, *v, advertised)
		}
	}
	optFlag("shared_subscriptions", p.SharedSubscriptions, c.SharedAvailable)
	optFlag("subscription_identifiers", p.SubscriptionIdentifiers, c.SubIDsAvailable)
	optInt := func(key string, v *int, advertised int, absent string) {
		if v == nil || *v == advertised {
			return
		}
		shown := any(advertised)
		if advertised == 0 && absent != "" {
			shown = absent
		}
		note(key, *v, shown)
	}
	optInt("topic_alias_maximum", p.TopicAliasMaximum, int(c.TopicAliasMaximum), "")
	optInt("receive_maximum", p.ReceiveMaximum, int(c.ReceiveMaximum), "")
	optInt("max_packet_size", p.MaxPacketSize, int(c.MaximumPacketSize), "no limit")
	if v := p.ServerKeepAlive; v != nil {
		switch {
		case c.ServerKeepAlive == nil:
			note("server_keep_alive", *v, "none (the client's keep alive holds)")
		case int(*c.ServerKeepAlive) != *v:
			note("server_keep_alive", *v, *c.ServerKeepAlive)
		}
	}
	return p
}

// Summary is the capabilities as reports show them.
func (c *Caps) Summary() map[string]any {
	if c == nil {
		return nil
	}
	if c.Ack == nil {
		return map[string]any{"error": c.Err}
	}
	m := map[string]any{
		"maximum_qos": int(c.MaximumQoS), "retain_available": c.RetainAvailable,
		"wildcard_subscription_available": c.WildcardAvailable, "shared_subscription_available": c.SharedAvailable,
		"subscription_identifiers_available": c.SubIDsAvailable, "receive_maximum": int(c.ReceiveMaximum),
		"topic_alias_maximum": int(c.TopicAliasMaximum),
	}
	if c.MaximumPacketSize > 0 {
		m["maximum_packet_size"] = int(c.MaximumPacketSize)
	}
	if c.ServerKeepAlive != nil {
		m["server_keep_alive"] = int(*c.ServerKeepAlive)
	}
	return m
}

// Caps is what the broker advertised, for a 5.0 spec. A run whose
// discovery failed leaves the spec without a verdict.
func (w *World) Caps() *Caps {
	c := w.cfg.caps
	if c == nil || c.Ack == nil {
		why := "capability discovery did not run"
		if c != nil {
			why = c.Err
		}
		w.inconclusive("the broker's 5.0 capabilities are unknown: %s", why)
	}
	return c
}

// Lacks skips the spec when the broker advertised it lacks a capability
// (the CONNACK property named by what).
func (w *World) Lacks(lacks bool, what string) {
	if lacks {
		ginkgo.Skip("capabilities: the broker's CONNACK advertises " + what)
	}
}

// capsGuard skips a spec about to send what the broker said it does not
// take, as a 5.0 client must not (MQTT-3.2.2-11, MQTT-3.2.2-14,
// MQTT-3.2.2-15): a PUBLISH above the Maximum QoS or with RETAIN 1
// without Retain Available, a will it cannot serve, a subscription it
// does not offer, a packet above its Maximum Packet Size. The specs that
// check the refusals send such packets unchecked (sendUnchecked, SendRaw)
// after asking Lacks. p may be nil for raw bytes of size bytes.
func (w *World) capsGuard(p packetgen.Packet, size int, raw ...byte) {
	c := w.cfg.caps
	if !w.is5() || c == nil || c.Ack == nil || w.refusals {
		return
	}
	if p == nil && len(raw) > 0 {
		// Raw bytes that decode as a valid packet are judged as one.
		d := packetgen.Decoder{Version: packetgen.V5, Side: packetgen.FromClient}
		if q, _, err := d.Decode(raw); err == nil {
			p = q
		}
	}
	lacks := func(what string) {
		ginkgo.Skip("capabilities: the spec sends " + what + ", which the broker's CONNACK says it does not take")
	}
	switch p := p.(type) {
	case *packetgen.Publish:
		if p.QoS > c.MaximumQoS && p.QoS <= 2 {
			lacks(fmt.Sprintf("a QoS %d PUBLISH (Maximum QoS %d)", p.QoS, c.MaximumQoS))
		}
		if p.Retain && !c.RetainAvailable {
			lacks("a PUBLISH with RETAIN 1 (Retain Available 0)")
		}
	case *packetgen.Connect:
		if wl := p.Will; wl != nil && wl.QoS > c.MaximumQoS && wl.QoS <= 2 {
			lacks(fmt.Sprintf("a will at QoS %d (Maximum QoS %d)", wl.QoS, c.MaximumQoS))
		}
		if wl := p.Will; wl != nil && wl.Retain && !c.RetainAvailable {
			lacks("a will with will retain 1 (Retain Available 0)")
		}
	case *packetgen.Subscribe:
		if p.Properties.Has(packetgen.PropSubscriptionIdentifier) && !c.SubIDsAvailable {
			lacks("a Subscription Identifier (Subscription Identifiers Available 0)")
		}
		for _, s := range p.Subscriptions {
			shared := strings.HasPrefix(s.Filter, "$share/")
			if shared && !c.SharedAvailable {
				lacks("a shared subscription (Shared Subscription Available 0)")
			}
			if strings.ContainsAny(s.Filter, "+#") && !c.WildcardAvailable {
				lacks("a wildcard subscription (Wildcard Subscription Available 0)")
			}
		}
	}
	if m := int(c.MaximumPacketSize); m > 0 && size > m {
		lacks(fmt.Sprintf("a packet of %d bytes (Maximum Packet Size %d)", size, m))
	}
}

// SendsRefused marks a spec that sends, on purpose, what the broker says
// it lacks, to see it refused: capsGuard lets it through.
func (w *World) SendsRefused() { w.refusals = true }

// summary5 adds the profile's 5.0 capabilities to its summary: never the
// SCRAM password.
func (p Profile) summary5(m map[string]any) {
	for k, v := range map[string]*bool{"shared_subscriptions": p.SharedSubscriptions, "subscription_identifiers": p.SubscriptionIdentifiers} {
		if v != nil {
			m[k] = *v
		}
	}
	for k, v := range map[string]*int{"topic_alias_maximum": p.TopicAliasMaximum, "receive_maximum": p.ReceiveMaximum,
		"max_packet_size": p.MaxPacketSize, "server_keep_alive": p.ServerKeepAlive} {
		if v != nil {
			m[k] = *v
		}
	}
	if a := p.EnhancedAuth; a != nil {
		m["enhanced_auth"] = a.Method + " as " + a.Username
	}
	if r := p.Redirect; r != nil {
		m["redirect"] = r.ClientID
	}
}
