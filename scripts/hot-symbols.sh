#!/usr/bin/env bash
# Regenerates link/hot-symbols.txt: the functions a working defer-worker runs, which build.rs asks the
# linker to place side by side (see link/README.md). Run it after a toolchain or dependency upgrade, or
# when deploy/bench/run.sh says the list is stale. Needs valgrind and what the benchmark needs (php +
# Debian's Laravel, Redis, MariaDB: `.ci/run` installs them). Takes about two minutes.
#   scripts/hot-symbols.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "hot-symbols: valgrind not found (apt-get install valgrind)"; exit 1; }
cargo build --release --locked --quiet
bin=target/release/defer-worker
work=$(mktemp -d)
prefix="dwhot_$$_"
# The scratch directory and the failures run's Redis keys go, whatever happens.
trap 'rm -rf "$work"; redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 DEL >/dev/null' EXIT
export DEFER_WORKER_WRAP="valgrind --tool=callgrind --demangle=no --dump-instr=no --compress-strings=no --callgrind-out-file=$work/cg.%p"

# 1. The benchmark's runs under callgrind: a drain (log kind), an idle worker woken by pushes and stopped
#    by SIGTERM (JSON logs), and the whatsapp kind against the Meta stub with the app's MariaDB database.
python3 deploy/bench/bench.py --skip-php --jobs 2000 --runs 1 --samples 30 --io-jobs 200 --io-concurrency 64 >/dev/null

# 2. What the benchmark does not do: every fixture payload (encrypted ones, other job classes handed to
#    PHP, delayed and tuned ones), malformed payloads, an action that fails, text logs at info.
queue="${prefix}queues:hot"
for f in fixtures/payloads/*.json; do
    redis-cli -h 127.0.0.1 RPUSH "$queue" "$(cat "$f")" >/dev/null
done
for bad in 'not json' '{"uuid":"3f0c","job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"command":"O:5:"}}' '{}'; do
    redis-cli -h 127.0.0.1 RPUSH "$queue" "$bad" >/dev/null
done
cat >"$work/hot.toml" <<'EOF'
[actions."*"]
kind = "log"
[actions.analytics_tracking]
kind = "fail"
message = "profiling a failure"
EOF
# The fixtures' test key (fixtures/README.md), so their encrypted payloads are decrypted.
APP_KEY="base64:ZGVmZXItd29ya2VyLWZpeHR1cmUtVEVTVC1rZXktMzI=" \
REDIS_PREFIX="$prefix" DEFER_WORKER_LOG=info \
    $DEFER_WORKER_WRAP "$bin" --config "$work/hot.toml" work --queue=hot --tries=1 --stop-when-empty \
    --handoff-queue=hot_php --failed-db "$work/failed.sqlite" 2>"$work/hot.log" \
    || { tail -20 "$work/hot.log"; exit 1; }

# 3. Keep the functions of our binary (callgrind also names libc's and the loader's), grouped by the first
#    run that used them in the order drain, idle, failures, whatsapp: the drain's code is one block, what
#    the idle worker adds is next to it, and so on. Sorted by name within a group.
nm --defined-only "$bin" | awk '$2 ~ /^[tTW]$/ {print $3}' | sort -u >"$work/text"
rank=0
for queue in bench lat hot bench_io; do
    profile=$(grep -l -- "^cmd: .* --queue=$queue " "$work"/cg.* | head -1)
    [ -n "$profile" ] || { echo "hot-symbols: no callgrind profile of the --queue=$queue run"; exit 1; }
    grep '^fn=' "$profile" | cut -c4- | sort -u | sed "s/^/$rank /"
    rank=$((rank + 1))
done | sort -k2,2 -k1,1n | awk '$2 != last {print $2, $1; last = $2}' | sort >"$work/ran"
join "$work/ran" "$work/text" | sort -k2,2n -k1,1 | cut -d' ' -f1 >link/hot-symbols.txt
bytes=$(nm -S --defined-only "$bin" | awk 'NR==FNR {hot[$1]; next} ($4 in hot) {s += strtonum("0x" $2)} END {print s}' link/hot-symbols.txt -)
echo "hot-symbols: $(wc -l <link/hot-symbols.txt) functions, $((bytes / 1024)) KiB of $(($(size -A "$bin" | awk '$1 == ".text" {print $2}') / 1024)) KiB .text -> link/hot-symbols.txt"
