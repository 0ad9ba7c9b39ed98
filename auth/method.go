package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Method is one enhanced authentication method on the broker's side, named
// by the CONNECT or AUTH Authentication Method property. It is safe for
// concurrent use: one Method serves every connection.
type Method interface {
	// Name is the Authentication Method, such as "SCRAM-SHA-256".
	Name() string
	// Start begins a new exchange, for a CONNECT or a re-authentication.
	Start() Conversation
}

// Conversation is one exchange on the broker's side. It is used by one
// connection at a time.
type Conversation interface {
	// Step takes the client's Authentication Data and returns the data to
	// send back. done=false: send AUTH 0x18 (Continue authentication)
	// carrying out. done=true: the client is authenticated; out goes in
	// CONNACK 0x00 (or AUTH 0x00 after a re-authentication). An error
	// matches ErrBadCredentials or ErrMalformed and ends the exchange.
	Step(in []byte) (out []byte, done bool, err error)
	// Username is the authenticated identity once Step returned done, ""
	// before.
	Username() string
}

// ClientMethod is one enhanced authentication method on the client's
// side, for one user. It is safe for concurrent use; keep it across
// reconnections, since it caches the expensive key derivation.
type ClientMethod interface {
	Name() string
	// Start begins a new exchange, for a CONNECT or a re-authentication.
	Start() ClientConversation
}

// ClientConversation is one exchange on the client's side.
type ClientConversation interface {
	// First returns the Authentication Data for CONNECT (or AUTH 0x19,
	// Re-authenticate). Calling it again returns the same bytes.
	First() []byte
	// Step takes the server's Authentication Data, from AUTH 0x18 or from
	// CONNACK 0x00 (AUTH 0x00 after a re-authentication), and returns the
	// data for the next AUTH 0x18. done=true: the server proved it knows
	// the credentials and nothing is left to send. A client must not accept
	// a successful CONNACK before Step has returned done.
	Step(in []byte) (out []byte, done bool, err error)
}

var (
	// ErrBadCredentials: unknown user, wrong password, or a proof that does
	// not verify. The broker answers 0x86 Bad User Name or Password.
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrMalformed: Authentication Data that is not a message of the
	// method, or a message out of turn.
	ErrMalformed = errors.New("malformed authentication data")
	// ErrServerSignature: on the client, the server's final message did not
	// prove that it knows the credentials.
	ErrServerSignature = errors.New("server signature does not verify")
)

// Method names.
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
)

// Names lists the methods that Lookup and NewClient know.
func Names() []string { return []string{SCRAMSHA256, SCRAMSHA512} }

// canonical returns the method name that name spells, in any case, for a
// command line; the broker compares the wire's property with Name()
// exactly.
func canonical(name string) (string, error) {
	for _, n := range Names() {
		if strings.EqualFold(name, n) {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown authentication method %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Lookup returns the broker's side of the named method (case-insensitive,
// for a --auth-method flag), authenticating against creds.
func Lookup(name string, creds *Credentials) (Method, error) {
	n, err := canonical(name)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		return nil, errors.New("auth: " + n + " needs credentials")
	}
	return newSCRAMServer(n, creds), nil
}

// NewClient returns the client's side of the named method for one user.
// The error names what is wrong with the user name or method, never the
// password.
func NewClient(name, user, password string) (ClientMethod, error) {
	n, err := canonical(name)
	if err != nil {
		return nil, err
	}
	return newSCRAMClient(n, user, password)
}
