package suites

func init() {
	// Section 6 binds MQTT over WebSocket; the suite speaks plain TCP.
	const ws = "applies only to MQTT over WebSocket; the suite speaks MQTT over plain TCP"
	notTestable("MQTT-6.0.0-1", ws)
	notTestable("MQTT-6.0.0-2", ws)
	notTestable("MQTT-6.0.0-3", ws+", and binds only the client")
	notTestable("MQTT-6.0.0-4", ws)
}
