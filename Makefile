# The two commands of the README: `make lab` (a newcomer's demo) and
# `make test` (everything CI runs). Both install what a fresh machine lacks.
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build lab test lint unit labtest benchsmoke bench benchflows benchmape clean-lab fuzz soak attacks

all: build

deps:
	bash scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace --bins

# Starts the namespace lab, runs ipoed in it, drives traffic, shows the
# router's counters, and tears everything down.
lab: build
	bash scripts/demo.sh

# cargo-machete: no dependency a crate does not use (installed on first use);
# every member declares the workspace's rust-version.
lint:
	bash scripts/install-deps.sh lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	cargo-machete
	bash scripts/check-rust-version.sh

unit:
	$(CARGO) test --workspace --release --no-fail-fast --exclude ipoe-tests

# Lab tests share namespaces: one at a time.
labtest: build
	$(CARGO) test --release --no-fail-fast -p ipoe-tests -- --test-threads=1

# A short run of the bench harness: every DUT in every scenario forwards
# exactly the frames it was sent (counts, not speed).
# The lab tests' lock: the bench's namespaces and CPUs are the lab's too.
benchsmoke: build
	flock /run/ipoe-lab.lock target/release/ipoe-bench smoke

# -k and --no-fail-fast: a failing test binary does not hide the ones after it;
# the summary's last line counts every failure.
test: build lint
	bash scripts/test-summary.sh $(MAKE) -k --no-print-directory unit labtest benchsmoke

# The full comparison (about 15 minutes): results, table and plots in
# bench/results/, figures for BENCHMARKS.md.
bench: build
	flock /run/ipoe-lab.lock target/release/ipoe-bench run --out bench/results

# The flow table's figures only (1k-1M flows, ipoed-1w vs linux-nft; MAP-E
# rows beside DS-Lite's).
benchflows: build
	flock /run/ipoe-lab.lock target/release/ipoe-bench run --flows --out bench/results/flows

# MAP-E against DS-Lite at 1k-1M flows, and the AF_XDP ceiling (issue 18).
benchmape: build
	flock /run/ipoe-lab.lock target/release/ipoe-bench run --mape --out bench/results/mape

# Every fuzz target (fuzz/fuzz_targets/) for FUZZ_TIME seconds, one after
# the other, from the committed seeds and the growing fuzz/corpus/; a table
# of executions, coverage, corpus and crashes at the end. Needs a nightly
# toolchain; installs cargo-fuzz if missing. Not part of `make test`.
FUZZ_TIME ?= 60
fuzz:
	FUZZ_TIME=$(FUZZ_TIME) bash fuzz/run.sh

clean-lab:
	bash tests/lab/lab.sh down

# The soak (not in CI): mixed traffic, prefix changes, reloads and DHCP
# churn for DURATION (10m, 90s, 1h); prints crashes, RSS, leases lost and
# the longest forwarding gap (also in target/release/soak-report.md).
DURATION ?= 10m
soak: build
	DURATION=$(DURATION) $(CARGO) test --release -p ipoe-tests --test lab_soak -- --ignored --nocapture

# Real attack tools against ipoed in the lab (thc-ipv6, ipv6toolkit, a
# DHCPv4 starvation script), each attack for ATTACK_SECONDS (labtest runs
# them for 5 s); per attack the packets sent, the counters, ipoed's RSS and
# the streams' throughput, and a summary table at the end.
ATTACK_SECONDS ?= 60
attacks: build
	ATTACK_SECONDS=$(ATTACK_SECONDS) $(CARGO) test --release -p ipoe-tests --test lab_attacks -- --test-threads=1 --nocapture
