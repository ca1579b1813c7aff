# Benchmark targets, included by the Makefile (`include mk/bench.mk`). They use its CARGO; the
# default below only matters when this file runs alone. None of them runs in `make test` or CI:
# they take minutes and want a quiet machine. BENCHMARKS.md has the results and how to read them.

CARGO ?= cargo
TARGET_DIR ?= target

##@ Benchmarks

.PHONY: bench
bench: ## Criterion benchmarks of the admission pipeline and its parts (cargo bench).
	$(CARGO) bench --bench pipeline

.PHONY: bench-instructions
bench-instructions: ## Instructions per review of each pipeline case, counted by callgrind (stable on a busy machine).
	CARGO=$(CARGO) scripts/bench-instructions.sh

.PHONY: bench-load
bench-load: ## Server CPU per review at the Deployment's flags, product against floor (and --unique-addresses, denials), over HTTP/1.1 and HTTP/2 (h2load; writes target/bench-load/).
	CARGO=$(CARGO) scripts/bench-load.sh

.PHONY: bench-server-instructions
bench-server-instructions: ## Instructions per review of the whole server (TLS, HTTP, handler, log) under h2load: product, denials, --unique-addresses, floor (callgrind; stable on a busy machine).
	CARGO=$(CARGO) scripts/bench-server-instructions.sh

.PHONY: bench-unique
bench-unique: ## --unique-addresses at 100,000 claims: lookup cost (criterion), list time and RSS of the release server (stand-in API server).
	$(CARGO) bench --bench unique_addresses
	$(CARGO) bench --bench unique_list

.PHONY: bench-growth
bench-growth: ## Cost per item of reviews with one list of 1,000, 10,000 and 100,000 items (criterion group growth).
	$(CARGO) bench --bench pipeline -- growth

.PHONY: bench-hostile
bench-hostile: ## Hostile reviews (long lists, many keys) over HTTPS against the release server: time, answer size, peak RSS.
	$(CARGO) build --release
	python3 scripts/bench_hostile.py --bin $(TARGET_DIR)/release/ipamclaim-webhook
