package faults

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Kind names a fault.
type Kind string

// Process faults act on the broker's process; network faults on the
// fault proxy's connections.
const (
	Kill    Kind = "kill"    // SIGKILL, then the restart command
	Restart Kind = "restart" // SIGTERM (SIGKILL if it lingers), then the restart command
	Pause   Kind = "pause"   // SIGSTOP for For, then SIGCONT

	Latency   Kind = "latency"   // each way: Latency ± Jitter
	Bandwidth Kind = "bandwidth" // each way: at most Bandwidth bytes/s
	Slicer    Kind = "slicer"    // each way: writes of at most Slicer bytes
	Reset     Kind = "reset"     // a connection that carries a byte is reset (RST)
	Blackhole Kind = "blackhole" // connections stay open and silent both ways
)

// Kinds are the valid kinds, in the order the help lists them.
var Kinds = []Kind{Kill, Restart, Pause, Latency, Bandwidth, Slicer, Reset, Blackhole}

// Process reports whether the fault acts on the broker's process.
func (k Kind) Process() bool { return k == Kill || k == Restart || k == Pause }

// Groups of connections a network fault can target alone; "" (or "all")
// is every connection. ROLE/N is part of one (group.go).
var Groups = []string{"publishers", "subscribers", "idle"}

// DefaultResetWindow is how long a reset without +FOR stays armed: every
// connection that carries a byte in it is reset.
const DefaultResetWindow = time.Second

// Syntax is the --fault syntax, for flag help and errors.
const Syntax = "KIND[=VALUE][,KEY=VALUE]@(AT|every=INTERVAL|AT,every=INTERVAL)[+FOR][:group=GROUP], e.g. kill@10s, " +
	"pause=3s@10s, kill@every=20s, latency=200ms,jitter=50ms@5s+10s, bandwidth=64KB@5s+10s, slicer=8@5s+10s, " +
	"reset@12s, blackhole@5s+5s:group=subscribers, blackhole@5s+5s:group=subscribers/2 (the first half)"

// Spec is one fault: what, when, for how long and on whom. The YAML keys
// of a scenario's faults: list are the field tags.
type Spec struct {
	Kind Kind `yaml:"kind"`
	// At is when the first occurrence begins, from the start of the run;
	// Every, when set, repeats it (the first at Every when At is 0).
	At    time.Duration `yaml:"at"`
	Every time.Duration `yaml:"every"`
	// For is how long a network fault lasts (0: to the end of the run;
	// a reset's window, DefaultResetWindow), how long a pause lasts, and
	// how long a killed or stopped broker stays down before the restart
	// command (0: at once).
	For time.Duration `yaml:"for"`
	// Group limits a network fault to one group of connections (see
	// Groups), or the first 1/N of one (ROLE/N); "" is every connection.
	Group string `yaml:"group"`

	Latency   time.Duration `yaml:"latency"`
	Jitter    time.Duration `yaml:"jitter"`
	Bandwidth ByteRate      `yaml:"bandwidth"` // bytes per second, at least 1KB
	Slicer    int           `yaml:"slicer"`    // largest write in bytes
	// Delay is the pause between a slicer's writes (0: none, and a
	// peer may read several slices at once).
	Delay time.Duration `yaml:"delay"`

	// Name is the spec as written (--fault), or made from its fields.
	Name string `yaml:"-"`
}

// ByteRate is bytes per second, written 64KB, 1.5MB, 512KiB or a number.
type ByteRate int64

// UnmarshalYAML reads "64KB" or a plain number of bytes per second.
func (r *ByteRate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func (r ByteRate) String() string {
	switch {
	case r >= 1e6 && r%1e6 == 0:
		return fmt.Sprintf("%dMB", r/1e6)
	case r >= 1e3 && r%1e3 == 0:
		return fmt.Sprintf("%dKB", r/1e3)
	}
	return fmt.Sprintf("%dB", int64(r))
}

var rateUnits = []struct {
	suffix string
	mult   float64
}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"b", 1}}

// ParseByteRate reads a rate such as 64KB, 64KB/s, 2MiB or 65536.
func ParseByteRate(s string) (ByteRate, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/s")
	mult := 1.0
	for _, u := range rateUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("bandwidth %q: want a rate such as 64KB, 1.5MB or 512KiB (per second)", s)
	}
	return ByteRate(f * mult), nil
}

// Parse reads a --fault value (see Syntax). Errors name the bad term.
func Parse(s string) (Spec, error) {
	sp := Spec{Name: s}
	what, when, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(when, "@") {
		return sp, fmt.Errorf("fault %q: want one @ between what and when: %s", s, Syntax)
	}
	if i := strings.LastIndex(when, ":"); i >= 0 {
		k, v, _ := strings.Cut(when[i+1:], "=")
		if k != "group" {
			return sp, fmt.Errorf("fault %q: %q: want :group=NAME after the time", s, when[i+1:])
		}
		sp.Group, when = v, when[:i]
	}
	if err := sp.parseWhen(when); err != nil {
		return sp, fmt.Errorf("fault %q: %v", s, err)
	}
	terms := strings.Split(what, ",")
	k, v, hasV := strings.Cut(terms[0], "=")
	sp.Kind = Kind(strings.ToLower(strings.TrimSpace(k)))
	if !validKind(sp.Kind) {
		return sp, fmt.Errorf("fault %q: unknown kind %q; want one of %s", s, k, kindList())
	}
	if hasV {
		if err := sp.set(string(sp.Kind), v); err != nil {
			return sp, fmt.Errorf("fault %q: %v", s, err)
		}
	} else if sp.Kind == Latency || sp.Kind == Bandwidth || sp.Kind == Slicer {
		return sp, fmt.Errorf("fault %q: %s needs a value, e.g. %s", s, sp.Kind, example(sp.Kind))
	}
	for _, t := range terms[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return sp, fmt.Errorf("fault %q: %q: want KEY=VALUE", s, t)
		}
		if k == string(sp.Kind) {
			return sp, fmt.Errorf("fault %q: %q: %s given twice", s, t, k)
		}
		if err := sp.set(k, v); err != nil {
			return sp, fmt.Errorf("fault %q: %v", s, err)
		}
	}
	if err := sp.Validate(); err != nil {
		return sp, fmt.Errorf("fault %q: %v", s, err)
	}
	return sp, nil
}

// parseWhen reads AT[+FOR] or every=INTERVAL[+FOR].
func (sp *Spec) parseWhen(when string) error {
	at, dur, hasFor := strings.Cut(when, "+")
	if hasFor {
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: want a duration above 0 after +, e.g. +10s", "+"+dur)
		}
		sp.For = d
	}
	if first, ev, ok := strings.Cut(at, ",every="); ok { // AT,every=INTERVAL
		if err := sp.parseWhen(first); err != nil {
			return err
		}
		at = "every=" + ev
	}
	if ev, ok := strings.CutPrefix(at, "every="); ok {
		d, err := time.ParseDuration(ev)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: want an interval above 0, e.g. every=20s", at)
		}
		sp.Every = d
		return nil
	}
	d, err := time.ParseDuration(at)
	if err != nil || d < 0 {
		return fmt.Errorf("%q: want a time from the start of the run, e.g. 10s, or every=20s", at)
	}
	sp.At = d
	return nil
}

// set reads one KEY=VALUE term.
func (sp *Spec) set(k, v string) error {
	dur := func(dst *time.Duration) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%s=%s: want a duration, e.g. %s=200ms", k, v, k)
		}
		*dst = d
		return nil
	}
	switch Kind(k) {
	case Pause:
		if sp.For != 0 {
			return fmt.Errorf("pause=%s: the pause is given twice (pause=D or +D)", v)
		}
		return dur(&sp.For)
	case Latency:
		return dur(&sp.Latency)
	case Bandwidth:
		r, err := ParseByteRate(v)
		sp.Bandwidth = r
		return err
	case Slicer:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("slicer=%s: want the largest write in bytes, at least 1", v)
		}
		sp.Slicer = n
		return nil
	}
	switch k {
	case "jitter":
		return dur(&sp.Jitter)
	case "delay":
		return dur(&sp.Delay)
	}
	return fmt.Errorf("%s=%s: unknown key; %s takes %s", k, v, sp.Kind, keysOf(sp.Kind))
}

// Validate checks a spec (from a file, or after Parse) and fills in its
// name. Errors name the field at fault.
func (sp *Spec) Validate() error {
	switch {
	case !validKind(sp.Kind):
		return fmt.Errorf("kind: %q is not one of %s", sp.Kind, kindList())
	case sp.At < 0 || sp.Every < 0 || sp.For < 0:
		return errors.New("at, every and for cannot be negative")
	case sp.Group == "all":
		sp.Group = ""
	}
	if sp.Group != "" {
		if sp.Kind.Process() {
			return fmt.Errorf("group: %s acts on the broker process, not on a group of connections", sp.Kind)
		}
		role, div, err := ParseGroup(sp.Group)
		if err != nil {
			return err
		}
		// One spelling per part: each names a proxy.
		sp.Group = role
		if div > 1 {
			sp.Group += "/" + strconv.Itoa(div)
		}
	}
	extra := func(name string, set bool) error {
		if set {
			return fmt.Errorf("%s: %s takes %s", name, sp.Kind, keysOf(sp.Kind))
		}
		return nil
	}
	if err := errors.Join(
		extra("latency", sp.Latency != 0 && sp.Kind != Latency),
		extra("jitter", sp.Jitter != 0 && sp.Kind != Latency),
		extra("bandwidth", sp.Bandwidth != 0 && sp.Kind != Bandwidth),
		extra("slicer", sp.Slicer != 0 && sp.Kind != Slicer),
		extra("delay", sp.Delay != 0 && sp.Kind != Slicer),
	); err != nil {
		return err
	}
	switch sp.Kind {
	case Pause:
		if sp.For == 0 {
			return errors.New("pause: needs how long, e.g. pause=3s@10s or pause@10s+3s")
		}
	case Latency:
		if sp.Latency <= 0 {
			return errors.New("latency: needs a delay above 0, e.g. latency=200ms")
		}
		if sp.Jitter > sp.Latency {
			return fmt.Errorf("jitter: %s is more than the latency %s", sp.Jitter, sp.Latency)
		}
		if sp.Latency%time.Millisecond != 0 || sp.Jitter%time.Millisecond != 0 {
			return errors.New("latency: toxiproxy counts whole milliseconds")
		}
	case Bandwidth:
		if sp.Bandwidth < 1000 {
			return fmt.Errorf("bandwidth: %d B/s is less than toxiproxy's 1KB/s step", sp.Bandwidth)
		}
	case Slicer:
		if sp.Slicer < 1 {
			return errors.New("slicer: needs the largest write in bytes, e.g. slicer=8")
		}
	}
	if sp.Name == "" {
		sp.Name = sp.String()
	}
	return nil
}

// String writes the spec in --fault syntax.
func (sp Spec) String() string {
	var b strings.Builder
	b.WriteString(string(sp.Kind))
	switch sp.Kind {
	case Latency:
		fmt.Fprintf(&b, "=%s", sp.Latency)
		if sp.Jitter > 0 {
			fmt.Fprintf(&b, ",jitter=%s", sp.Jitter)
		}
	case Bandwidth:
		fmt.Fprintf(&b, "=%s", sp.Bandwidth)
	case Slicer:
		fmt.Fprintf(&b, "=%d", sp.Slicer)
		if sp.Delay > 0 {
			fmt.Fprintf(&b, ",delay=%s", sp.Delay)
		}
	}
	b.WriteByte('@')
	switch {
	case sp.Every > 0 && sp.At > 0:
		fmt.Fprintf(&b, "%s,every=%s", sp.At, sp.Every)
	case sp.Every > 0:
		fmt.Fprintf(&b, "every=%s", sp.Every)
	default:
		b.WriteString(sp.At.String())
	}
	if sp.For > 0 {
		fmt.Fprintf(&b, "+%s", sp.For)
	}
	if sp.Group != "" {
		fmt.Fprintf(&b, ":group=%s", sp.Group)
	}
	return b.String()
}

func validKind(k Kind) bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func keysOf(k Kind) string {
	switch k {
	case Pause:
		return "pause=DURATION only"
	case Latency:
		return "latency=DURATION and jitter=DURATION"
	case Bandwidth:
		return "bandwidth=RATE only"
	case Slicer:
		return "slicer=BYTES and delay=DURATION"
	}
	return "no value"
}

func example(k Kind) string {
	switch k {
	case Latency:
		return "latency=200ms@5s+10s"
	case Bandwidth:
		return "bandwidth=64KB@5s+10s"
	}
	return "slicer=8@5s+10s"
}
