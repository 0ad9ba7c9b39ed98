package broker

import (
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// BenchmarkIdleSessions holds MQTTBENCH_SESSIONS (default 100,000) idle
// sessions in one process over net.Pipe and reports the broker's memory
// per connection (heap and stacks, less what the bare pipes cost) and the
// connect rate. Run with -benchtime 1x:
//
//	go test -run '^$' -bench IdleSessions -benchtime 1x ./broker/
func BenchmarkIdleSessions(b *testing.B) {
	n := 100000
	if s := os.Getenv("MQTTBENCH_SESSIONS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for range b.N {
		pipes := memInUse()
		clients := make([]net.Conn, 0, n)
		servers := make([]net.Conn, 0, n)
		for i := 0; i < n; i++ {
			c, s := net.Pipe()
			clients, servers = append(clients, c), append(servers, s)
		}
		pipeCost := memInUse() - pipes

		srv := New(Options{})
		base := memInUse()
		start := time.Now()
		ack := make([]byte, 4)
		for i := 0; i < n; i++ {
			go srv.ServeConn(servers[i]) //nolint:errcheck
			cp := &packetgen.Connect{ProtocolLevel: packetgen.V311, CleanStart: true, ClientID: "idle" + strconv.Itoa(i)}
			b, _ := packetgen.Encode(cp, packetgen.V311)
			clients[i].Write(b) //nolint:errcheck
			if _, err := io.ReadFull(clients[i], ack); err != nil || ack[3] != 0 {
				panic("CONNACK: " + err.Error())
			}
		}
		elapsed := time.Since(start)
		perConn := float64(memInUse()-base) / float64(n)
		b.ReportMetric(float64(n)/elapsed.Seconds(), "connects/s")
		b.ReportMetric(perConn, "B/conn")
		b.ReportMetric(float64(pipeCost)/float64(n), "pipe-B/conn")
		b.ReportMetric(float64(srv.Stats().Connections.Load()), "sessions")
		srv.Close()
		for _, c := range clients {
			c.Close()
		}
	}
}

// memInUse is heap in use plus goroutine stacks, after a collection.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
