package broker

import (
	"fmt"
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
// connect rate, for 3.1.1 and for 5.0 clients (which ask for a session
// expiry, a receive maximum and topic aliases, as 5.0 clients do). Run
// with -benchtime 1x:
//
//	go test -run '^$' -bench IdleSessions -benchtime 1x ./broker/
func BenchmarkIdleSessions(b *testing.B) {
	for _, v := range []packetgen.Version{packetgen.V311, packetgen.V5} {
		b.Run(v.String(), func(b *testing.B) { idleSessions(b, v) })
	}
}

func idleSessions(b *testing.B, v packetgen.Version) {
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
		for i := 0; i < n; i++ {
			go srv.ServeConn(servers[i]) //nolint:errcheck
			cp := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "idle" + strconv.Itoa(i)}
			if v == packetgen.V5 {
				cp.Properties.Set(packetgen.PropSessionExpiryInterval, uint32(3600))
				cp.Properties.Set(packetgen.PropReceiveMaximum, uint16(100))
				cp.Properties.Set(packetgen.PropTopicAliasMaximum, uint16(10))
			}
			b, _ := packetgen.Encode(cp, v)
			clients[i].Write(b) //nolint:errcheck
			// CONNACK is short (its remaining length one byte): read it
			// whole without a reader, whose buffer would count here.
			var ack [128]byte
			if _, err := io.ReadFull(clients[i], ack[:2]); err != nil {
				panic(err)
			}
			if _, err := io.ReadFull(clients[i], ack[2:2+ack[1]]); err != nil || ack[3] != 0 {
				panic(fmt.Sprintf("CONNACK % X: %v", ack[:2+ack[1]], err))
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
