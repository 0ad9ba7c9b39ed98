package loadgen

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): bind picks
// no port, connect does, so a source address's ports are shared by every
// destination instead of reserved at bind (and starved by TIME_WAIT).
const ipBindAddressNoPort = 24

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT; net.Dialer calls it after
// socket() and before bind().
func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
