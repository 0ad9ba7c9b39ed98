package suites

func init() {
	addSection5("4.7", "Topic Names and Topic Filters", func(s *S) {
		s.Reuse("4.7", "MQTT-4.7.1-1", "MQTT-4.7.0-1")
		// 3.1.1's MQTT-4.7.1-2 ('#') and -3 ('+') are 5.0's -1 and -2.
		s.Reuse("4.7", "MQTT-4.7.1-2", "MQTT-4.7.1-1")
		s.Reuse("4.7", "MQTT-4.7.1-3", "MQTT-4.7.1-2")
		s.Reuse("4.7", "MQTT-4.7.2-1", "MQTT-4.7.2-1")
		s.Reuse("4.7", "MQTT-4.7.3-1", "MQTT-4.7.3-1")
		s.Reuse("4.7", "MQTT-4.7.3-2", "MQTT-4.7.3-2")
		s.Reuse("4.7", "MQTT-4.7.3-3", "MQTT-4.7.3-3")
		s.Reuse("4.7", "MQTT-4.7.3-4", "MQTT-4.7.3-4")
	})
}
