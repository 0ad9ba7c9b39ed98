package suites

import (
	"fmt"
	"strings"

	"github.com/onsi/ginkgo/v2"
)

// A SHOULD of the specification is advice: a broker that does not follow
// it still conforms. A spec checks it with Warnf, which notes what the
// broker did instead and lets the spec go on; a spec that passes every
// MUST but broke a SHOULD ends with a warning verdict, never a failure.

// warningPrefix starts the Ginkgo skip message of a spec that ended with
// warnings, for Convert.
const warningPrefix = "WARNING "

// Warnf notes that the broker did not do what the specification says it
// SHOULD (or what it recommends, such as the most specific reason code).
func (w *World) Warnf(format string, args ...any) {
	msg := fmt.Sprintf("[%s] %s", strings.Join(w.Statements, " "), fmt.Sprintf(format, args...))
	w.mu.Lock()
	w.warnings = append(w.warnings, msg)
	w.mu.Unlock()
}

// Shouldf warns with "expected X (SHOULD); got Y" when ok is false.
func (w *World) Shouldf(ok bool, expected string, gotFormat string, args ...any) {
	if !ok {
		w.Warnf("expected %s (a SHOULD of the specification); got %s", expected, fmt.Sprintf(gotFormat, args...))
	}
}

// endWithWarnings ends a spec whose body passed: with a warning verdict
// when it noted any.
func (w *World) endWithWarnings() {
	w.mu.Lock()
	warnings := w.warnings
	w.mu.Unlock()
	if len(warnings) > 0 {
		ginkgo.Skip(warningPrefix + strings.Join(warnings, "; "))
	}
}
