package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/metrics"
)

// metricsServer serves a load run's live metrics (--metrics-addr) at
// /metrics until the run ends, and --metrics-linger longer so that a
// scraper can take the final values.
type metricsServer struct {
	exp    *metrics.Exporter
	srv    *http.Server
	addr   string
	linger time.Duration
	done   chan struct{} // closed when Serve has returned
}

// startMetrics listens on addr at once, so that a bad or busy address is a
// usage error before the run starts.
func startMetrics(addr string, linger time.Duration, info metrics.Info) (*metricsServer, error) {
	if linger < 0 {
		return nil, fmt.Errorf("--metrics-linger is %s; want 0 or more", linger)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	m := &metricsServer{exp: metrics.New(info), addr: ln.Addr().String(), linger: linger, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.exp.Handler())
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(m.done)
		m.srv.Serve(ln) //nolint:errcheck // ErrServerClosed once stopped
	}()
	return m, nil
}

// url is where Prometheus scrapes, the port chosen when addr had port 0.
func (m *metricsServer) url() string { return "http://" + m.addr + "/metrics" }

// update is loadgen.Options.Live for a run in this process.
func (m *metricsServer) update(l *loadgen.Live) { m.exp.Update(0, l) }

// stop serves --metrics-linger more (cut short by ctx, an interrupt),
// then stops the server.
func (m *metricsServer) stop(ctx context.Context, stderr io.Writer) {
	if m.linger > 0 && ctx.Err() == nil {
		fmt.Fprintf(stderr, "metrics: serving the final values at %s for %s more\n", m.url(), m.linger)
		select { // cut short by an interrupt
		case <-time.After(m.linger):
		case <-ctx.Done():
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m.srv.Shutdown(sctx) != nil {
		m.srv.Close() // a scrape still running after 2s
	}
	<-m.done
}

// metricsTarget names the brokers for a label: URLs without user
// information or query (which may hold a token), or the in-process
// broker.
func metricsTarget(brokers []string) string {
	if len(brokers) == 0 {
		return "inproc"
	}
	shown := make([]string, len(brokers))
	for i, b := range brokers {
		s := b
		if j := strings.IndexByte(s, '?'); j >= 0 {
			s = s[:j]
		}
		start := 0
		if j := strings.Index(s, "://"); j >= 0 {
			start = j + 3
		}
		if at := strings.LastIndexByte(s, '@'); at >= start {
			s = s[:start] + s[at+1:]
		}
		shown[i] = s
	}
	return strings.Join(shown, ",")
}

// metricsInfo describes the part of sc this process runs: all of it, or
// shard sh (its connections, and the rate of its publishers). A run id
// of 0 is left to the run to pick (the exporter learns it from the run).
func metricsInfo(sc *loadgen.Scenario, sh loadgen.Shard, runID uint32) metrics.Info {
	info := metrics.Info{Target: metricsTarget(sc.Brokers), Protocol: "3.1.1",
		OfferedRate: sc.TotalRate(), Connections: sh.Size(sc.TotalConnections())}
	if sc.V5() {
		info.Protocol = "5.0"
	}
	if runID != 0 {
		info.RunID = fmt.Sprintf("%08x", runID)
	}
	if !sh.Whole() && sc.Publishers > 0 {
		pubs := 0
		for i := range sc.Publishers {
			if sh.Owns(i) {
				pubs++
			}
		}
		info.OfferedRate = sc.TotalRate() * float64(pubs) / float64(sc.Publishers)
	}
	return info
}
