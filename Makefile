# sluice — the two set-up commands are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/sluice
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CONFIG  ?= conf/config.yaml
FUZZTIME ?= 20s

.PHONY: build run test deps test-race test-alloc vet bench fuzz compare clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/sluice

## run: start the gateway with conf/config.yaml (embedded store under ./data)
run: build
	./$(BIN) run -c $(CONFIG)

## test: vet, the allocation tests, then every test with the race detector
## (they are excluded under -race, which allocates)
test: deps vet test-alloc test-race

## deps: install what the tests need on a fresh Debian machine (etcd, redis, prometheus)
deps:
	./scripts/etcd.sh
	./scripts/redis.sh
	./scripts/prometheus.sh

vet:
	$(GO) vet ./...

test-race:
	$(GO) test -race -count=1 -timeout 15m ./...

test-alloc:
	$(GO) test -count=1 -run 'Alloc' ./...

## bench: the go test -bench suite (parser, match, pick, proxy vs direct vs httputil)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./bench/ ./engine/http1/ ./router/ ./balancer/

## fuzz: run every fuzz target for $(FUZZTIME)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## compare: the peer benchmark (nginx, HAProxy, Caddy, httputil) with sluice
compare: build
	SLUICE_MODE=yaml ../shared/bench/compare.sh --sluice ./$(BIN) --scenario small

clean:
	rm -rf bin
