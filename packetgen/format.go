package packetgen

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Format returns a one-line, deterministic description of p, used in wire
// traces and golden tests, for example:
//
//	PUBLISH qos=1 retain id=7 topic="a/b" payload="hello"
//
// Zero-valued fields are left out; byte fields are quoted when printable
// and hex otherwise; long payloads are cut with their length given.
func Format(p Packet) string {
	var b strings.Builder
	b.WriteString(p.Type().String())
	w := func(k string, v any) { fmt.Fprintf(&b, " %s=%v", k, v) }
	flag := func(k string, on bool) {
		if on {
			b.WriteString(" " + k)
		}
	}
	switch p := p.(type) {
	case *Connect:
		if p.ProtocolName != "" {
			w("proto", strconv.Quote(p.ProtocolName))
		}
		w("level", byte(p.ProtocolLevel))
		flag("clean", p.CleanStart)
		w("keepalive", p.KeepAlive)
		w("client", strconv.Quote(p.ClientID))
		if p.UsernameFlag {
			w("user", strconv.Quote(p.Username))
		}
		if p.PasswordFlag {
			// Never show a password, nor its length.
			w("password", "<redacted>")
		}
		formatProps(&b, "", &p.Properties)
		if wl := p.Will; wl != nil {
			w("will.qos", byte(wl.QoS))
			flag("will.retain", wl.Retain)
			w("will.topic", quoteString(wl.Topic))
			w("will.payload", quoteBytes(wl.Payload))
			formatProps(&b, "will.", &wl.Properties)
		}
	case *Connack:
		flag("session-present", p.SessionPresent)
		w("code", fmt.Sprintf("0x%02X", byte(p.ReasonCode)))
		formatProps(&b, "", &p.Properties)
	case *Publish:
		flag("dup", p.Dup)
		if p.QoS != 0 {
			w("qos", byte(p.QoS))
		}
		flag("retain", p.Retain)
		if p.PacketID != 0 {
			w("id", p.PacketID)
		}
		w("topic", quoteBytes(p.Topic))
		formatProps(&b, "", &p.Properties)
		w("payload", quoteBytes(p.Payload))
	case *Puback:
		formatAck(&b, p)
	case *Pubrec:
		formatAck(&b, (*Puback)(p))
	case *Pubrel:
		formatAck(&b, (*Puback)(p))
	case *Pubcomp:
		formatAck(&b, (*Puback)(p))
	case *Subscribe:
		w("id", p.PacketID)
		formatProps(&b, "", &p.Properties)
		for _, s := range p.Subscriptions {
			fmt.Fprintf(&b, " %s:%d", quoteString(s.Filter), s.QoS)
			flag("nl", s.NoLocal)
			flag("rap", s.RetainAsPublished)
			if s.RetainHandling != 0 {
				fmt.Fprintf(&b, " rh=%d", s.RetainHandling)
			}
		}
	case *Suback:
		w("id", p.PacketID)
		formatProps(&b, "", &p.Properties)
		formatCodes(&b, p.ReasonCodes)
	case *Unsubscribe:
		w("id", p.PacketID)
		formatProps(&b, "", &p.Properties)
		for _, f := range p.Filters {
			b.WriteString(" " + quoteString(f))
		}
	case *Unsuback:
		w("id", p.PacketID)
		formatProps(&b, "", &p.Properties)
		formatCodes(&b, p.ReasonCodes)
	case *Disconnect:
		if p.ReasonCode != 0 {
			w("code", fmt.Sprintf("0x%02X", byte(p.ReasonCode)))
		}
		formatProps(&b, "", &p.Properties)
	case *Auth:
		if p.ReasonCode != 0 {
			w("code", fmt.Sprintf("0x%02X", byte(p.ReasonCode)))
		}
		formatProps(&b, "", &p.Properties)
	}
	return b.String()
}

func formatAck(b *strings.Builder, p *Puback) {
	fmt.Fprintf(b, " id=%d", p.PacketID)
	if p.ReasonCode != 0 {
		fmt.Fprintf(b, " code=0x%02X", byte(p.ReasonCode))
	}
	formatProps(b, "", &p.Properties)
}

func formatCodes(b *strings.Builder, codes []ReasonCode) {
	if len(codes) == 0 {
		return
	}
	b.WriteString(" codes=")
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "0x%02X", byte(c))
	}
}

// formatProps writes present properties as camel-free keys in identifier
// order: "p.TopicAlias=3".
func formatProps(b *strings.Builder, prefix string, p *Properties) {
	for s := uint64(p.Present); s != 0; s &= s - 1 {
		id := PropID(bits.TrailingZeros64(s))
		v := p.Get(id)
		if bs, ok := v.([]byte); ok {
			v = quoteBytes(bs)
		} else if str, ok := v.(string); ok {
			v = strconv.Quote(str)
		}
		if id == PropAuthenticationData {
			v = fmt.Sprintf("<%d bytes>", len(p.AuthenticationData))
		}
		fmt.Fprintf(b, " %sp.%s=%v", prefix, strings.ReplaceAll(id.String(), " ", ""), v)
	}
	for _, x := range p.SubscriptionIdentifiers {
		fmt.Fprintf(b, " %sp.SubscriptionIdentifier=%d", prefix, x)
	}
	for _, u := range p.UserProperties {
		fmt.Fprintf(b, " %sp.UserProperty=%s:%s", prefix, strconv.Quote(u.Key), strconv.Quote(u.Value))
	}
	if p.Raw != nil {
		fmt.Fprintf(b, " %sp.raw=%X", prefix, p.Raw)
	}
}

// quoteString quotes a string field, cut like quoteBytes so that a
// 65,535-byte topic filter does not flood a trace line.
func quoteString(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:64]) + fmt.Sprintf("...(%d bytes)", len(s))
}

// quoteBytes quotes printable bytes and hex-dumps the rest, cutting long
// values so a trace line stays readable.
func quoteBytes(v []byte) string {
	const max = 64
	cut := ""
	if len(v) > max {
		cut = fmt.Sprintf("...(%d bytes)", len(v))
		v = v[:max]
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7E {
			return fmt.Sprintf("%X%s", v, cut)
		}
	}
	return strconv.Quote(string(v)) + cut
}
