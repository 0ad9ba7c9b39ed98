# mqttbench: `make test` is the test command CI runs (.ci/run).
GO       ?= go
FUZZTIME ?= 30s
PKGS     := ./...

.PHONY: test fmt-check vet unit build bench fuzz clean

test: fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# Every package runs under the race detector: the broker, the load
# generator and the CLI are concurrent, and the codec is cheap enough.
unit:
	$(GO) test -race -count=1 $(PKGS)

build:
	$(GO) build -o bin/mqttbench ./cmd/mqttbench

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Each native fuzz target in turn for FUZZTIME (make fuzz FUZZTIME=10m).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
