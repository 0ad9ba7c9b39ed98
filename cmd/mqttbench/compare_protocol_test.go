package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
)

// only311 plays a broker that speaks 3.1.1 but not 5.0, as aedes and
// RabbitMQ do: in front of the reference broker, it answers a 5.0 CONNECT
// with the 3.1.1 CONNACK "unacceptable protocol version" (20 02 00 01)
// and closes; any other first packet goes through, and so does the rest.
func only311(t *testing.T) string {
	t.Helper()
	srv := broker.New(broker.Options{Listen: []string{"127.0.0.1:0"}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	upstream := srv.Addrs()[0].String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve311(c, upstream, track, &wg)
			}()
		}
	}()
	return ln.Addr().String()
}

// serve311 reads the first packet of c and refuses a 5.0 CONNECT, or
// relays the connection to upstream.
func serve311(c net.Conn, upstream string, track func(net.Conn), wg *sync.WaitGroup) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	r := bufio.NewReader(c)
	first, err := readPacket(r)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	// CONNECT: 0x10, length, then 00 04 "MQTT" and the protocol level.
	if first[0] == 0x10 {
		if i := headerLen(first) + 6; i < len(first) && first[i] == 5 {
			c.Write([]byte{0x20, 0x02, 0x00, 0x01}) //nolint:errcheck
			c.Close()
			return
		}
	}
	up, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	track(up)
	if _, err := up.Write(first); err != nil {
		c.Close()
		up.Close()
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(up, r) //nolint:errcheck
		up.Close()
	}()
	io.Copy(c, up) //nolint:errcheck
	c.Close()
}

// readPacket reads one whole MQTT packet (fixed header included).
func readPacket(r *bufio.Reader) ([]byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	out := []byte{b}
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
		n += int(d&0x7F) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(out, body...), nil
}

// headerLen is the length of a packet's fixed header.
func headerLen(p []byte) int {
	i := 1
	for i < len(p) && i < 5 && p[i]&0x80 != 0 {
		i++
	}
	return i + 1
}

// A broker that speaks 5.0 (the reference broker) gets both versions
// side by side; one that answers a 5.0 CONNECT the 3.1.1 way gets "not
// supported" in its 5.0 column, not a 5.0 run full of failures.
func TestCompareProtocolVersions(t *testing.T) {
	t.Setenv(runMainEnv, "1")
	dir := filepath.Join(t.TempDir(), "compare")
	code, stdout, stderr := runCLI(context.Background(), "compare",
		"--broker", "ref=inproc", "--broker", "old=tcp://"+only311(t),
		"--focus", `MQTT-3\.1\.0-1\]`, "--skip-load", "--grace", "1s", "-o", dir)
	if code != exitOK {
		t.Fatalf("exit %d (want 0)\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"ref 3.1.1", "ref 5.0", "old 3.1.1", "old 5.0", "not supported",
		"old: MQTT 5.0 not supported (not a 5.0 CONNACK", "report-5.0.html"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"ref/conform.json", "ref/conform-5.0.json", "old/conform.json", "compare-5.0.json", "report-5.0.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "old", "conform-5.0.json")); err == nil {
		t.Error("old/conform-5.0.json: a broker without 5.0 got a 5.0 run")
	}
	for _, tc := range []struct {
		file, broker, protocol string
	}{{"compare.json", "ref", "3.1.1"}, {"compare-5.0.json", "ref", "5.0"}, {"compare.json", "old", "3.1.1"}} {
		cmp, err := reports.ReadComparison(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range cmp.Brokers {
			if b.Name != tc.broker {
				continue
			}
			c, err := reports.ReadConformance(filepath.Join(dir, b.Conformance))
			if err != nil {
				t.Fatalf("%s: %s: %v", tc.file, tc.broker, err)
			}
			if c.Protocol != tc.protocol || len(c.Specs) == 0 {
				t.Errorf("%s: %s: protocol %q with %d specs, want %s", tc.file, tc.broker, c.Protocol, len(c.Specs), tc.protocol)
			}
			for _, s := range c.Specs {
				if s.State != reports.Passed {
					t.Errorf("%s: %s: %s %s", tc.file, tc.broker, s.Name, s.State)
				}
			}
		}
	}
	// --protocol NAME=3.1.1 skips the probe and the 5.0 run.
	dir2 := filepath.Join(t.TempDir(), "compare")
	code, stdout, stderr = runCLI(context.Background(), "compare", "--broker", "ref=inproc", "--protocol", "ref=3.1.1",
		"--focus", `MQTT-3\.1\.0-1\]`, "--skip-load", "-o", dir2)
	if code != exitOK || strings.Contains(stdout, "ref 5.0") {
		t.Fatalf("--protocol ref=3.1.1: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir2, "ref", "conform-5.0.json")); err == nil {
		t.Error("--protocol ref=3.1.1 ran 5.0")
	}
}

func TestCompareProtocolUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--broker", "a=inproc", "--protocol", "6"},
		{"--broker", "a=inproc", "--protocol", "b=5"},
	} {
		code, _, stderr := runCLI(context.Background(), append([]string{"compare"}, args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "mqttbench compare:") || strings.Count(stderr, "\n") > 2 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
