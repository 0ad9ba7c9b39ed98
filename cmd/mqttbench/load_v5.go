package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/mqttbench/mqttbench/loadgen"
)

// protocolFlags are load's MQTT 5.0 flags; each overrides the scenario
// file's field of the same meaning.
type protocolFlags struct {
	protocol         *string
	sessionExpiry    *time.Duration
	messageExpiry    *time.Duration
	userProperties   *int
	userPropertySize *int
	contentType      *string
	payloadFormat    *bool
	topicAlias       *bool
	subscriptionID   *bool
}

func addProtocolFlags(fs *flag.FlagSet) *protocolFlags {
	return &protocolFlags{
		protocol:         fs.String("protocol", "3.1.1", "MQTT version every connection speaks: 3.1.1 or 5 (the flags below need 5)"),
		sessionExpiry:    fs.Duration("session-expiry", 0, "5.0 Session Expiry Interval in CONNECT, whole seconds (with --clean-session=false, 0 means never expires)"),
		messageExpiry:    fs.Duration("message-expiry", 0, "5.0 Message Expiry Interval on every PUBLISH, whole seconds (0: none)"),
		userProperties:   fs.Int("user-properties", 0, "5.0 user properties on every PUBLISH (u0, u1, ...)"),
		userPropertySize: fs.Int("user-property-size", loadgen.DefaultUserPropertySize, "bytes of each user property's value"),
		contentType:      fs.String("content-type", "", "5.0 Content Type on every PUBLISH"),
		payloadFormat:    fs.Bool("payload-format", false, fmt.Sprintf("5.0 Payload Format Indicator 1 (UTF-8) on every PUBLISH; the sequence header is then text, so --payload must be at least %d", loadgen.TextHeaderSize)),
		topicAlias:       fs.Bool("topic-alias", false, "5.0 publishers send their topic once per connection, then topic alias 1 with an empty topic (if the broker's Topic Alias Maximum allows); the bytes saved are reported"),
		subscriptionID:   fs.Bool("subscription-id", false, "5.0 subscriber j subscribes with Subscription Identifier j+1; every delivery must carry it"),
	}
}

// apply sets the scenario field of flag name, if it is one of these.
func (p *protocolFlags) apply(name string, sc *loadgen.Scenario) error {
	switch name {
	case "protocol":
		v, err := loadgen.ParseProtocol(*p.protocol)
		if err != nil {
			return fmt.Errorf("--protocol %v", err)
		}
		sc.Protocol = v
	case "session-expiry":
		sc.SessionExpiry = *p.sessionExpiry
	case "message-expiry":
		sc.MessageExpiry = *p.messageExpiry
	case "user-properties":
		sc.UserProperties = *p.userProperties
		if sc.UserPropertySize == 0 {
			sc.UserPropertySize = *p.userPropertySize // the flag's default
		}
	case "user-property-size":
		sc.UserPropertySize = *p.userPropertySize
	case "content-type":
		sc.ContentType = *p.contentType
	case "payload-format":
		sc.PayloadFormat = *p.payloadFormat
	case "topic-alias":
		sc.TopicAlias = *p.topicAlias
	case "subscription-id":
		sc.SubscriptionID = *p.subscriptionID
	}
	return nil
}

// protocolNote names MQTT 5.0 in the run's first line; 3.1.1 goes unsaid.
func protocolNote(sc *loadgen.Scenario) string {
	if sc.V5() {
		return "MQTT 5.0, "
	}
	return ""
}
