package loadgen

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
)

// Connections spread over the brokers, and over the source addresses so
// that every (source, broker) pair takes an equal share.
func TestTCPDialerSpreads(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("binding to 127.0.0.2 and up needs Linux loopback")
	}
	var ls [2]net.Listener
	var urls []string
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls[i] = l
		urls = append(urls, "tcp://"+l.Addr().String())
	}
	srcs := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	dial, err := TCPDialer(urls, srcs)
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[[2]string]int{}
	for i := 0; i < 8; i++ {
		c, err := dial(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().(*net.TCPAddr).IP.String()
		pairs[[2]string{local, c.RemoteAddr().String()}]++
		if want := urls[i%2][len("tcp://"):]; c.RemoteAddr().String() != want {
			t.Errorf("connection %d went to %s, want %s", i, c.RemoteAddr(), want)
		}
		c.Close()
	}
	if len(pairs) != 4 {
		t.Errorf("pairs %v: want each of 2 sources × 2 brokers", pairs)
	}
	for p, n := range pairs {
		if n != 2 {
			t.Errorf("pair %v took %d connections, want 2", p, n)
		}
	}
}
