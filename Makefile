# dripflow — run `make help` for the targets.

SHELL := /usr/bin/env bash
GO    ?= go
PKGS  ?= ./...
# Test flags: `make test TESTFLAGS='-run Conformance -v'`.
TESTFLAGS ?=
# The whole suite must stay well under 20 minutes on a 2-core machine.
TEST_TIMEOUT ?= 20m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: services
services: ## start (or install) Redis, PostgreSQL, MariaDB, NATS and RabbitMQ for the tests
	@bash scripts/test-services.sh >/dev/null

.PHONY: test
test: ## run every test with -race against real Redis, PostgreSQL, MariaDB, SQLite, NATS and RabbitMQ
	@. scripts/test-services.sh && \
	  $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS)

.PHONY: test-short
test-short: ## run the tests that need no service (-short)
	$(GO) test -short -count=1 $(TESTFLAGS) $(PKGS)

# Benchmark flags: `make bench BENCHFLAGS='--quick'`, `--rows 500000`,
# `--only inplace,noop`; `go run ./bench/cmd/dripflow-bench --help` lists them.
BENCHFLAGS ?=

.PHONY: bench
bench: ## measure dripflow against one UPDATE, a hand-written loop, plain asynq and River, and with 1-8 worker processes (~20 min); table on stdout, JSON in bench-results/
	@. scripts/test-services.sh && \
	  $(GO) run ./bench/cmd/dripflow-bench $(BENCHFLAGS)

.PHONY: lint
lint: ## gofmt, go vet, staticcheck and a tidy go.mod
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	$(GO) mod tidy -diff

.PHONY: fmt
fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: build
build: ## build every package and command without cgo
	CGO_ENABLED=0 $(GO) build $(PKGS)

.PHONY: check-deploy
check-deploy: ## validate docker-compose.yml and deploy/, and that every binary builds static
	@GO=$(GO) bash scripts/check-deploy.sh
