// Package faults breaks a broker on purpose while a load runs, as a
// Jepsen nemesis does: process faults on the broker's process and network
// faults in a proxy between the generator and the broker, on a schedule
// against the run's clock, each one healed by the end of the run.
//
// The files:
//
//   - spec.go: what a fault is (Spec), read from --fault values such as
//     "kill@10s" or "latency=200ms,jitter=50ms@5s+10s:group=subscribers",
//     or from a scenario's faults: list (the same fields as YAML keys).
//   - proxy.go: the fault proxy. Shopify's toxiproxy runs in this process
//     (no root, no separate binary), or a user's own toxiproxy server is
//     driven through its HTTP API; one proxy listener per broker address
//     and group of connections, so that a group can be cut off alone. The
//     proxy is below TLS and WebSocket: it forwards TCP bytes, so every
//     TCP-based transport goes through it unchanged.
//   - process.go: the broker process: SIGKILL, SIGTERM, SIGSTOP/SIGCONT,
//     the restart command run as our child, the wait until it accepts
//     connections again.
//   - schedule.go: the scheduler that runs a fault list against a run's
//     clock and returns what happened as []reports.LoadFault.
package faults
