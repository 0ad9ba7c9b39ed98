package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/acl"
	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/store"
)

// Options configure a Server. The zero value is a usable broker: every
// QoS, retained messages, anonymous clients, the specification's size
// limit.
type Options struct {
	// Listen holds addresses for Start, such as "127.0.0.1:1883"; port 0
	// picks a free port (read it back with Addrs).
	Listen []string
	// MaxQoS is the highest QoS granted in SUBACK. 0 means 2; use
	// MaxQoSZero to grant only QoS 0.
	MaxQoS packetgen.QoS
	// MaxQoSZero grants QoS 0 only (MaxQoS cannot say so: 0 means default).
	MaxQoSZero bool
	// DisableRetain ignores the RETAIN flag on PUBLISH: nothing is stored.
	DisableRetain bool
	// MaxPacketSize bounds an incoming packet, fixed header included;
	// larger packets close the connection. 0 means the protocol maximum.
	MaxPacketSize int
	// InflightWindow is how many outgoing QoS 1 and 2 messages may await
	// acknowledgement per client (a 5.0 client's Receive Maximum may make
	// it smaller); more wait in the session's queue. 0 means 1024: a
	// subscriber that acknowledges within a millisecond then takes 1M
	// messages a second, where 64 held one to about 45,000 at 5.0 (one
	// subscriber of 100 publishers, QoS 1, on loopback). Memory follows
	// what is in flight, not the window.
	InflightWindow int
	// MaxQueued bounds the messages queued per session beyond the
	// in-flight window, online or offline; newer messages are dropped
	// (and counted) when it is full. 0 means 10,000.
	MaxQueued int
	// QueueQoS0 also queues QoS 0 messages for offline persistent sessions
	// (the specification lets a server choose, MQTT-3.1.2-5).
	QueueQoS0 bool
	// Users maps user names to passwords. When set, CONNECT must carry a
	// known user name and its password, unless AllowAnonymous is also set
	// and no user name is given.
	Users map[string]string
	// AllowAnonymous admits clients without a user name while Users is set.
	AllowAnonymous bool
	// ACL, when set, authorizes every publish, subscription and delivery
	// (mosquitto's acl_file semantics, see package acl). A denied publish
	// is not delivered (5.0 answers 0x87), a denied subscription is
	// refused (0x80; 5.0 0x87), and a message the client may not read,
	// retained ones included, is not sent to it.
	ACL *acl.ACL
	// IdentityAsUsername takes the user name from the client certificate's
	// common name (a TLS listener with client certificates), as mosquitto's
	// use_identity_as_username does; a client without one is refused.
	IdentityAsUsername bool
	// KeepaliveGrace multiplies the client's keep alive to give the time a
	// silent client is allowed; the specification says one and a half
	// (MQTT-3.1.2-24). 0 means 1.5.
	KeepaliveGrace float64
	// ConnectTimeout is how long a new connection may take to send
	// CONNECT. 0 means 10 seconds.
	ConnectTimeout time.Duration

	// MQTT 5.0: what the broker advertises in CONNACK and enforces. Each
	// "Disable" switch makes the broker say, and act as if, it lacks the
	// feature, so the suites can test every "not available" path.

	// DisableWildcard answers SUBSCRIBE to a filter with '+' or '#' with
	// 0xA2 and advertises Wildcard Subscription Available 0.
	DisableWildcard bool
	// DisableShared answers "$share/..." subscriptions with 0x9E and
	// advertises Shared Subscription Available 0.
	DisableShared bool
	// DisableSubscriptionIDs advertises Subscription Identifier Available
	// 0; a SUBSCRIBE carrying one gets DISCONNECT 0xA1.
	DisableSubscriptionIDs bool
	// TopicAliasMaximum is the highest inbound topic alias a client may
	// use. 0 means 65535; a negative value accepts no aliases.
	TopicAliasMaximum int
	// OutboundTopicAliases makes the broker give topics aliases on the
	// PUBLISH packets it sends, up to each client's Topic Alias Maximum.
	OutboundTopicAliases bool
	// ReceiveMaximum bounds the QoS 2 PUBLISH packets a client may have
	// unanswered by PUBCOMP (QoS 1 is answered at once); one more gets
	// DISCONNECT 0x93. 0 means 65535, the protocol's maximum, which is not
	// advertised.
	ReceiveMaximum int
	// ServerKeepAlive, when set, replaces every 5.0 client's keep alive
	// and is sent in CONNACK (MQTT-3.2.2-21).
	ServerKeepAlive uint16
	// MaxSessionExpiry caps a 5.0 client's Session Expiry Interval, in
	// seconds; the broker then tells the client the value it uses. 0 means
	// no cap.
	MaxSessionExpiry uint32
	// AssignedIDPrefix starts the identifiers given to clients that send
	// none. "" means "mqttbench-".
	AssignedIDPrefix string
	// ResponseInformation, when set, is sent to clients that ask for it
	// (Request Response Information 1), followed by the client identifier
	// and '/': the root of topics the client may use for responses.
	ResponseInformation string
	// ServerReference redirects clients: CONNECT is answered with 0x9C
	// (use another server), or 0x9D (server moved) when ServerMoved is
	// set, carrying this reference. RedirectClients limits it to those
	// client identifiers; empty means every client.
	ServerReference string
	ServerMoved     bool
	RedirectClients []string
	// ValidatePayloadFormat checks that payloads marked as UTF-8 (Payload
	// Format Indicator 1) are valid UTF-8: a bad one is answered with 0x99
	// and not delivered.
	ValidatePayloadFormat bool
	// AuthMethod, when set, offers enhanced authentication (§4.12) with
	// this method; a CONNECT naming another gets CONNACK 0x8C.
	AuthMethod auth.Method

	// Store, when set, keeps sessions (subscriptions, expiry deadlines,
	// QoS 1 and 2 messages queued and in flight both ways), retained
	// messages and wills across restarts: New restores what it holds, and
	// acknowledgements wait until what they promise is durable (see
	// package store for the fsync policies). The server owns it from New
	// on and closes it in Close. Nil keeps everything in memory.
	Store *store.Store

	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
	// Faults break behaviours on purpose, for the suites' self-validation.
	Faults Faults
}

func (o Options) withDefaults() Options {
	if o.MaxQoS == 0 || o.MaxQoS > 2 {
		o.MaxQoS = 2
	}
	if o.MaxQoSZero {
		o.MaxQoS = 0
	}
	if o.InflightWindow <= 0 {
		o.InflightWindow = 1024
	}
	if o.InflightWindow > 65535 {
		o.InflightWindow = 65535
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 10000
	}
	if o.KeepaliveGrace <= 0 {
		o.KeepaliveGrace = 1.5
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.TopicAliasMaximum == 0 || o.TopicAliasMaximum > 65535 {
		o.TopicAliasMaximum = 65535
	}
	if o.TopicAliasMaximum < 0 {
		o.TopicAliasMaximum = 0
	}
	if o.ReceiveMaximum <= 0 || o.ReceiveMaximum > 65535 {
		o.ReceiveMaximum = 65535
	}
	if o.AssignedIDPrefix == "" {
		o.AssignedIDPrefix = "mqttbench-"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// ReadUsers reads a password file: one "user:password" per line; blank
// lines and lines starting with '#' are skipped. Errors name the line, never
// the password.
func ReadUsers(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: want user:password", path, n)
		}
		users[user] = pass
	}
	return users, sc.Err()
}
