package reports

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     float64      `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       float64         `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemErr  string          `xml:"system-err,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the run as JUnit XML: one testsuite per section, one
// testcase per spec. A broken statement is a <failure> (never an <error>)
// whose message carries the statement IDs and expected versus actual, with
// the wire trace in its body; known deviations and profile skips are
// <skipped> with their reason; failures outside any spec are a
// "suite" testcase failure.
//
// An inconclusive spec blames none of its statements either: it is an
// <error type="inconclusive"> whose message is the cause (no answer in
// time, or a step that broke another statement). A statement broken in a
// step of other specs is a <failure> of its own, in a testsuite "steps",
// one testcase per statement ("[MQTT-3.3.4-1] broken in steps of other
// specs"), so that CI shows it failed even where none of its own specs
// did; a breach the profile knows is <skipped> there, as deviations are.
//
// An interrupted run (SIGINT) blames no statement. The spec it stopped is
// <skipped message="interrupted: ...">: Jenkins, GitLab, GitHub's JUnit
// reporters and Azure all count an <error> as a failed test, which would
// show the spec's statements as broken, while <skipped> reads as "no
// verdict" everywhere. So that the incomplete report is not read as green,
// the run itself gets a testcase "interrupted" (class "suite") holding an
// <error type="interrupted">: in JUnit an error is a test that could not
// complete, not a failed assertion, and every tool marks the report red.
func (c *Conformance) WriteJUnit(path string) error {
	root := junitSuites{Name: "mqttbench conformance " + c.Broker, Time: c.Duration.Seconds()}
	index := map[string]int{}
	multi := c.MultiProtocol()
	for _, s := range c.Specs {
		// A run of several versions has a testsuite per section of each
		// ("3.1 CONNECT (5.0)"); the protocol property names the version.
		section := s.sectionKey(multi)
		i, ok := index[section]
		if !ok {
			i = len(root.Suites)
			index[section] = i
			protocol := s.Protocol
			if protocol == "" {
				protocol = c.Protocol
			}
			props := append([]junitProperty{{"broker", c.Broker}, {"protocol", protocol}, {"seed", fmt.Sprint(c.Seed)}}, c.runProperties()...)
			root.Suites = append(root.Suites, junitSuite{Name: section, Properties: props})
		}
		suite := &root.Suites[i]
		tc := junitCase{Name: s.Name, Classname: section, Time: s.Duration.Seconds()}
		trace := traceText(s)
		switch s.State {
		case Failed:
			tc.Failure = &junitMessage{Message: s.Message, Type: "statement", Body: s.Message + "\n\n" + trace}
			suite.Failures++
		case Skipped, Deviation:
			tc.Skipped = &junitMessage{Message: s.Message}
			suite.Skipped++
		case Inconclusive:
			tc.Error = &junitMessage{Message: s.Message, Type: Inconclusive, Body: s.Message + "\n\n" + trace}
			suite.Errors++
		case Interrupted:
			msg := s.Message
			if !strings.HasPrefix(msg, Interrupted) {
				msg = strings.TrimSuffix(Interrupted+": "+msg, ": ")
			}
			tc.Skipped = &junitMessage{Message: msg}
			suite.Skipped++
		}
		if s.State != Failed && s.State != Inconclusive {
			tc.SystemOut = trace
		}
		if s.State == Warning {
			// JUnit has no warning: a passed testcase whose output says
			// which SHOULD the broker did not follow.
			tc.SystemOut = "WARNING: " + s.Message + "\n\n" + trace
		}
		suite.Tests++
		suite.Time += s.Duration.Seconds()
		suite.Cases = append(suite.Cases, tc)
	}
	if steps := c.stepsSuite(); len(steps.Cases) > 0 {
		root.Suites = append(root.Suites, steps)
	}
	if len(c.SuiteErrors) > 0 || c.Interrupted {
		run := junitSuite{Name: "suite"}
		if len(c.SuiteErrors) > 0 {
			run.Tests++
			run.Failures++
			run.Cases = append(run.Cases, junitCase{Name: "suite", Classname: "suite",
				Failure: &junitMessage{Message: strings.Join(c.SuiteErrors, "\n"), Type: "suite"}})
		}
		if c.Interrupted {
			var body strings.Builder
			for _, s := range c.InterruptedSpecs() {
				body.WriteString("stopped before its verdict: " + s.Name + "\n")
			}
			run.Tests++
			run.Errors++
			run.Cases = append(run.Cases, junitCase{Name: "interrupted", Classname: "suite",
				Error: &junitMessage{Message: "interrupted before the run finished; specs not run have no result",
					Type: Interrupted, Body: body.String()}})
		}
		root.Suites = append(root.Suites, run)
	}
	for _, s := range root.Suites {
		root.Tests += s.Tests
		root.Failures += s.Failures
		root.Errors += s.Errors
		root.Skipped += s.Skipped
	}
	b, err := xml.MarshalIndent(root, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// runProperties are the testsuite properties every suite of the run
// shares: the TLS negotiated and the comparison with a baseline.
func (c *Conformance) runProperties() []junitProperty {
	var props []junitProperty
	if t := c.TLS; t != nil {
		props = append(props, junitProperty{"tls_version", t.Version}, junitProperty{"tls_cipher", t.Cipher},
			junitProperty{"tls_client_cert", fmt.Sprint(t.ClientCert)})
		if t.ALPN != "" {
			props = append(props, junitProperty{"tls_alpn", t.ALPN})
		}
	}
	if b := c.Baseline; b != nil {
		props = append(props, junitProperty{"baseline", b.File}, junitProperty{"baseline_worse", fmt.Sprint(len(b.Worse))},
			junitProperty{"baseline_better", fmt.Sprint(len(b.Better))}, junitProperty{"baseline_known_failures", fmt.Sprint(b.KnownFailures)})
	}
	return props
}

// stepsSuite holds one testcase per statement broken in steps of specs
// about other statements: its first breach with that spec's trace, then
// every spec it broke.
func (c *Conformance) stepsSuite() junitSuite {
	suite := junitSuite{Name: "steps"}
	type found struct {
		first SpecResult
		b     Breach
		specs []string
	}
	by := map[string]*found{}
	var ids []string
	for _, s := range c.sortedSpecs() {
		for _, b := range s.Broke {
			for _, id := range b.Statements {
				f := by[id]
				if f == nil {
					f = &found{first: s, b: b}
					by[id] = f
					ids = append(ids, id)
				}
				f.specs = append(f.specs, s.Name)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return statementLess(ids[i], ids[j]) })
	for _, id := range ids {
		f := by[id]
		tc := junitCase{Name: "[" + id + "] broken in steps of other specs", Classname: "steps"}
		msg := fmt.Sprintf("%s (in %d specs)", f.b.Message, len(f.specs))
		if f.b.Deviation != "" {
			tc.Skipped = &junitMessage{Message: "known deviation: " + f.b.Deviation + "; observed: " + msg}
			suite.Skipped++
		} else {
			body := "broken in steps of:\n  " + strings.Join(f.specs, "\n  ") + "\n\nfirst in " + f.first.Name + "\n" + traceText(f.first)
			tc.Failure = &junitMessage{Message: msg, Type: "statement", Body: body}
			suite.Failures++
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, tc)
	}
	return suite
}

func traceText(s SpecResult) string {
	if len(s.Trace) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("wire trace:\n")
	for _, e := range s.Trace {
		b.WriteString(e.String())
		if e.Hex != "" {
			b.WriteString("  [" + e.Hex + "]")
		}
		b.WriteByte('\n')
	}
	return b.String()
}
