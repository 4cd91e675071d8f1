#!/usr/bin/env bash
# End-to-end benchmark of defer-worker against the real Laravel worker on this machine.
# Needs what the tests need (php + Debian's Laravel, Redis on 127.0.0.1:6379; `.ci/run` installs them).
#   deploy/bench/run.sh                  # 100 000 jobs x 3 runs, medians and ratios
#   deploy/bench/run.sh --jobs 20000 --runs 1
#   deploy/bench/run.sh --skip-php       # defer-worker and the Redis-bound limit only
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v php >/dev/null || { echo "bench: php not found (run .ci/run once, or apt-get install php-cli php-laravel-framework php-redis php-sqlite3)"; exit 1; }
redis-cli -h 127.0.0.1 ping >/dev/null || { echo "bench: Redis is not answering on 127.0.0.1:6379"; exit 1; }
cargo build --release --locked --quiet
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(php -r 'echo "PHP ".PHP_VERSION;'), Laravel $(dpkg-query -W -f='${Version}' php-laravel-framework 2>/dev/null || echo '?'), $(redis-server --version | awk '{print $3}')"
exec python3 deploy/bench/bench.py "$@"
