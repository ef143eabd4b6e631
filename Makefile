# originagent — see README.md.
GO        ?= go
CLANG     ?= clang-14
BIN       := bin/originagent
GOFLAGS_T ?= -count=1

.PHONY: all build generate check-generate check-tracked vet helm-lint test test-short bench fuzz soak demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/originagent

# Build the agent and the example services (examples/ginshop is its own
# module), then show the agent at work (root).
demo: build
	$(GO) build -o bin/shop ./examples/shop
	cd examples/ginshop && $(GO) build -o ../../bin/ginshop .
	$(BIN) demo --shop bin/shop --ginshop bin/ginshop

# Regenerate the BPF objects and their Go bindings with the pinned clang.
generate:
	@command -v $(CLANG) >/dev/null || { echo "$(CLANG) not found: apt-get install clang-14 llvm-14 libbpf-dev (.ci/run does)"; exit 1; }
	cd bpf && BPF_CLANG=$(CLANG) $(GO) generate ./...

# Fail when the committed BPF objects differ from what the C sources give.
# Without clang-14 (a fresh machine) the check is skipped with a note, except
# in CI, where .ci/run installs it and the check must run.
check-generate:
	@if ! command -v $(CLANG) >/dev/null && [ "$$CI" != true ]; then \
		echo "note: $(CLANG) not installed, BPF regeneration check skipped (apt-get install clang-14 llvm-14 libbpf-dev; CI runs it)"; \
	else \
		$(MAKE) --no-print-directory generate && git diff --exit-code -- bpf/; \
	fi

# Fail when git tracks a build output (an executable, or a file over 2 MB).
check-tracked:
	@bash .ci/check-tracked

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Build helm (from the module proxy, into bin/tools) and lint the chart; the
# chart's Go tests in deploy/helm render it with that helm.
helm-lint:
	HELM_LINT_ONLY=1 bash deploy/helm/test.sh

# Every test, the privileged ones included when run as root.
# Test programs are built once for the whole run (internal/testbuild) in a
# directory removed afterwards.
test: check-tracked vet check-generate helm-lint
	@dir=$$(mktemp -d -t originagent-testbuild.XXXXXX) && trap 'rm -rf "$$dir"' EXIT && \
		echo "ORIGINAGENT_TESTBUILD_DIR=$$dir $(GO) test $(GOFLAGS_T) -timeout 25m ./..." && \
		ORIGINAGENT_TESTBUILD_DIR=$$dir $(GO) test $(GOFLAGS_T) -timeout 25m ./...

test-short:
	$(GO) test -short ./...

# Benchmarks: the probes' overhead report (root), then the Go benchmarks of
# the symbolizer and the proxy. Results go in the README with the machine.
bench:
	$(GO) test -tags bench -count=1 -run '^Test(ProbeCost|Overhead|FrameworkOverhead)Report$$' -v ./internal/probes
	$(GO) test -run '^$$' -bench . -benchmem ./internal/symbolize ./internal/export

# A bounded soak (about 2 minutes, root): a traced service through the agent
# with upstream faults (500, slow, down), an agent handover and a target
# restart; prints spans sent/delivered/tagged per phase and peak RSS.
# SOAK_PHASE sets each phase's length (default 12s).
soak:
	$(GO) test -tags soak -count=1 -run '^TestSoak$$' -v -timeout 15m ./cmd/originagent

# Run every fuzzer for FUZZTIME each (the seed corpora also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -h '^func Fuzz' | sed 's/func \(Fuzz[A-Za-z0-9]*\).*/\1/'); do \
		pkg=$$(dirname $$(grep -rl --include='*_test.go' "^func $$t(" .)); \
		echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

clean:
	rm -rf bin .demo
