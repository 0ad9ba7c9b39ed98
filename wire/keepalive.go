package wire

import (
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// KeepAlive sends PINGREQ every interval until the connection fails or
// stop is called, as a client must do with a keep alive it has nothing
// else to send in (5.0: the Server Keep Alive the CONNACK imposed,
// MQTT-3.1.2-20 and MQTT-3.1.2-21). The PINGRESP answering each is not
// handed to Recv, so whoever reads the connection sees only its own
// traffic. (The server answers PINGREQ in order, so which PINGRESP is
// held back does not matter: one per automatic PINGREQ.)
func (c *Conn) KeepAlive(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			c.autoPings.Add(1)
			if err := c.Send(&packetgen.Pingreq{}); err != nil {
				c.autoPings.Add(-1)
				return
			}
		}
	}()
	var once bool
	return func() {
		if !once {
			once = true
			close(done)
		}
	}
}

// ownPingresp reports whether p answers a PINGREQ of KeepAlive, taking
// it off the count.
func (c *Conn) ownPingresp(p packetgen.Packet) bool {
	if _, ok := p.(*packetgen.Pingresp); !ok {
		return false
	}
	for {
		n := c.autoPings.Load()
		if n <= 0 {
			return false
		}
		if c.autoPings.CompareAndSwap(n, n-1) {
			return true
		}
	}
}
