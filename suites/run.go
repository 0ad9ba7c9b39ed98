package suites

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
)

//go:embed statements/mqtt-3.1.1.txt
var statements311 string

//go:embed statements/mqtt-5.0.txt
var statements50 string

// AllStatements lists the normative statement IDs of a version.
func AllStatements(v packetgen.Version) []string {
	if v == packetgen.V5 {
		return strings.Fields(statements50)
	}
	ids := strings.Fields(statements311)
	for i, id := range ids {
		// The 3.1.1 text prints the SUBSCRIBE options statement as
		// "MQTT-3-8.3-4" and the list keeps a truncated "MQTT-3-8"; the
		// suite cites it as MQTT-3.8.3-4.
		if id == "MQTT-3-8" {
			ids[i] = "MQTT-3.8.3-4"
		}
	}
	return ids
}

// Selection narrows a run.
type Selection struct {
	// LabelFilter is a Ginkgo label expression, such as "qos2 && !slow".
	LabelFilter string
	// Focus keeps specs whose name matches any of these regular expressions
	// (a statement ID prefix such as "MQTT-3.1" works).
	Focus []string
	// Shard, when set, runs only that shard of the specs (see Merge).
	Shard Shard
}

// plainError is err on one line without terminal colours: Ginkgo's
// errors are multi-line, coloured and end in a documentation link.
func plainError(err error) string {
	var ge types.GinkgoError
	if errors.As(err, &ge) {
		msg := strings.Join(strings.Fields(ge.Message), " ")
		if msg == "" {
			return ge.Heading
		}
		return ge.Heading + ": " + msg
	}
	return err.Error()
}

// Check validates a selection before the run, so that a bad expression is
// a usage error and not a Ginkgo exit.
func (s Selection) Check() error {
	if s.LabelFilter != "" {
		if _, err := types.ParseLabelFilter(s.LabelFilter); err != nil {
			return fmt.Errorf("--label-filter %q: %s", s.LabelFilter, plainError(err))
		}
	}
	for _, f := range s.Focus {
		if _, err := regexp.Compile(f); err != nil {
			return fmt.Errorf("--focus %q: %v", f, err)
		}
	}
	return nil
}

type tester struct{ failed bool }

func (t *tester) Fail() { t.failed = true }

// Run runs the registered specs against cfg's broker once per process
// (Ginkgo's global suite cannot run twice). Progress goes to stderr; the
// result comes back for the caller to print and save. The broker must be
// reachable: a dial failure is returned as an error before any spec runs.
func Run(ctx context.Context, cfg Config, sel Selection) (*reports.Conformance, error) {
	cfg.withDefaults()
	if err := sel.Check(); err != nil {
		return nil, err
	}
	probe, cancel := context.WithTimeout(ctx, cfg.Timeout)
	nc, err := cfg.Dial(probe)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("broker %s is unreachable: %v", cfg.Broker, err)
	}
	nc.Close()

	var captured types.Report
	cfg.shard = sel.Shard
	Register(&cfg)
	ginkgo.ReportAfterSuite("mqttbench results", func(r types.Report) { captured = r })
	suiteConfig, reporterConfig := ginkgo.GinkgoConfiguration()
	suiteConfig.RandomSeed = int64(cfg.Seed & (1<<63 - 1))
	suiteConfig.RandomizeAllSpecs = true
	suiteConfig.LabelFilter = sel.LabelFilter
	suiteConfig.FocusStrings = sel.Focus
	suiteConfig.Timeout = 30 * time.Minute
	reporterConfig.NoColor = true
	reporterConfig.Succinct = true

	answerTimes.reset()
	started := time.Now()
	restore := stdoutToStderr()
	ginkgo.RunSpecs(&tester{}, "mqttbench conformance", suiteConfig, reporterConfig)
	restore()

	res := Convert(captured, cfg)
	res.Started = started
	res.Duration = time.Since(started)
	if ctx.Err() != nil {
		res.Interrupted = true
	}
	return res, nil
}

var nameIDs = regexp.MustCompile(`^\[([^\]]+)\]`)

// Convert turns a Ginkgo report into mqttbench's conformance result.
func Convert(r types.Report, cfg Config) *reports.Conformance {
	cfg.withDefaults()
	res := &reports.Conformance{
		Kind:     "conformance",
		Broker:   cfg.Broker,
		Protocol: cfg.protocolName(),
		Seed:     cfg.Seed,
		Profile:  cfg.Profile.summary(),
	}
	for _, reason := range r.SpecialSuiteFailureReasons {
		if strings.Contains(reason, "Interrupted") {
			res.Interrupted = true
			continue
		}
		res.SuiteErrors = append(res.SuiteErrors, reason)
	}
	for _, sp := range r.SpecReports {
		if sp.LeafNodeType != types.NodeTypeIt {
			if sp.State.Is(types.SpecStateFailureStates) {
				res.SuiteErrors = append(res.SuiteErrors, fmt.Sprintf("%s: %s", sp.LeafNodeType, sp.Failure.Message))
			}
			continue
		}
		if sp.State == types.SpecStateSkipped && sp.Failure.Message == "" {
			continue // not selected by label filter or focus
		}
		out := reports.SpecResult{
			Name:     sp.LeafNodeText,
			Labels:   sp.Labels(),
			Duration: sp.RunTime,
			Location: sp.LeafNodeLocation.String(),
		}
		if len(sp.ContainerHierarchyTexts) > 0 {
			out.Section = sp.ContainerHierarchyTexts[0]
		}
		if m := nameIDs.FindStringSubmatch(sp.LeafNodeText); m != nil {
			out.Statements = strings.Fields(m[1])
		}
		out.Protocol = protocolOfLabels(out.Labels)
		switch {
		case sp.State == types.SpecStatePassed:
			out.State = reports.Passed
		case sp.State == types.SpecStateSkipped && strings.HasPrefix(sp.Failure.Message, warningPrefix):
			out.State = reports.Warning
			out.Message = strings.TrimPrefix(sp.Failure.Message, warningPrefix)
		case (sp.State == types.SpecStateSkipped || sp.State == types.SpecStateFailed) &&
			strings.HasPrefix(sp.Failure.Message, inconclusivePrefix):
			// Skipped: no answer in time, or a known breach; failed: a step
			// broke another statement, a failure of that statement
			// (Broke below), not of this spec's.
			out.State = reports.Inconclusive
			out.Message = strings.TrimPrefix(sp.Failure.Message, inconclusivePrefix)
		case sp.State == types.SpecStateSkipped && strings.HasPrefix(sp.Failure.Message, deviationPrefix):
			out.State = reports.Deviation
			out.Message = strings.TrimPrefix(sp.Failure.Message, deviationPrefix)
		case sp.State == types.SpecStateSkipped || sp.State == types.SpecStatePending:
			out.State = reports.Skipped
			out.Message = sp.Failure.Message
		case sp.State == types.SpecStateInterrupted:
			// SIGINT stopped the spec before it reached a verdict: that
			// says nothing about its statements, so it is no failure.
			res.Interrupted = true
			out.State = reports.Interrupted
			out.Message = "interrupted before the spec finished (" + sp.Failure.Message + ")"
		default:
			out.State = reports.Failed
			out.Message = sp.Failure.Message
			if sp.State == types.SpecStatePanicked && sp.Failure.ForwardedPanic != "" {
				out.Message = "panic: " + sp.Failure.ForwardedPanic
			}
		}
		for _, e := range sp.ReportEntries {
			switch e.Name {
			case traceEntryName:
				if t, ok := e.GetRawValue().(traceValue); ok {
					out.Trace = t
				}
			case deviationGoneEntry:
				out.Message = "known deviation not observed: " + e.StringRepresentation()
			case breachEntryName:
				if b, ok := e.GetRawValue().(breachValue); ok {
					out.Broke = append(out.Broke, reports.Breach(b))
				} else if b, ok := parseBreach(e.StringRepresentation()); ok {
					out.Broke = append(out.Broke, b) // from another process of a parallel run
				}
			}
		}
		res.Specs = append(res.Specs, out)
	}
	res.Timeout = cfg.Timeout
	res.Answers = answerTimes.snapshot()
	setVerdicts(res, cfg)
	if vc := cfg.versionOf(packetgen.V5); vc.caps != nil {
		res.Capabilities = vc.caps.Summary()
		res.Notes = append(res.Notes, vc.caps.Notes...)
	}
	return res
}

// parseBreach reads a breach from its printed form ("[IDs] message", then
// " (known deviation: ...)"), as a parallel Ginkgo run hands report
// entries between processes.
func parseBreach(s string) (reports.Breach, bool) {
	m := nameIDs.FindStringSubmatch(s)
	if m == nil {
		return reports.Breach{}, false
	}
	b := reports.Breach{Statements: strings.Fields(m[1]), Message: s}
	const known = " (known deviation: "
	if i := strings.LastIndex(s, known); i >= 0 && strings.HasSuffix(s, ")") {
		b.Message, b.Deviation = s[:i], strings.TrimSuffix(s[i+len(known):], ")")
	}
	return b, true
}

// summary is what reports show of the profile: never the password.
func (p Profile) summary() map[string]any {
	m := map[string]any{"name": p.Name, "max_payload": p.MaxPayload}
	if p.MaxQoS != nil {
		m["max_qos"] = *p.MaxQoS
	}
	if p.Retain != nil {
		m["retain"] = *p.Retain
	}
	if p.Wildcards != nil {
		m["wildcards"] = *p.Wildcards
	}
	if p.QoS0QueuedOffline != nil {
		m["qos0_queued_offline"] = *p.QoS0QueuedOffline
	}
	if p.Username != "" {
		m["username"] = p.Username
	}
	if len(p.Deviations) > 0 {
		m["deviations"] = p.Deviations
	}
	if p.Security != nil {
		m["security"] = p.Security.summary()
	}
	p.summary5(m)
	return m
}
