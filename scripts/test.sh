#!/usr/bin/env bash
# The test command: formatting, lints, and every test (unit, fixture replay, real Redis / MariaDB /
# PostgreSQL / SQLite / Laravel PHP integration), cargo deny (licences, bans, sources), and bounded fuzzing.
# Needs the services, PHP packages and tools (cargo-deny, cargo-fuzz, nightly) .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# deploy/: systemd, Supervisor, Dockerfiles, compose, Kubernetes/KEDA, checked without a Docker engine,
# every command line and shipped config against the binary just built.
DEFER_WORKER_BIN=target/debug/defer-worker scripts/check-deploy.sh --strict
# Offline checks only: advisories need the RustSec database from GitHub (docs/security.md).
cargo deny --locked --offline check --hide-inclusion-graph licenses bans sources
# Every fuzz target for FUZZ_SECONDS (default 15) each: ~4.5 min from a cold build (2m50 of it building), ~1m40 warm.
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
