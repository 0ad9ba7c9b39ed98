package suites

import (
	"errors"
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// auProfile returns the enhanced-authentication profile, skipping the
// spec without one: the profile is optional.
func auProfile(w *World) *EnhancedAuth {
	a := w.Cfg().Profile.EnhancedAuth
	if a == nil {
		Skip("profile: no enhanced_auth (the optional enhanced-authentication profile)")
	}
	return a
}

// auExchange is one run of the §4.12 exchange before CONNACK.
type auExchange struct {
	c     *Client
	ack   *packetgen.Connack // nil when the broker closed without one
	auths []*packetgen.Auth  // the broker's AUTH packets
	conv  auth.ClientConversation
}

// auConnect connects name with the profile's method as user and
// password, answering each AUTH 0x18 with the next SCRAM message, until
// the CONNACK or a close.
func auConnect(w *World, name, user, password string, opts ...ConnectOption) *auExchange {
	a := auProfile(w)
	cm, err := auth.NewClient(a.Method, user, password)
	if err != nil {
		w.Failf("the profile's enhanced_auth: %v", err)
	}
	x := &auExchange{conv: cm.Start()}
	x.c = w.Dial(name)
	cp := w.ConnectPacket(name, opts...)
	cp.Properties.Set(packetgen.PropAuthenticationMethod, a.Method)
	cp.Properties.Set(packetgen.PropAuthenticationData, x.conv.First())
	x.c.MustSend(cp)
	for {
		p, err := x.c.Recv(w.Cfg().Timeout)
		if err != nil {
			if errors.Is(err, wire.ErrClosed) {
				return x
			}
			w.ifNoAnswer(err, "AUTH or CONNACK during enhanced authentication", x.c.Name)
			w.Failf("expected AUTH or CONNACK during enhanced authentication at %s; got %s", x.c.Name, describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Auth:
			x.auths = append(x.auths, p)
			if p.ReasonCode != packetgen.ContinueAuthentication {
				w.Failf("expected AUTH 0x18 (Continue authentication) before CONNACK at %s; got %s", x.c.Name, packetgen.Format(p))
			}
			out, _, err := x.conv.Step(p.Properties.AuthenticationData)
			if err != nil {
				w.Failf("expected SCRAM data the client can answer in %s; got %v", packetgen.Format(p), err)
			}
			next := &packetgen.Auth{ReasonCode: packetgen.ContinueAuthentication}
			next.Properties.Set(packetgen.PropAuthenticationMethod, a.Method)
			next.Properties.Set(packetgen.PropAuthenticationData, out)
			x.c.MustSend(next)
		case *packetgen.Connack:
			x.ack = p
			return x
		default:
			w.Failf("expected AUTH or CONNACK during enhanced authentication at %s; got %s", x.c.Name, packetgen.Format(p))
		}
	}
}

// auSameMethod requires the method of CONNECT on every AUTH and on a
// successful CONNACK.
func auSameMethod(w *World, method string, x *auExchange) {
	for _, p := range x.auths {
		w.Expectf(p.Properties.AuthenticationMethod == method, fmt.Sprintf("Authentication Method %q on every AUTH", method), "%s", packetgen.Format(p))
	}
	if x.ack != nil && x.ack.ReasonCode == 0 {
		w.Expectf(x.ack.Properties.Has(packetgen.PropAuthenticationMethod) && x.ack.Properties.AuthenticationMethod == method,
			fmt.Sprintf("Authentication Method %q on the successful CONNACK", method), "%s", packetgen.Format(x.ack))
	}
}

// auReauth re-authenticates a connected client (§4.12.1) and returns the
// broker's AUTH packets until AUTH 0x00, a DISCONNECT or a close.
func auReauth(w *World, c *Client, user, password string) (auths []*packetgen.Auth, end packetgen.Packet) {
	a := auProfile(w)
	cm, err := auth.NewClient(a.Method, user, password)
	if err != nil {
		w.Failf("the profile's enhanced_auth: %v", err)
	}
	conv := cm.Start()
	first := &packetgen.Auth{ReasonCode: packetgen.ReAuthenticate}
	first.Properties.Set(packetgen.PropAuthenticationMethod, a.Method)
	first.Properties.Set(packetgen.PropAuthenticationData, conv.First())
	c.MustSend(first)
	for {
		p, err := c.Recv(w.Cfg().Timeout)
		if err != nil {
			if errors.Is(err, wire.ErrClosed) {
				return auths, nil
			}
			w.ifNoAnswer(err, "AUTH during re-authentication", c.Name)
			w.Failf("expected AUTH during re-authentication at %s; got %s", c.Name, describeErr(err))
		}
		switch p := p.(type) {
		case *packetgen.Auth:
			auths = append(auths, p)
			if p.ReasonCode != packetgen.ContinueAuthentication {
				return auths, p
			}
			out, _, err := conv.Step(p.Properties.AuthenticationData)
			if err != nil {
				w.Failf("expected SCRAM data the client can answer in %s; got %v", packetgen.Format(p), err)
			}
			next := &packetgen.Auth{ReasonCode: packetgen.ContinueAuthentication}
			next.Properties.Set(packetgen.PropAuthenticationMethod, a.Method)
			next.Properties.Set(packetgen.PropAuthenticationData, out)
			c.MustSend(next)
		case *packetgen.Disconnect:
			return auths, p
		default:
			w.Failf("expected AUTH during re-authentication at %s; got %s", c.Name, packetgen.Format(p))
		}
	}
}

func init() {
	addSection5("4.12", "Enhanced authentication", func(s *S) {
		// A method the server does not offer: it may answer CONNACK 0x8C
		// or 0x87, and must close. Every broker can be asked.
		s.Spec("MQTT-4.12.0-1", "refuses an authentication method it does not offer and closes, with CONNACK 0x8C or 0x87 or none",
			Label("auth"), func(w *World) {
				cp := w.ConnectPacket("nope")
				cp.Properties.Set(packetgen.PropAuthenticationMethod, "MQTTBENCH-NO-SUCH-METHOD")
				cp.Properties.Set(packetgen.PropAuthenticationData, []byte("hello"))
				c := w.Dial("nope")
				c.MustSend(cp)
				ack := cxRefused(c, "an authentication method no server offers")
				if ack != nil {
					w.Shouldf(ack.ReasonCode == packetgen.BadAuthenticationMethod || ack.ReasonCode == packetgen.NotAuthorized ||
						ack.ReasonCode == packetgen.UnspecifiedError,
						"CONNACK 0x8C (Bad authentication method) or 0x87 (Not authorized), or none", "%s", packetgen.Format(ack))
				}
			})

		// No Authentication Method in CONNECT: the server sends no AUTH
		// and no Authentication Method in CONNACK.
		s.Spec("MQTT-4.12.0-6", "sends no AUTH and no Authentication Method to a client that did not ask for enhanced authentication",
			Label("auth"), func(w *World) {
				c, ack := w.Connect5("plain")
				w.Expectf(!ack.Properties.Has(packetgen.PropAuthenticationMethod) && !ack.Properties.Has(packetgen.PropAuthenticationData),
					"a CONNACK without Authentication Method or Data", "%s", packetgen.Format(ack))
				t := w.Topic("t")
				c.Granted(t, 1)
				w.Connect("pub").Publish(t, "x", 1, false)
				c.Receive5()
				c.Ping() // an AUTH in place of any answer fails the spec
			})

		// AUTH's fixed header flags are 0: other values are malformed.
		s.Spec("MQTT-3.15.1-1", "closes the connection on an AUTH whose fixed header flags are not 0",
			Label("auth", "malformed"), func(w *World) {
				// Authenticated with the optional profile, the AUTH would be
				// welcome but for its flags; without it, on a plain
				// connection.
				method := "SCRAM-SHA-256"
				var c *Client
				if p := w.Cfg().Profile.EnhancedAuth; p != nil {
					x := auConnect(w, "c", p.Username, p.Password)
					if x.ack == nil || x.ack.ReasonCode != 0 {
						w.inconclusive("the profile's user could not authenticate: %s", cxFormatAck(x.ack))
					}
					c, method = x.c, p.Method
				} else {
					c = w.Connect("c")
				}
				a := &packetgen.Auth{ReasonCode: packetgen.ReAuthenticate}
				a.Properties.Set(packetgen.PropAuthenticationMethod, method)
				c.MustSendRaw(packetgen.FrameOf(a, packetgen.V5).WithFlags(0x1).Bytes(), "AUTH with fixed header flags 0x1")
				c.ExpectClosedBy("AUTH with fixed header flags 0x1", withDisconnect(packetgen.MalformedPacket, packetgen.ProtocolError))
			})

		// The optional profile: a SCRAM method and a user the broker has.
		// The exchange takes several rounds of AUTH 0x18, each carrying
		// the method of CONNECT, as does the CONNACK 0x00 that ends it.
		s.Spec("MQTT-4.12.0-2 MQTT-4.12.0-5 MQTT-3.15.2-1", "authenticates with SCRAM over several rounds of AUTH 0x18 carrying the method of CONNECT, which the CONNACK carries too",
			Label("auth", "optional"), func(w *World) {
				a := auProfile(w)
				x := auConnect(w, "scram", a.Username, a.Password)
				if x.ack == nil {
					w.Failf("expected CONNACK 0x00 for the profile's user %q; the broker closed the connection", a.Username)
				}
				w.Expectf(x.ack.ReasonCode == 0, fmt.Sprintf("CONNACK 0x00 for the profile's user %q", a.Username), "%s", packetgen.Format(x.ack))
				w.Expectf(len(x.auths) >= 1, "at least one AUTH 0x18 before CONNACK (SCRAM takes two rounds)", "%d", len(x.auths))
				auSameMethod(w, a.Method, x)
				_, done, err := x.conv.Step(x.ack.Properties.AuthenticationData)
				w.Expectf(err == nil && done, "the server's final SCRAM message in the CONNACK, proving it knows the credentials", "done=%v err=%v", done, err)
				lcStillOpen(x.c, "authenticated")
			})

		// A wrong password fails the exchange: a CONNACK of 0x80 or more
		// may come, and the connection is closed.
		s.Spec("MQTT-4.12.0-4", "refuses a wrong password during enhanced authentication and closes, with a CONNACK of 0x80 or more or none",
			Label("auth", "optional"), func(w *World) {
				a := auProfile(w)
				x := auConnect(w, "wrong", a.Username, a.Password+"-wrong")
				if x.ack != nil {
					w.Expectf(x.ack.ReasonCode.IsError(), "a CONNACK of 0x80 or more for a wrong password", "%s", packetgen.Format(x.ack))
					lcWaitClosed(x.c, "after "+packetgen.Format(x.ack))
				}
			})

		// Re-authentication on a live connection: AUTH 0x19, answered by
		// AUTH 0x18 rounds and AUTH 0x00, all with the method of CONNECT.
		s.Spec("MQTT-4.12.0-5 MQTT-3.15.2-1", "re-authenticates a connected client: AUTH 0x19 answered by AUTH 0x18 and then AUTH 0x00, all with the method",
			Label("auth", "optional"), func(w *World) {
				a := auProfile(w)
				x := auConnect(w, "re", a.Username, a.Password)
				if x.ack == nil || x.ack.ReasonCode != 0 {
					w.inconclusive("the profile's user could not authenticate: %s", cxFormatAck(x.ack))
				}
				auths, end := auReauth(w, x.c, a.Username, a.Password)
				fin, ok := end.(*packetgen.Auth)
				w.Expectf(ok && fin.ReasonCode == packetgen.Success, "AUTH 0x00 (Success) ending the re-authentication", "%s", cxFormat(end))
				for _, p := range auths {
					w.Expectf(p.Properties.AuthenticationMethod == a.Method, fmt.Sprintf("Authentication Method %q on every AUTH", a.Method), "%s", packetgen.Format(p))
				}
				lcStillOpen(x.c, "re-authenticated")
			})

		// A failed re-authentication closes the connection, after
		// DISCONNECT (SHOULD).
		s.Spec("MQTT-4.12.1-2", "closes the connection when re-authentication fails, after DISCONNECT",
			Label("auth", "optional"), func(w *World) {
				a := auProfile(w)
				x := auConnect(w, "refail", a.Username, a.Password)
				if x.ack == nil || x.ack.ReasonCode != 0 {
					w.inconclusive("the profile's user could not authenticate: %s", cxFormatAck(x.ack))
				}
				_, end := auReauth(w, x.c, a.Username, a.Password+"-wrong")
				switch end := end.(type) {
				case nil:
					w.Warnf("expected DISCONNECT before the close after a failed re-authentication (SHOULD); got a bare close")
					return
				case *packetgen.Disconnect:
					w.Expectf(end.ReasonCode.IsError(), "DISCONNECT of 0x80 or more", "%s", packetgen.Format(end))
				default:
					w.Failf("expected the connection closed after a failed re-authentication; got %s", packetgen.Format(end))
				}
				lcWaitClosed(x.c, "after a failed re-authentication")
			})

		// AUTH stays within the client's Maximum Packet Size: Reason String
		// and User Properties are left out where they would not fit.
		s.Spec("MQTT-3.15.2-2 MQTT-3.15.2-3", "keeps AUTH within the client's Maximum Packet Size",
			Label("auth", "optional", "packet-size"), func(w *World) {
				a := auProfile(w)
				const limit = 512
				x := auConnect(w, "small", a.Username, a.Password,
					WithProps(func(p *packetgen.Properties) { p.Set(packetgen.PropMaximumPacketSize, uint32(limit)) }))
				for _, p := range x.auths {
					caCheckSize(w, p, limit)
				}
			})
	})

	// Redirection (§4.11), the optional profile: the broker answers the
	// profile's client with CONNACK 0x9C or 0x9D and a Server Reference,
	// and closes.
	addSection5("4.11", "Server redirection", func(s *S) {
		s.Spec("MQTT-3.2.2-7", "redirects the profile's client with CONNACK 0x9C or 0x9D carrying a Server Reference, and closes",
			Label("redirect", "optional"), func(w *World) {
				r := w.Cfg().Profile.Redirect
				if r == nil {
					Skip("profile: no redirect (the optional server-redirection profile)")
				}
				cp := w.ConnectPacket("moved")
				cp.ClientID = r.ClientID
				c := w.Dial("redirected")
				c.MustSend(cp)
				ack := cxRefused(c, "a client the profile says is redirected")
				want := packetgen.UseAnotherServer
				if r.Moved {
					want = packetgen.ServerMoved
				}
				w.Expectf(ack != nil && ack.ReasonCode == want && ack.Properties.Has(packetgen.PropServerReference),
					fmt.Sprintf("CONNACK 0x%02X (%s) with a Server Reference", byte(want), want), "%s", cxFormatAck(ack))
			})
	})
	notTestable5("MQTT-4.12.0-3", "binds only the client (its AUTH packets continue with 0x18)")
	notTestable5("MQTT-4.12.0-7", "binds only the client (no AUTH without an Authentication Method in CONNECT)")
	notTestable5("MQTT-4.12.1-1", "binds only the client (re-authenticating with the method of CONNECT)")
}

// cxFormat formats a packet that may be missing (a close).
func cxFormat(p packetgen.Packet) string {
	if p == nil {
		return "a close"
	}
	return packetgen.Format(p)
}
