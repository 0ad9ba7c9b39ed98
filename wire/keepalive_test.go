package wire

import (
	"net"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// KeepAlive sends PINGREQ on its own and hides the PINGRESP answering each
// from Recv, which sees only the packets the caller is owed: here the
// answer to its own PINGREQ and a PUBLISH. Stopped, it sends no more.
func TestKeepAlive(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := New(client, "c", packetgen.V5, nil)
	defer c.Close()
	pings := make(chan struct{}, 100)
	go func() {
		rd := packetgen.NewReader(server, packetgen.Decoder{Version: packetgen.V5, Side: packetgen.FromClient})
		for {
			p, err := rd.ReadPacket()
			if err != nil {
				return
			}
			if _, ok := p.(*packetgen.Pingreq); ok {
				pings <- struct{}{}
				server.Write(packetgen.AppendUnchecked(nil, &packetgen.Pingresp{}, packetgen.V5)) //nolint:errcheck
			}
		}
	}()
	stop := c.KeepAlive(5 * time.Millisecond)
	for range 3 {
		select {
		case <-pings:
		case <-time.After(5 * time.Second):
			t.Fatal("KeepAlive sent no PINGREQ")
		}
	}
	stop()
	stop() // twice is fine
	if p, err := c.Recv(50 * time.Millisecond); err == nil {
		t.Fatalf("Recv handed over %s, the answer to an automatic PINGREQ", packetgen.Format(p))
	}
	if err := c.Send(&packetgen.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Expect[*packetgen.Pingresp](c, 5*time.Second); err != nil {
		t.Fatalf("the caller's own PINGREQ got no PINGRESP: %v", err)
	}
	for len(pings) > 0 {
		<-pings
	}
	time.Sleep(30 * time.Millisecond)
	if n := len(pings); n > 1 { // one may have been on its way when stopped
		t.Errorf("%d PINGREQ packets after stop", n)
	}
}
