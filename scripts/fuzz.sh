#!/usr/bin/env bash
# Bounded fuzzing, as CI runs it: every cargo-fuzz target (fuzz/Cargo.toml) for SECONDS each (default 20),
# starting from the seeds and fixtures. Exits non-zero on the first crash, panic, leak or timeout; the
# input that caused it is left in fuzz/artifacts/<target>/ (reproduce: cd fuzz && cargo +nightly fuzz
# run <target> <that file>). Needs the nightly toolchain and cargo-fuzz (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-20}"
case "$secs" in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS per target]" >&2; exit 2 ;; esac

# Target, then its seed directories.
targets=(
  "unserialize seeds/unserialize"
  "decode ../fixtures/payloads"
  "envelope ../fixtures/payloads"
  "decrypt seeds/decrypt"
)
start=$(date +%s)
cargo +nightly fuzz build
for t in "${targets[@]}"; do
  read -r name seeds <<<"$t"
  extra=()
  [ "$name" = unserialize ] && extra=(-dict=unserialize.dict)
  mkdir -p "corpus/$name" artifacts
  log="artifacts/$name.log"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a bounded parser stays far below.
  if ! cargo +nightly fuzz run "$name" "corpus/$name" $seeds -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 "${extra[@]}" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $name FAILED (full log: fuzz/$log)" >&2
    exit 1
  fi
  echo "fuzz: $name ${secs}s: $(grep -E 'DONE|stat::number_of_executed_units' "$log" | tr -s ' \t' ' ' | head -n 2 | tr '\n' ' ')"
done
echo "fuzz: all ${#targets[@]} targets clean in $(( $(date +%s) - start ))s"
