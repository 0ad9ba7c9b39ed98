package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Expect waits up to d for a packet of type T, skipping none: anything else
// is an error naming what came instead.
func Expect[T packetgen.Packet](c *Conn, d time.Duration) (T, error) {
	var zero T
	p, err := c.Recv(d)
	if err != nil {
		return zero, fmt.Errorf("waiting for %T: %w", zero, err)
	}
	t, ok := p.(T)
	if !ok {
		return zero, fmt.Errorf("waiting for %T, got %s", zero, packetgen.Format(p))
	}
	return t, nil
}

// ExpectClosed waits up to d for the peer to close the connection. Packets
// that arrive first are returned (a 5.0 DISCONNECT, a refusing CONNACK) so
// the caller can judge them.
func (c *Conn) ExpectClosed(d time.Duration) ([]packetgen.Packet, error) {
	deadline := time.Now().Add(d)
	var got []packetgen.Packet
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return got, ErrTimeout
		}
		p, err := c.Recv(left)
		switch {
		case errors.Is(err, ErrClosed):
			return got, nil
		case packetgen.AsViolation(err) != nil:
			return got, err
		case err != nil:
			return got, err
		}
		got = append(got, p)
	}
}

// Connect sends CONNECT and waits for CONNACK.
func (c *Conn) Connect(p *packetgen.Connect, d time.Duration) (*packetgen.Connack, error) {
	if err := c.Send(p); err != nil {
		return nil, err
	}
	return Expect[*packetgen.Connack](c, d)
}
