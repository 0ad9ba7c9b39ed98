package acl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		desc, in, want string
	}{
		{"topic without a topic", "topic\n", "test.acl:1: topic needs a topic"},
		{"access word alone", "topic deny\n", "test.acl:1: topic deny: missing topic"},
		{"access word alone, pattern", "pattern read\n", "test.acl:1: pattern read: missing topic"},
		{"unknown access", "topic readonly a/b\n", `test.acl:1: unknown access "readonly"`},
		{"topic with a space needs an access word", "topic my topic\n", `test.acl:1: unknown access "my"`},
		{"misplaced #", "# c\n\ntopic read a/#/b\n", `test.acl:3: invalid topic "a/#/b"`},
		{"misplaced +", "topic a+/b\n", `test.acl:1: invalid topic "a+/b"`},
		{"partial %c", "pattern read devices/x%c\n", "test.acl:1: pattern \"devices/x%c\": %c and %u must fill a whole level"},
		{"partial %u", "pattern read %u-in/x\n", "test.acl:1: pattern \"%u-in/x\": %c and %u must fill a whole level"},
		{"user without a name", "topic a\nuser   \n", "test.acl:2: user needs a user name"},
		{"unknown keyword", "topic a\nusers bob\n", `test.acl:2: unknown keyword "users"`},
	} {
		t.Run(c.desc, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in), "test.acl")
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("Parse(%q) = %v, want an error starting %q", c.in, err, c.want)
			}
		})
	}
}

func TestParseLayout(t *testing.T) {
	// Blanks, tabs, CRLF line ends, comments, a topic with spaces, %c
	// taken literally outside a pattern, and a user section opened twice.
	in := "  # indented comment\r\n" +
		"topic\tread\t  public/#\r\n" +
		"user bob\n" +
		"topic   write   my topic/x   \n" +
		"user alice smith\n" +
		"topic read a/%c\n" +
		"user bob\n" +
		"topic read b\n"
	a := mustParse(t, in)
	for _, c := range []struct {
		user, name string
		access     Access
		want       bool
	}{
		{"", "public/x", Read, true},
		{"bob", "my topic/x", Write, true},
		{"bob", "b", Read, true},
		{"alice smith", "a/%c", Read, true},
		{"alice smith", "a/c1", Read, false},
	} {
		if got := a.Allowed(c.user, "c1", c.name, c.access); got != c.want {
			t.Errorf("Allowed(%q, %q, %v) = %v, want %v", c.user, c.name, c.access, got, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.acl")
	bad := filepath.Join(dir, "bad.acl")
	os.WriteFile(good, []byte("user u\ntopic read x\n"), 0o600)    //nolint:errcheck
	os.WriteFile(bad, []byte("user u\ntopic read x/#/y\n"), 0o600) //nolint:errcheck
	a, err := Load(good)
	if err != nil || !a.Allowed("u", "c", "x", Read) {
		t.Errorf("Load(good) = %v; read allowed: %v", err, err == nil && a.Allowed("u", "c", "x", Read))
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("Load(bad) = %v, want an error naming %s:2", err, bad)
	}
	if _, err := Load(filepath.Join(dir, "missing.acl")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

// FuzzParse: any file either parses or fails with file:line; a parsed ACL
// answers any question without panicking, and never lets a client whose
// identity holds a wildcard subscribe to "#" unless a rule grants "#".
func FuzzParse(f *testing.F) {
	f.Add(testACL, "alice", "dev1", "devices/dev1/x", "devices/+/x")
	f.Add("pattern readwrite %c/#\n", "", "#", "a/b", "#")
	f.Add("user \x00\ntopic deny +/#\n", "\x00", "$x", "$x/y", "$share/g/#")
	f.Fuzz(func(t *testing.T, file, user, id, name, filter string) {
		a, err := Parse(strings.NewReader(file), "f.acl")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.acl:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		r := a.For(user, id)
		r.Allowed(name, Read)
		r.Allowed(name, Write)
		r.SubscribeAllowed(filter)
		if r.SubscribeAllowed("#") && !strings.Contains(file, "#") {
			t.Fatal("subscribing to # allowed without any rule naming #")
		}
	})
}
