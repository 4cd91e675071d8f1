#!/usr/bin/env bash
# The test command: formatting, lints, and every test (unit, fixture replay, real Redis / MariaDB /
# PostgreSQL / SQLite / Laravel PHP integration). Needs the services and PHP packages .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# deploy/: systemd, Supervisor, Dockerfiles, compose, Kubernetes/KEDA, checked without a Docker engine,
# every command line and shipped config against the binary just built.
DEFER_WORKER_BIN=target/debug/defer-worker scripts/check-deploy.sh --strict
