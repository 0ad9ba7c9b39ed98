package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

const testPassword = "pencil-Ω-42"

func mustCreds(t testing.TB, file string) *Credentials {
	t.Helper()
	c, err := ParseCredentials(strings.NewReader(file), "test.creds")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustMethod(t testing.TB, name string, c *Credentials) Method {
	t.Helper()
	m, err := Lookup(name, c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustClient(t testing.TB, name, user, password string) ClientMethod {
	t.Helper()
	cm, err := NewClient(name, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// result is how an exchange ended: who failed, at which step of the
// server (1: client-first, 2: client-final) or client (3: server-final).
type result struct {
	user      string
	serverErr error
	clientErr error
	step      int
}

// exchange runs a whole MQTT 5.0 SCRAM exchange between a broker's Method
// and a client's, as CONNECT, AUTH 0x18, AUTH 0x18 and CONNACK would carry
// it. tamper, if set, rewrites the server-final message on its way.
func exchange(t testing.TB, m Method, cm ClientMethod, tamper func([]byte) []byte) result {
	t.Helper()
	sc, cc := m.Start(), cm.Start()
	s1, done, err := sc.Step(cc.First()) // CONNECT -> AUTH 0x18
	if err != nil {
		return result{serverErr: err, step: 1}
	}
	if done || len(s1) == 0 {
		t.Fatalf("server done after client-first (%v) or sent nothing", done)
	}
	c2, done, err := cc.Step(s1) // -> AUTH 0x18
	if err != nil || done {
		t.Fatalf("client on server-first: done %v, %v", done, err)
	}
	s2, done, err := sc.Step(c2) // -> CONNACK 0x00
	if err != nil {
		if sc.Username() != "" {
			t.Errorf("failed exchange has user %q", sc.Username())
		}
		return result{serverErr: err, step: 2}
	}
	if !done {
		t.Fatal("server not done after client-final")
	}
	if tamper != nil {
		s2 = tamper(s2)
	}
	out, done, err := cc.Step(s2)
	if err != nil {
		return result{user: sc.Username(), clientErr: err, step: 3}
	}
	if !done || out != nil {
		t.Fatalf("client after server-final: done %v, out %q", done, out)
	}
	return result{user: sc.Username(), step: 3}
}

func TestExchange(t *testing.T) {
	for _, method := range Names() {
		keys, err := SCRAMLine(method, "keyed", testPassword, 0)
		if err != nil {
			t.Fatal(err)
		}
		creds := mustCreds(t, "plain:"+testPassword+"\n"+keys+"\n")
		m := mustMethod(t, method, creds)
		for _, user := range []string{"plain", "keyed"} {
			t.Run(method+"/"+user, func(t *testing.T) {
				cm := mustClient(t, method, user, testPassword)
				// Twice with one ClientMethod and one Method: a reconnect or
				// re-authentication starts new conversations on both.
				for i := 0; i < 2; i++ {
					r := exchange(t, m, cm, nil)
					if r.serverErr != nil || r.clientErr != nil || r.user != user {
						t.Fatalf("round %d: %+v", i, r)
					}
				}
			})
		}
	}
}

func TestExchangeFailures(t *testing.T) {
	for _, method := range Names() {
		other := SCRAMSHA512
		if method == other {
			other = SCRAMSHA256
		}
		otherKeys, err := SCRAMLine(other, "otherhash", testPassword, 0)
		if err != nil {
			t.Fatal(err)
		}
		m := mustMethod(t, method, mustCreds(t, "alice:"+testPassword+"\n"+otherKeys+"\n"))
		for _, c := range []struct {
			desc, user, password string
		}{
			{"wrong password", "alice", testPassword + "x"},
			{"unknown user", "mallory", testPassword},
			{"keys only for the other hash", "otherhash", testPassword},
			{"user name differs in case", "Alice", testPassword},
		} {
			t.Run(method+"/"+c.desc, func(t *testing.T) {
				r := exchange(t, m, mustClient(t, method, c.user, c.password), nil)
				if r.step != 2 || !errors.Is(r.serverErr, ErrBadCredentials) || errors.Is(r.serverErr, ErrMalformed) {
					t.Fatalf("want ErrBadCredentials at client-final, got %+v", r)
				}
				if strings.Contains(r.serverErr.Error(), testPassword) || strings.Contains(r.serverErr.Error(), c.user) {
					t.Errorf("error %q names the password or the user", r.serverErr)
				}
			})
		}
	}
}

// TestUnknownUserLooksKnown checks that an unknown user's exchange gives
// nothing away: the server-first message has the shape of a known user's,
// is stable for the name (a changing salt would give it away on a second
// try), and the failure is the same error as for a wrong password.
func TestUnknownUserLooksKnown(t *testing.T) {
	m := mustMethod(t, SCRAMSHA256, mustCreds(t, "alice:"+testPassword+"\n"))
	serverFirst := func(user string) string {
		cc := mustClient(t, SCRAMSHA256, user, "x").Start()
		s1, _, err := m.Start().Step(cc.First())
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(s1), ",") // drop the nonce
		return rest
	}
	known, unknown := serverFirst("alice"), serverFirst("mallory")
	if len(known) != len(unknown) || !strings.HasSuffix(unknown, ",i=4096") {
		t.Errorf("server-first differs in shape: known %q, unknown %q", known, unknown)
	}
	if again := serverFirst("mallory"); again != unknown {
		t.Errorf("unknown user's salt changed: %q then %q", unknown, again)
	}
	if other := serverFirst("trudy"); other == unknown {
		t.Errorf("two unknown users share a salt %q", other)
	}
	wrong := exchange(t, m, mustClient(t, SCRAMSHA256, "alice", "nope"), nil)
	missing := exchange(t, m, mustClient(t, SCRAMSHA256, "mallory", "nope"), nil)
	if wrong.step != missing.step || wrong.serverErr.Error() != missing.serverErr.Error() {
		t.Errorf("wrong password: step %d %q; unknown user: step %d %q",
			wrong.step, wrong.serverErr, missing.step, missing.serverErr)
	}
}

func TestClientVerifiesServer(t *testing.T) {
	m := mustMethod(t, SCRAMSHA256, mustCreds(t, "alice:"+testPassword+"\n"))
	for _, c := range []struct {
		desc   string
		tamper func([]byte) []byte
		want   error
	}{
		{"flipped signature bit", func(b []byte) []byte {
			// Flip a bit of the signature itself, not of its base64 text:
			// a flipped character may no longer be base64 at all.
			sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(b), "v="))
			if err != nil {
				panic(err)
			}
			sig[0] ^= 0x01
			return []byte("v=" + base64.StdEncoding.EncodeToString(sig))
		}, ErrServerSignature},
		{"another signature", func([]byte) []byte { return []byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") }, ErrServerSignature},
		{"no server-final (CONNACK without Authentication Data)", func([]byte) []byte { return nil }, ErrServerSignature},
		{"server refuses", func([]byte) []byte { return []byte("e=invalid-proof") }, ErrBadCredentials},
		{"not base64", func([]byte) []byte { return []byte("v=***") }, ErrMalformed},
		{"garbage", func([]byte) []byte { return []byte("hello") }, ErrMalformed},
	} {
		t.Run(c.desc, func(t *testing.T) {
			r := exchange(t, m, mustClient(t, SCRAMSHA256, "alice", testPassword), c.tamper)
			if r.step != 3 || !errors.Is(r.clientErr, c.want) {
				t.Fatalf("want %v from the client, got %+v", c.want, r)
			}
		})
	}
}

func TestClientRejectsServerFirst(t *testing.T) {
	for _, c := range []struct {
		desc, s1 string
	}{
		{"nonce not extending the client's", "r=abc,s=QSXCR+Q6sek8bf92,i=4096"},
		{"too few iterations", "r=%s+srv,s=QSXCR+Q6sek8bf92,i=1"},
		{"too many iterations", "r=%s+srv,s=QSXCR+Q6sek8bf92,i=100000000"},
		{"not a server-first", "v=abc"},
		{"empty", ""},
	} {
		t.Run(c.desc, func(t *testing.T) {
			cc := mustClient(t, SCRAMSHA256, "alice", testPassword).Start()
			first := string(cc.First())
			nonce := first[strings.Index(first, "r=")+2:]
			_, done, err := cc.Step([]byte(strings.Replace(c.s1, "%s", nonce, 1)))
			if done || !errors.Is(err, ErrMalformed) {
				t.Fatalf("done %v, err %v; want ErrMalformed", done, err)
			}
			if _, _, err := cc.Step([]byte("v=x")); !errors.Is(err, ErrMalformed) {
				t.Errorf("Step after a failure: %v", err)
			}
		})
	}
}

func TestMalformedClientMessages(t *testing.T) {
	m := mustMethod(t, SCRAMSHA256, mustCreds(t, "alice:"+testPassword+"\n"))
	t.Run("client-first", func(t *testing.T) {
		for _, in := range []string{
			"", "garbage", "n,,", "n,,n=alice", "x,,n=alice,r=abc",
			"p=tls-unique,,n=alice,r=abc", // channel binding we never offered
			"n,,m=ext,n=alice,r=abc",      // mandatory extension
			"n,,n=al=ice,r=abc",           // bad name escape
			"n,a=b=x,n=alice,r=abc",       // bad authzid escape
			"\x00\xff\xfe", strings.Repeat("n,", 40000),
		} {
			_, done, err := m.Start().Step([]byte(in))
			if done || !errors.Is(err, ErrMalformed) {
				t.Errorf("%q: done %v, err %v; want ErrMalformed", trim(in), done, err)
			}
		}
	})
	t.Run("client-final", func(t *testing.T) {
		for _, c := range []struct {
			in   string
			want error
		}{
			{"", ErrMalformed},
			{"c=biws", ErrMalformed},
			{"c=biws,r=%s,p=***", ErrMalformed},
			{"c=***,r=%s,p=AAAA", ErrMalformed},
			{"c=biws,r=%s,p=AAAA", ErrBadCredentials},                        // proof of the wrong length
			{"c=biws,r=%sX,p=" + strings.Repeat("A", 44), ErrBadCredentials}, // not the server's nonce
			{"c=eSws,r=%s,p=" + strings.Repeat("A", 44), ErrBadCredentials},  // channel binding flag changed
			{"c=biws,r=%s,p=" + strings.Repeat("A", 44), ErrBadCredentials},  // wrong proof
		} {
			sc := m.Start()
			cc := mustClient(t, SCRAMSHA256, "alice", testPassword).Start()
			s1, _, err := sc.Step(cc.First())
			if err != nil {
				t.Fatal(err)
			}
			nonce, _, _ := strings.Cut(strings.TrimPrefix(string(s1), "r="), ",")
			in := strings.Replace(c.in, "%s", nonce, 1)
			_, done, err := sc.Step([]byte(in))
			if done || !errors.Is(err, c.want) {
				t.Errorf("%q: done %v, err %v; want %v", in, done, err, c.want)
			}
			if sc.Username() != "" {
				t.Errorf("%q: failed exchange has user %q", in, sc.Username())
			}
		}
	})
	t.Run("after the end", func(t *testing.T) {
		sc := m.Start()
		cc := mustClient(t, SCRAMSHA256, "alice", testPassword).Start()
		s1, _, _ := sc.Step(cc.First())
		c2, _, _ := cc.Step(s1)
		if _, done, err := sc.Step(c2); !done || err != nil {
			t.Fatalf("exchange failed: %v", err)
		}
		if _, _, err := sc.Step(c2); !errors.Is(err, ErrMalformed) {
			t.Errorf("a third client message: %v, want ErrMalformed", err)
		}
		if sc.Username() != "alice" {
			t.Errorf("user %q after a stray message", sc.Username())
		}
	})
}

// TestAuthorizationIdentity: a client may not authenticate as alice and
// ask to act as bob.
func TestAuthorizationIdentity(t *testing.T) {
	m := mustMethod(t, SCRAMSHA256, mustCreds(t, "alice:"+testPassword+"\nbob:x\n"))
	for _, c := range []struct {
		authz string
		ok    bool
	}{{"bob", false}, {"alice", true}} {
		cl, err := scram.SHA256.NewClient("alice", testPassword, c.authz)
		if err != nil {
			t.Fatal(err)
		}
		cm := &scramClient{name: SCRAMSHA256, client: cl, maxIters: MaxIterations}
		r := exchange(t, m, cm, nil)
		if ok := r.serverErr == nil && r.clientErr == nil; ok != c.ok || !ok && !errors.Is(r.serverErr, ErrBadCredentials) {
			t.Errorf("authzid %q: %+v", c.authz, r)
		}
	}
}

// TestRFC7677Vector replays the SCRAM-SHA-256 example of RFC 7677 section
// 3, byte for byte, by fixing both nonces.
func TestRFC7677Vector(t *testing.T) {
	const (
		clientNonce = "rOprNGfwEbeRWgbNEkqO"
		serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
		c1          = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
		s1          = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		c2          = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		s2          = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	// The same keys as the example line in doc.go, for user "user".
	creds := mustCreds(t, "user:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n")
	srv := newSCRAMServer(SCRAMSHA256, creds)
	srv.server.WithNonceGenerator(func() string { return serverNonce })
	cm := mustClient(t, SCRAMSHA256, "user", "pencil").(*scramClient)
	cm.client.WithNonceGenerator(func() string { return clientNonce })

	sc, cc := srv.Start(), cm.Start()
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	check("client-first", string(cc.First()), c1)
	out, _, err := sc.Step(cc.First())
	if err != nil {
		t.Fatal(err)
	}
	check("server-first", string(out), s1)
	out, _, err = cc.Step(out)
	if err != nil {
		t.Fatal(err)
	}
	check("client-final", string(out), c2)
	out, done, err := sc.Step(out)
	if err != nil || !done {
		t.Fatalf("server on client-final: done %v, %v", done, err)
	}
	check("server-final", string(out), s2)
	if _, done, err := cc.Step(out); err != nil || !done {
		t.Fatalf("client on server-final: done %v, %v", done, err)
	}
	if !creds.CheckPassword("user", "pencil") || creds.CheckPassword("user", "pencil ") {
		t.Error("CheckPassword against the example's stored keys")
	}
}

func TestLookup(t *testing.T) {
	creds := mustCreds(t, "a:b\n")
	m, err := Lookup("scram-sha-512", creds)
	if err != nil || m.Name() != SCRAMSHA512 {
		t.Errorf("Lookup(scram-sha-512) = %v, %v", m, err)
	}
	_, err = Lookup("PLAIN", creds)
	if err == nil || err.Error() != `unknown authentication method "PLAIN" (known: SCRAM-SHA-256, SCRAM-SHA-512)` {
		t.Errorf("Lookup(PLAIN): %v", err)
	}
	if _, err := Lookup(SCRAMSHA256, nil); err == nil {
		t.Error("Lookup without credentials succeeded")
	}
	if _, err := NewClient("SCRAM-SHA-1", "a", "b"); err == nil || !strings.Contains(err.Error(), "known: SCRAM-SHA-256, SCRAM-SHA-512") {
		t.Errorf("NewClient(SCRAM-SHA-1): %v", err)
	}
	if _, err := NewClient(SCRAMSHA256, "", "b"); err == nil {
		t.Error("NewClient without a user name succeeded")
	}
	secret := "\u0007secret" // a control character, which SASLprep refuses
	if _, err := NewClient(SCRAMSHA256, "a", secret); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("NewClient with an unpreparable password: %v", err)
	}
	if cc := mustClient(t, SCRAMSHA256, "a", "b").Start(); true {
		if _, _, err := cc.Step([]byte("r=x")); err == nil {
			t.Error("Step before First succeeded")
		}
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// FuzzServerStep feeds arbitrary client messages to the broker's side:
// it must answer with an error, never panic. With real set, the first
// message is a genuine client-first, so that the fuzzer works on the
// client-final parser.
func FuzzServerStep(f *testing.F) {
	creds := mustCreds(f, "alice:"+testPassword+"\n")
	methods := []Method{mustMethod(f, SCRAMSHA256, creds), mustMethod(f, SCRAMSHA512, creds)}
	cm := mustClient(f, SCRAMSHA256, "alice", testPassword)
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"), false, false)
	f.Add([]byte(""), []byte("c=biws,r=x,p="+strings.Repeat("A", 44)), true, false)
	f.Add([]byte("y,a=alice,n=alice,r=x"), []byte("c=eSxhPWFsaWNlLA==,r=x,p=AA=="), false, true)
	f.Fuzz(func(t *testing.T, first, second []byte, real, sha512 bool) {
		m := methods[0]
		if sha512 {
			m = methods[1]
		}
		sc := m.Start()
		if real {
			first = cm.Start().First()
		}
		for _, in := range [][]byte{first, second} {
			_, done, err := sc.Step(in)
			if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("error of no known kind: %v", err)
			}
			if err != nil && done {
				t.Fatal("done with an error")
			}
			if err != nil {
				return
			}
			if done && !real {
				t.Fatal("authenticated without the password") // would need a forged proof
			}
		}
	})
}

// FuzzClientStep feeds arbitrary server messages to the client's side.
func FuzzClientStep(f *testing.F) {
	cl, err := NewClient(SCRAMSHA256, "alice", testPassword)
	if err != nil {
		f.Fatal(err)
	}
	cm := cl.(*scramClient)
	cm.maxIters = 8192 // keep each run short; the bound itself is tested above
	f.Add([]byte("r=%s,s=QSXCR+Q6sek8bf92,i=4096"), []byte("v=AAAA"))
	f.Add([]byte("r=%sabc,s=,i=4096"), []byte("e=invalid-proof"))
	f.Fuzz(func(t *testing.T, s1, s2 []byte) {
		cc := cm.Start()
		first := string(cc.First())
		nonce := first[strings.Index(first, "r=")+2:]
		s1 = bytes.Replace(s1, []byte("%s"), []byte(nonce), 1)
		if _, _, err := cc.Step(s1); err != nil {
			return
		}
		if _, done, err := cc.Step(s2); done || err == nil {
			t.Fatal("the client accepted a server that cannot know the password")
		}
	})
}
