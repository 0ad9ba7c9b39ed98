package acl

import (
	"strings"
	"testing"
)

// testACL exercises every kind of line; the tests below read it.
const testACL = `# anonymous clients
topic read public/#
topic write public/inbox

user alice
topic readwrite alice/#
topic read sensors/#
topic deny sensors/secret

user bob
topic read #
topic deny private/#

user carol
topic read $SYS/#

# patterns apply to everyone, wherever they stand
pattern readwrite devices/%c/#
pattern deny devices/%c/locked
pattern read users/%u/inbox
pattern write users/%u/outbox/+
pattern read %c/status
`

func mustParse(t *testing.T, s string) *ACL {
	t.Helper()
	a, err := Parse(strings.NewReader(s), "test.acl")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllowed(t *testing.T) {
	a := mustParse(t, testACL)
	for _, c := range []struct {
		desc           string
		user, id, name string
		access         Access
		want           bool
	}{
		// Anonymous section: only for clients without a user name.
		{"anonymous reads its tree", "", "c1", "public/news", Read, true},
		{"anonymous reads the parent of its tree", "", "c1", "public", Read, true},
		{"anonymous read-only", "", "c1", "public/news", Write, false},
		{"anonymous write-only topic", "", "c1", "public/inbox", Write, true},
		{"both accesses from two rules", "", "c1", "public/inbox", ReadWrite, true},
		{"write-only is not readable", "alice", "c1", "users/alice/outbox/1", Read, false},
		{"write-only is not readwrite", "alice", "c1", "users/alice/outbox/1", ReadWrite, false},
		{"anonymous outside its rules", "", "c1", "alice/x", Read, false},
		{"anonymous section is not a user's", "alice", "c1", "public/news", Read, false},

		// User sections.
		{"user readwrite", "alice", "c1", "alice/notes", ReadWrite, true},
		{"user readwrite at the parent level", "alice", "c1", "alice", Write, true},
		{"user read", "alice", "c1", "sensors/temp", Read, true},
		{"user read is not write", "alice", "c1", "sensors/temp", Write, false},
		{"user deny beats a broader read", "alice", "c1", "sensors/secret", Read, false},
		{"deny covers only its topic", "alice", "c1", "sensors/secret/x", Read, true},
		{"another user's section", "alice", "c1", "carol/x", Read, false},
		{"# reads everything", "bob", "c1", "a/b/c", Read, true},
		{"# does not reach $SYS", "bob", "c1", "$SYS/broker/uptime", Read, false},
		{"$SYS needs its own rule", "carol", "c1", "$SYS/broker/uptime", Read, true},
		{"deny wins over #", "bob", "c1", "private/diary", Read, false},
		{"unknown user gets patterns only", "dave", "c1", "public/news", Read, false},

		// Patterns.
		{"%c pattern", "", "dev1", "devices/dev1/temp", Write, true},
		{"%c pattern for a user too", "alice", "dev1", "devices/dev1/temp", Read, true},
		{"%c pattern is the client's own", "", "dev1", "devices/dev2/temp", Write, false},
		{"%c deny pattern", "", "dev1", "devices/dev1/locked", Write, false},
		{"pattern deny beats a user's grant", "bob", "dev1", "devices/dev1/locked", Read, false},
		{"%u pattern", "dave", "c1", "users/dave/inbox", Read, true},
		{"%u pattern is read only", "dave", "c1", "users/dave/inbox", Write, false},
		{"%u pattern with +", "dave", "c1", "users/dave/outbox/7", Write, true},
		{"%u pattern is the user's own", "dave", "c1", "users/eve/inbox", Read, false},
		{"%u pattern skips anonymous", "", "c1", "users//inbox", Read, false},
		{"%c pattern at the first level", "", "dev1", "dev1/status", Read, true},

		// CVE-2017-7650: identities that would widen a pattern.
		{"client id # does not widen", "", "#", "devices/x/temp", Write, false},
		{"client id + does not widen", "", "+", "devices/x/temp", Write, false},
		{"client id with / is not substituted", "", "a/b", "devices/a/b/temp", Write, false},
		{"client id with / no partial grant", "", "a/b", "devices/a/b", Write, false},
		{"client id with + inside", "", "a+", "devices/a+/temp", Write, false},
		{"user name # does not widen", "#", "c1", "users/x/inbox", Read, false},
		{"user name + does not widen", "+", "c1", "users/x/inbox", Read, false},
		{"user name with / is not substituted", "x/y", "c1", "users/x/y/inbox", Read, false},
		{"client id $SYS at the first level", "", "$SYS", "$SYS/status", Read, false},
		{"client id $x below the first level", "", "$x", "devices/$x/temp", Write, true},
		{"empty client id is not substituted", "", "", "devices//temp", Write, false},
		{"unsafe id: deny pattern still denies", "bob", "a/b", "devices/zz/locked", Read, false},
		{"safe id: deny pattern is its own", "bob", "zz", "devices/yy/locked", Read, true},
		{"unsafe id: other rules still apply", "bob", "#", "news/today", Read, true},

		// Arguments that are not a topic name or an access.
		{"wildcard in a topic name", "alice", "c1", "alice/+", Read, false},
		{"empty topic name", "bob", "c1", "", Read, false},
		{"no access asked", "alice", "c1", "alice/x", 0, false},
		{"unknown access bits", "alice", "c1", "alice/x", 4 | Read, false},
	} {
		t.Run(c.desc, func(t *testing.T) {
			if got := a.Allowed(c.user, c.id, c.name, c.access); got != c.want {
				t.Errorf("Allowed(user %q, client %q, %q, %v) = %v, want %v", c.user, c.id, c.name, c.access, got, c.want)
			}
		})
	}
}

func TestSubscribeAllowed(t *testing.T) {
	a := mustParse(t, testACL)
	for _, c := range []struct {
		desc           string
		user, id, filt string
		want           bool
	}{
		{"exact topic", "", "c1", "public/news", true},
		{"the granted filter itself", "", "c1", "public/#", true},
		{"narrower +", "", "c1", "public/+", true},
		{"narrower +, deeper", "", "c1", "public/+/x/#", true},
		{"parent of a # grant", "", "c1", "public", true},
		{"+ at a literal grant's level widens", "", "c1", "+/news", false},
		{"# widens", "", "c1", "#", false},
		{"a read grant over a write-only topic", "", "c1", "public/inbox", true},
		{"a write-only grant admits no subscription", "alice", "c1", "users/alice/outbox/1", false},
		{"# needs a # grant", "alice", "c1", "#", false},
		{"own tree", "alice", "c1", "alice/#", true},
		{"own tree, wildcard inside", "alice", "c1", "alice/+/x", true},
		{"filter overlapping a deny", "alice", "c1", "sensors/#", false},
		{"+ overlapping a deny", "alice", "c1", "sensors/+", false},
		{"clear of the deny", "alice", "c1", "sensors/+/temp", true},
		{"exactly the denied topic", "alice", "c1", "sensors/secret", false},
		{"beside the denied topic", "alice", "c1", "sensors/public", true},
		{"# grant with a deny refuses #", "bob", "c1", "#", false},
		{"# grant admits a clear subtree", "bob", "c1", "news/#", true},
		{"+ first level overlaps the deny", "bob", "c1", "+/x", false},
		{"# grant does not cover $SYS", "bob", "c1", "$SYS/#", false},
		{"$SYS grant", "carol", "c1", "$SYS/broker/+", true},
		{"$SYS grant does not cover non-$ topics", "carol", "c1", "+/broker", false},

		{"%c pattern subtree", "", "dev1", "devices/dev1/temp", true},
		{"%c pattern overlaps its deny", "", "dev1", "devices/dev1/#", false},
		{"%c pattern, other client", "", "dev1", "devices/dev2/temp", false},
		{"%c pattern, every client", "", "dev1", "devices/+/temp", false},
		{"%u pattern", "dave", "c1", "users/dave/inbox", true},
		{"%u pattern, not another user", "dave", "c1", "users/+/inbox", false},

		{"client id + widens nothing", "", "+", "devices/+/temp", false},
		{"client id # widens nothing", "", "#", "devices/#", false},
		{"client id # and its literal", "", "#", "devices/x/temp", false},
		{"user name + widens nothing", "+", "c1", "users/+/inbox", false},
		{"client id $SYS at the first level", "", "$SYS", "$SYS/status", false},

		{"shared subscription judged by its filter", "bob", "c1", "$share/g/news/#", true},
		{"shared subscription that widens", "bob", "c1", "$share/g/#", false},
		{"invalid shared subscription", "bob", "c1", "$share//news", false},
		{"invalid filter", "bob", "c1", "news/#/x", false},
		{"empty filter", "bob", "c1", "", false},
	} {
		t.Run(c.desc, func(t *testing.T) {
			if got := a.SubscribeAllowed(c.user, c.id, c.filt); got != c.want {
				t.Errorf("SubscribeAllowed(user %q, client %q, %q) = %v, want %v", c.user, c.id, c.filt, got, c.want)
			}
		})
	}
}

func TestEmptyACLDeniesEverything(t *testing.T) {
	for _, a := range []*ACL{mustParse(t, "# nothing\n\n"), {}} {
		if a.Allowed("", "c", "x", Read) || a.Allowed("u", "c", "x", Write) || a.SubscribeAllowed("u", "c", "x") {
			t.Error("an ACL without rules granted something")
		}
	}
}

// TestRulesAreBoundOnce checks that For substitutes the identity: the
// same Rules answer for that client and no other.
func TestRulesAreBoundOnce(t *testing.T) {
	r := mustParse(t, testACL).For("dave", "dev9")
	for _, c := range []struct {
		name string
		want bool
	}{
		{"devices/dev9/x", true},
		{"devices/dev1/x", false},
		{"users/dave/inbox", true},
	} {
		if got := r.Allowed(c.name, Read); got != c.want {
			t.Errorf("Allowed(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSubstituteTooLong(t *testing.T) {
	// A client id that fits alone but makes the filter longer than a topic
	// may be is treated as unsafe: no grant, and a deny with '+'.
	long := strings.Repeat("x", 65000)
	f, safe, applies := substitute("devices/%c/%c", "", long)
	if safe || !applies || f != "devices/+/+" {
		t.Errorf("substitute = %q, safe %v, applies %v", f, safe, applies)
	}
	a := mustParse(t, "pattern readwrite devices/%c/%c\n")
	if a.Allowed("", long, "devices/"+long+"/"+long, Write) {
		t.Error("an over-long substitution granted access")
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{Read: "read", Write: "write", ReadWrite: "readwrite", 0: "deny", 8: "Access(8)"} {
		if got := a.String(); got != want {
			t.Errorf("%d: %q, want %q", a, got, want)
		}
	}
}
