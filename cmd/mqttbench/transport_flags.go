package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mqttbench/mqttbench/packetgen"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
	"github.com/mqttbench/mqttbench/wire"
)

// Every command that dials a broker takes the same URL (tcp://, tls://,
// mqtts://, ws://, wss://, host:port) and the same transport flags,
// registered here: --cacert --cert --key --insecure --servername --alpn
// --tls-min --header.

// headersEnv carries WebSocket headers to child processes (and keeps a
// token off the user's own command line): NAME:VALUE lines.
const headersEnv = "MQTTBENCH_HEADERS"

// dialFlags are a command's transport flags.
type dialFlags struct{ *transport.Flags }

func addDialFlags(fs *flag.FlagSet) *dialFlags { return &dialFlags{transport.AddFlags(fs)} }

// dialOptions are the transport options the flags say, headers from
// MQTTBENCH_HEADERS when --header is not given.
func (d *dialFlags) dialOptions() (transport.Options, error) {
	o, err := d.Options()
	if err != nil {
		return o, err
	}
	if !d.HeadersGiven() {
		if env := os.Getenv(headersEnv); env != "" {
			h, err := transport.ParseHeaders(strings.Split(strings.TrimSpace(env), "\n"))
			if err != nil {
				return o, fmt.Errorf("%s: %v", headersEnv, err)
			}
			o.WebSocket.Headers = h
		}
	}
	return o, nil
}

// warnInsecure says loudly, once the command is set to go, that
// --insecure turns off what TLS is for.
func warnInsecure(stderr io.Writer, command string, o transport.Options) {
	if o.TLS.Insecure {
		fmt.Fprintf(stderr, "mqttbench %s: WARNING: --insecure: the broker's certificate is not verified; anyone on the path can read and change this traffic\n", command)
	}
}

// dialFlagSet names the first transport flag given on fs ("" when none),
// for a target no transport option applies to.
func dialFlagSet(fs *flag.FlagSet) string {
	first := ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "cacert", "cert", "key", "insecure", "servername", "alpn", "tls-min", "header":
			if first == "" {
				first = "--" + f.Name
			}
		}
	})
	return first
}

// optionsFor keeps the options that apply to u: TLS for a TLS URL,
// headers for a WebSocket one (compare's brokers need not share a
// transport).
func optionsFor(o transport.Options, u *transport.URL) transport.Options {
	if !u.Secure() {
		o.TLS = transport.TLSOptions{}
	}
	if !u.WebSocket() {
		o.WebSocket = transport.WebSocketOptions{}
	}
	return o
}

// dialArgs are the transport flags for a child process of this binary:
// files and names on its command line, headers (which may hold a token)
// in its environment (dialEnv).
func dialArgs(o transport.Options) []string {
	var args []string
	add := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name+"="+v)
		}
	}
	add("cacert", o.TLS.CACert)
	add("cert", o.TLS.Cert)
	add("key", o.TLS.Key)
	if o.TLS.Insecure {
		args = append(args, "--insecure")
	}
	add("servername", o.TLS.ServerName)
	add("alpn", strings.Join(o.TLS.ALPN, ","))
	add("tls-min", o.TLS.MinVersion)
	return args
}

// dialEnv carries o's WebSocket headers to a child process.
func dialEnv(o transport.Options) []string {
	if len(o.WebSocket.Headers) == 0 {
		return nil
	}
	var lines []string
	for name, vs := range o.WebSocket.Headers {
		for _, v := range vs {
			lines = append(lines, name+": "+v)
		}
	}
	return []string{headersEnv + "=" + strings.Join(lines, "\n")}
}

// probeBroker connects once and waits for the CONNACK of a clean
// CONNECT (any reason code is an answer), so that a broker not there, a
// failing TLS handshake, a refused upgrade or a plain URL on a TLS port
// is one clear line before any spec runs. It returns the TLS version and
// cipher suite negotiated (nil when the URL is not TLS).
func probeBroker(ctx context.Context, d *transport.Dialer, v packetgen.Version, username, password string) (*reports.ConformanceTLS, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("is unreachable: %v", err)
	}
	c := wire.New(nc, "probe", v, nil)
	defer c.Close()
	cp := &packetgen.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 30, ClientID: fmt.Sprintf("mbprobe%d", time.Now().UnixNano()%1e12)}
	if username != "" {
		cp.UsernameFlag, cp.Username = true, username
		if password != "" {
			cp.PasswordFlag, cp.Password = true, []byte(password)
		}
	}
	_, err = c.Connect(cp, 10*time.Second)
	switch {
	case errors.Is(err, wire.ErrClosed) && !d.URL().Secure():
		return nil, errors.New("closed the connection before CONNACK (does it speak TLS on this port? use tls:// or wss://)")
	case errors.Is(err, wire.ErrClosed):
		return nil, fmt.Errorf("closed the connection before CONNACK: %s", strings.TrimPrefix(errors.Unwrap(err).Error(), wire.ErrClosed.Error()+": "))
	case errors.Is(err, wire.ErrTimeout):
		return nil, errors.New("sent no CONNACK within 10s")
	case err != nil:
		return nil, fmt.Errorf("answered CONNECT wrongly: %v", err)
	}
	c.Disconnect() //nolint:errcheck
	return negotiatedTLS(nc, d.URL()), nil
}

// tlsDescription is "TLS 1.3, TLS_AES_128_GCM_SHA256[, ALPN mqtt]", or ""
// for a connection without TLS.
func tlsDescription(nc net.Conn, u *transport.URL) string {
	if t := negotiatedTLS(nc, u); t != nil {
		return t.String()
	}
	return ""
}

// negotiatedTLS is what nc's handshake negotiated, nil without TLS. ALPN
// is left out over WebSocket, where HTTP negotiated it, not MQTT.
func negotiatedTLS(nc net.Conn, u *transport.URL) *reports.ConformanceTLS {
	v, cipher, ok := transport.TLSInfo(nc)
	if !ok {
		return nil
	}
	t := &reports.ConformanceTLS{Version: v, Cipher: cipher}
	if st, _ := transport.ConnectionState(nc); st.NegotiatedProtocol != "" && !u.WebSocket() {
		t.ALPN = st.NegotiatedProtocol
	}
	return t
}
