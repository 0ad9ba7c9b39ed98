package broker

import (
	"testing"

	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// scramServer is a broker offering SCRAM-SHA-256 to user "u" / "pw".
func scramServer(t *testing.T) *Server {
	t.Helper()
	creds, err := auth.NewCredentials(map[string]string{"u": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.Lookup(auth.SCRAMSHA256, creds)
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, Options{AuthMethod: m})
}

// scramConnect runs the §4.12 exchange as user/password with method and
// returns the connection and the final CONNACK.
func scramConnect(t *testing.T, s *Server, method, user, password string) (*wire.Conn, *packetgen.Connack) {
	t.Helper()
	cm, err := auth.NewClient(auth.SCRAMSHA256, user, password)
	if err != nil {
		t.Fatal(err)
	}
	conv := cm.Start()
	c := pipe(t, s, "scram")
	cp := &packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "scram", CleanStart: true}
	cp.Properties.Set(packetgen.PropAuthenticationMethod, method)
	cp.Properties.Set(packetgen.PropAuthenticationData, conv.First())
	must(t, c.Send(cp))
	for {
		p, err := c.Recv(wait)
		if err != nil {
			t.Fatalf("during the exchange: %v", err)
		}
		switch p := p.(type) {
		case *packetgen.Auth:
			if p.ReasonCode != packetgen.ContinueAuthentication {
				t.Fatalf("AUTH %s, want 0x18", p.ReasonCode)
			}
			out, _, err := conv.Step(p.Properties.AuthenticationData)
			if err != nil {
				t.Fatal(err)
			}
			a := &packetgen.Auth{ReasonCode: packetgen.ContinueAuthentication}
			a.Properties.Set(packetgen.PropAuthenticationMethod, method)
			a.Properties.Set(packetgen.PropAuthenticationData, out)
			must(t, c.Send(a))
		case *packetgen.Connack:
			if p.ReasonCode == packetgen.Success {
				if _, done, err := conv.Step(p.Properties.AuthenticationData); err != nil || !done {
					t.Fatalf("server-final does not verify: done=%v err=%v", done, err)
				}
			}
			return c, p
		default:
			t.Fatalf("got %s during the exchange", packetgen.Format(p))
		}
	}
}

func TestEnhancedAuthSCRAM(t *testing.T) {
	s := scramServer(t)
	c, ack := scramConnect(t, s, auth.SCRAMSHA256, "u", "pw")
	if ack.ReasonCode != packetgen.Success || ack.Properties.AuthenticationMethod != auth.SCRAMSHA256 {
		t.Fatalf("CONNACK %s", packetgen.Format(ack))
	}
	// Re-authentication on the live connection (§4.12.1).
	conv := mustClient(t, "u", "pw").Start()
	a := &packetgen.Auth{ReasonCode: packetgen.ReAuthenticate}
	a.Properties.Set(packetgen.PropAuthenticationMethod, auth.SCRAMSHA256)
	a.Properties.Set(packetgen.PropAuthenticationData, conv.First())
	must(t, c.Send(a))
	p, err := c.Recv(wait)
	if err != nil || p.(*packetgen.Auth).ReasonCode != packetgen.ContinueAuthentication {
		t.Fatalf("re-auth: got %v %v, want AUTH 0x18", p, err)
	}
	out, _, err := conv.Step(p.(*packetgen.Auth).Properties.AuthenticationData)
	if err != nil {
		t.Fatal(err)
	}
	a = &packetgen.Auth{ReasonCode: packetgen.ContinueAuthentication}
	a.Properties.Set(packetgen.PropAuthenticationMethod, auth.SCRAMSHA256)
	a.Properties.Set(packetgen.PropAuthenticationData, out)
	must(t, c.Send(a))
	p, err = c.Recv(wait)
	if err != nil || p.(*packetgen.Auth).ReasonCode != packetgen.Success {
		t.Fatalf("re-auth end: got %v %v, want AUTH 0x00", p, err)
	}
	if _, done, err := conv.Step(p.(*packetgen.Auth).Properties.AuthenticationData); !done || err != nil {
		t.Fatalf("re-auth server-final: done=%v err=%v", done, err)
	}
}

func TestEnhancedAuthRefusals(t *testing.T) {
	s := scramServer(t)
	if _, ack := scramConnect(t, s, auth.SCRAMSHA256, "u", "wrong"); ack.ReasonCode != packetgen.BadUserNameOrPassword {
		t.Errorf("wrong password: CONNACK %s, want 0x86", ack.ReasonCode)
	}
	if _, ack := scramConnect(t, s, "SCRAM-SHA-1", "u", "pw"); ack.ReasonCode != packetgen.BadAuthenticationMethod {
		t.Errorf("unknown method: CONNACK %s, want 0x8C", ack.ReasonCode)
	}
	// Without the method and without a password file: not authorized.
	c := pipe(t, s, "plain")
	ack, err := c.Connect(&packetgen.Connect{ProtocolLevel: packetgen.V5, ClientID: "plain", CleanStart: true}, wait)
	if err != nil {
		t.Fatal(err)
	}
	if ack.ReasonCode != packetgen.NotAuthorized {
		t.Errorf("no method: CONNACK %s, want 0x87", ack.ReasonCode)
	}
}

func mustClient(t *testing.T, user, password string) auth.ClientMethod {
	t.Helper()
	m, err := auth.NewClient(auth.SCRAMSHA256, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
