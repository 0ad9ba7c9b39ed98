package suites

func init() {
	addSection5("4.6", "Message ordering", func(s *S) {
		// 3.1.1's MQTT-4.6.0-5 (topics ordered by default) and -6 (order
		// as received) are 5.0's -6 and -5.
		s.Reuse("4.6", "MQTT-4.6.0-5", "MQTT-4.6.0-6")
		s.Reuse("4.6", "MQTT-4.6.0-6", "MQTT-4.6.0-5")
	})
	notTestable5("MQTT-4.6.0-1", "binds only the client (re-sending its PUBLISH packets in order)")
	notTestable5("MQTT-4.6.0-2", "binds only the client (PUBACK in the order of the PUBLISH packets)")
	notTestable5("MQTT-4.6.0-3", "binds only the client (PUBREC in the order of the PUBLISH packets)")
	notTestable5("MQTT-4.6.0-4", "binds only the client (PUBREL in the order of the PUBREC packets)")
}
