# mqttbench: `make test` is the test command CI runs (.ci/run).
GO       ?= go
FUZZTIME ?= 30s
PKGS     := ./...

.PHONY: test brokers brokers-conform brokers-tools tidy-check fmt-check vet unit conform-mosquitto conform-mosquitto-tls conform-websocket fuzz-mosquitto load-mosquitto churn-mosquitto faults-mosquitto build bench bench-load fuzz clean

test: tidy-check fmt-check vet unit brokers

# The runs against real brokers, in two chains side by side: each mostly
# waits on its brokers, and one after another they would take make test
# past 20 minutes. Inside a chain one at a time (the tools chain shares
# bin/mqttbench).
brokers:
	$(MAKE) --no-print-directory -j2 -Oline brokers-conform brokers-tools
brokers-conform:
	./scripts/conform-mosquitto.sh
	./scripts/conform-mosquitto-tls.sh
brokers-tools:
	./scripts/conform-websocket.sh
	./scripts/fuzz-mosquitto.sh
	./scripts/load-mosquitto.sh
	./scripts/churn-mosquitto.sh
	./scripts/faults-mosquitto.sh

# go.mod and go.sum say exactly what the code imports: no missing or
# stale requirement, direct ones not marked indirect.
tidy-check:
	$(GO) mod tidy -diff

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# Every package runs under the race detector: the broker, the load
# generator and the CLI are concurrent, and the codec is cheap enough.
# The suites package takes as long as all the others together, so it runs
# beside them from the start instead of last: two test binaries at a time,
# as go test would run them on two cores.
unit:
	status=0; \
	$(GO) test -race -count=1 -timeout 25m ./suites & suites=$$!; \
	$(GO) test -race -count=1 -timeout 25m -p 1 $$($(GO) list $(PKGS) | grep -v '/suites$$') || status=$$?; \
	wait $$suites || status=$$?; \
	exit $$status

# The conformance suite against a real broker: mosquitto 2.0 from apt,
# installed and started by the project's own script.
conform-mosquitto:
	./scripts/conform-mosquitto.sh

# The same suite over mqtts:// (server certificate only, then mutual TLS)
# with the same verdicts as over tcp://, and the security specs (users, an
# ACL, client certificates) against mosquitto set up to enforce them.
# About 4 minutes.
conform-mosquitto-tls:
	./scripts/conform-mosquitto-tls.sh

# The suite over MQTT over WebSocket, where section 6 becomes testable:
# the reference broker over tcp://, ws:// and wss:// (same verdicts), and
# mochi-mqtt's WebSocket listener (mosquitto from apt has none). About 3
# minutes.
conform-websocket:
	./scripts/conform-websocket.sh

# The wire fuzzer against mosquitto: a short seeded run and a kept
# reproducer replayed on mosquitto and on the reference broker.
fuzz-mosquitto:
	./scripts/fuzz-mosquitto.sh

# The load generator at MQTT 5.0 against mosquitto: clean point-to-point
# runs at QoS 0/1/2 with properties on every message, reason codes counted
# and scraped from /metrics while publishing, a short --find-max, shared
# subscriptions and request/response.
load-mosquitto:
	./scripts/load-mosquitto.sh

# The load generator's churn at MQTT 5.0 against mosquitto: flapping
# subscribers, an offline backlog within and beyond its queue limit (from
# profiles/mosquitto-2.0.yaml), a will storm, retained fleets, payload
# templates. About a minute.
churn-mosquitto:
	./scripts/churn-mosquitto.sh

# The fault tools against mosquitto with persistence: a clean restart
# loses nothing acknowledged, kill -9 loses the unsaved sessions and
# queued messages (reported as found), a partition of half the
# subscribers loses nothing. About a minute.
faults-mosquitto:
	./scripts/faults-mosquitto.sh

build:
	$(GO) build -o bin/mqttbench ./cmd/mqttbench

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Standard load scenarios (100k idle connections, 1k -> 1k at QoS 0/1/2,
# fan-out 1 -> 10k) against the reference broker and mosquitto, with the
# generator's CPU per message next to mqtt-benchmark's. About 4 minutes.
bench-load:
	./scripts/bench-load.sh

# Each native fuzz target in turn for FUZZTIME (make fuzz FUZZTIME=10m).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
