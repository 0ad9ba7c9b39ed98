// Package topic validates and matches MQTT topic names and topic filters
// (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8.2).
//
// The codec, the reference broker and the conformance suites share it, so it
// has to be exactly right for both protocol versions:
//
//   - ValidateName and ValidateFilter check every normative statement a
//     single topic string can break and return an *Error naming it. MQTT 5.0
//     renumbered the wildcard statements, so each check takes v5 and reports
//     the ID of the version in use:
//
//     requirement                        3.1.1          5.0
//     well-formed UTF-8, no surrogates   MQTT-1.5.3-1   MQTT-1.5.4-1
//     no U+0000 (any UTF-8 string)       MQTT-1.5.3-2   MQTT-1.5.4-2
//     no wildcard in a topic name        MQTT-4.7.1-1   MQTT-4.7.0-1
//     '#' alone or after '/', and last   MQTT-4.7.1-2   MQTT-4.7.1-1
//     '+' occupies an entire level       MQTT-4.7.1-3   MQTT-4.7.1-2
//     at least one character             MQTT-4.7.3-1   MQTT-4.7.3-1
//     no U+0000 (topic)                  MQTT-4.7.3-2   MQTT-4.7.3-2
//     at most 65,535 bytes               MQTT-4.7.3-3   MQTT-4.7.3-3
//     shared: non-empty ShareName        -              MQTT-4.8.2-1
//     shared: ShareName syntax, filter   -              MQTT-4.8.2-2
//
//   - Match and Tree apply the matching rules of section 4.7: '+' matches
//     exactly one level (an empty one too), '#' matches the parent level and
//     any number of child levels, empty levels are real levels, bytes are
//     compared exactly with no normalisation (MQTT-4.7.3-4), and a filter that
//     starts with a wildcard never matches a name that starts with '$'
//     (MQTT-4.7.2-1).
//
// Every function is generic over Text (string or []byte, or a type defined
// on either), so callers holding decoded bytes never convert them. Match,
// ValidateName, ValidateFilter and Tree.MatchBytes do not allocate unless
// they return an error.
package topic
