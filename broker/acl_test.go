package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/packetgen"
)

// aclServer has users a and b: a may write sensors/#, read and write its
// own %c/# pattern; b may only read sensors/#, and nobody may touch
// secret/#.
func aclServer(t *testing.T) *Server {
	t.Helper()
	a, err := acl.Parse(strings.NewReader(`
topic read public/#
user a
topic write sensors/#
topic write secret/x
user b
topic read sensors/#
topic read secret/#
pattern readwrite own/%c/#
pattern deny secret/#
`), "test.acl")
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, Options{ACL: a})
}

func as(user string) func(*packetgen.Connect) {
	return func(cp *packetgen.Connect) { cp.UsernameFlag, cp.Username = true, user }
}

func TestACL(t *testing.T) {
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
		t.Run(v.String(), func(t *testing.T) {
			s := aclServer(t)
			ver := func(cp *packetgen.Connect) { cp.ProtocolLevel = v }
			b, _ := connect(t, s, "cb", true, ver, as("b"))
			denied := packetgen.ReasonCode(packetgen.SubackFailure)
			if v == packetgen.V5 {
				denied = packetgen.NotAuthorized
			}
			// b may read sensors/# but not #, nor write anywhere.
			if got := subscribe(t, b, "#", 1); got != denied {
				t.Errorf("b subscribes #: %s, want %s", got, denied)
			}
			if got := subscribe(t, b, "sensors/#", 1); got != 1 {
				t.Errorf("b subscribes sensors/#: %s, want granted QoS 1", got)
			}
			a, _ := connect(t, s, "ca", true, ver, as("a"))
			must(t, a.Send(pub("sensors/t", "ok", 1, 1)))
			if p := expectPublish(t, b); string(p.Payload) != "ok" {
				t.Fatalf("b got %s", packetgen.Format(p))
			}
			ack, err := a.Recv(wait)
			if err != nil || ack.(*packetgen.Puback).PacketID != 1 {
				t.Fatalf("PUBACK: %v %v", ack, err)
			}
			// A write a may not do: not delivered; 5.0 says 0x87.
			must(t, b.Send(pub("sensors/t", "from b", 1, 2)))
			ack, err = b.Recv(wait)
			if err != nil {
				t.Fatal(err)
			}
			want := packetgen.ReasonCode(0)
			if v == packetgen.V5 {
				want = packetgen.NotAuthorized
			}
			if pa := ack.(*packetgen.Puback); pa.ReasonCode != want {
				t.Errorf("denied publish: PUBACK %s, want %s", pa.ReasonCode, want)
			}
			expectNothing(t, b, 200*time.Millisecond)
			// secret/x: a may write it, b reads secret/# but the deny
			// pattern wins: b gets nothing, retained or live.
			p := pub("secret/x", "s", 1, 3)
			p.Retain = true
			must(t, a.Send(p))
			if _, err := a.Recv(wait); err != nil {
				t.Fatal(err)
			}
			if got := subscribe(t, b, "secret/#", 1); got != denied {
				t.Errorf("b subscribes secret/#: %s, want %s", got, denied)
			}
			expectNothing(t, b, 200*time.Millisecond)
			// The pattern: a client reads and writes own/<its id>/...
			must(t, a.Send(pub("own/ca/x", "mine", 0, 0)))
			if got := subscribe(t, a, "own/ca/#", 0); got != 0 {
				t.Errorf("a subscribes own/ca/#: %s", got)
			}
			if got := subscribe(t, a, "own/cb/#", 0); got != denied {
				t.Errorf("a subscribes own/cb/#: %s, want %s", got, denied)
			}
			// Anonymous clients have the lines before any user.
			anon, _ := connect(t, s, "anon", true, ver)
			if got := subscribe(t, anon, "public/#", 0); got != 0 {
				t.Errorf("anonymous subscribes public/#: %s", got)
			}
			if got := subscribe(t, anon, "sensors/#", 0); got != denied {
				t.Errorf("anonymous subscribes sensors/#: %s, want %s", got, denied)
			}
		})
	}
}
