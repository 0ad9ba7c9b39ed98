package loadgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/mqttbench/mqttbench/reports"
)

// Histogram is an HdrHistogram of microseconds.
type Histogram = hdr.Histogram

// A results directory holds summary.json and one HdrHistogram interval log
// per metric (tcp_connect.hlog, tls_handshake.hlog, ws_upgrade.hlog,
// connect.hlog, subscribe.hlog, publish_ack.hlog, e2e.hlog, send_lag.hlog;
// a phase the transport does not have stays empty): one line per second,
// readable by HdrHistogram's own tools (HistogramLogProcessor,
// HdrHistogramVisualizer) and by ReadResults, so runs can be re-reported
// and merged later.
const SummaryFile = "summary.json"

// LogFile names a metric's interval log.
func LogFile(m Metric) string { return m.String() + ".hlog" }

// Results is one run: its summary and its latency histograms.
type Results struct {
	Summary *reports.Load
	// Histograms are whole-run totals by metric name.
	Histograms map[string]*Histogram
	// Intervals are the one-second histograms by metric name, in order;
	// filled by ReadResults.
	Intervals map[string][]*Histogram
	// Dir is where the results were written or read ("" for none).
	Dir string
	// Verify is what delivery verification needs (verify.json), for
	// merging shards; nil for results written before it existed.
	Verify *VerifyState
	// Shard is the part of the scenario the run covered.
	Shard Shard

	connectSec float64
	ready      int64
	memPerConn float64
}

// createLogs makes the results directory and opens the interval logs.
func createLogs(dir string) ([numMetrics]*os.File, error) {
	var files [numMetrics]*os.File
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return files, err
	}
	for _, m := range Metrics() {
		f, err := os.Create(filepath.Join(dir, LogFile(m)))
		if err != nil {
			for _, g := range files {
				if g != nil {
					g.Close()
				}
			}
			return files, err
		}
		files[m] = f
	}
	return files, nil
}

func (r *Results) writeSummary() error {
	r.Summary.Files = map[string]string{}
	for _, m := range Metrics() {
		r.Summary.Files[m.String()] = LogFile(m)
	}
	if r.Verify != nil {
		if err := r.Verify.Write(filepath.Join(r.Dir, VerifyFile)); err != nil {
			return err
		}
	}
	return r.Summary.WriteJSON(filepath.Join(r.Dir, SummaryFile))
}

// ReadResults reads a results directory: the summary, every interval of
// every metric's log, and their totals.
func ReadResults(dir string) (*Results, error) {
	sum, err := reports.ReadLoad(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, err
	}
	r := &Results{Summary: sum, Dir: dir, Histograms: map[string]*Histogram{}, Intervals: map[string][]*Histogram{}}
	if v, err := ReadVerify(filepath.Join(dir, VerifyFile)); err == nil {
		r.Verify = v
		if len(v.Shards) == 1 {
			r.Shard = Shard{Index: v.Shards[0], Count: v.ShardCount}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, m := range Metrics() {
		name := m.String()
		total := NewHistogram()
		total.SetTag(name)
		r.Histograms[name] = total
		f, err := os.Open(filepath.Join(dir, LogFile(m)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lr := hdr.NewHistogramLogReader(f)
		for {
			h, err := lr.NextIntervalHistogram()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", LogFile(m), err)
			}
			if h == nil {
				break
			}
			r.Intervals[name] = append(r.Intervals[name], h)
			if dropped := total.Merge(h); dropped > 0 {
				f.Close()
				return nil, fmt.Errorf("%s: %d values outside the histogram's range", LogFile(m), dropped)
			}
		}
		f.Close()
	}
	return r, nil
}
