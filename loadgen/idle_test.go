package loadgen

import (
	"net"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
)

// Idle TCP connections are read by the epoll watcher on Linux, not by a
// goroutine each: keep alive still works (PINGRESP read, no timeout), a
// connection the broker drops is counted and reconnected, and the run
// ends without waiting on any of them.
func TestIdleTCPConnections(t *testing.T) {
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sc := DefaultScenario()
	sc.Publishers, sc.Subscribers, sc.Connections = 1, 1, 40
	sc.Rate, sc.MaxLag = 50, 0
	sc.Brokers = []string{"tcp://" + srv.Addrs()[0].String()}
	sc.Keepalive, sc.Duration = time.Second, 2500*time.Millisecond
	l := run(t, sc, Options{})
	if len(l.Errors) != 0 || l.Connections.Ready != 40 || l.Connections.Attempts != 40 {
		t.Errorf("errors %v connections %+v", l.Errors, l.Connections)
	}

	// A broker that closes every connection after a moment: idle ones
	// are noticed closed and come back.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go func() {
		for {
			c, err := l2.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256)
				c.SetReadDeadline(time.Now().Add(time.Second))
				c.Read(buf)                        // CONNECT
				c.Write([]byte{0x20, 2, 0, 0})     // CONNACK accepted
				time.Sleep(300 * time.Millisecond) // then drop it
			}()
		}
	}()
	sc = DefaultScenario()
	sc.Publishers, sc.Subscribers, sc.Connections = 0, 0, 10
	sc.Brokers = []string{"tcp://" + l2.Addr().String()}
	sc.Duration = time.Second
	l = run(t, sc, Options{})
	if l.Errors["closed"] < 10 || l.Connections.Reconnects < 10 || l.Connections.Attempts <= 10 {
		t.Errorf("errors %v connections %+v: want every idle connection seen closed and redialled", l.Errors, l.Connections)
	}
}
