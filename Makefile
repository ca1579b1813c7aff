# ipamclaim-webhook — run `make help` for the targets.

CARGO      ?= cargo
# Where cargo builds (CARGO_TARGET_DIR and cargo configs included), as cargo reports it.
TARGET_DIR := $(or $(shell CARGO=$(CARGO) scripts/target-dir.sh),target)
BIN        := $(TARGET_DIR)/debug/ipamclaim-webhook
CERTS_DIR  ?= certs
LISTEN     ?= 127.0.0.1:8443
PROBE      ?= 127.0.0.1:8080

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: build
build: ## Build the debug binary.
	$(CARGO) build

.PHONY: run
run: build $(CERTS_DIR)/tls.crt ## Serve on https://localhost:8443 with development certificates (made if missing).
	$(BIN) serve --listen $(LISTEN) --probe-listen $(PROBE) \
		--tls-cert $(CERTS_DIR)/tls.crt --tls-key $(CERTS_DIR)/tls.key

.PHONY: certs
certs: build ## (Re)make the development CA and serving certificate in certs/.
	$(BIN) certs --out $(CERTS_DIR)

$(CERTS_DIR)/tls.crt:
	$(MAKE) certs

.PHONY: crd
crd: ## Print the IPAMClaim CustomResourceDefinition generated from the Rust types (only the YAML on stdout).
	@$(CARGO) build --quiet
	@$(BIN) crd

.PHONY: fmt
fmt: ## Format the code.
	$(CARGO) fmt --all

.PHONY: golden
golden: ## Rewrite the golden responses of tests/fixtures (review the diff before committing).
	python3 tests/fixtures/generate.py
	UPDATE_GOLDEN=1 $(CARGO) test --test golden -- --test-threads=1

##@ Verification

.PHONY: lint
lint: ## cargo fmt --check and clippy with -D warnings.
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

.PHONY: test
test: lint ## Lint, then run every test (unit, golden fixtures, TLS integration, manifests).
	$(CARGO) test --all-targets
	$(MAKE) --no-print-directory test-manifests

include mk/deploy.mk
include mk/bench.mk
