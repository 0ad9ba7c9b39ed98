package transport

import (
	"crypto/tls"
	"crypto/x509"
	"net"
)

// What a connection this package returned says about itself, through any
// WebSocket wrapping.

// ConnectionState is the TLS state of nc once its handshake is complete;
// false for plain connections and before the handshake (a server's
// *tls.Conn handshakes on its first Read).
func ConnectionState(nc net.Conn) (tls.ConnectionState, bool) {
	if s, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := s.ConnectionState()
		return st, st.HandshakeComplete
	}
	return tls.ConnectionState{}, false
}

// TLSInfo names the negotiated TLS version and cipher suite of nc, such
// as "TLS 1.3" and "TLS_AES_128_GCM_SHA256"; false when nc is not TLS.
func TLSInfo(nc net.Conn) (version, cipher string, ok bool) {
	st, ok := ConnectionState(nc)
	if !ok {
		return "", "", false
	}
	return tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), true
}

// PeerCertificates are the certificates the peer presented, leaf first:
// on a server, the client's (its CommonName can serve as the MQTT user
// name). Empty for plain connections, a client that sent none, and
// before the handshake.
func PeerCertificates(nc net.Conn) []*x509.Certificate {
	st, _ := ConnectionState(nc)
	return st.PeerCertificates
}

// TCPConn is the TCP connection under nc (TLS and WebSocket unwrapped),
// for socket options such as SetLinger; false for net.Pipe and others.
func TCPConn(nc net.Conn) (*net.TCPConn, bool) {
	for range 4 {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c, true
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}
