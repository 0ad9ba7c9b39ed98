package suites

func init() {
	addSection5("4.5", "Message receipt", func(s *S) {
		s.Reuse("4.5", "MQTT-4.5.0-1", "MQTT-4.5.0-1")
	})
	notTestable5("MQTT-4.5.0-2", "binds only the client (acknowledging every PUBLISH it receives)")
}
