package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqttbench/mqttbench/faults"
	"github.com/mqttbench/mqttbench/loadgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

const faultHint = "mqttbench load --broker tcp://127.0.0.1:1883 --broker-cmd 'mqttbench broker --listen 127.0.0.1:1883 --data-dir d --fsync always' --fault kill@5s --clean-session=false --qos 1"

// BrokerLog is the file in the results directory that a broker started
// by --broker-cmd or --restart writes its output to.
const brokerLog = "broker.log"

// faultFlags are load's fault flags.
type faultFlags struct {
	specs     listFlag
	pid       *int
	restart   *string
	brokerCmd *string
	toxiproxy *string
	probes    *bool
}

func addFaultFlags(fs *flag.FlagSet) *faultFlags {
	f := &faultFlags{}
	fs.Var(&f.specs, "fault", "inject a fault during the run, repeatable: "+faults.Syntax+
		". Process faults (kill, restart, pause) need --broker-cmd or --broker-pid; network faults go through a fault proxy (toxiproxy) put between the generator and the broker; groups: all, publishers, subscribers, idle, or ROLE/N for the first 1/N of a role (subscribers/2: half the subscribers)")
	f.pid = fs.Int("broker-pid", 0, "process id of the broker that process faults act on")
	f.restart = fs.String("restart", "", "with --broker-pid: shell command that starts the broker again after a kill or restart, in the foreground (it runs as our child; its output goes to the results directory's "+brokerLog+")")
	f.brokerCmd = fs.String("broker-cmd", "", "shell command that runs the broker in the foreground: started before the run, restarted the same way after a kill, stopped at the end")
	f.toxiproxy = fs.String("toxiproxy", "", "make the fault proxies on this toxiproxy server (its API URL, e.g. http://127.0.0.1:8474) instead of in this process")
	f.probes = fs.Bool("survival-probes", true, "around each kill, restart and pause, check on connections of the run's own that acknowledged retained messages and a pending 5.0 will (under the topic mqttbench-probe/) survive it")
	return f
}

// faultRun is a run's faults: the broker process, the proxies and the
// schedule. A nil *faultRun has nothing to do.
type faultRun struct {
	sched   *faults.Scheduler
	broker  *faults.Broker
	proxies *faults.Proxies
	log     *os.File
	stop    sync.Once
	records []reports.LoadFault
}

// loadSetup is what startFaults reads and changes of runLoad's setup.
type loadSetup struct {
	sc      *loadgen.Scenario
	opts    *loadgen.Options // its Transport and Dial may change
	shard   loadgen.Shard
	workers int
	dir     string
	findMax bool
}

// startFaults checks the fault flags and the scenario's faults against
// the run, starts the broker (--broker-cmd) and the fault proxies, and
// points the run's dialing at the proxies. Errors are usage errors.
func startFaults(ctx context.Context, fs *flag.FlagSet, ff *faultFlags, ls loadSetup) (*faultRun, error) {
	specs := append([]faults.Spec(nil), ls.sc.Faults...)
	for _, s := range ff.specs {
		sp, err := faults.Parse(s)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var process, network, grouped bool
	groups := map[string]bool{}
	for _, sp := range specs {
		switch {
		case sp.Kind.Process():
			process = true
		case sp.Group != "":
			network, grouped = true, true
			groups[sp.Group] = true
		default:
			network = true
		}
	}
	switch {
	case len(specs) == 0 && !set["broker-cmd"]:
		for _, f := range []string{"broker-pid", "restart", "toxiproxy"} {
			if set[f] {
				return nil, fmt.Errorf("--%s without a fault to inject (--fault or a scenario's faults:)", f)
			}
		}
		return nil, nil
	case set["broker-pid"] && set["broker-cmd"]:
		return nil, errors.New("--broker-pid and --broker-cmd: give one (--broker-cmd starts the broker itself)")
	case set["restart"] && set["broker-cmd"]:
		return nil, errors.New("--restart and --broker-cmd: --broker-cmd restarts the broker with its own command")
	case set["restart"] && !set["broker-pid"]:
		return nil, errors.New("--restart needs --broker-pid, the broker to act on first (or give --broker-cmd)")
	case set["toxiproxy"] && !network:
		return nil, errors.New("--toxiproxy without a network fault (latency, bandwidth, slicer, reset, blackhole)")
	case len(ls.sc.Brokers) == 0 && (network || process || set["broker-cmd"]):
		return nil, errors.New("faults need --broker: the in-process broker (net.Pipe) has no process to kill and no TCP to proxy")
	case ls.findMax:
		return nil, errors.New("faults do not combine with --find-max: each step is a run of its own")
	case grouped && ls.workers > 1:
		return nil, errors.New("a fault on a group of connections does not combine with --workers; use --workers 1 or a fault on every connection")
	}
	for _, sp := range specs {
		switch {
		case sp.Kind.Process() && !set["broker-pid"] && !set["broker-cmd"]:
			return nil, fmt.Errorf("fault %q acts on the broker process: give --broker-cmd, or --broker-pid (and --restart)", sp.Name)
		case (sp.Kind == faults.Kill || sp.Kind == faults.Restart) && set["broker-pid"] && !set["restart"]:
			return nil, fmt.Errorf("fault %q needs --restart CMD to bring the broker back", sp.Name)
		}
	}
	for g := range groups {
		if groupSize(ls.sc, g) == 0 {
			return nil, fmt.Errorf("fault on group %s: the run has no %s", g, g)
		}
	}
	var upstreams []string
	for _, b := range ls.sc.Brokers {
		u, err := transport.Parse(b)
		if err != nil {
			return nil, err
		}
		if u.Inproc() {
			return nil, errors.New("faults need a TCP broker: an inproc URL has no process to kill and no TCP to proxy")
		}
		if !contains(upstreams, u.Host) {
			upstreams = append(upstreams, u.Host)
		}
	}
	if (process || set["broker-cmd"]) && len(upstreams) > 1 {
		return nil, fmt.Errorf("process faults act on one broker; --broker names %d", len(upstreams))
	}
	if *ff.pid != 0 {
		// EPERM: it exists, but is not ours to signal (that shows later).
		if err := syscall.Kill(*ff.pid, 0); *ff.pid < 0 || err != nil && !errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("--broker-pid %d: no such process", *ff.pid)
		}
	}

	fr := &faultRun{}
	ok := false
	defer func() {
		if !ok {
			fr.close()
		}
	}()
	if process || set["broker-cmd"] {
		cmd := *ff.brokerCmd
		if cmd == "" {
			cmd = *ff.restart
		}
		if cmd != "" {
			if err := os.MkdirAll(ls.dir, 0o755); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(filepath.Join(ls.dir, brokerLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, err
			}
			fr.log = f
		}
		fr.broker = faults.NewBroker(*ff.pid, upstreams[0], cmd, fr.log)
		if set["broker-cmd"] {
			if err := fr.broker.Start(ctx); err != nil {
				return nil, fmt.Errorf("--broker-cmd: %v (its output: %s)", err, filepath.Join(ls.dir, brokerLog))
			}
		}
	}
	if network {
		var gs []string
		if grouped {
			for _, g := range faults.Groups {
				if groupSize(ls.sc, g) > 0 {
					gs = append(gs, g)
				}
			}
			// Parts of a role (ROLE/N) get proxies of their own.
			for g := range groups {
				if !contains(gs, g) {
					gs = append(gs, g)
				}
			}
			sort.Strings(gs)
		}
		p, err := faults.NewProxies(ctx, upstreams, gs, *ff.toxiproxy)
		if err != nil {
			return nil, err
		}
		fr.proxies = p
		if err := fr.route(ls, gs); err != nil {
			return nil, err
		}
	}
	fr.sched = faults.NewScheduler(specs, fr.proxies, fr.broker)
	if process && *ff.probes {
		p, err := newSurvivalProbe(ls)
		if err != nil {
			return nil, err
		}
		fr.sched.Probe = p.arm
	}
	ok = true
	return fr, nil
}

// route points the run's connections at the proxies: through the
// transport's Via for every connection (it reaches worker processes too),
// or, with groups, a dialer per group (cell) chosen by connection index.
func (fr *faultRun) route(ls loadSetup, groups []string) error {
	via := func(group string) map[string]string {
		m := map[string]string{}
		for _, r := range fr.proxies.Routes() {
			if r.Group == group {
				m[r.Upstream] = r.Listen
			}
		}
		return m
	}
	if len(groups) == 0 {
		ls.opts.Transport.Via = via("")
		return nil
	}
	dials := map[string]loadgen.DialFunc{}
	for _, g := range groups {
		o := *ls.opts
		o.Transport.Via = via(g)
		d, err := loadgen.ProbeDialer(*ls.sc, ls.shard, o)
		if err != nil {
			return err
		}
		dials[g] = d
	}
	sc := ls.sc
	ls.opts.Dial = func(ctx context.Context, i int) (net.Conn, error) {
		return dials[cellOf(sc, i, groups)](ctx, i)
	}
	ls.opts.Target = strings.Join(sc.Brokers, ",")
	return nil
}

// groupOf is connection i's group: publishers come first, subscribers
// next, idle connections last.
func groupOf(sc *loadgen.Scenario, i int) string {
	switch {
	case i < sc.Publishers:
		return "publishers"
	case i < sc.Publishers+sc.Subscribers:
		return "subscribers"
	}
	return "idle"
}

// cellOf is the group whose proxy connection i goes through: its role,
// or the smallest part of it (ROLE/N) among groups that holds it.
func cellOf(sc *loadgen.Scenario, i int, groups []string) string {
	role := groupOf(sc, i)
	first := map[string]int{"publishers": 0, "subscribers": sc.Publishers, "idle": sc.Publishers + sc.Subscribers}[role]
	return faults.CellOf(role, i-first, groupSize(sc, role), groups)
}

// groupSize is how many connections group g (a role or ROLE/N) has.
func groupSize(sc *loadgen.Scenario, g string) int {
	if role, div, err := faults.ParseGroup(g); err == nil && div > 1 {
		return faults.PartSize(groupSize(sc, role), div)
	}
	switch g {
	case "publishers":
		return sc.Publishers
	case "subscribers":
		return sc.Subscribers
	case "idle":
		return sc.TotalConnections() - sc.Publishers - sc.Subscribers
	}
	return 0
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// hook starts the schedule when the run's clock starts: the first
// reading of Options.Now is the run's start.
func (fr *faultRun) hook(opts *loadgen.Options) {
	if fr == nil {
		return
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var once sync.Once
	opts.Now = func() time.Time {
		t := now()
		once.Do(func() { fr.sched.Start(time.Now()) })
		return t
	}
}

// begin starts the schedule now (the parent of worker processes, which
// do not share its clock).
func (fr *faultRun) begin() {
	if fr != nil {
		fr.sched.Start(time.Now())
	}
}

// record ends the schedule, healing what is still active, and puts what
// happened in the summary; the history checker then judges each fault's
// share of the messages (v: the run's delivery ledgers, nil if none).
func (fr *faultRun) record(sum *reports.Load, v *loadgen.VerifyState) {
	if fr == nil || sum == nil {
		return
	}
	fr.stop.Do(func() { fr.records = fr.sched.Stop(sum.Started) })
	sum.Faults = fr.records
	for _, f := range fr.records {
		if f.Error != "" {
			sum.Notes = append(sum.Notes, fmt.Sprintf("fault %s at %.1fs failed: %s", f.Name, f.Start, f.Error))
		}
	}
	if v != nil {
		loadgen.AnalyzeHistory(sum, v)
	}
	// The probes judge without the history checker too (no --verify).
	if !sum.Interrupted {
		for _, f := range fr.records {
			if f.Survival == nil {
				continue
			}
			for _, s := range f.Survival.Violations {
				if !contains(sum.Violations, s) {
					sum.Violations = append(sum.Violations, s)
				}
			}
		}
	}
}

// recordFile is record for a single-process run, whose summary.json is
// already written: it is written again with the faults.
func (fr *faultRun) recordFile(sum *reports.Load, v *loadgen.VerifyState, dir string) error {
	if fr == nil || sum == nil {
		return nil
	}
	fr.record(sum, v)
	return sum.WriteJSON(filepath.Join(dir, loadgen.SummaryFile))
}

// close heals everything, removes the proxies and stops a broker we
// started.
func (fr *faultRun) close() {
	if fr == nil {
		return
	}
	if fr.sched != nil {
		fr.stop.Do(func() { fr.records = fr.sched.Stop(time.Now()) })
	}
	if fr.proxies != nil {
		fr.proxies.Close()
	}
	if fr.broker != nil {
		fr.broker.Close() //nolint:errcheck // best effort on the way out
	}
	if fr.log != nil {
		fr.log.Close()
	}
}
