#!/usr/bin/env bash
# End-to-end benchmark of defer-worker against the real Laravel worker on this machine: two pairs, "as
# deployed" (both writing their logs as in production) and "quiet" (PHP's job returns at once,
# defer-worker's logging off), interleaved run by run, medians, ratios and the Redis-bound limit.
# Needs what the tests need (php + Debian's Laravel, redis-server; `.ci/run` installs them); the bench
# runs its own private redis-server.
#   deploy/bench/run.sh                  # 100 000 jobs x 3 runs
#   deploy/bench/run.sh --jobs 5000 --runs 3 --io-jobs 0
#   deploy/bench/run.sh --skip-php       # defer-worker and the Redis-bound limit only
#   deploy/bench/run.sh --soak 600       # steady 3 000 jobs/s for 10 min: RSS and p99 pickup every 30 s
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v php >/dev/null || { echo "bench: php not found (run .ci/run once, or apt-get install php-cli php-laravel-framework php-redis php-sqlite3)"; exit 1; }
command -v redis-server >/dev/null || { echo "bench: redis-server not found (apt-get install redis-server)"; exit 1; }
# Two builds, the example first: an example compiles the crate with its dev-dependencies' features, so
# built together the worker would be another binary than the one shipped (and miss link/hot-symbols.txt).
cargo build --release --locked --quiet --example redis_limit
cargo build --release --locked --quiet --bin defer-worker
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(php -r 'echo "PHP ".PHP_VERSION;'), Laravel $(dpkg-query -W -f='${Version}' php-laravel-framework 2>/dev/null || echo '?'), $(redis-server --version | awk '{print $3}')"
exec python3 deploy/bench/bench.py "$@"
