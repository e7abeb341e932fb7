# ims-orch — `make help` lists the targets.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/ims-orch
FUZZTIME ?= 20s
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.DEFAULT_GOAL := help

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/ims-orch
	$(GO) build -o $(BIN) ./cmd/ims-orch

run: build ## the controller daemon on the embedded default: simulated cloud, paper's 4 DCs, a traffic ramp (Ctrl-C stops it)
	./$(BIN) serve

plan: build ## one proactive round of the bundled paper scenario, offline
	./$(BIN) plan -f testdata/scenarios/paper-4dc.yaml

# TEST_TIMEOUT is per test binary, and a binary's wall time includes its waits for
# the machine locks (drivers/machinelocktest): the real Open vSwitch tests of
# drivers/ovs, drivers/netns, controller/dataplane and controller/daemon take
# turns test by test, so one binary can wait for all the others' real tests.
# Their sum is ≈ 21 min with -race at load 20-24 (controller/dataplane alone
# 8.5-12.5 min); 45m is ≈ 2x that. A wait that would run into the timeout fails
# the test with "not taken within" before it (30 s for the OVS lock, 3 min for
# the SIP lock), with its cleanups.
TEST_TIMEOUT ?= 45m

test: ## run every test with the race detector, and the scripts' own tests (what CI runs)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	python3 -m unittest discover -s scripts -p 'test_*.py'

bench: ## run the Go benchmarks (numbers go to docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint: ## gofmt, go vet, staticcheck, pure-package import check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)
	@./scripts/check-pure.sh

fuzz: ## run every fuzz target for FUZZTIME each
	@./scripts/fuzz-all.sh $(FUZZTIME)

tools: ## install staticcheck
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help build run plan test bench lint fuzz tools
