package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mqttbench/mqttbench/packetgen"
)

// The client's upgrade request carries --header values and asks for the
// mqtt subprotocol; the listener answers it.
func TestWebSocketRequest(t *testing.T) {
	noLeaks(t)
	got := make(chan *http.Request, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			return
		}
		c.CloseNow()
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l) //nolint:errcheck
	defer srv.Close()
	h := http.Header{}
	h.Set("Authorization", "Bearer t0ken")
	h.Set("X-Device", "17")
	c, err := dial(t, "ws://"+l.Addr().String()+"/mqtt/path?q=1", Options{WebSocket: WebSocketOptions{Headers: h}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := <-got
	if r.Header.Get("Authorization") != "Bearer t0ken" || r.Header.Get("X-Device") != "17" ||
		r.Header.Get("Sec-WebSocket-Protocol") != "mqtt" || r.URL.RequestURI() != "/mqtt/path?q=1" {
		t.Errorf("request %s with headers %v", r.URL.RequestURI(), r.Header)
	}

	// The listener answers mqtt, and mqttv3.1 for MQTT 3.1 clients.
	url := listen(t, "ws://127.0.0.1:0", ListenOptions{}, nil)
	for _, proto := range []string{"mqtt", "mqttv3.1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{proto}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if ws.Subprotocol() != proto {
			t.Errorf("asked for %s, the listener answered %q", proto, ws.Subprotocol())
		}
		ws.CloseNow()
	}
}

// NetConn reads the messages as one byte stream: an MQTT packet split
// over two messages, and two packets in one message, arrive whole at the
// listener.
func TestWebSocketStream(t *testing.T) {
	noLeaks(t)
	got := make(chan []packetgen.Packet, 1)
	url := listen(t, "ws://127.0.0.1:0", ListenOptions{}, func(c net.Conn) {
		rd := packetgen.NewReader(c, packetgen.Decoder{Version: packetgen.V311, Side: packetgen.FromClient})
		var ps []packetgen.Packet
		for range 3 {
			p, err := rd.ReadPacket()
			if err != nil {
				break
			}
			ps = append(ps, p)
		}
		got <- ps
	})
	connect := packetgen.AppendUnchecked(nil, &packetgen.Connect{ProtocolLevel: 4, ClientID: "split-me", CleanStart: true, KeepAlive: 30}, packetgen.V311)
	ping := []byte{0xC0, 0x00}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, msg := range [][]byte{connect[:5], connect[5:], append(append([]byte{}, ping...), ping...)} {
		if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
	}
	ps := <-got
	if len(ps) != 3 {
		t.Fatalf("the listener read %d packets: %v", len(ps), ps)
	}
	if c, ok := ps[0].(*packetgen.Connect); !ok || c.ClientID != "split-me" {
		t.Errorf("first packet %s; want the CONNECT sent in two messages", packetgen.Format(ps[0]))
	}
	for _, p := range ps[1:] {
		if _, ok := p.(*packetgen.Pingreq); !ok {
			t.Errorf("got %s; want the two PINGREQs sent in one message", packetgen.Format(p))
		}
	}
}

// MQTT-6.0.0-1: a text frame closes the connection; the client is told
// why (1003, unsupported data).
func TestWebSocketTextFrameCloses(t *testing.T) {
	noLeaks(t)
	readErr := make(chan error, 1)
	url := listen(t, "ws://127.0.0.1:0", ListenOptions{}, func(c net.Conn) {
		_, err := c.Read(make([]byte, 16))
		readErr <- err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte{0xC0, 0x00}); err != nil {
		t.Fatal(err)
	}
	// The server's Read returns once the client has answered its close.
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("the client read %v; want a close with status 1003", err)
	}
	if err := <-readErr; err == nil || !strings.Contains(err.Error(), "unexpected frame type") {
		t.Errorf("the server read a text frame: %v", err)
	}
}

// wss:// end to end: TLS and WebSocket phases timed, the TLS version and
// the addresses readable through the WebSocket wrapping on both sides,
// the client certificate seen by the server.
func TestWebSocketTLS(t *testing.T) {
	noLeaks(t)
	p := newPKI(t)
	lopts := p.server()
	lopts.ClientCA, lopts.RequireClientCert = p.caFile, true
	type seen struct {
		version, cn string
		remote      net.Addr
	}
	server := make(chan seen, 1)
	url := listen(t, "wss://127.0.0.1:0/mqtt", lopts, func(c net.Conn) {
		s := seen{remote: c.RemoteAddr()}
		s.version, _, _ = TLSInfo(c)
		if certs := PeerCertificates(c); len(certs) > 0 {
			s.cn = certs[0].Subject.CommonName
		}
		server <- s
		echo(c)
	})
	if !strings.HasPrefix(url, "wss://127.0.0.1:") || !strings.HasSuffix(url, "/mqtt") {
		t.Fatalf("listener URL %s", url)
	}
	d, err := NewDialer(url, Options{TLS: TLSOptions{CACert: p.caFile, Cert: p.clientCert, Key: p.clientKey}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, ph, err := d.DialTimed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Larger than a frame buffer, so that it crosses several reads.
	msg := strings.Repeat("0123456789", 10_000)
	if got, err := roundTrip(c, msg); err != nil || got != msg {
		t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
	}
	if v, cipher, ok := TLSInfo(c); !ok || v != "TLS 1.3" || cipher == "" {
		t.Errorf("client TLSInfo through WebSocket: %q %q %v", v, cipher, ok)
	}
	if st, _ := ConnectionState(c); st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q; wss offers http/1.1", st.NegotiatedProtocol)
	}
	s := <-server
	if s.version != "TLS 1.3" || s.cn != "device-17" {
		t.Errorf("server side: TLS %q, client certificate %q", s.version, s.cn)
	}
	if s.remote.String() != c.LocalAddr().String() {
		t.Errorf("server sees %v, client is %v", s.remote, c.LocalAddr())
	}
	if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
		t.Errorf("client LocalAddr %T %v; want the TCP address", c.LocalAddr(), c.LocalAddr())
	}
	if _, ok := TCPConn(c); !ok {
		t.Error("TCPConn does not see the TCP connection under wss")
	}
	if ph.Connect <= 0 || ph.TLS <= 0 || ph.WebSocket <= 0 {
		t.Errorf("phases %+v: want all three", ph)
	}
	plain, err := dial(t, listen(t, "ws://127.0.0.1:0", ListenOptions{}, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, _, ok := TLSInfo(plain); ok {
		t.Error("TLSInfo says a ws:// connection is TLS")
	}
}

// A wrong path is refused with the HTTP status; a wss dial to a plain
// WebSocket port says the port speaks no TLS.
func TestWebSocketDialErrors(t *testing.T) {
	p := newPKI(t)
	url := listen(t, "ws://127.0.0.1:0/mqtt", ListenOptions{}, nil)
	host := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/mqtt")
	if _, err := dial(t, "ws://"+host+"/other", Options{}); err == nil || !strings.Contains(err.Error(), "refused: HTTP 404") {
		t.Errorf("wrong path: %v", err)
	}
	if _, err := dial(t, "wss://"+host+"/mqtt", Options{TLS: TLSOptions{CACert: p.caFile}}); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("wss to ws: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	_, err := dial(t, "ws://"+closed, Options{})
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || !strings.Contains(err.Error(), "connection refused") || strings.Count(err.Error(), "WebSocket") != 1 {
		t.Errorf("refused: %v", err)
	}
}

// Close stops the HTTP server and every connection it has not handed
// out, including one blocked in the upgrade handler.
func TestWebSocketListenerClose(t *testing.T) {
	noLeaks(t)
	l, err := Listen("ws://127.0.0.1:0", ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer(ListenerURL(l), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx) // upgraded, never accepted
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := make(chan error, 1)
	go func() { _, err := l.Accept(); accepted <- err }()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	c2, err := d.DialContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := l.Accept(); accepted <- err }()
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a connection upgraded but not accepted is still open after Close: %v", err)
	}
	if _, err := d.DialContext(ctx); err == nil {
		t.Error("dialed a closed listener")
	}
	runtime.GC()
}

// An inproc dial reaches the registered server over net.Pipe; names are
// unique; after unregistering the dial says nothing runs there.
func TestInproc(t *testing.T) {
	unregister, err := RegisterInproc("echo-test", echo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterInproc("echo-test", echo); err == nil {
		t.Error("registered the same name twice")
	}
	c, err := dial(t, "inproc://echo-test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(c, "through a pipe"); err != nil || got != "through a pipe" {
		t.Errorf("echo %q, %v", got, err)
	}
	c.Close()
	unregister()
	unregister() // twice is harmless
	if _, err := dial(t, "inproc://echo-test", Options{}); err == nil || !strings.Contains(err.Error(), "inproc://echo-test: no in-process server") {
		t.Errorf("dial after unregister: %v", err)
	}
}

// A source address binds every transport's TCP connection, WebSocket
// included (loadgen spreads connections over 127.0.0.x so).
func TestDialFrom(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("binding to 127.0.0.2 needs Linux loopback")
	}
	for _, scheme := range []string{"tcp", "ws"} {
		url := listen(t, scheme+"://127.0.0.1:0", ListenOptions{}, nil)
		d, err := NewDialer(url, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := d.DialFrom(ctx, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if ip := c.LocalAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.2" {
			t.Errorf("%s: bound to %s, want 127.0.0.2", scheme, ip)
		}
		if got, err := roundTrip(c, "x"); err != nil || got != "x" {
			t.Errorf("%s: echo %q, %v", scheme, got, err)
		}
		c.Close()
	}
}
