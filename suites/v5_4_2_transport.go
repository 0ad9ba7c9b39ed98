package suites

func init() {
	addSection5("4.2", "Network Connections", func(s *S) {
		// The server works over an ordered, lossless stream of bytes: it
		// reads packets however the stream cuts them.
		s.Reuse("7", "MQTT-7.1.1-1", "MQTT-4.2-1")
	})
}
