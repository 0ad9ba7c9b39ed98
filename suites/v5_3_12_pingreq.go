package suites

func init() {
	addSection5("3.12", "PINGREQ", func(s *S) {
		s.Reuse("3.12", "MQTT-3.12.4-1", "MQTT-3.12.4-1")
	})
}
