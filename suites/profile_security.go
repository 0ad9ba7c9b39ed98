package suites

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttbench/mqttbench/packetgen/topic"
)

// Security is the profile's "security" section: what the broker is set up
// to enforce, which the specs of section 5 (label "security") check. The
// suite cannot know a broker's users, access rules or TLS settings; the
// profile says them, and a broker that does not enforce what its profile
// says fails those specs. Without the section they are skipped.
//
//	security:
//	  users:
//	    - name: alice
//	      password: alice-pw
//	      may_publish: [sec/public/#]      # topics it may publish to
//	      may_subscribe: [sec/public/#]    # filters it may subscribe to and read
//	      denied_publish: [sec/secret/#]   # topics it may not publish to
//	      denied_subscribe: ["sec/secret/#", "#", "+/secret/#"] # filters that must bring it nothing it may not read
//	  refused_user: {name: mallory, password: mallory-pw} # must not connect
//	  patterns: ["sec/c/%c/#", "sec/u/%u/#"]              # granted to every client (mosquitto "pattern" lines)
//	  require_client_cert: true                            # over TLS
//	  client_certs:
//	    expired: {cert: client-expired.pem, key: client-expired-key.pem}
//	    unknown_ca: {cert: client-unknown-ca.pem, key: client-unknown-ca-key.pem}
//
// Topics with '+' or '#' are filled in with a level unique to the spec
// ("sec/public/#" is published to as "sec/public/m1a2b-7"), so specs never
// see each other's messages. Passwords never appear in reports or traces.
type Security struct {
	// Users the broker knows, each with what it may and may not do.
	Users []SecurityUser `yaml:"users" json:"users,omitempty"`
	// RefusedUser is a user name and password the broker must refuse to
	// connect (3.1.1: CONNACK 4 or 5; 5.0: 0x86 or 0x87; or a close).
	RefusedUser *Credentials `yaml:"refused_user" json:"refused_user,omitempty"`
	// Patterns are topic filters granted (read and write) to every client
	// with its client identifier put in for a level %c or its user name
	// for %u, as mosquitto's "pattern" ACL lines. The specs check that a
	// client identifier or user name of '+' or '#' does not widen them
	// (CVE-2017-7650); %u needs a user named "+" among Users.
	Patterns []string `yaml:"patterns" json:"patterns,omitempty"`
	// RequireClientCert: over TLS, clients without a certificate the
	// broker trusts are refused. The suite's own connections then need
	// --cert and --key.
	RequireClientCert bool `yaml:"require_client_cert" json:"require_client_cert,omitempty"`
	// ClientCerts are certificates the broker must refuse when it
	// requires client certificates.
	ClientCerts ClientCerts `yaml:"client_certs" json:"client_certs,omitzero"`
}

// SecurityUser is a user the broker knows. Topic lists hold topic names
// or filters; wildcards are filled in as Security says.
type SecurityUser struct {
	Name     string `yaml:"name" json:"name"`
	Password string `yaml:"password" json:"-"`
	// MayPublish are topics the user may publish to (wildcards filled in).
	MayPublish []string `yaml:"may_publish" json:"may_publish,omitempty"`
	// MaySubscribe are filters the user may subscribe to and receive on.
	MaySubscribe []string `yaml:"may_subscribe" json:"may_subscribe,omitempty"`
	// DeniedPublish are topics the user may not publish to: its messages
	// there reach no subscriber. Wildcards are filled in.
	DeniedPublish []string `yaml:"denied_publish" json:"denied_publish,omitempty"`
	// DeniedSubscribe are filters (wildcards that would widen a
	// permission among them) that must bring the user no message on a
	// topic it may not read, whether the broker refuses the subscription
	// or filters the deliveries.
	DeniedSubscribe []string `yaml:"denied_subscribe" json:"denied_subscribe,omitempty"`
}

// Credentials are a user name and its password.
type Credentials struct {
	Name     string `yaml:"name" json:"name"`
	Password string `yaml:"password" json:"-"`
}

// ClientCerts are client certificates, each with its key.
type ClientCerts struct {
	Expired   CertPair `yaml:"expired" json:"expired,omitzero"`
	UnknownCA CertPair `yaml:"unknown_ca" json:"unknown_ca,omitzero"`
}

// CertPair is a PEM certificate and its PEM key. Relative paths are read
// from the profile's directory.
type CertPair struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
}

// check validates the section and makes certificate paths absolute
// against dir, the profile's directory. Errors name the field; never a
// password.
func (s *Security) check(dir string) error {
	if s == nil {
		return nil
	}
	names := map[string]bool{}
	for i, u := range s.Users {
		where := fmt.Sprintf("security.users[%d]", i)
		switch {
		case u.Name == "":
			return fmt.Errorf("%s: a user needs a name", where)
		case names[u.Name]:
			return fmt.Errorf("%s: user %q is named twice", where, u.Name)
		}
		names[u.Name] = true
		for _, l := range []struct {
			field string
			list  []string
		}{
			{"may_publish", u.MayPublish}, {"may_subscribe", u.MaySubscribe},
			{"denied_publish", u.DeniedPublish}, {"denied_subscribe", u.DeniedSubscribe},
		} {
			for _, t := range l.list {
				if err := topic.ValidateFilter(t, false); err != nil {
					return fmt.Errorf("%s (%s) %s %q: %v", where, u.Name, l.field, t, err)
				}
			}
		}
	}
	if r := s.RefusedUser; r != nil && r.Name == "" {
		return fmt.Errorf("security.refused_user needs a name")
	}
	for _, p := range s.Patterns {
		if !strings.Contains(p, "%c") && !strings.Contains(p, "%u") {
			return fmt.Errorf("security.patterns %q: a pattern holds %%c or %%u", p)
		}
		for _, level := range strings.Split(p, "/") {
			if strings.Contains(level, "%") && level != "%c" && level != "%u" {
				return fmt.Errorf("security.patterns %q: %%c and %%u fill a whole level", p)
			}
		}
		if err := topic.ValidateFilter(strings.NewReplacer("%c", "x", "%u", "x").Replace(p), false); err != nil {
			return fmt.Errorf("security.patterns %q: %v", p, err)
		}
	}
	for _, c := range []struct {
		field string
		pair  *CertPair
	}{{"expired", &s.ClientCerts.Expired}, {"unknown_ca", &s.ClientCerts.UnknownCA}} {
		if (c.pair.Cert == "") != (c.pair.Key == "") {
			return fmt.Errorf("security.client_certs.%s needs both cert and key", c.field)
		}
		for _, p := range []*string{&c.pair.Cert, &c.pair.Key} {
			if *p == "" {
				continue
			}
			if !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
			if _, err := os.Stat(*p); err != nil {
				return fmt.Errorf("security.client_certs.%s: %v", c.field, err)
			}
		}
	}
	return nil
}

// secrets are the passwords of the section, for the traces to withhold.
func (s *Security) secrets() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, u := range s.Users {
		out = append(out, u.Password)
	}
	if s.RefusedUser != nil {
		out = append(out, s.RefusedUser.Password)
	}
	return out
}

// summary is what reports show of the section: user names and counts,
// never a password.
func (s *Security) summary() map[string]any {
	var users []string
	for _, u := range s.Users {
		users = append(users, u.Name)
	}
	m := map[string]any{"users": users}
	if s.RefusedUser != nil {
		m["refused_user"] = s.RefusedUser.Name
	}
	if len(s.Patterns) > 0 {
		m["patterns"] = s.Patterns
	}
	if s.RequireClientCert {
		m["require_client_cert"] = true
	}
	return m
}
