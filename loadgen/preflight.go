package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
)

// Costs per connection for the memory check, in bytes. Over TCP: the
// generator's share (measured near 3 KiB idle; busy ones buffer more) and
// the kernel's socket buffers of a quiet loopback connection, both ends.
// In process (net.Pipe): the generator and the broker together, measured
// at 12.0 KB per connection with 850,000 connected (the process's RSS
// over the count), with a margin for traffic in flight.
const (
	estGenPerConn    = 6 << 10
	estKernelPerConn = 8 << 10
	estInprocPerConn = 13 << 10
	fdReserve        = 64 // files the process needs besides connections
)

// Preflight checks that this machine can hold the scenario's part sh,
// spread over workers processes: a file descriptor per TCP connection in
// each process, an ephemeral port per connection of each (source address,
// broker) pair, and memory. The error says what to change. Running over
// net.Pipe needs neither descriptors nor ports.
func Preflight(sc Scenario, sh Shard, workers int) error {
	n := sh.Size(sc.TotalConnections())
	workers = max(1, workers)
	if len(sc.Brokers) > 0 {
		per := (n + workers - 1) / workers
		need := uint64(per + fdReserve)
		soft, hard, ok := raiseNoFile(need)
		if ok && soft < need {
			room := max(int(soft)-fdReserve, 1)
			hint := fmt.Sprintf("use --workers %d or more to spread them over processes", (n+room-1)/room)
			if !sh.Whole() {
				all := sc.TotalConnections()
				hint = fmt.Sprintf("use --shards %d or more (a shard is one process)", (all+room-1)/room)
			}
			return fmt.Errorf("%d TCP connections in one process need %d file descriptors, but a process may open %d (RLIMIT_NOFILE, hard limit %d, which it cannot raise): %s",
				per, need, soft, hard, hint)
		}
		if lo, hi, ok := portRange(); ok {
			ports := hi - lo + 1
			srcs := sh.Sources(sc.SourceIPs)
			pairs := len(sc.Brokers) * max(1, len(srcs))
			per := (n + pairs - 1) / pairs
			// Leave a tenth for TIME_WAIT and whatever else uses the range.
			if limit := ports * 9 / 10; per > limit {
				perBroker := (n + len(sc.Brokers) - 1) / len(sc.Brokers)
				want := max(2, (perBroker+limit-1)/limit) * max(1, sh.Count)
				return fmt.Errorf("%d connections over %d (source address, broker) pairs put %d on each, but the ephemeral port range %d-%d holds about %d per pair: bind to more source addresses, e.g. --source-ips 127.0.0.2-127.0.0.%d",
					n, pairs, per, lo, hi, limit, min(254, 1+want))
			}
		}
	}
	est := uint64(n) * (estGenPerConn + estKernelPerConn)
	if len(sc.Brokers) == 0 {
		est = uint64(n) * estInprocPerConn
	}
	if avail, ok := memAvailable(); ok && est > avail*8/10 {
		return fmt.Errorf("%d connections need about %d MiB here, but only %d MiB of memory is available: use fewer --connections, or shards on several machines",
			n, est>>20, avail>>20)
	}
	return nil
}

// ProcessCapacity is how many TCP connections one process can hold under
// its file-descriptor limit, raised as far as it goes; ok is false where
// there is no such limit to read.
func ProcessCapacity() (int, bool) {
	soft, _, ok := raiseNoFile(1 << 30)
	if !ok {
		return 0, false
	}
	return max(int(soft)-fdReserve, 1), true
}

// portRange reads the ephemeral port range.
func portRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && hi >= lo
}

// memAvailable is MemAvailable, or the cgroup's remaining allowance when
// that is smaller.
func memAvailable() (uint64, bool) {
	avail := uint64(math.MaxUint64)
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
				if kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); err == nil {
					avail = kb << 10
				}
			}
		}
		f.Close()
	}
	if max, err := readUint("/sys/fs/cgroup/memory.max"); err == nil {
		if cur, err := readUint("/sys/fs/cgroup/memory.current"); err == nil && max > cur {
			avail = min(avail, max-cur)
		}
	}
	return avail, avail != math.MaxUint64
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// Probe connects once to each broker and waits for its CONNACK, so an
// unreachable or refusing broker is reported before the run starts.
func Probe(ctx context.Context, sc Scenario, dial DialFunc) error {
	brokers := max(1, len(sc.Brokers))
	timeout := min(sc.ConnectTimeout, 5*time.Second)
	for i := 0; i < brokers; i++ {
		name := "the in-process broker"
		if i < len(sc.Brokers) {
			name = sc.Brokers[i]
		}
		if err := probeOne(ctx, sc, dial, i, timeout); err != nil {
			return fmt.Errorf("broker %s: %v", name, err)
		}
	}
	return nil
}

func probeOne(ctx context.Context, sc Scenario, dial DialFunc, i int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, i)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline) //nolint:errcheck
	v := sc.version()
	cp := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 10,
		ClientID: fmt.Sprintf("mbprobe%d", time.Now().UnixNano()%1e12)}
	if sc.Username != "" {
		cp.UsernameFlag, cp.Username = true, sc.Username
	}
	if sc.Password != "" {
		cp.PasswordFlag, cp.Password = true, []byte(sc.Password)
	}
	b, err := packetgen.Encoder{Version: v, Side: packetgen.FromClient}.Append(nil, cp)
	if err != nil {
		return err
	}
	if _, err := conn.Write(b); err != nil {
		return err
	}
	rd := packetgen.NewReader(conn, packetgen.Decoder{Version: v, Side: packetgen.FromServer})
	p, err := rd.ReadPacket()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("closed the connection without CONNACK")
		}
		return err
	}
	ca, ok := p.(*packetgen.Connack)
	if !ok {
		return &ProtocolError{Detail: fmt.Sprintf("%s before CONNACK", p.Type())}
	}
	if ca.ReasonCode != 0 {
		e := &RefusedError{Packet: "CONNACK", Code: byte(ca.ReasonCode)}
		if v == packetgen.V5 {
			e.Reason = reasonName(v, packetgen.TypeConnack, e.Code)
		}
		return e
	}
	if err := probeLimits(sc, limitsOf(&ca.Properties), &ca.Properties); err != nil {
		return err
	}
	conn.Write([]byte{byte(packetgen.TypeDisconnect) << 4, 0}) //nolint:errcheck
	return nil
}

// probeLimits refuses, before the run, a scenario the broker's 5.0 CONNACK
// rules out: every connection would be refused the same way.
func probeLimits(sc Scenario, l connLimits, p *packetgen.Properties) error {
	switch {
	case sc.Publishers > 0 && l.maxQoS < sc.QoS:
		return fmt.Errorf("its CONNACK says Maximum QoS %d: run at --qos %d or less", l.maxQoS, l.maxQoS)
	case sc.Subscribers > 0 && sc.SubscriptionID && !l.subIDs:
		return errors.New("its CONNACK says Subscription Identifier Available 0: run without --subscription-id")
	case sc.Subscribers > 0 && p.Has(packetgen.PropWildcardSubscriptionAvailable) && p.WildcardSubscriptionAvailable == 0 &&
		strings.ContainsAny(sc.filterTemplate(), "+#"):
		return fmt.Errorf("its CONNACK says Wildcard Subscription Available 0, and filter %q has a wildcard", sc.filterTemplate())
	}
	return nil
}
