# ClouDO in Rust. `make run` starts the engine; `make test` is what CI runs.
CARGO ?= cargo
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
LISTEN ?= 127.0.0.1:7071

.PHONY: run build release test setup lint fmt bench chaos fuzz clean help images iac-validate test-env-start test-env-stop

help:
	@echo "make run     build and start 'cloudo serve' on the embedded defaults"
	@echo "make test-env-start / test-env-stop   Azurite, an orchestrator and two worker pools"
	@echo "make test    install test deps, check formatting and lints, run every test"
	@echo "make bench   benchmark the engine (release build); figures in docs/benchmarks.md"
	@echo "make lint    cargo fmt --check and clippy -D warnings"
	@echo "make chaos   the long resilience suite; its table goes to docs/reliability.md"
	@echo "make fuzz    long fuzz run of the parsers and signed entry points (FUZZ_CASES=200000)"
	@echo "make images  build the orchestrator, worker and runbook images (no registry needed)"

build:
	$(CARGO) build -p cloudo-orchestrator --bin cloudo

# A local environment like an Azure install, without Docker: Azurite, an orchestrator and two
# worker pools with the example catalog (test-env/local-env.sh; test-env/docker-compose.yml is
# the same with the images, for users with Docker).
test-env-start:
	$(CARGO) build -p cloudo-orchestrator --bin cloudo -p cloudo-worker --bin cloudo-worker
	./test-env/local-env.sh start

test-env-stop:
	./test-env/local-env.sh stop

release:
	$(CARGO) build --release -p cloudo-orchestrator --bin cloudo

run: build
	@echo
	@echo "cloudo is starting on http://$(LISTEN), without authentication (--dev-no-auth: a laptop default only)."
	@echo "In another terminal, try:"
	@echo
	@echo "  curl -X POST 'http://$(LISTEN)/api/Trigger?id=test'"
	@echo "  curl 'http://$(LISTEN)/api/executions/<exec_id>?wait=10'"
	@echo "  open http://$(LISTEN)/            (the console)"
	@echo
	./target/debug/cloudo serve --listen $(LISTEN) --dev-no-auth

setup:
	./test-env/setup.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit and integration tests (doc tests: none), with bubblewrap, a private dockerd and
# Azurite up (test-env/with-sandboxes.sh and with-azurite.sh start and stop them). The last line sums every test
# binary's result, so a run that executed no test fails.
test: setup lint
	@mkdir -p target
	rm -rf target/chaos
	CHAOS_ROWS=$(CURDIR)/target/chaos ./test-env/with-azurite.sh ./test-env/with-sandboxes.sh $(CARGO) test --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee target/test-output.log
	@echo "smoke run of the benchmarks (tiny counts, debug build: they must keep working, not fast)"
	BENCH_N=5 BENCH_ROUNDS=1 BENCH_CLIENTS=2 BENCH_SANDBOXES=process BENCH_SCALE=300 BENCH_REPEAT=2 BENCH_SECS=1 BENCH_WARMUP=1 $(CARGO) test -p cloudo-orchestrator --bench engine --bench webhook --bench scale --bench ingest 2>&1 | tail -40
	@echo "the resilience suite's short run (make chaos runs the long one and keeps its table)"
	$(CARGO) run -q -p cloudo-orchestrator --example chaos_report -- target/chaos
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1}' target/test-output.log

bench:
	./test-env/setup-bench.sh
	$(CARGO) bench -p cloudo-orchestrator --bench webhook
	./test-env/with-sandboxes.sh $(CARGO) bench -p cloudo-orchestrator --bench engine
	$(CARGO) bench -p cloudo-orchestrator --bench ingest
	$(CARGO) bench -p cloudo-orchestrator --bench scale
	$(CARGO) build --release -p cloudo-worker --bin cloudo-worker
	./test-env/with-azurite.sh $(CARGO) bench -p cloudo-orchestrator --bench azure

# Container images (Dockerfile): cloudo-orchestrator, cloudo-worker and cloudo-runbook, tagged
# $(IMAGE_TAG), in the Docker engine the tests use (test-env/with-sandboxes.sh starts a private
# dockerd; set DOCKER_HOST to use another). The base is built from Debian packages.
IMAGE_TAG ?= dev
images:
	$(CARGO) build --release -p cloudo-orchestrator --bin cloudo -p cloudo-worker --bin cloudo-worker
	./test-env/with-sandboxes.sh ./images/build.sh $(IMAGE_TAG)

# For users with Terraform and access to its registry (make test checks iac/ without them).
iac-validate:
	terraform -chdir=iac fmt -check -recursive
	terraform -chdir=iac init -backend=false -input=false
	terraform -chdir=iac validate

# The long run of the resilience suite (tests/chaos, CHAOS=long): crashes under load, a full
# disk, storms. Prints the table and keeps it in docs/reliability.md, then fails if a promise
# was broken (make test runs the short version).
chaos: setup
	rm -rf target/chaos
	CHAOS=long CHAOS_ROWS=$(CURDIR)/target/chaos ./test-env/with-azurite.sh ./test-env/with-sandboxes.sh \
	  $(CARGO) test -p cloudo-orchestrator --test chaos -- --test-threads=1 --nocapture \
	  && status=0 || status=$$?; \
	  CHAOS=long $(CARGO) run -q -p cloudo-orchestrator --example chaos_report -- target/chaos --write docs/reliability.md; \
	  exit $$status

# The long run of the fuzzers: alert payloads, operator documents, cron and run_args, Slack
# actions and approval links (make test runs a short one). The HTTP ones go through the
# binary, so they are capped at 5,000 cases.
FUZZ_CASES ?= 200000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p cloudo-core --test fuzz_alerts --test fuzz_documents --test fuzz_inputs -- --nocapture
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p cloudo-orchestrator --test fuzz_http -- --nocapture

clean:
	$(CARGO) clean
