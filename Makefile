# rwsplit — developer and CI entry points.
#
#   make lab        install MariaDB + sysbench if missing, start a master and two replicas,
#                   build rwsplit (release) and start it on 127.0.0.1:8066
#   make lab-down   stop what the lab started and remove its state (.state/lab)
#   make test       install prerequisites, build rwsplit (debug), run every test of the workspace
#                   (the integration tests start their own servers on free ports, beside `make lab`)
#   make lint       shellcheck the scripts
#   make bench      the proxy's benchmarks
#   make fuzz       each fuzz target for FUZZ_SECONDS with libFuzzer (stable toolchain)
#   make driver-check  node mysql2 and PHP mysqli/PDO, master directly vs through rwsplit

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
LAB := scripts/lab.sh
FUZZ_SECONDS ?= 60
# What the tests need from Debian beyond the lab's mariadb-server, mariadb-client and sysbench:
# keepalived (VRRP interop), tshark (decoding captures), prometheus (promtool for /metrics),
# shellcheck (make lint).
TEST_PACKAGES ?= keepalived tshark prometheus shellcheck

.PHONY: lab lab-down lab-status deps build test lint bench fuzz driver-check

lab:
	$(LAB) install up proxy-up

lab-down:
	$(LAB) down

lab-status:
	$(LAB) status

deps:
	LAB_EXTRA_PACKAGES="$(TEST_PACKAGES)" $(LAB) install

build:
	$(CARGO) build --bin rwsplit

# Plain cargo test (cargo-nextest may be missing in CI); --no-fail-fast so one failing test
# binary does not hide the results of the others. Test binaries run one after another;
# each starts one cluster of its own.
test: deps build
	$(CARGO) test --workspace --no-fail-fast

lint:
	shellcheck scripts/*.sh .ci/run

# The classifier against sqlparser, then scripts/bench.sh (its own lab on spare ports):
# sysbench directly / through HAProxy / through rwsplit interleaved over BENCH_ROUNDS, connect
# cost, routing.consistency cost and the idle/busy scale checks; the markdown report goes to
# bench-results.md (BENCH_OUT). BENCH_SECONDS, BENCH_THREADS, ... : see the script's header.
bench:
	$(CARGO) bench -p rwsplit-proxy --bench classifier
	$(CARGO) build --release --bin rwsplit
	RWSPLIT_BIN=$${CARGO_TARGET_DIR:-$(CURDIR)/target}/release/rwsplit scripts/bench.sh

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# Real drivers (node mysql2, PHP mysqli and PDO) against the master and through rwsplit.
driver-check:
	$(CARGO) build --release --bin rwsplit
	RWSPLIT_BIN=$(CURDIR)/target/release/rwsplit scripts/driver_check.sh
