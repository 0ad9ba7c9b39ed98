package wire

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/internal/testcerts"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/transport"
)

// A connection dialed through a transport URL is a Conn like any other,
// and tells the TLS it negotiated (through a WebSocket too).
func TestTransportDialer(t *testing.T) {
	ca := testcerts.NewCA(t, "wire CA")
	dir := t.TempDir()
	caFile := ca.WriteCA(t, dir, "ca.pem")
	cert, key := ca.Server(t).Write(t, dir, "server")
	for _, tc := range []struct {
		scheme, version string
	}{{"tcp", ""}, {"tls", "TLS 1.3"}, {"ws", ""}, {"wss", "TLS 1.3"}} {
		t.Run(tc.scheme, func(t *testing.T) {
			var lopts transport.ListenOptions
			var opts transport.Options
			if tc.version != "" {
				lopts, opts.TLS.CACert = transport.ListenOptions{Cert: cert, Key: key}, caFile
			}
			l, err := transport.Listen(tc.scheme+"://127.0.0.1:0", lopts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() { // answers the CONNECT (14 bytes) with CONNACK
				nc, err := l.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				if _, err := io.ReadFull(nc, make([]byte, 14)); err == nil {
					nc.Write([]byte{0x20, 0x02, 0x00, 0x00}) //nolint:errcheck
					io.Copy(io.Discard, nc)                  //nolint:errcheck
				}
			}()
			d, err := transport.NewDialer(transport.ListenerURL(l), opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Dial(ctx, Transport(d), "c", packetgen.V311, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Connect(&packetgen.Connect{ProtocolLevel: 4, CleanStart: true, KeepAlive: 30}, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			v, cipher, ok := c.TLS()
			if v != tc.version || ok != (tc.version != "") || ok && cipher == "" {
				t.Errorf("TLS() = %q %q %v; want %q", v, cipher, ok, tc.version)
			}
		})
	}
}
