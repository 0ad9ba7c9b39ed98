package topic

import "strconv"

// Text is what every function of the package accepts: a Go string, a byte
// slice, or a type defined on either. Being generic over both lets the codec
// pass aliased packet bytes and the broker pass strings, neither converting.
type Text interface{ ~string | ~[]byte }

// Error reports a topic name or filter that breaks a normative statement.
// Every error the package returns is an *Error; match it with errors.As.
type Error struct {
	// Rule is the normative statement ID for the protocol version in use,
	// for example "MQTT-4.7.1-2" (3.1.1) or "MQTT-4.7.1-1" (5.0) for a
	// misplaced '#'.
	Rule string
	// Detail says in one line what is wrong and at which byte offset.
	Detail string
}

func (e *Error) Error() string { return e.Rule + ": " + e.Detail }

// rule is one requirement under its ID in each protocol version; 5.0
// renumbered several of the statements this package enforces.
type rule struct{ v311, v5 string }

func (r rule) id(v5 bool) string {
	if v5 {
		return r.v5
	}
	return r.v311
}

var (
	ruleUTF8     = rule{"MQTT-1.5.3-1", "MQTT-1.5.4-1"}
	ruleUTF8Null = rule{"MQTT-1.5.3-2", "MQTT-1.5.4-2"}
	// Two statements forbid wildcards in a topic name: section 4.7.1
	// (MQTT-4.7.1-1 in 3.1.1, MQTT-4.7.0-1 in 5.0) for every Topic Name,
	// and MQTT-3.3.2-2 for the one in a PUBLISH packet. ValidateName also
	// serves the Will Topic, which 3.3.2-2 does not cover, so it reports
	// the section 4.7 statement; a caller that knows it is decoding a
	// PUBLISH may name the narrower statement itself.
	ruleNameWildcard = rule{"MQTT-4.7.1-1", "MQTT-4.7.0-1"}
	ruleHash         = rule{"MQTT-4.7.1-2", "MQTT-4.7.1-1"}
	rulePlus         = rule{"MQTT-4.7.1-3", "MQTT-4.7.1-2"}
	ruleEmpty        = rule{"MQTT-4.7.3-1", "MQTT-4.7.3-1"}
	ruleLength       = rule{"MQTT-4.7.3-3", "MQTT-4.7.3-3"}
	// Shared subscriptions exist only in 5.0.
	ruleShareName   = "MQTT-4.8.2-1"
	ruleShareSyntax = "MQTT-4.8.2-2"
)

// MaxLength is the longest topic name or filter in bytes (MQTT-4.7.3-3): the
// two-byte length prefix of a UTF-8 string cannot say more.
const MaxLength = 65535

// quote renders s for a Detail line, cut short so that a 64 KiB topic does
// not produce a 64 KiB error message.
func quote[T Text](s T) string {
	const limit = 48
	if len(s) <= limit {
		return strconv.Quote(string(s))
	}
	return strconv.Quote(string(s[:limit])) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

func newError(id, detail string) *Error { return &Error{Rule: id, Detail: detail} }
