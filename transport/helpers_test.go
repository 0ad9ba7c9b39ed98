package transport

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// listen starts a listener on url whose connections are handled by h
// (echo when nil); the test's cleanup closes it and waits for the
// handlers. It returns the listener's URL.
func listen(t *testing.T, url string, opts ListenOptions, h func(net.Conn)) string {
	t.Helper()
	l, err := Listen(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = echo
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				h(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return ListenerURL(l)
}

// echo sends back what it reads.
func echo(c net.Conn) { io.Copy(c, c) } //nolint:errcheck

// roundTrip writes msg on c and reads it back within 5 s.
func roundTrip(c net.Conn, msg string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	b := make([]byte, len(msg))
	_, err := io.ReadFull(c, b)
	return string(b), err
}

// dial builds a dialer for url and connects within 5 s.
func dial(t *testing.T, url string, opts Options) (net.Conn, error) {
	t.Helper()
	d, err := NewDialer(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.DialContext(ctx)
}

// noLeaks fails the test if goroutines started during it are still
// running a few seconds after its cleanups.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
