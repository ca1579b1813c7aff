# Benchmark targets, included by the Makefile (`include mk/bench.mk`). They use its CARGO; the
# default below only matters when this file runs alone. None of them runs in `make test` or CI:
# they take minutes and want a quiet machine. BENCHMARKS.md has the results and how to read them.

CARGO ?= cargo

##@ Benchmarks

.PHONY: bench
bench: ## Criterion benchmarks of the admission pipeline and its parts (cargo bench).
	$(CARGO) bench --bench pipeline

.PHONY: bench-instructions
bench-instructions: ## Instructions per review of each pipeline case, counted by callgrind (stable on a busy machine).
	CARGO=$(CARGO) scripts/bench-instructions.sh

.PHONY: bench-load
bench-load: ## Load test of the release server against the floor over HTTP/1.1 and HTTP/2 (h2load; writes target/bench-load/).
	CARGO=$(CARGO) scripts/bench-load.sh

.PHONY: bench-unique
bench-unique: ## --unique-addresses at 100,000 claims: lookup cost (criterion), list time and RSS of the release server (stand-in API server).
	$(CARGO) bench --bench unique_addresses
	$(CARGO) bench --bench unique_list
