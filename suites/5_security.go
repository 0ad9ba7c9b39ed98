package suites

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/packetgen"
)

// Section 5 leaves security to the implementation: which users connect,
// who may publish or subscribe to what, whether TLS clients need a
// certificate. The profile's security section says what this broker is
// set up to enforce (profile_security.go), and these specs check that it
// does, under the statements a refusal answers to: a refused CONNECT is
// closed after a non-zero CONNACK, a PUBLISH the server will not authorize
// is acknowledged or closed on, a SUBSCRIBE is answered with a granted QoS
// or a failure. Each spec first shows that what the profile allows works,
// so that a broker refusing everything does not pass. Without the
// security section the specs are skipped.

func init() {
	addSection("5", "Security", securitySpecs)
	addSection5("5", "Security", securitySpecs)
}

func securitySpecs(s *S) {
	label := Label("security")
	refused := refusedIDs(s)
	codes := "CONNACK 4 or 5"
	if s.cfg.Version == packetgen.V5 {
		codes = "CONNACK 0x86 or 0x87"
	}

	// A broker that checks passwords refuses a known user name with a
	// wrong password, and closes the connection.
	s.Spec(refused, "refuses a known user name with a wrong password ("+codes+", or a close)", label, func(w *World) {
		sec := secProfile(w)
		w.Require(len(sec.Users) > 0, "the security section names no user")
		u := sec.Users[0]
		w.as("right", u).Leave() // the right password is accepted
		c := w.Dial("wrong")
		expectRefused(c, w.ConnectPacket("wrong", asUser(u.Name, wrongPassword(u))), fmt.Sprintf("user %q with a wrong password", u.Name))
	})

	// A user the broker does not admit is refused.
	s.Spec(refused, "refuses the profile's refused user ("+codes+", or a close)", label, func(w *World) {
		sec := secProfile(w)
		r := sec.RefusedUser
		w.Require(r != nil, "the security section names no refused_user")
		if len(sec.Users) > 0 {
			w.as("admitted", sec.Users[0]).Leave()
		} else {
			w.Connect("admitted").Leave()
		}
		c := w.Dial("refused")
		expectRefused(c, w.ConnectPacket("refused", asUser(r.Name, r.Password)), fmt.Sprintf("the refused user %q", r.Name))
	})

	// A message published to a topic the user may not publish to reaches
	// no subscriber; the server only acknowledges it (or closes).
	s.Spec(deniedPublishID(s), "delivers to no subscriber a PUBLISH the user may not make, and acknowledges it or closes", label, func(w *World) {
		sec := secProfile(w)
		ran := 0
		for _, u := range sec.Users {
			for _, d := range u.DeniedPublish {
				t := w.fill(d)
				ru, rf, ok := secReader(sec, t)
				if !ok {
					continue
				}
				wu, ok := secWriterOf(sec, t, u.Name)
				if !ok {
					continue
				}
				ran++
				r := w.as(fmt.Sprintf("r%d", ran), ru)
				r.Granted(rf, 1)
				denied, control := w.payload(fmt.Sprintf("denied %d", ran)), w.payload(fmt.Sprintf("control %d", ran))
				p := w.as(fmt.Sprintf("p%d", ran), u)
				if secPublishDenied(p, t, denied) {
					p.Leave()
				}
				wr := w.as(fmt.Sprintf("w%d", ran), wu)
				wr.Publish(t, control, 1, false)
				wr.Leave()
				got, came := secReceive(r, control)
				r.Leave()
				secControl(w, came, "user %q published to %s for %q, subscribed to %s", wu.Name, t, ru.Name, rf)
				if slices.Contains(got, denied) {
					w.Failf("user %q published to %s, which the profile denies it (denied_publish %q), and %q, subscribed to %s, received the message",
						u.Name, t, d, ru.Name, rf)
				}
			}
		}
		w.Require(ran > 0, "no denied_publish topic that one user may read and another may publish to (which shows the subscriber works)")
	})

	// A subscription the user may not make, a wildcard that would widen
	// what it may read among them, brings it no message on a topic it may
	// not read: the broker refuses the subscription (SUBACK 0x80) or
	// grants it and filters the deliveries.
	s.Spec("MQTT-3.8.4-1 MQTT-3.9.3-2", "brings a user no message it may not read through a subscription it may not make, wildcards included", label, func(w *World) {
		sec := secProfile(w)
		ran := 0
		for _, u := range sec.Users {
			for _, f := range u.DeniedSubscribe {
				t, wu, ok := secTopicIn(w, sec, f, &u)
				if !ok {
					continue
				}
				var control, controlFilter string
				var cu SecurityUser
				for _, g := range u.MaySubscribe {
					if ct, cw, ok := secTopicIn(w, sec, g, nil); ok {
						control, controlFilter, cu = ct, g, cw
						break
					}
				}
				if control == "" {
					continue
				}
				ran++
				c := w.as(fmt.Sprintf("s%d", ran), u)
				granted := secSubscribeAny(c, f)
				c.Granted(controlFilter, 1)
				denied, allowed := w.payload(fmt.Sprintf("denied %d", ran)), w.payload(fmt.Sprintf("control %d", ran))
				for _, m := range []struct {
					name, topic, payload string
					u                    SecurityUser
				}{{"w", t, denied, wu}, {"c", control, allowed, cu}} {
					pub := w.as(fmt.Sprintf("%s%d", m.name, ran), m.u)
					pub.Publish(m.topic, m.payload, 1, false)
					pub.Leave()
				}
				got, came := secReceive(c, allowed)
				c.Leave()
				secControl(w, came, "user %q published to %s for %q, subscribed to %s", cu.Name, control, u.Name, controlFilter)
				if slices.Contains(got, denied) {
					how := "refused it"
					if granted {
						how = "granted it"
					}
					w.Failf("user %q subscribed to %q (denied_subscribe; the broker %s) and received the message %q published to %s, a topic it may not read",
						u.Name, f, how, wu.Name, t)
				}
			}
		}
		w.Require(ran > 0, "no denied_subscribe filter matching a topic some user may publish to, with a may_subscribe filter to show the subscriber works")
	})

	// CVE-2017-7650: a pattern granting each client its own subtree
	// ("sec/%c/#") must not grant a client called "+" or "#" everyone's.
	s.Spec("MQTT-3.8.4-1 "+deniedPublishID(s), "does not let a client identifier of + or # widen a %c pattern (CVE-2017-7650)", label, func(w *World) {
		sec := secProfile(w)
		var ident []ConnectOption
		user := w.cfg.Profile.Username
		if len(sec.Users) > 0 {
			ident, user = []ConnectOption{asUser(sec.Users[0].Name, sec.Users[0].Password)}, sec.Users[0].Name
		}
		ran := 0
		for _, p := range sec.Patterns {
			if !strings.Contains(p, "%c") || (strings.Contains(p, "%u") && user == "") {
				continue
			}
			for _, id := range []string{"+", "#"} {
				ran++
				secPatternAttack(w, p, patternSide{name: fmt.Sprintf("v%d", ran), user: user, opts: ident},
					patternSide{name: fmt.Sprintf("a%d", ran), clientID: id, user: user, opts: ident},
					fmt.Sprintf("client identifier %q", id))
			}
		}
		w.Require(ran > 0, "the security section names no pattern with %c")
	})

	// The same for a user name of "+" or "#" and a pattern with %u.
	s.Spec("MQTT-3.8.4-1 "+deniedPublishID(s), "does not let a user name of + or # widen a %u pattern (CVE-2017-7650)", label, func(w *World) {
		sec := secProfile(w)
		var attacker, victim *SecurityUser
		for i, u := range sec.Users {
			switch {
			case u.Name == "+" || u.Name == "#":
				attacker = &sec.Users[i]
			case victim == nil && !strings.ContainsAny(u.Name, "+#/"):
				victim = &sec.Users[i]
			}
		}
		w.Require(attacker != nil && victim != nil, "the security section names no user called + (or #) and no other user")
		ran := 0
		for _, p := range sec.Patterns {
			if !strings.Contains(p, "%u") {
				continue
			}
			ran++
			secPatternAttack(w, p,
				patternSide{name: fmt.Sprintf("v%d", ran), user: victim.Name, opts: []ConnectOption{asUser(victim.Name, victim.Password)}},
				patternSide{name: fmt.Sprintf("a%d", ran), user: attacker.Name, opts: []ConnectOption{asUser(attacker.Name, attacker.Password)}},
				fmt.Sprintf("user name %q", attacker.Name))
		}
		w.Require(ran > 0, "the security section names no pattern with %u")
	})

	// A broker that requires client certificates refuses a TLS client
	// without one, with an expired one, or with one from a CA it does not
	// trust: the handshake fails, or the connection is closed before any
	// CONNACK 0.
	for _, tc := range []struct {
		what string
		pair func(*Security) CertPair
		need string
	}{
		{"without a client certificate", func(*Security) CertPair { return CertPair{} }, ""},
		{"with an expired client certificate", func(s *Security) CertPair { return s.ClientCerts.Expired }, "client_certs.expired"},
		{"with a client certificate from an unknown CA", func(s *Security) CertPair { return s.ClientCerts.UnknownCA }, "client_certs.unknown_ca"},
	} {
		s.Spec(refused, "refuses a TLS client "+tc.what+" when it requires client certificates", label, Label("tls"), func(w *World) {
			sec := secProfile(w)
			w.Require(w.cfg.overTLS(), "needs a TLS broker URL (tls://, mqtts:// or wss://)")
			w.Require(sec.RequireClientCert, "the security section does not say the broker requires client certificates (require_client_cert)")
			pair := tc.pair(sec)
			w.Require(tc.need == "" || pair.Cert != "", "the security section names no certificate "+tc.need)
			w.Connect("admitted").Leave() // the suite's own certificate is admitted
			c, err := w.dialWithCert("refused", pair.Cert, pair.Key)
			if err != nil {
				return // the handshake failed: refused
			}
			expectRefused(c, w.ConnectPacket("refused"), "a client "+tc.what)
		})
	}
}

// patternSide is one client of a pattern attack: its name (for the
// client identifier unless clientID is given), user name and CONNECT
// options.
type patternSide struct {
	name, clientID, user string
	opts                 []ConnectOption
}

// secPatternAttack checks one pattern against one widening identity. The
// victim subscribes to its own subtree (pattern filled with its own
// identity) and gets its own message there, which shows the pattern
// works (at QoS 0: its own delivery would otherwise race the PUBACK). The attacker, whose client identifier or user name is a
// wildcard, subscribes to the pattern filled with its identity, which
// would cover every client's subtree; it must not receive the victim's
// next message, and the victim must not receive what the attacker
// publishes into its subtree.
func secPatternAttack(w *World, pattern string, victim, attacker patternSide, who string) {
	vid := w.ClientID(victim.name)
	v := w.Connect(victim.name, victim.opts...)
	vf := patternFilter(pattern, vid, victim.user)
	vt := w.fill(vf)
	v.Granted(vf, 1)
	before := w.payload(victim.name + " own")
	v.Publish(vt, before, 0, false)
	_, came := secReceive(v, before)
	secControl(w, came, "client %q published to its own %s under pattern %q", vid, vt, pattern)

	aid := attacker.clientID
	opts := attacker.opts
	if aid != "" {
		opts = append(append([]ConnectOption(nil), opts...), withClientID(aid))
	} else {
		aid = w.ClientID(attacker.name)
	}
	a, ack := w.ConnectAck(attacker.name, opts...)
	if ack.ReasonCode != 0 {
		// Refused at the door (0x02 identifier rejected, 0x05...): that
		// identity can widen nothing.
		a.Close()
		return
	}
	af := patternFilter(pattern, aid, attacker.user)
	granted := secSubscribeAny(a, af)

	secret, forged := w.payload(victim.name+" secret"), w.payload(attacker.name+" forged")
	v.Publish(vt, secret, 0, false)
	_, came = secReceive(v, secret)
	secControl(w, came, "client %q published to its own %s", vid, vt)
	if got, _ := secReceive(a, ""); slices.Contains(got, secret) {
		how := "refused"
		if granted {
			how = "granted"
		}
		w.Failf("the client with %s subscribed to %q (pattern %q; the broker %s it) and received the message client %q published to its own %s",
			who, af, pattern, how, vid, vt)
	}
	open := secPublishDenied(a, vt, forged)
	after := w.payload(victim.name + " after")
	v.Publish(vt, after, 0, false)
	got, came := secReceive(v, after)
	secControl(w, came, "client %q published to its own %s", vid, vt)
	if slices.Contains(got, forged) {
		w.Failf("the client with %s published to %s, client %q's own under pattern %q, and that client received it", who, vt, vid, pattern)
	}
	if open {
		a.Leave()
	}
}
