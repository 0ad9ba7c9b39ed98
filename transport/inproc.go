package transport

import (
	"fmt"
	"net"
	"sync"
)

// In-process servers, by name: an inproc dial hands one end of a
// net.Pipe to the server's serve function, with no socket, descriptor or
// port. This package never imports the broker; its caller registers
// (*broker.Server).ServeConn.
var inproc = struct {
	sync.Mutex
	serve map[string]func(net.Conn)
}{serve: map[string]func(net.Conn){}}

// RegisterInproc makes inproc://name (name "" is plain inproc) reach
// serve, which runs in a goroutine of its own per connection. The
// returned function unregisters it; connections already made stay.
func RegisterInproc(name string, serve func(net.Conn)) (unregister func(), err error) {
	inproc.Lock()
	defer inproc.Unlock()
	if _, dup := inproc.serve[name]; dup {
		return nil, fmt.Errorf("inproc server %q is already registered", name)
	}
	inproc.serve[name] = serve
	var once sync.Once
	return func() {
		once.Do(func() {
			inproc.Lock()
			delete(inproc.serve, name)
			inproc.Unlock()
		})
	}, nil
}

func dialInproc(name string) (net.Conn, error) {
	inproc.Lock()
	serve := inproc.serve[name]
	inproc.Unlock()
	if serve == nil {
		return nil, fmt.Errorf("%s: no in-process server by that name runs in this process", (&URL{Scheme: "inproc", Name: name}).String())
	}
	client, server := net.Pipe()
	go serve(server)
	return client, nil
}
