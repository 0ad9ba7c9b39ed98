package suites

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/wire"
)

// section is one specification section's specs for one protocol version.
type section struct {
	version       packetgen.Version
	number, title string
	specs         func(s *S)
}

var sections []section

// addSection is called from each section file's init: specs are only
// handed to Ginkgo by Register, so a run can reset Ginkgo and register
// again.
func addSection(number, title string, specs func(s *S)) {
	sections = append(sections, section{packetgen.V311, number, title, specs})
}

// S adds the specs of one section.
type S struct {
	cfg     *Config
	section string
	cite    func(statements []string) // when set (coverage test), Spec records the IDs instead of adding a spec
	seq     *int                      // specs registered so far, for the shard
	// capture, when set, receives the specs instead of Ginkgo: Reuse
	// reads the 3.1.1 specs a 5.0 section shares this way.
	capture func(ids, text string, args []any)
}

// Labels every spec carries: the protocol version.
func (s *S) versionLabel() string { return versionLabel(s.cfg.Version) }

// Spec adds one spec. ids holds the statement IDs it checks, separated by
// spaces ("MQTT-4.3.3-1 MQTT-4.3.3-2"); text reads as a sentence after
// them. args are Ginkgo decorators (Label(...), ...) followed by the body.
// The spec is named "[IDs] text".
func (s *S) Spec(ids, text string, args ...any) {
	statements := strings.Fields(ids)
	if len(statements) == 0 || len(args) == 0 {
		panic("suites: Spec needs statement IDs and a body: " + text)
	}
	body, ok := args[len(args)-1].(func(*World))
	if !ok {
		panic("suites: the last argument of Spec must be func(*World): " + text)
	}
	if s.capture != nil {
		s.capture(ids, text, args)
		return
	}
	if s.cite != nil {
		s.cite(statements)
		return
	}
	k := *s.seq
	*s.seq++
	if !s.cfg.shard.takes(k) {
		return // another shard's
	}
	name := "[" + strings.Join(statements, " ") + "] " + text
	timing := false
	for _, a := range args[:len(args)-1] {
		if labels, ok := a.(ginkgo.Labels); ok {
			for _, l := range labels {
				timing = timing || slices.Contains(timingLabels, l)
			}
		}
	}
	// Offset(1): the spec's location is the s.Spec call in the section
	// file, not this line.
	decorators := append([]any{ginkgo.Label(s.versionLabel()), ginkgo.Offset(1)}, args[:len(args)-1]...)
	cfg := s.cfg
	decorators = append(decorators, func() {
		w := newWorld(cfg, statements)
		w.name, w.timing = name, timing
		ginkgo.DeferCleanup(w.cleanup)
		defer func() {
			ginkgo.AddReportEntry(traceEntryName, traceValue(w.Trace.Entries()),
				ginkgo.ReportEntryVisibilityFailureOrVerbose)
		}()
		dev := cfg.Profile.deviation(statements, name)
		if dev == nil {
			body(w)
			w.endWithWarnings()
			return
		}
		// A known deviation: run the spec, but report its failure as the
		// deviation the profile names instead of a failure.
		w.intercept = true
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(abort); !ok {
						panic(r)
					}
				}
			}()
			body(w)
		}()
		if len(w.failures) > 0 {
			ginkgo.Skip(fmt.Sprintf("%s%s: %s; observed: %s", deviationPrefix, dev.Statement, dev.Reason, w.failures[0]))
		}
		ginkgo.AddReportEntry(deviationGoneEntry, fmt.Sprintf("%s (%s) did not show", dev.Statement, dev.Reason))
		w.endWithWarnings()
	})
	ginkgo.It(name, decorators...)
}

const (
	traceEntryName     = "wire trace"
	deviationPrefix    = "KNOWN DEVIATION "
	deviationGoneEntry = "known deviation not observed"
)

// traceValue prints as a readable trace in Ginkgo's output and keeps the
// entries for the JSON and JUnit reports.
type traceValue []wire.Entry

func (t traceValue) String() string {
	var b strings.Builder
	for _, e := range t {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Register hands every section's specs to Ginkgo's global suite: those of
// cfg.Version, or of each of cfg.Versions (--protocol all), each version
// with a configuration of its own (see forVersion).
func Register(cfg *Config) {
	cfg.withDefaults()
	sorted := append([]section(nil), sections...)
	sort.SliceStable(sorted, func(i, j int) bool { return sectionLess(sorted[i].number, sorted[j].number) })
	seq := new(int)
	cfg.perVersion = map[packetgen.Version]*Config{}
	for _, v := range cfg.versions() {
		vc := cfg.forVersion(v)
		cfg.perVersion[v] = vc
		for _, sec := range sorted {
			if sec.version != v {
				continue
			}
			s := &S{cfg: vc, section: sec.number, seq: seq}
			ginkgo.Describe(sec.number+" "+sec.title, func() { sec.specs(s) })
		}
	}
}

// sectionLess orders "3.10" after "3.9".
func sectionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		var x, y int
		fmt.Sscan(as[i], &x) //nolint:errcheck
		fmt.Sscan(bs[i], &y) //nolint:errcheck
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
