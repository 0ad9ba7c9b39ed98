package broker

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/packetgen"
)

var errRefused = errors.New("connection refused in CONNACK")

// handshake reads CONNECT and answers it (§3.1.4), with an enhanced
// authentication exchange first when the client asks for one (§4.12).
func (c *conn) handshake() error {
	if !c.armRead(time.Now().Add(c.srv.opts.ConnectTimeout)) {
		return errServerShutdown
	}
	p, err := c.rd.ReadPacket()
	if err != nil {
		if v := packetgen.AsViolation(err); v != nil {
			return c.refuseConnect(p, v)
		}
		return err
	}
	cp, ok := p.(*packetgen.Connect)
	if !ok {
		// MQTT-3.1.0-1: the first packet must be CONNECT.
		return fmt.Errorf("MQTT-3.1.0-1: first packet is %s, not CONNECT", p.Type())
	}
	c.enc.Version = cp.ProtocolLevel
	c.v5 = cp.ProtocolLevel == packetgen.V5
	ack := &packetgen.Connack{}
	if c.v5 {
		c.takeLimits(&cp.Properties)
		if code, why := c.srv.checkConnect5(cp); code != 0 {
			return c.refuse5(code, why, nil)
		}
	}
	if ref, code := c.srv.redirect(cp.ClientID); c.v5 && ref != "" {
		// §4.11: use another server, or server moved.
		props := &packetgen.Properties{}
		props.Set(packetgen.PropServerReference, ref)
		return c.refuse5(code, "redirected to "+ref, props)
	}
	if cp.UsernameFlag {
		c.user = cp.Username
	}
	switch {
	case c.srv.opts.IdentityAsUsername:
		// The certificate is the credential: a client without one, or
		// with no common name, is not authorized.
		cn := peerCommonName(c.nc)
		if cn == "" {
			if c.v5 {
				return c.refuse5(packetgen.NotAuthorized, "no client certificate with a common name", nil)
			}
			return c.refuse(packetgen.ConnRefusedNotAuthorized, "no client certificate with a common name")
		}
		c.user = cn
	case c.v5 && cp.Properties.Has(packetgen.PropAuthenticationMethod):
		if err := c.enhancedAuth(cp, ack); err != nil {
			return err
		}
	default:
		if rc := c.srv.authenticate(cp); rc != packetgen.ConnAccepted {
			if c.v5 {
				return c.refuse5(v5Refusal(rc), "authentication failed", nil)
			}
			return c.refuse(rc, "authentication failed")
		}
	}
	clientID := cp.ClientID
	if clientID == "" {
		clientID = c.srv.clientID() // MQTT-3.1.3-6
		if c.v5 {
			ack.Properties.Set(packetgen.PropAssignedClientIdentifier, clientID) // MQTT-3.1.3-7
		}
	}
	if a := c.srv.opts.ACL; a != nil {
		c.rules = a.For(c.user, clientID)
	}
	if cp.Will != nil {
		c.will = c.newWill(cp.Will, clientID)
	}
	keepalive := cp.KeepAlive
	if c.v5 && c.srv.opts.ServerKeepAlive > 0 {
		// The client must use the server's value (MQTT-3.2.2-21).
		keepalive = c.srv.opts.ServerKeepAlive
		ack.Properties.Set(packetgen.PropServerKeepAlive, keepalive)
	}
	if keepalive > 0 && !c.srv.opts.Faults.IgnoreKeepalive {
		c.keepalive = time.Duration(float64(keepalive) * c.srv.opts.KeepaliveGrace * float64(time.Second))
	}
	expiry := uint32(0) // 3.1.1 clean session, and 5.0's default
	switch {
	case c.v5:
		expiry = cp.Properties.SessionExpiryInterval
		if capped := c.srv.capExpiry(expiry); capped != expiry {
			expiry = capped
			ack.Properties.Set(packetgen.PropSessionExpiryInterval, expiry) // §3.2.2.3.2: the value the server uses
		}
		c.expiry = expiry
		c.srv.advertise(&ack.Properties)
		if cp.Properties.RequestResponseInformation == 1 && c.srv.opts.ResponseInformation != "" {
			ack.Properties.Set(packetgen.PropResponseInformation, c.srv.opts.ResponseInformation+clientID+"/")
		}
	case !cp.CleanStart:
		expiry = neverExpires // 3.1.1 persistent sessions do not expire
	}
	if !c.armRead(time.Time{}) {
		return c.reason
	}
	if !c.srv.attach(c, clientID, cp.CleanStart, expiry, ack) {
		return ErrServerClosed
	}
	return nil
}

// peerCommonName is the common name of the client certificate of a TLS
// connection, through any wrapping that tells its TLS state (the
// transport package's WebSocket connections do); "" without one.
func peerCommonName(nc net.Conn) string {
	s, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return ""
	}
	if certs := s.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0].Subject.CommonName
	}
	return ""
}

// takeLimits keeps what a 5.0 CONNECT says the client can take.
func (c *conn) takeLimits(p *packetgen.Properties) {
	if p.Has(packetgen.PropReceiveMaximum) {
		c.recvMax = p.ReceiveMaximum
	}
	if p.Has(packetgen.PropMaximumPacketSize) {
		c.maxPacket = p.MaximumPacketSize
	}
	c.aliasMax = p.TopicAliasMaximum
	c.noProblemInfo = p.Has(packetgen.PropRequestProblemInformation) && p.RequestProblemInformation == 0
}

// checkConnect5 refuses a 5.0 CONNECT whose will asks for what the broker
// does not offer: retain (0x9A, MQTT-3.2.2-13) or a QoS above its maximum
// (0x9B, MQTT-3.2.2-12).
func (s *Server) checkConnect5(cp *packetgen.Connect) (packetgen.ReasonCode, string) {
	if w := cp.Will; w != nil {
		if w.Retain && s.opts.DisableRetain {
			return packetgen.RetainNotSupported, "the will asks for retain, which this server does not support"
		}
		if w.QoS > s.opts.MaxQoS {
			return packetgen.QoSNotSupported, fmt.Sprintf("the will has QoS %d; this server's maximum is %d", w.QoS, s.opts.MaxQoS)
		}
	}
	return 0, ""
}

// redirect returns the server reference a client is sent to, and the code
// that says so, when the broker redirects it.
func (s *Server) redirect(clientID string) (string, packetgen.ReasonCode) {
	o := s.opts
	if o.ServerReference == "" || (len(o.RedirectClients) > 0 && !slices.Contains(o.RedirectClients, clientID)) {
		return "", 0
	}
	if o.ServerMoved {
		return o.ServerReference, packetgen.ServerMoved
	}
	return o.ServerReference, packetgen.UseAnotherServer
}

// capExpiry applies MaxSessionExpiry.
func (s *Server) capExpiry(e uint32) uint32 {
	if m := s.opts.MaxSessionExpiry; m > 0 && e > m {
		return m
	}
	return e
}

// advertise puts in CONNACK what the broker offers where it is not the
// specification's default (§3.2.2.3).
func (s *Server) advertise(p *packetgen.Properties) {
	o := s.opts
	if o.ReceiveMaximum < 65535 {
		p.Set(packetgen.PropReceiveMaximum, uint16(o.ReceiveMaximum))
	}
	if o.MaxQoS < 2 {
		p.Set(packetgen.PropMaximumQoS, byte(o.MaxQoS))
	}
	if o.DisableRetain {
		p.Set(packetgen.PropRetainAvailable, byte(0))
	}
	if o.MaxPacketSize > 0 && o.MaxPacketSize < packetgen.MaxPacketSize {
		p.Set(packetgen.PropMaximumPacketSize, uint32(o.MaxPacketSize))
	}
	if o.TopicAliasMaximum > 0 {
		p.Set(packetgen.PropTopicAliasMaximum, uint16(o.TopicAliasMaximum))
	}
	if o.DisableWildcard {
		p.Set(packetgen.PropWildcardSubscriptionAvailable, byte(0))
	}
	if o.DisableSubscriptionIDs {
		p.Set(packetgen.PropSubscriptionIdentifierAvailable, byte(0))
	}
	if o.DisableShared {
		p.Set(packetgen.PropSharedSubscriptionAvailable, byte(0))
	}
}

// newWill keeps the will of CONNECT, with the 5.0 properties that travel
// with it (§3.1.3.2, user properties in order: MQTT-3.1.3-10) and its
// delay.
func (c *conn) newWill(w *packetgen.Will, clientID string) *will {
	out := &will{expiry: -1}
	var props *packetgen.Properties
	if c.v5 {
		props = &w.Properties
		out.delay = w.Properties.WillDelayInterval
		if w.Properties.Has(packetgen.PropMessageExpiryInterval) && !c.srv.opts.Faults.NeverExpire {
			out.expiry = time.Duration(w.Properties.MessageExpiryInterval) * time.Second
		}
	}
	m := newMessage([]byte(w.Topic), w.Payload, w.QoS, w.Retain, clientID, props, time.Time{}, true)
	m.expires = time.Time{} // counted from when the will is published
	out.msg = *m
	return out
}

// refuseConnect answers a CONNECT the codec refused: an unsupported
// protocol level gets return code 1 (MQTT-3.1.2-2), a refused client
// identifier return code 2 (MQTT-3.1.3-8, -9) or 5.0 reason 0x85
// (MQTT-3.1.3-8), another fault of a 5.0 CONNECT the reason code the codec
// names where CONNACK may carry it (§4.13: a server MAY answer before it
// closes). An unknown protocol name and any other violation close the
// connection without CONNACK.
func (c *conn) refuseConnect(p packetgen.Packet, v *packetgen.Violation) error {
	cp, _ := p.(*packetgen.Connect)
	switch {
	case cp != nil && v.Reason == packetgen.UnsupportedProtocolVersion && v.Rule == "MQTT-3.1.2-2":
		return c.refuse(packetgen.ConnRefusedProtocolVersion, v.Error())
	case cp != nil && cp.ProtocolLevel == packetgen.V5:
		c.enc.Version, c.v5 = packetgen.V5, true
		if serverMaySend(&packetgen.Connack{ReasonCode: v.Reason}) {
			return c.refuse5(v.Reason, v.Error(), nil)
		}
	case cp != nil && v.Reason == packetgen.ClientIdentifierNotValid:
		if cp.ProtocolLevel.Valid() {
			c.enc.Version = cp.ProtocolLevel
		}
		return c.refuse(packetgen.ConnRefusedIdentifierRejected, v.Error())
	}
	c.srv.log.Info("closing on a bad CONNECT", "err", v)
	return v
}

// refuse sends a 3.1.1 CONNACK with a refusing return code and closes
// (MQTT-3.2.2-5); session present is 0 (MQTT-3.2.2-4).
func (c *conn) refuse(rc byte, why string) error {
	c.writeNow(&packetgen.Connack{ReasonCode: packetgen.ReasonCode(rc)})
	return fmt.Errorf("%w: code %d: %s", errRefused, rc, why)
}

// refuse5 sends a 5.0 CONNACK with a reason code of 0x80 or more and
// closes (MQTT-3.2.2-7), session present 0 (MQTT-3.2.2-6). The reason
// string goes along where it fits the client's maximum packet size.
func (c *conn) refuse5(code packetgen.ReasonCode, why string, props *packetgen.Properties) error {
	ack := &packetgen.Connack{ReasonCode: code}
	if props != nil {
		ack.Properties = *props
	}
	ack.Properties.Set(packetgen.PropReasonString, reasonString(errors.New(why)))
	if !c.fits(ack) {
		ack.Properties.ReasonString = ""
		ack.Properties.Present &^= 1 << packetgen.PropReasonString
	}
	c.writeNow(ack)
	return fmt.Errorf("%w: reason 0x%02X %s: %s", errRefused, byte(code), code, why)
}

// writeNow writes p at once: before CONNECT is accepted nothing else is
// queued, and the write must be done before close cuts the connection.
func (c *conn) writeNow(p packetgen.Packet) {
	buf, err := c.enc.Append(nil, p)
	if err != nil {
		c.srv.log.Error("encoding a packet failed", "packet", packetgen.Format(p), "err", err)
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck
	c.nc.Write(buf)                                    //nolint:errcheck
	c.nc.SetWriteDeadline(time.Time{})                 //nolint:errcheck
}

// v5Refusal turns a 3.1.1 refusal into its 5.0 reason code.
func v5Refusal(rc byte) packetgen.ReasonCode {
	if rc == packetgen.ConnRefusedBadCredentials {
		return packetgen.BadUserNameOrPassword
	}
	return packetgen.NotAuthorized
}

// authenticate checks the user name and password against Options.Users.
// With an enhanced authentication method offered and no password file, a
// client that does not use the method is admitted only anonymously, and
// only when AllowAnonymous says so.
func (s *Server) authenticate(cp *packetgen.Connect) byte {
	if s.opts.Users == nil {
		if s.opts.AuthMethod == nil || s.opts.AllowAnonymous {
			return packetgen.ConnAccepted
		}
		return packetgen.ConnRefusedNotAuthorized
	}
	if !cp.UsernameFlag {
		if s.opts.AllowAnonymous {
			return packetgen.ConnAccepted
		}
		return packetgen.ConnRefusedNotAuthorized
	}
	want, ok := s.opts.Users[cp.Username]
	if !ok || !cp.PasswordFlag || subtle.ConstantTimeCompare([]byte(want), cp.Password) != 1 {
		return packetgen.ConnRefusedBadCredentials
	}
	return packetgen.ConnAccepted
}

// enhancedAuth runs the exchange of §4.12 before CONNACK: the method's
// challenges go out in AUTH 0x18 and the client's answers come back in
// AUTH 0x18 with the same method (MQTT-4.12.0-5), until the method
// succeeds (its last data goes in CONNACK) or fails (CONNACK 0x86). A
// method the broker does not offer gets 0x8C.
func (c *conn) enhancedAuth(cp *packetgen.Connect, ack *packetgen.Connack) error {
	name := cp.Properties.AuthenticationMethod
	m := c.srv.opts.AuthMethod
	if m == nil || m.Name() != name {
		return c.refuse5(packetgen.BadAuthenticationMethod, fmt.Sprintf("authentication method %q is not offered", name), nil)
	}
	c.authMethod = name
	conv := m.Start()
	data := cp.Properties.AuthenticationData
	for {
		out, done, err := conv.Step(data)
		if err != nil {
			code := packetgen.NotAuthorized
			if errors.Is(err, auth.ErrBadCredentials) {
				code = packetgen.BadUserNameOrPassword
			}
			return c.refuse5(code, "authentication failed: "+err.Error(), nil)
		}
		if done {
			c.user = conv.Username()
			ack.Properties.Set(packetgen.PropAuthenticationMethod, name)
			if len(out) > 0 {
				ack.Properties.Set(packetgen.PropAuthenticationData, out)
			}
			return nil
		}
		a := &packetgen.Auth{ReasonCode: packetgen.ContinueAuthentication}
		a.Properties.Set(packetgen.PropAuthenticationMethod, name)
		a.Properties.Set(packetgen.PropAuthenticationData, out)
		c.writeNow(a)
		// armRead, not a bare deadline: a Shutdown meanwhile must not be
		// undone by a fresh deadline.
		if !c.armRead(time.Now().Add(c.srv.opts.ConnectTimeout)) {
			return errServerShutdown
		}
		p, err := c.rd.ReadPacket()
		if err != nil {
			if v := packetgen.AsViolation(err); v != nil {
				return c.refuse5(packetgen.ProtocolError, v.Error(), nil)
			}
			return err
		}
		next, ok := p.(*packetgen.Auth)
		switch {
		case !ok:
			if _, bye := p.(*packetgen.Disconnect); bye {
				return errDisconnect
			}
			return c.refuse5(packetgen.ProtocolError, fmt.Sprintf("%s during enhanced authentication, where AUTH is due", p.Type()), nil)
		case next.ReasonCode != packetgen.ContinueAuthentication || next.Properties.AuthenticationMethod != name:
			return c.refuse5(packetgen.ProtocolError, "AUTH must continue (0x18) with the method of CONNECT", nil)
		}
		data = next.Properties.AuthenticationData
	}
}

// handleAuth runs a re-authentication (§4.12.1): the client starts it with
// AUTH 0x19 and the method of CONNECT; challenges go out in AUTH 0x18;
// success ends it with AUTH 0x00, failure with DISCONNECT 0x87. AUTH
// without enhanced authentication in CONNECT, or with another method, is
// a protocol error (MQTT-4.12.0-7, MQTT-4.12.1-1).
func (c *conn) handleAuth(p *packetgen.Auth) error {
	name := p.Properties.AuthenticationMethod
	switch {
	case c.authMethod == "" || name != c.authMethod:
		return codeErrorf(packetgen.ProtocolError, "AUTH with method %q on a connection authenticated by %q", name, c.authMethod)
	case p.ReasonCode == packetgen.ReAuthenticate && c.reauth == nil:
		c.reauth = c.srv.opts.AuthMethod.Start()
	case p.ReasonCode == packetgen.ContinueAuthentication && c.reauth != nil:
	default:
		return codeErrorf(packetgen.ProtocolError, "AUTH reason 0x%02X out of step with the re-authentication", byte(p.ReasonCode))
	}
	out, done, err := c.reauth.Step(p.Properties.AuthenticationData)
	if err != nil {
		c.reauth = nil
		return codeErrorf(packetgen.NotAuthorized, "re-authentication failed: %v", strings.TrimSpace(err.Error()))
	}
	a := &packetgen.Auth{ReasonCode: packetgen.ContinueAuthentication}
	if done {
		c.reauth = nil
		a.ReasonCode = packetgen.Success
	}
	a.Properties.Set(packetgen.PropAuthenticationMethod, name)
	if len(out) > 0 {
		a.Properties.Set(packetgen.PropAuthenticationData, out)
	}
	c.send(a)
	return nil
}
