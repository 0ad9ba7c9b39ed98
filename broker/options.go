package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
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
	// acknowledgement per client; more wait in the session's queue. 0
	// means 64.
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
	// KeepaliveGrace multiplies the client's keep alive to give the time a
	// silent client is allowed; the specification says one and a half
	// (MQTT-3.1.2-24). 0 means 1.5.
	KeepaliveGrace float64
	// ConnectTimeout is how long a new connection may take to send
	// CONNECT. 0 means 10 seconds.
	ConnectTimeout time.Duration
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
		o.InflightWindow = 64
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
