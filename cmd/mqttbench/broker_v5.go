package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/mqttbench/mqttbench/auth"
	"github.com/mqttbench/mqttbench/broker"
)

// brokerV5Flags are the broker's MQTT 5.0 options: what it advertises in
// CONNACK and enforces, each a field of broker.Options.
type brokerV5Flags struct {
	noWildcard, noShared, noSubIDs bool
	aliasMax                       int
	outAliases                     bool
	receiveMax                     int
	serverKeepAlive                uint
	maxExpiry                      uint
	idPrefix                       string
	responseInfo                   string
	serverRef                      string
	moved                          bool
	redirect                       listFlag
	validateUTF8                   bool
	authMethod                     string
	authFile                       string
}

func (f *brokerV5Flags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.noWildcard, "no-wildcard", false, "5.0: refuse wildcard subscriptions (0xA2) and advertise none")
	fs.BoolVar(&f.noShared, "no-shared", false, "5.0: refuse shared subscriptions (0x9E) and advertise none")
	fs.BoolVar(&f.noSubIDs, "no-subscription-ids", false, "5.0: advertise no subscription identifiers (SUBSCRIBE with one: DISCONNECT 0xA1)")
	fs.IntVar(&f.aliasMax, "topic-alias-max", 65535, "5.0: highest topic alias a client may use (0: none)")
	fs.BoolVar(&f.outAliases, "outbound-aliases", false, "5.0: give topics aliases on PUBLISH sent to clients that allow them")
	fs.IntVar(&f.receiveMax, "receive-max", 65535, "5.0: QoS 2 messages a client may have waiting for PUBREL (over it: DISCONNECT 0x93)")
	fs.UintVar(&f.serverKeepAlive, "server-keepalive", 0, "5.0: keep alive, in seconds, imposed on every client (0: the client's own)")
	fs.UintVar(&f.maxExpiry, "max-session-expiry", 0, "5.0: cap on the Session Expiry Interval, in seconds (0: none)")
	fs.StringVar(&f.idPrefix, "assigned-id-prefix", "mqttbench-", "prefix of the identifiers given to clients that send none")
	fs.StringVar(&f.responseInfo, "response-info", "", "5.0: Response Information root sent to clients that ask (the client id and / follow)")
	fs.StringVar(&f.serverRef, "server-reference", "", "5.0: redirect clients to this server (CONNACK 0x9C, or 0x9D with --server-moved)")
	fs.BoolVar(&f.moved, "server-moved", false, "5.0: with --server-reference, say the server moved (0x9D)")
	fs.Var(&f.redirect, "redirect-client", "5.0: with --server-reference, redirect only this client id, repeatable")
	fs.BoolVar(&f.validateUTF8, "validate-payload-format", false, "5.0: refuse payloads marked UTF-8 that are not (0x99)")
	fs.StringVar(&f.authMethod, "auth-method", "", "5.0 enhanced authentication method: "+strings.Join(auth.Names(), " or "))
	fs.StringVar(&f.authFile, "auth-file", "", "credentials for --auth-method (user:password lines, or stored SCRAM keys)")
}

// apply checks the flags and sets them on opts; an error is one line.
func (f *brokerV5Flags) apply(opts *broker.Options) error {
	switch {
	case f.aliasMax < 0 || f.aliasMax > 65535:
		return fmt.Errorf("--topic-alias-max is %d; want 0 to 65535", f.aliasMax)
	case f.receiveMax < 1 || f.receiveMax > 65535:
		return fmt.Errorf("--receive-max is %d; want 1 to 65535", f.receiveMax)
	case f.serverKeepAlive > 65535:
		return fmt.Errorf("--server-keepalive is %d; want at most 65535", f.serverKeepAlive)
	case f.maxExpiry > 1<<32-1:
		return fmt.Errorf("--max-session-expiry is %d; want at most 4294967295", f.maxExpiry)
	case (f.moved || len(f.redirect) > 0) && f.serverRef == "":
		return fmt.Errorf("--server-moved and --redirect-client need --server-reference")
	case (f.authMethod == "") != (f.authFile == ""):
		return fmt.Errorf("--auth-method and --auth-file go together")
	}
	opts.DisableWildcard, opts.DisableShared, opts.DisableSubscriptionIDs = f.noWildcard, f.noShared, f.noSubIDs
	opts.TopicAliasMaximum = f.aliasMax
	if f.aliasMax == 0 {
		opts.TopicAliasMaximum = -1
	}
	opts.OutboundTopicAliases = f.outAliases
	opts.ReceiveMaximum = f.receiveMax
	opts.ServerKeepAlive = uint16(f.serverKeepAlive)
	opts.MaxSessionExpiry = uint32(f.maxExpiry)
	opts.AssignedIDPrefix = f.idPrefix
	opts.ResponseInformation = f.responseInfo
	opts.ServerReference, opts.ServerMoved, opts.RedirectClients = f.serverRef, f.moved, f.redirect
	opts.ValidatePayloadFormat = f.validateUTF8
	if f.authMethod != "" {
		creds, err := auth.ReadCredentials(f.authFile)
		if err != nil {
			return fmt.Errorf("reading --auth-file: %v", err)
		}
		m, err := auth.Lookup(f.authMethod, creds)
		if err != nil {
			return fmt.Errorf("--auth-method: %v", err)
		}
		opts.AuthMethod = m
	}
	return nil
}
