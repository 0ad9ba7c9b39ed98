package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keys256 is a well-formed SCRAM-SHA-256 value (RFC 7677's user, password
// "pencil").
const keys256 = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

func TestParseCredentialsErrors(t *testing.T) {
	const secret = "s3cr3t-do-not-print"
	for _, c := range []struct {
		desc, in, want string
	}{
		{"no colon", "# users\nalice\n", "test.creds:2: want user:password"},
		{"no user name", ":" + secret + "\n", "test.creds:1: want user:password"},
		{"password twice", "alice:" + secret + "\n\nalice:" + secret + "\n", `test.creds:3: user "alice" already has a password (line 1)`},
		{"keys after a password", "alice:" + secret + "\nalice:" + keys256 + "\n", `test.creds:2: user "alice" already has a password (line 1)`},
		{"password after keys", "alice:" + keys256 + "\nalice:" + secret + "\n", `test.creds:2: user "alice" has stored keys (line 1), so no password`},
		{"keys twice", "alice:" + keys256 + "\nalice:" + keys256 + "\n", `test.creds:2: user "alice" already has SCRAM-SHA-256 keys (line 1)`},
		{"too few iterations", "bob:SCRAM-SHA-256$1000:" + keys256[19:] + "\n", `test.creds:1: user "bob": malformed SCRAM-SHA-256 keys (1000 iterations; clients refuse fewer than 4096)`},
		{"iterations not a number", "bob:SCRAM-SHA-256$" + secret + ":" + keys256[19:] + "\n", "ITERATIONS is not a number"},
		{"no $ before the keys", "bob:SCRAM-SHA-256$4096:" + secret + "\n", "no '$' before the keys"},
		{"a colon missing", "bob:SCRAM-SHA-256$4096:c2FsdA==$" + secret + "\n", "a ':' is missing"},
		{"not base64", "bob:SCRAM-SHA-256$4096:c2FsdA==$" + secret + ":" + secret + "\n", "not base64"},
		{"empty salt", "bob:SCRAM-SHA-256$4096:$" + keys256[len(keys256)-89:] + "\n", "empty salt"},
		{"key for the other hash's size", "bob:SCRAM-SHA-512" + keys256[13:] + "\n", "keys must be 64 bytes"},
		{"password SASLprep refuses", "carol:\u0007" + secret + "\n", `test.creds:1: user "carol": the password is not valid SASLprep text`},
		{"user name SASLprep refuses", "\u0007dave:" + secret + "\n", `test.creds:1: user name "\adave" is not valid SASLprep text`},
	} {
		t.Run(c.desc, func(t *testing.T) {
			_, err := ParseCredentials(strings.NewReader(c.in), "test.creds")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "test.creds:") {
				t.Errorf("%q does not name the file and line", err)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "WG5d8") {
				t.Errorf("%q shows the secret", err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	line512, err := SCRAMLine(SCRAMSHA512, "carol", "hunter2", 5000)
	if err != nil {
		t.Fatal(err)
	}
	c := mustCreds(t, strings.Join([]string{
		"# comment",
		"  alice:correct horse  ",
		"bob:" + keys256,
		line512,
		"colon:a:b",
		"empty:",
		"",
	}, "\n"))
	if c.Len() != 5 {
		t.Errorf("Len = %d, want 5", c.Len())
	}
	for _, k := range []struct {
		user, pw string
		want     bool
	}{
		{"alice", "correct horse", true},
		{"alice", "correct horse ", false},
		{"alice", "Correct horse", false},
		{"bob", "pencil", true},
		{"bob", "pencil2", false},
		{"carol", "hunter2", true},
		{"carol", "hunter3", false},
		{"colon", "a:b", true},
		{"empty", "", true},
		{"empty", "x", false},
		{"mallory", "", false},
		{"", "", false},
		// SASLprep maps a soft hyphen to nothing (RFC 4013 section 3).
		{"alice", "correct\u00ad horse", true},
	} {
		if got := c.CheckPassword(k.user, k.pw); got != k.want {
			t.Errorf("CheckPassword(%q, %q) = %v, want %v", k.user, k.pw, got, k.want)
		}
	}
}

func TestSCRAMLine(t *testing.T) {
	for _, method := range Names() {
		line, err := SCRAMLine(method, "eve", testPassword, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(line, "eve:"+method+"$4096:") || strings.Contains(line, testPassword) {
			t.Errorf("line %q", line)
		}
		again, _ := SCRAMLine(method, "eve", testPassword, 0)
		if again == line {
			t.Error("two lines share a salt")
		}
		c := mustCreds(t, line+"\n")
		r := exchange(t, mustMethod(t, method, c), mustClient(t, method, "eve", testPassword), nil)
		if r.serverErr != nil || r.clientErr != nil || r.user != "eve" {
			t.Errorf("%s: %+v", method, r)
		}
	}
	for _, c := range []struct {
		method, user string
		iters        int
	}{
		{"SCRAM-SHA-1", "u", 0},
		{SCRAMSHA256, "a:b", 0},
		{SCRAMSHA256, "#u", 0},
		{SCRAMSHA256, " u", 0},
		{SCRAMSHA256, "u\n", 0},
		{SCRAMSHA256, "", 0},
		{SCRAMSHA256, "u", 4095},
	} {
		if line, err := SCRAMLine(c.method, c.user, "pw", c.iters); err == nil {
			t.Errorf("SCRAMLine(%q, %q, %d) = %q, want an error", c.method, c.user, c.iters, line)
		}
	}
}

func TestNewCredentials(t *testing.T) {
	c, err := NewCredentials(map[string]string{"alice": "a", "bob": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.CheckPassword("bob", "b") || c.CheckPassword("bob", "a") {
		t.Error("CheckPassword on NewCredentials")
	}
	r := exchange(t, mustMethod(t, SCRAMSHA512, c), mustClient(t, SCRAMSHA512, "alice", "a"), nil)
	if r.serverErr != nil || r.clientErr != nil || r.user != "alice" {
		t.Errorf("%+v", r)
	}
	if _, err := NewCredentials(map[string]string{"x": "\u0007nope"}); err == nil || strings.Contains(err.Error(), "nope") {
		t.Errorf("unpreparable password: %v", err)
	}
}

func TestReadCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	os.WriteFile(path, []byte("alice:a\nbob\n"), 0o600) //nolint:errcheck
	if _, err := ReadCredentials(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("ReadCredentials: %v, want an error naming %s:2", err, path)
	}
	if _, err := ReadCredentials(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadCredentials of a missing file succeeded")
	}
}
