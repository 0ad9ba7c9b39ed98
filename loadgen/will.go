package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/wire"
)

// WillStorm opens connections with wills and closes them all at once,
// abruptly, in the publish phase: the broker must publish every will
// (MQTT-3.1.2-8). A watcher subscribed to the wills' prefix counts them
// and times each from its connection's close to its delivery.
type WillStorm struct {
	Connections int
	At          time.Duration // from the start of the publish phase; 0: halfway
	// Prefix is the wills' topic prefix; connection i's will goes to
	// PREFIX/<run id>/i at QoS 1.
	Prefix string
}

// DefaultWillPrefix is the wills' topic prefix when none is given.
const DefaultWillPrefix = "mqttbench/will"

// willWait bounds the wait for wills after the storm (and after the
// drain, for a storm late in the run).
const willWait = 5 * time.Second

func (s *Scenario) validateWillStorm() error {
	w := &s.Churn.WillStorm
	switch {
	case w.Connections == 0:
		return nil
	case w.Connections < 0 || w.Connections > 100_000:
		return fmt.Errorf("churn.will_storm.connections: %d is not between 1 and 100000", w.Connections)
	case w.At < 0:
		return errors.New("churn.will_storm.at: cannot be negative")
	case s.willAt() >= s.Duration:
		return fmt.Errorf("churn.will_storm.at: %s is not within the publish phase (%s)", s.willAt(), s.Duration)
	}
	return validTopicPrefix("churn.will_storm.prefix", s.willPrefix())
}

func (s *Scenario) willAt() time.Duration {
	if at := s.Churn.WillStorm.At; at > 0 {
		return at
	}
	return s.Duration / 2
}

func (s *Scenario) willPrefix() string {
	if p := s.Churn.WillStorm.Prefix; p != "" {
		return p
	}
	return DefaultWillPrefix
}

// willStorm is the storm's connections, its watcher, and what it saw.
type willStorm struct {
	a       *attack
	prefix  string // PREFIX/<run id>/
	conns   []*wire.Conn
	closeAt []atomic.Int64 // attack ns; 0: not closed (yet)
	watcher *wire.Conn
	failed  int // will connections that never connected
	err     string
	// seen marks the wills received; under mu.
	mu         sync.Mutex
	seen       []bool
	received   uint64
	duplicates uint64
	late       uint64 // wills before their connection closed: a broker fault
	all        chan struct{}
	stormAt    int64
	done       chan struct{}
}

// sideConnect is the CONNECT of one of the churn's own connections:
// clean, no keep alive (they are short-lived or closed on purpose).
func (a *attack) sideConnect(id string) *packetgen.Connect {
	return &packetgen.Connect{ProtocolLevel: a.sc.version(), CleanStart: true, ClientID: id,
		UsernameFlag: a.sc.Username != "", Username: a.sc.Username,
		PasswordFlag: a.sc.Password != "", Password: []byte(a.sc.Password)}
}

// sideDial opens one of the churn's own connections and sends CONNECT;
// it returns once CONNACK accepts it.
func (a *attack) sideDial(ctx context.Context, i int, cp *packetgen.Connect) (*wire.Conn, *packetgen.Connack, error) {
	ctx, cancel := context.WithTimeout(ctx, a.sc.ConnectTimeout)
	defer cancel()
	nc, err := a.dialConn(ctx, i%a.sc.TotalConnections())
	if err != nil {
		return nil, nil, err
	}
	wc := wire.New(nc, cp.ClientID, a.sc.version(), nil)
	if err := wc.Send(cp); err != nil {
		wc.Close()
		return nil, nil, err
	}
	p, err := wc.Recv(a.sc.ConnectTimeout)
	if err != nil {
		wc.Close()
		return nil, nil, err
	}
	ca, ok := p.(*packetgen.Connack)
	switch {
	case !ok:
		wc.Close()
		return nil, nil, &ProtocolError{Detail: fmt.Sprintf("%s before CONNACK", packetgen.Format(p))}
	case ca.ReasonCode != 0:
		wc.Close()
		return nil, nil, a.refused(packetgen.TypeConnack, byte(ca.ReasonCode))
	}
	return wc, ca, nil
}

// sideSubscribe subscribes wc to filter at QoS 1 and waits for SUBACK;
// packets before it go to other.
func (a *attack) sideSubscribe(wc *wire.Conn, filter string, other func(packetgen.Packet)) error {
	if err := wc.Send(&packetgen.Subscribe{PacketID: 1, Subscriptions: []packetgen.Subscription{{Filter: filter, QoS: 1}}}); err != nil {
		return err
	}
	deadline := time.Now().Add(a.sc.ConnectTimeout)
	for {
		p, err := wc.Recv(time.Until(deadline))
		if err != nil {
			return err
		}
		if sa, ok := p.(*packetgen.Suback); ok {
			if len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] > 2 {
				return a.refused(packetgen.TypeSuback, byte(sa.ReasonCodes[0]))
			}
			return nil
		}
		other(p)
	}
}

// connectWillStorm opens the watcher and the will connections, before the
// publish phase.
func (a *attack) connectWillStorm(ctx context.Context) *willStorm {
	sc := &a.sc
	n := sc.Churn.WillStorm.Connections
	w := &willStorm{a: a, prefix: sc.willPrefix() + "/" + a.runHex + "/", conns: make([]*wire.Conn, n),
		closeAt: make([]atomic.Int64, n), seen: make([]bool, n), all: make(chan struct{}), done: make(chan struct{})}
	wc, _, err := a.sideDial(ctx, 0, a.sideConnect("mb"+a.runHex+"ww"))
	if err == nil {
		err = a.sideSubscribe(wc, w.prefix+"#", func(packetgen.Packet) {})
		if err != nil {
			wc.Close()
		}
	}
	if err != nil {
		w.err = "watcher: " + err.Error()
		w.failed = n
		close(w.done)
		return w
	}
	w.watcher = wc
	go w.watch()

	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	work := make(chan int)
	for range min(n, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				cp := a.sideConnect("mb" + a.runHex + "w" + strconv.Itoa(i))
				// 5.0: no Will Delay Interval, so the will goes at once (§3.1.3.2.2).
				cp.Will = &packetgen.Will{QoS: 1, Topic: w.prefix + strconv.Itoa(i), Payload: []byte("will " + strconv.Itoa(i))}
				c, _, err := a.sideDial(ctx, i, cp)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				w.conns[i] = c
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	w.failed = int(failed.Load())
	if e, ok := firstErr.Load().(string); ok {
		w.err = e
	}
	return w
}

// storm closes every will connection at once, At into the publish phase.
func (w *willStorm) storm(ctx context.Context, pubStart time.Time) {
	a := w.a
	if w.watcher == nil || !sleepCtx(ctx, time.Until(pubStart.Add(a.sc.willAt()))) {
		return
	}
	w.stormAt = a.now()
	for i, c := range w.conns {
		if c != nil {
			w.closeAt[i].Store(a.now())
			c.Close() // no DISCONNECT: the broker must publish the will
		}
	}
}

// watch reads the wills until the watcher closes.
func (w *willStorm) watch() {
	defer close(w.done)
	a := w.a
	expected := uint64(len(w.conns))
	for {
		p, err := w.watcher.Recv(time.Hour)
		if errors.Is(err, wire.ErrTimeout) {
			continue
		}
		if err != nil {
			return
		}
		pp, ok := p.(*packetgen.Publish)
		if !ok {
			continue
		}
		now := a.now()
		switch pp.QoS {
		case 1:
			w.watcher.Send(&packetgen.Puback{PacketID: pp.PacketID}) //nolint:errcheck // a failed write ends the watch anyway
		case 2:
			w.watcher.Send(&packetgen.Pubrec{PacketID: pp.PacketID}) //nolint:errcheck
		}
		i, err := strconv.Atoi(strings.TrimPrefix(string(pp.Topic), w.prefix))
		if err != nil || i < 0 || i >= len(w.conns) {
			continue
		}
		closed := w.closeAt[i].Load()
		w.mu.Lock()
		switch {
		case closed == 0:
			w.late++ // published while its connection was open
		case w.seen[i]:
			w.duplicates++
		default:
			w.seen[i] = true
			w.received++
			a.rec.Record(MetricWill, time.Duration(now-closed))
			if w.received == expected-uint64(w.failed) {
				close(w.all)
			}
		}
		w.mu.Unlock()
	}
}

// finish waits for the wills still due, at most willWait after the storm
// (or now, for a storm whose wait is over), then closes the watcher.
func (w *willStorm) finish(ctx context.Context) {
	if w.watcher == nil {
		return
	}
	if w.stormAt != 0 && uint64(len(w.conns)-w.failed) > 0 {
		wait := max(time.Duration(w.stormAt+int64(willWait)-w.a.now()), 500*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-w.all:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	w.watcher.Disconnect() //nolint:errcheck
	<-w.done
	for i, c := range w.conns {
		if c != nil && w.closeAt[i].Load() == 0 {
			c.Disconnect() //nolint:errcheck // the storm never came: leave without a will
		}
	}
}

func (w *willStorm) summary() *reports.LoadWillStorm {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := &reports.LoadWillStorm{Connections: len(w.conns), Connected: len(w.conns) - w.failed, Prefix: strings.TrimSuffix(w.prefix, "/"),
		Received: w.received, Duplicates: w.duplicates, Early: w.late, Error: w.err}
	if w.stormAt != 0 {
		out.At = time.Duration(w.stormAt).Seconds()
		out.Expected = uint64(out.Connected)
	}
	return out
}
