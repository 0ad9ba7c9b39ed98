package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// MaxIterations bounds the PBKDF2 iteration count a client accepts from a
// server: the count is the server's to choose, and a hostile or broken one
// could otherwise keep a load generator busy for minutes per connection.
const MaxIterations = 1 << 20

// scramClient is the client's side of SCRAM-SHA-256 or SCRAM-SHA-512.
type scramClient struct {
	name     string
	client   *scram.Client
	maxIters int
}

func newSCRAMClient(name, user, password string) (*scramClient, error) {
	if user == "" {
		return nil, fmt.Errorf("auth: %s needs a user name", name)
	}
	cl, err := hashes[name].NewClient(user, password, "")
	if err != nil {
		// The library's message quotes a bad user name, never the password.
		return nil, fmt.Errorf("auth: %s: %v", name, err)
	}
	return &scramClient{name: name, client: cl, maxIters: MaxIterations}, nil
}

func (c *scramClient) Name() string { return c.name }

func (c *scramClient) Start() ClientConversation {
	return &scramClientConv{method: c.name, conv: c.client.NewConversation(), maxIters: c.maxIters}
}

type scramClientConv struct {
	method   string
	conv     *scram.ClientConversation
	maxIters int
	first    []byte
	step     int
	ended    bool
}

func (c *scramClientConv) First() []byte {
	if c.first == nil {
		out, _ := c.conv.Step("") // the client-first message cannot fail
		c.first = []byte(out)
	}
	return c.first
}

func (c *scramClientConv) Step(in []byte) ([]byte, bool, error) {
	if c.first == nil {
		return nil, false, errors.New("auth: Step called before First")
	}
	if c.ended {
		return nil, false, fmt.Errorf("%w: %s exchange already ended", ErrMalformed, c.method)
	}
	c.step++
	if c.step == 1 {
		out, err := c.serverFirst(string(in))
		if err != nil {
			c.ended = true
			return nil, false, err
		}
		return []byte(out), false, nil
	}
	c.ended = true
	if err := c.serverFinal(string(in)); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

func (c *scramClientConv) serverFirst(s1 string) (string, error) {
	for f := range strings.SplitSeq(s1, ",") {
		if v, ok := strings.CutPrefix(f, "i="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > c.maxIters {
				return "", fmt.Errorf("%w: %s server-first asks for %d iterations, more than %d", ErrMalformed, c.method, n, c.maxIters)
			}
		}
	}
	out, err := c.conv.Step(s1)
	if err != nil {
		return "", fmt.Errorf("%w: %s server-first: %v", ErrMalformed, c.method, err)
	}
	return out, nil
}

// serverFinal checks the server's signature, "v=" base64; "e=..." is the
// server refusing the proof.
func (c *scramClientConv) serverFinal(s2 string) error {
	first, _, _ := strings.Cut(s2, ",")
	switch {
	case s2 == "":
		return fmt.Errorf("%w: %s: no server-final message", ErrServerSignature, c.method)
	case strings.HasPrefix(first, "e="):
		return fmt.Errorf("%w: %s server refused the proof (%s)", ErrBadCredentials, c.method, first)
	case !strings.HasPrefix(first, "v="):
		return fmt.Errorf("%w: %s server-final has no signature", ErrMalformed, c.method)
	}
	if _, err := base64.StdEncoding.DecodeString(first[2:]); err != nil {
		return fmt.Errorf("%w: %s server-final signature is not base64", ErrMalformed, c.method)
	}
	if _, err := c.conv.Step(s2); err != nil || !c.conv.Valid() {
		return fmt.Errorf("%w (%s)", ErrServerSignature, c.method)
	}
	return nil
}
