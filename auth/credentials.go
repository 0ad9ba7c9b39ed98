package auth

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"
)

// DefaultIterations is the PBKDF2 iteration count for keys derived from a
// password: RFC 7677's minimum, which is also the least that xdg-go/scram
// clients accept.
const DefaultIterations = 4096

// saltLen is the length of the salts this package makes, in bytes.
const saltLen = 16

// hashes maps a method to its hash.
var hashes = map[string]scram.HashGeneratorFcn{SCRAMSHA256: scram.SHA256, SCRAMSHA512: scram.SHA512}

// Credentials are the users a broker knows (format in the package
// documentation). They are safe for concurrent use.
type Credentials struct {
	users map[string]*user // by SASLprepped name
	// secret keys the made-up salts and keys of unknown users, so that
	// they are stable for a name while this value lives.
	secret [32]byte
}

type user struct {
	password    string // SASLprepped
	hasPassword bool
	mu          sync.Mutex
	keys        map[string]scram.StoredCredentials // by method; derived from password on first use
}

// ReadCredentials reads a credentials file. Errors name the file and line,
// never the secret.
func ReadCredentials(path string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseCredentials(f, path)
}

// ParseCredentials reads a credentials file from r; name labels errors,
// which read "name:line: what is wrong".
func ParseCredentials(r io.Reader, name string) (*Credentials, error) {
	c := newCredentials()
	lines := map[string]int{} // user, and user "\x00" method -> its first line
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, value, ok := strings.Cut(line, ":")
		if !ok || raw == "" {
			return nil, fmt.Errorf("%s:%d: want user:password or user:METHOD$ITERATIONS:SALT$STOREDKEY:SERVERKEY", name, n)
		}
		uname, err := prepName(raw)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		u := c.users[uname]
		if u == nil {
			u = &user{keys: map[string]scram.StoredCredentials{}}
			c.users[uname] = u
		}
		method, keyed := keysMethod(value)
		// A user has one password, or keys for one or both methods.
		switch _, dup := u.keys[method]; {
		case u.hasPassword:
			return nil, fmt.Errorf("%s:%d: user %q already has a password (line %d)", name, n, raw, lines[uname])
		case keyed && dup:
			return nil, fmt.Errorf("%s:%d: user %q already has %s keys (line %d)", name, n, raw, method, lines[uname+"\x00"+method])
		case !keyed && len(u.keys) > 0:
			return nil, fmt.Errorf("%s:%d: user %q has stored keys (line %d), so no password", name, n, raw, lines[uname])
		}
		if !keyed {
			if u.password, err = prepPassword(value); err != nil {
				return nil, fmt.Errorf("%s:%d: user %q: %v", name, n, raw, err)
			}
			u.hasPassword = true
			lines[uname] = n
			continue
		}
		keys, err := parseKeys(method, value)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %v", name, n, raw, err)
		}
		u.keys[method] = keys
		lines[uname+"\x00"+method] = n
		if _, ok := lines[uname]; !ok {
			lines[uname] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, n+1, err)
	}
	return c, nil
}

// NewCredentials makes Credentials from user names and passwords, such as
// broker.Options.Users.
func NewCredentials(passwords map[string]string) (*Credentials, error) {
	c := newCredentials()
	for name, pw := range passwords {
		uname, err := prepName(name)
		if err != nil {
			return nil, err
		}
		p, err := prepPassword(pw)
		if err != nil {
			return nil, fmt.Errorf("user %q: %v", name, err)
		}
		if c.users[uname] != nil {
			return nil, fmt.Errorf("user names %q and another are the same after SASLprep", name)
		}
		c.users[uname] = &user{password: p, hasPassword: true, keys: map[string]scram.StoredCredentials{}}
	}
	return c, nil
}

func newCredentials() *Credentials {
	c := &Credentials{users: map[string]*user{}}
	rand.Read(c.secret[:]) //nolint:errcheck // crypto/rand.Read never fails
	return c
}

// Len is the number of users.
func (c *Credentials) Len() int { return len(c.users) }

// CheckPassword reports whether password is the user's, for CONNECT's User
// Name and Password fields. A user stored as keys is checked by deriving
// them from the password, as PostgreSQL does.
func (c *Credentials) CheckPassword(name, password string) bool {
	uname, err := prepName(name)
	if err != nil {
		return false
	}
	u := c.users[uname]
	pw, err := prepPassword(password)
	if u == nil || err != nil {
		return false
	}
	if u.hasPassword {
		return subtle.ConstantTimeCompare([]byte(pw), []byte(u.password)) == 1
	}
	for _, method := range Names() {
		sc, ok := u.keys[method]
		if !ok {
			continue
		}
		got, err := deriveKeys(method, pw, sc.KeyFactors)
		return err == nil && hmac.Equal(got.StoredKey, sc.StoredKey)
	}
	return false
}

// lookup returns the stored keys for a SCRAM exchange. For an unknown user,
// or one without keys for this method, it makes up keys that no password
// matches, with a salt stable for the name, so the exchange runs to the
// same failure as a wrong password (RFC 5802 section 5.1).
func (c *Credentials) lookup(method, name string) scram.StoredCredentials {
	if u := c.users[name]; u != nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		if sc, ok := u.keys[method]; ok {
			return sc
		}
		if u.hasPassword {
			// Derived once per user and method, on first use: a broker
			// with many users starts at once. Only that first exchange
			// takes the derivation's time longer than an unknown user's.
			sc, err := deriveKeys(method, u.password, factors(newSalt(), DefaultIterations))
			if err == nil {
				u.keys[method] = sc
				return sc
			}
		}
	}
	size := hashes[method]().Size()
	return scram.StoredCredentials{
		KeyFactors: factors(c.mac("salt", method, name)[:saltLen], DefaultIterations),
		StoredKey:  c.mac("stored", method, name)[:size],
		ServerKey:  c.mac("server", method, name)[:size],
	}
}

// mac derives a value from the secret for a label, method and user name.
func (c *Credentials) mac(label, method, name string) []byte {
	m := hmac.New(sha512.New, c.secret[:])
	m.Write([]byte(label + "\x00" + method + "\x00" + name))
	return m.Sum(nil)
}

// factors builds the salt and iteration count of a SCRAM user.
func factors(salt []byte, iterations int) scram.KeyFactors {
	return scram.KeyFactors{Salt: string(salt), Iters: iterations}
}

func newSalt() []byte {
	b := make([]byte, saltLen)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return b
}

// deriveKeys computes the stored keys for a prepared password.
func deriveKeys(method, password string, kf scram.KeyFactors) (scram.StoredCredentials, error) {
	cl, err := hashes[method].NewClientUnprepped("", password, "")
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	return cl.GetStoredCredentialsWithError(kf)
}

func prepName(name string) (string, error) {
	p, err := stringprep.SASLprep.Prepare(name)
	if err != nil || p == "" {
		return "", fmt.Errorf("user name %q is not valid SASLprep text (RFC 4013)", name)
	}
	return p, nil
}

// prepPassword prepares a password; its error never quotes it.
func prepPassword(pw string) (string, error) {
	p, err := stringprep.SASLprep.Prepare(pw)
	if err != nil {
		return "", errors.New("the password is not valid SASLprep text (RFC 4013)")
	}
	return p, nil
}

// keysMethod reports whether a value is stored keys, and for which method.
func keysMethod(value string) (string, bool) {
	for _, m := range Names() {
		if strings.HasPrefix(value, m+"$") {
			return m, true
		}
	}
	return "", false
}

// parseKeys reads METHOD$ITERATIONS:SALT$STOREDKEY:SERVERKEY. Its errors
// never quote the value.
func parseKeys(method, value string) (scram.StoredCredentials, error) {
	bad := func(what string) (scram.StoredCredentials, error) {
		return scram.StoredCredentials{}, fmt.Errorf("malformed %s keys (%s); want %s$ITERATIONS:SALT$STOREDKEY:SERVERKEY", method, what, method)
	}
	kf, keys, ok := strings.Cut(value[len(method)+1:], "$")
	if !ok {
		return bad("no '$' before the keys")
	}
	iterStr, saltStr, ok1 := strings.Cut(kf, ":")
	storedStr, serverStr, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return bad("a ':' is missing")
	}
	iters, err := strconv.Atoi(iterStr)
	if err != nil {
		return bad("ITERATIONS is not a number")
	}
	if iters < DefaultIterations {
		return bad(fmt.Sprintf("%d iterations; clients refuse fewer than %d", iters, DefaultIterations))
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltStr)
	stored, err2 := base64.StdEncoding.DecodeString(storedStr)
	server, err3 := base64.StdEncoding.DecodeString(serverStr)
	if err1 != nil || err2 != nil || err3 != nil {
		return bad("not base64")
	}
	if len(salt) == 0 {
		return bad("empty salt")
	}
	if size := hashes[method]().Size(); len(stored) != size || len(server) != size {
		return bad(fmt.Sprintf("keys must be %d bytes", size))
	}
	return scram.StoredCredentials{KeyFactors: factors(salt, iters), StoredKey: stored, ServerKey: server}, nil
}

// SCRAMLine returns a credentials file line that stores the user's SCRAM
// keys for method instead of the password, with a fresh random salt.
// iterations 0 means DefaultIterations.
func SCRAMLine(method, name, password string, iterations int) (string, error) {
	m, err := canonical(method)
	if err != nil {
		return "", err
	}
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < DefaultIterations {
		return "", fmt.Errorf("%d iterations; clients refuse fewer than %d", iterations, DefaultIterations)
	}
	if name == "" || strings.ContainsAny(name, ":\r\n") || strings.HasPrefix(name, "#") || strings.TrimSpace(name) != name {
		return "", fmt.Errorf("user name %q cannot be written in a credentials file (no ':', line break, leading '#' or blanks at either end)", name)
	}
	if _, err := prepName(name); err != nil {
		return "", err
	}
	pw, err := prepPassword(password)
	if err != nil {
		return "", err
	}
	sc, err := deriveKeys(m, pw, factors(newSalt(), iterations))
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s:%s$%d:%s$%s:%s", name, m, iterations, enc([]byte(sc.Salt)), enc(sc.StoredKey), enc(sc.ServerKey)), nil
}
