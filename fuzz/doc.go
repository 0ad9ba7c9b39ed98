// Package fuzz is mqttbench's wire fuzzer: it sends seeded sequences of
// malformed, unusual and mutated MQTT packets to any broker over TCP and
// judges, after each case, whether the broker answered as the
// specification says and whether it is still alive.
//
// The layout follows the flow of a run:
//
//   - case.go, unusual.go, session.go: Generate builds case i of a seed,
//     always the same bytes (each case has its own generator derived from
//     the seed and i).
//   - judge.go: Judge decodes a byte stream as a broker must and tells
//     what the broker owes it: close, refuse, anything, or go on serving.
//   - target.go, exec.go: Exec runs one case on a fresh connection, then
//     probes liveness on another; Classify turns what was seen into a
//     finding class (crash, hang, resource growth, spec deviation).
//   - minimize.go, reproducer.go: each finding is shrunk while it
//     reproduces and saved as a JSON reproducer that Replay runs again.
//   - runner.go: Run drives a few workers, triages crashes and hangs to
//     the case that causes them alone, and reports a reports.Fuzz.
package fuzz
