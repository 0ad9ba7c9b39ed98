package auth

import (
	"fmt"

	"github.com/xdg-go/scram"
)

// scramServer is the broker's side of SCRAM-SHA-256 or SCRAM-SHA-512.
type scramServer struct {
	name   string
	server *scram.Server
}

func newSCRAMServer(name string, creds *Credentials) *scramServer {
	lookup := func(user string) (scram.StoredCredentials, error) {
		return creds.lookup(name, user), nil
	}
	srv, _ := hashes[name].NewServer(lookup) // never fails
	return &scramServer{name: name, server: srv}
}

func (s *scramServer) Name() string { return s.name }

func (s *scramServer) Start() Conversation {
	return &scramConversation{method: s.name, conv: s.server.NewConversation()}
}

// scramConversation adapts scram.ServerConversation to Conversation.
type scramConversation struct {
	method string
	conv   *scram.ServerConversation
	step   int
	failed bool
}

func (c *scramConversation) Step(in []byte) ([]byte, bool, error) {
	if c.failed || c.conv.Done() {
		return nil, false, fmt.Errorf("%w: %s exchange already ended", ErrMalformed, c.method)
	}
	c.step++
	out, err := c.conv.Step(string(in))
	if err != nil {
		c.failed = true
		return nil, false, c.classify(out, err)
	}
	if c.step == 1 {
		return []byte(out), false, nil
	}
	if !c.conv.Valid() { // cannot happen: Step returns an error then
		c.failed = true
		return nil, false, fmt.Errorf("%w: %s proof not accepted", ErrBadCredentials, c.method)
	}
	if a := c.conv.AuthzID(); a != "" && a != c.conv.Username() {
		// Acting as another identity is not something this broker grants.
		c.failed = true
		return nil, false, fmt.Errorf("%w: %s authorization identity differs from the user name", ErrBadCredentials, c.method)
	}
	return []byte(out), true, nil
}

func (c *scramConversation) Username() string {
	if c.failed || !c.conv.Valid() {
		return ""
	}
	return c.conv.Username()
}

// classify maps the library's failure to ErrBadCredentials or
// ErrMalformed. serverErr is the "e=..." message the library would send:
// verification failures become ErrBadCredentials; messages that do not
// parse, which come without one, become ErrMalformed. The library's text
// is kept for the log; it quotes client data (such as the user name) but
// never a key or the proof.
func (c *scramConversation) classify(serverErr string, err error) error {
	switch serverErr {
	case scram.ErrInvalidProof, scram.ErrChannelBindingsDontMatch, scram.ErrOtherError, scram.ErrUnknownUser:
		// ErrOtherError: a nonce that is not the server's, or a proof of
		// the wrong length; ErrUnknownUser cannot happen (lookup never
		// fails) but would mean the same.
		return fmt.Errorf("%w (%s, step %d)", ErrBadCredentials, c.method, c.step)
	}
	return fmt.Errorf("%w: %s message %d: %v", ErrMalformed, c.method, c.step, err)
}
