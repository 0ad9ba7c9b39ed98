// Package packetgen is mqttbench's reference codec for MQTT 3.1 (protocol
// name "MQIsdp", level 3), 3.1.1 (level 4) and 5.0 (level 5).
//
// It has three jobs:
//
//   - Strict decoding. Every rule a receiver can check on a single packet is
//     checked, and each failure is a *Violation naming the normative
//     statement it breaks (for example MQTT-3.8.1-1) and, for 5.0, the reason
//     code a receiver reports (0x81 Malformed Packet, 0x82 Protocol Error).
//     Match it with errors.As.
//   - Canonical encoding. Append validates a packet against the same rules
//     and appends its bytes to a caller's buffer without allocating.
//   - Lying on purpose. AppendUnchecked, Frame and Properties.Raw write
//     packets the specification forbids, and the generators in generate.go
//     and malformed.go produce seeded streams of valid and malformed packets,
//     so conformance suites and fuzzers can test how a peer copes.
//
// # Who owns decoded bytes
//
// Decoding never copies: every []byte field of a packet returned by Decode,
// DecodeInto or (*Publish).DecodeBody (Publish.Topic, Publish.Payload,
// Connect.Password, ...) aliases the input slice. The caller owns that slice
// and must not overwrite it while the packet is in use; call Clone to keep a
// packet beyond that. Reader never reuses a buffer: each packet it returns
// aliases a buffer of its own, so packets from a Reader may be kept freely.
// Strings (client identifiers, topic filters, property strings) are always
// copies.
package packetgen
