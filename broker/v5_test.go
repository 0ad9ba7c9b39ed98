package broker

import (
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// v5 makes connect speak MQTT 5.0.
func v5(cp *packetgen.Connect) { cp.ProtocolLevel = packetgen.V5 }

// connect5 connects a 5.0 client; mods change the CONNECT.
func connect5(t *testing.T, s *Server, id string, clean bool, mods ...func(*packetgen.Connect)) (*wire.Conn, *packetgen.Connack) {
	t.Helper()
	return connect(t, s, id, clean, append([]func(*packetgen.Connect){v5}, mods...)...)
}

// expectDisconnect reads until the broker's DISCONNECT and the close, and
// returns the DISCONNECT's reason code.
func expectDisconnect(t *testing.T, c *wire.Conn) packetgen.ReasonCode {
	t.Helper()
	got, err := c.ExpectClosed(2 * time.Second)
	if err != nil {
		t.Fatalf("not closed: %v (got %v)", err, got)
	}
	for _, p := range got {
		if d, ok := p.(*packetgen.Disconnect); ok {
			return d.ReasonCode
		}
	}
	t.Fatalf("closed without DISCONNECT; got %v", got)
	return 0
}

func TestV5ConnackAdvertises(t *testing.T) {
	s := newServer(t, Options{MaxQoS: 1, DisableRetain: true, DisableWildcard: true, DisableShared: true,
		DisableSubscriptionIDs: true, TopicAliasMaximum: 5, ReceiveMaximum: 7, MaxPacketSize: 4096,
		ServerKeepAlive: 30, MaxSessionExpiry: 60, ResponseInformation: "resp/"})
	_, ack := connect5(t, s, "", true, func(cp *packetgen.Connect) {
		cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(3600))
		cp.Properties.Set(packetgen.PropRequestResponseInformation, byte(1))
	})
	p := ack.Properties
	want := map[packetgen.PropID]any{
		packetgen.PropMaximumQoS: byte(1), packetgen.PropRetainAvailable: byte(0),
		packetgen.PropWildcardSubscriptionAvailable: byte(0), packetgen.PropSharedSubscriptionAvailable: byte(0),
		packetgen.PropSubscriptionIdentifierAvailable: byte(0), packetgen.PropTopicAliasMaximum: uint16(5),
		packetgen.PropReceiveMaximum: uint16(7), packetgen.PropMaximumPacketSize: uint32(4096),
		packetgen.PropServerKeepAlive: uint16(30), packetgen.PropSessionExpiryInterval: uint32(60),
	}
	for id, v := range want {
		if got := p.Get(id); got != v {
			t.Errorf("%s = %v, want %v", id, got, v)
		}
	}
	id := p.AssignedClientIdentifier
	if id == "" || p.ResponseInformation != "resp/"+id+"/" {
		t.Errorf("assigned id %q, response information %q", id, p.ResponseInformation)
	}
}

func TestV5PropertiesForwardedWithSubscriptionIDs(t *testing.T) {
	s := newServer(t, Options{})
	sub, _ := connect5(t, s, "sub", true)
	sp := &packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: "a/+", QoS: 1}}}
	sp.Properties.Set(packetgen.PropSubscriptionIdentifier, uint32(7))
	must(t, sub.Send(sp))
	if _, err := sub.Recv(wait); err != nil {
		t.Fatal(err)
	}
	sp = &packetgen.Subscribe{PacketID: 2, Subscriptions: []packetgen.Subscription{{Filter: "a/#", QoS: 0}}}
	sp.Properties.Set(packetgen.PropSubscriptionIdentifier, uint32(9))
	must(t, sub.Send(sp))
	if _, err := sub.Recv(wait); err != nil {
		t.Fatal(err)
	}
	pubc, _ := connect5(t, s, "pub", true)
	p := pub("a/b", "x", 1, 1)
	p.Properties.Set(packetgen.PropContentType, "text/plain")
	p.Properties.Set(packetgen.PropCorrelationData, []byte{1, 2})
	p.Properties.Set(packetgen.PropResponseTopic, "r/1")
	p.Properties.Set(packetgen.PropMessageExpiryInterval, uint32(100))
	p.Properties.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "2"})
	p.Properties.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "k", Value: "1"})
	must(t, pubc.Send(p))
	got := expectPublish(t, sub)
	g := got.Properties
	if got.QoS != 1 || g.ContentType != "text/plain" || string(g.CorrelationData) != "\x01\x02" || g.ResponseTopic != "r/1" {
		t.Errorf("got %s", packetgen.Format(got))
	}
	if len(g.UserProperties) != 2 || g.UserProperties[0].Value != "2" || g.UserProperties[1].Value != "1" {
		t.Errorf("user properties %v, want k=2, k=1 in order", g.UserProperties)
	}
	if len(g.SubscriptionIdentifiers) != 2 || g.MessageExpiryInterval == 0 || g.MessageExpiryInterval > 100 {
		t.Errorf("subscription ids %v, expiry %d", g.SubscriptionIdentifiers, g.MessageExpiryInterval)
	}
	ack, err := pubc.Recv(wait)
	if err != nil || ack.(*packetgen.Puback).ReasonCode != packetgen.Success {
		t.Fatalf("PUBACK: %v %v", ack, err)
	}
	must(t, pubc.Send(pub("nobody/here", "x", 1, 2)))
	ack, err = pubc.Recv(wait)
	if err != nil || ack.(*packetgen.Puback).ReasonCode != packetgen.NoMatchingSubscribers {
		t.Fatalf("PUBACK to nobody: %v %v, want 0x10", ack, err)
	}
}

func TestV5TakeoverSends8E(t *testing.T) {
	s := newServer(t, Options{})
	old, _ := connect5(t, s, "same", true)
	connect5(t, s, "same", true)
	if code := expectDisconnect(t, old); code != packetgen.SessionTakenOver {
		t.Fatalf("DISCONNECT %s, want 0x8E", code)
	}
}

func TestV5InboundTopicAlias(t *testing.T) {
	s := newServer(t, Options{TopicAliasMaximum: 2})
	sub, _ := connect5(t, s, "sub", true)
	subscribe(t, sub, "t/#", 0)
	c, _ := connect5(t, s, "pub", true)
	p := pub("t/one", "1", 0, 0)
	p.Properties.Set(packetgen.PropTopicAlias, uint16(1))
	must(t, c.Send(p))
	p = pub("", "2", 0, 0)
	p.Properties.Set(packetgen.PropTopicAlias, uint16(1))
	must(t, c.Send(p))
	for _, want := range []string{"1", "2"} {
		got := expectPublish(t, sub)
		if string(got.Topic) != "t/one" || string(got.Payload) != want {
			t.Fatalf("got %s", packetgen.Format(got))
		}
	}
	p = pub("t/two", "3", 0, 0)
	p.Properties.Set(packetgen.PropTopicAlias, uint16(3))
	must(t, c.Send(p))
	if code := expectDisconnect(t, c); code != packetgen.TopicAliasInvalid {
		t.Fatalf("DISCONNECT %s, want 0x94", code)
	}
}

func TestV5SessionExpiry(t *testing.T) {
	s := newServer(t, Options{})
	c, _ := connect5(t, s, "exp", true, func(cp *packetgen.Connect) {
		cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(1))
	})
	subscribe(t, c, "x", 1)
	must(t, c.Disconnect())
	_, ack := connect5(t, s, "exp", false, func(cp *packetgen.Connect) {
		cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(1))
	})
	if !ack.SessionPresent {
		t.Fatal("session not kept within its expiry interval")
	}
}

func TestV5And311Interoperate(t *testing.T) {
	s := newServer(t, Options{})
	old, _ := connect(t, s, "old", true)
	subscribe(t, old, "m", 1)
	c, _ := connect5(t, s, "new", true)
	p := pub("m", "x", 1, 1)
	p.Properties.Set(packetgen.PropUserProperty, packetgen.UserProperty{Key: "a", Value: "b"})
	must(t, c.Send(p))
	if got := expectPublish(t, old); string(got.Payload) != "x" || !got.Properties.Empty() {
		t.Fatalf("3.1.1 subscriber got %s", packetgen.Format(got))
	}
}
