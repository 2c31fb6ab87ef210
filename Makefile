# rwsplit — developer and CI entry points.
#
#   make lab        install MariaDB + sysbench if missing, start a master and two replicas,
#                   build rwsplit (release) and start it on 127.0.0.1:8066
#   make lab-down   stop what the lab started and remove its state (.state/lab)
#   make test       install prerequisites, build rwsplit (debug), run every test of the workspace
#                   (the integration tests start their own servers on free ports, beside `make lab`)
#   make lint       shellcheck the scripts; systemd-analyze verify the systemd unit
#   make bench      the proxy's benchmarks
#   make fuzz       each fuzz target for FUZZ_SECONDS with libFuzzer (stable toolchain)
#   make driver-check  node mysql2 and PHP mysqli/PDO, master directly vs through rwsplit
#   make docker-lab the compose lab (docker/) brought up with Compose v2 and 1.29, checked and torn
#                   down; installs Debian's docker engine and makes the base image if missing

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
LAB := scripts/lab.sh
FUZZ_SECONDS ?= 60
# What the tests need from Debian beyond the lab's mariadb-server, mariadb-client and sysbench:
# keepalived (VRRP interop), tshark (decoding captures), prometheus (promtool for /metrics),
# shellcheck and systemd (systemd-analyze; make lint). Each only when missing.
TEST_PACKAGES ?= keepalived tshark prometheus shellcheck systemd

.PHONY: lab lab-down lab-status deps build test lint bench fuzz driver-check docker-lab

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

# systemd-analyze verify packaging/rwsplit.service, with two adjustments:
# - verify insists that ExecStart=/ExecStartPre= binaries exist, and /usr/bin/rwsplit is
#   where the unit is installed, not where it is built. It checks a copy of the unit in a
#   temporary directory with /usr/bin/rwsplit replaced by a stand-in executable (/bin/true),
#   so lint needs no build; the command lines themselves are run with the real binary by
#   tests/tests/systemd.rs. (--root=DIR instead would need a whole system tree: the unit's
#   dependencies such as sysinit.target and /bin/kill are looked up under DIR too.) Line
#   numbers are unchanged; messages name packaging/rwsplit.service again.
# - verify exits 0 on what it only warns about (an unknown key, a value it cannot parse:
#   "..., ignoring"), so any output at all fails the lint.
lint:
	shellcheck scripts/*.sh docker/mariadb/*.sh .ci/run
	@unit_dir=$$(mktemp -d); trap 'rm -rf "$$unit_dir"' EXIT; \
	sed 's#/usr/bin/rwsplit#/bin/true#g' packaging/rwsplit.service >"$$unit_dir/rwsplit.service"; \
	if ! out=$$(systemd-analyze verify "$$unit_dir/rwsplit.service" 2>&1) || [[ -n $$out ]]; then \
		printf '%s\n' "$$out" | sed "s#$$unit_dir/rwsplit.service#packaging/rwsplit.service#g" >&2; \
		echo "make lint: systemd-analyze verify packaging/rwsplit.service failed (see above)" >&2; \
		exit 1; \
	fi; \
	echo "systemd-analyze verify packaging/rwsplit.service: ok"

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

# scripts/docker-lab.sh run: install (docker.io, docker-compose 1.29, debootstrap; Compose v2
# from Debian 13 when the CLI has none), start dockerd, make debian:bookworm-slim, build the
# images, then up + check + down with Compose v2 and with 1.29. RWSPLIT_BIN (environment): the
# binary for the rwsplit image (default: a release build); COMPOSES="v2 v1": the composes to run.
docker-lab:
	scripts/docker-lab.sh run
