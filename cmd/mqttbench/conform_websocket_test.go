package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/mqttbench/mqttbench/broker"
	"github.com/mqttbench/mqttbench/reports"
	"github.com/mqttbench/mqttbench/transport"
)

// wsFront serves MQTT over WebSocket in front of a reference broker with
// one fault of the binding (section 6) on purpose, for the suite to find:
//
//	no-subprotocol  the handshake answers no subprotocol (MQTT-6.0.0-4)
//	text-accepted   text frames are read as MQTT bytes (MQTT-6.0.0-1)
//	frame-aligned   each frame is taken to hold whole packets: a packet's
//	                pieces in later frames are lost (MQTT-6.0.0-2)
func wsFront(t *testing.T, fault string) string {
	t.Helper()
	srv := broker.New(broker.Options{})
	t.Cleanup(func() { srv.Close() })
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}}
		if fault == "no-subprotocol" {
			opts.Subprotocols = nil
		}
		ws, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer ws.CloseNow() //nolint:errcheck
		ws.SetReadLimit(-1)
		ctx := r.Context()
		mqtt, conn := net.Pipe()
		defer mqtt.Close()
		go srv.ServeConn(conn) //nolint:errcheck
		go func() {
			b := make([]byte, 64<<10)
			for {
				n, err := mqtt.Read(b)
				if err != nil || ws.Write(ctx, websocket.MessageBinary, b[:n]) != nil {
					ws.CloseNow() //nolint:errcheck
					return
				}
			}
		}()
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			switch {
			case typ != websocket.MessageBinary && fault != "text-accepted":
				ws.Close(websocket.StatusUnsupportedData, "binary frames only") //nolint:errcheck
				return
			case fault == "frame-aligned":
				b = wholePackets(b)
			}
			if _, err := mqtt.Write(b); err != nil {
				return
			}
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: handler}
	go hs.Serve(l) //nolint:errcheck
	t.Cleanup(func() { hs.Close() })
	return "ws://" + l.Addr().String() + "/mqtt"
}

// wholePackets keeps the complete MQTT packets at the start of b and
// drops the rest, as a receiver that assumes packets are aligned on
// frames would.
func wholePackets(b []byte) []byte {
	end := 0
	for end < len(b) {
		n, mul, i := 0, 1, end+1
		for ; i < len(b) && i < end+5; i++ {
			n += int(b[i]&0x7F) * mul
			mul <<= 7
			if b[i]&0x80 == 0 {
				break
			}
		}
		if i >= len(b) || i+1+n > len(b) {
			break
		}
		end = i + 1 + n
	}
	return b[:end]
}

// Over WebSocket the section 6 specs run: they pass on the reference
// broker's ws:// and wss:// listeners, and each fails on a front that
// breaks its statement, the others passing there.
func TestConformWebSocketSpecs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	ref := broker.New(broker.Options{})
	t.Cleanup(func() { ref.Close() })
	listenRef := func(url string, opts transport.ListenOptions) string {
		l, err := transport.Listen(url, opts)
		if err != nil {
			t.Fatal(err)
		}
		go ref.Serve(l) //nolint:errcheck // ends with Close
		return transport.ListenerURL(l)
	}
	certDir := filepath.Join(t.TempDir(), "certs")
	if code, _, stderr := runCLI(context.Background(), "cert", "--out", certDir); code != exitOK {
		t.Fatalf("mqttbench cert: exit %d: %s", code, stderr)
	}
	wss := listenRef("wss://127.0.0.1:0", transport.ListenOptions{
		Cert: filepath.Join(certDir, "server.pem"), Key: filepath.Join(certDir, "server-key.pem")})
	for _, tc := range []struct {
		name   string
		args   []string
		failed string // the statement whose spec must fail; "" for none
	}{
		{"reference ws", []string{"--broker", listenRef("ws://127.0.0.1:0", transport.ListenOptions{})}, ""},
		{"reference wss", []string{"--broker", wss, "--cacert", filepath.Join(certDir, "ca.pem")}, ""},
		{"no-subprotocol", []string{"--broker", wsFront(t, "no-subprotocol")}, "MQTT-6.0.0-4"},
		{"text-accepted", []string{"--broker", wsFront(t, "text-accepted")}, "MQTT-6.0.0-1"},
		{"frame-aligned", []string{"--broker", wsFront(t, "frame-aligned")}, "MQTT-6.0.0-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr, res, _ := conformChild(t, append(tc.args, "--label-filter", "websocket")...)
			want := exitOK
			if tc.failed != "" {
				want = exitFailures
			}
			if code != want {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, stdout, stderr)
			}
			if len(res.Specs) != 3 {
				t.Fatalf("%d specs ran, want the 3 of section 6", len(res.Specs))
			}
			for _, s := range res.Specs {
				wantState := reports.Passed
				if strings.HasPrefix(s.Name, "["+tc.failed+"]") {
					wantState = reports.Failed
				}
				if s.State != wantState {
					t.Errorf("%s: %s (%s), want %s", s.Name, s.State, s.Message, wantState)
				}
			}
			for _, st := range res.Statements {
				if strings.HasPrefix(st.ID, "MQTT-6.0.0-") && st.ID != "MQTT-6.0.0-3" && st.Verdict == "not-testable" {
					t.Errorf("%s is not testable over WebSocket: %s", st.ID, st.Reason)
				}
			}
		})
	}
}

// Over plain TCP the section 6 statements stay not testable, saying why.
func TestConformWebSocketStatementsNotTestableOverTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in a child process")
	}
	code, stdout, stderr, res, _ := conformChild(t, "--broker", "tcp://"+referenceBroker(t), "--focus", "MQTT-6")
	if code != exitOK || len(res.Specs) != 0 {
		t.Fatalf("exit %d, %d specs (want none)\nstdout:\n%s\nstderr:\n%s", code, len(res.Specs), stdout, stderr)
	}
	found := 0
	for _, st := range res.Statements {
		switch st.ID {
		case "MQTT-6.0.0-1", "MQTT-6.0.0-2", "MQTT-6.0.0-4":
			found++
			if st.Verdict != "not-testable" || !strings.Contains(st.Reason, "ws://") {
				t.Errorf("%s: %s (%s); want not-testable, naming ws://", st.ID, st.Verdict, st.Reason)
			}
		}
	}
	if found != 3 {
		t.Errorf("%d of the 3 section 6 statements in the result", found)
	}
}
