package broker

import "time"

// will is a client's will message (§3.1.2.5), kept until its connection
// ends. Its Message Expiry Interval counts from when it is published.
type will struct {
	msg    message
	expiry time.Duration // < 0: the will has no expiry interval
	delay  uint32        // Will Delay Interval in seconds (5.0)
}

// now returns the message to publish now; nil for no will.
func (w *will) now() *message {
	if w == nil {
		return nil
	}
	m := w.msg
	if w.expiry >= 0 {
		m.expires = time.Now().Add(w.expiry)
	}
	return &m
}
