// Command mochi runs the mochi-mqtt v2 broker on a loopback listener with
// anonymous access allowed, and with -ws on a WebSocket listener too: a
// peer broker for comparisons, fuzzing and MQTT over WebSocket (which
// Debian's mosquitto cannot serve). It lives in its own module so that
// mochi-mqtt never enters mqttbench's.
//
//	go run . -addr 127.0.0.1:1883 -ws 127.0.0.1:8080
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "listen address")
	ws := flag.String("ws", "", "also serve MQTT over WebSocket at this address (any path)")
	flag.Parse()
	server := mqtt.New(&mqtt.Options{InlineClient: false})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		log.Fatal(err)
	}
	if err := server.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})); err != nil {
		log.Fatal(err)
	}
	if *ws != "" {
		if err := server.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: *ws})); err != nil {
			log.Fatal(err)
		}
	}
	if err := server.Serve(); err != nil { // starts the listeners and returns
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	server.Close()
}
