#!/usr/bin/env bash
# Regenerates fixtures/payloads/* and fixtures/manifest.json from scratch with real Laravel 8.83
# (Debian's php-laravel-framework, driven through fixtures/laravel/artisan). Needs PHP 8.2 with phpredis
# and pdo_sqlite, and Redis (REDIS_HOST/REDIS_PORT, default 127.0.0.1:6379; DB 0).
#
# It only touches Redis keys under a private prefix (defer_fixture_<pid>_) and deletes them at the end.
# APP_KEY below is a TEST key written in this file on purpose: never use it anywhere real.
# Randomness that cannot be fixed: payload uuid, id, encryption IVs (and so the ciphertexts), the closure's
# object hash. Time is frozen inside the generator (App\Harness\Corpus::NOW), so dates and scores are stable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where payloads/ and manifest.json go: the committed corpus by default; tests regenerate into a temp dir.
DEST="${FIXTURES_OUT:-$ROOT/fixtures}"
ARTISAN="$ROOT/fixtures/laravel/artisan"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/defer-fixtures.XXXXXX")"
OUT="$WORK/payloads"
STATE="$WORK/state"
mkdir -p "$OUT" "$STATE" "$WORK/storage"

# Test keys (base64 of "defer-worker-fixture-TEST-key-32" and "fixture-TEST-k16").
KEY_256='base64:ZGVmZXItd29ya2VyLWZpeHR1cmUtVEVTVC1rZXktMzI='
KEY_128='base64:Zml4dHVyZS1URVNULWsxNg=='

# A clean, explicit environment: nothing from the caller's Laravel settings leaks in.
unset HARNESS_VARIANT HARNESS_DONE_KEY HARNESS_SLEEP REDIS_URL REDIS_QUEUE REDIS_CLIENT REDIS_PASSWORD \
      CACHE_DRIVER CACHE_PREFIX DB_HOST DB_PORT DB_USERNAME DB_PASSWORD DB_SQLITE_DATABASE QUEUE_FAILED_DRIVER
export APP_NAME=RestroSaaS APP_ENV=testing APP_KEY="$KEY_256" APP_CIPHER=AES-256-CBC APP_TIMEZONE=UTC
export QUEUE_CONNECTION=redis REDIS_HOST="${REDIS_HOST:-127.0.0.1}" REDIS_PORT="${REDIS_PORT:-6379}" REDIS_DB=0
export REDIS_PREFIX="defer_fixture_$$_" REDIS_QUEUE_RETRY_AFTER=90
export DB_CONNECTION=sqlite DB_DATABASE="$WORK/fixtures.sqlite"
export HARNESS_STORAGE="$WORK/storage" LOG_CHANNEL=single

artisan() { php "$ARTISAN" "$@"; }
corpus() { artisan harness:corpus "$1" --out="$OUT" --state="$STATE"; }

cleanup() {
    local status=$?
    artisan harness:corpus clear --out="$OUT" --state="$STATE" >/dev/null 2>&1 || true
    if [ "$status" -ne 0 ]; then
        echo "regen-fixtures: FAILED (status $status); work dir kept: $WORK" >&2
        [ -f "$WORK/storage/logs/laravel.log" ] && tail -n 20 "$WORK/storage/logs/laravel.log" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

corpus main

for spec in "AES-256-CBC $KEY_256" "AES-128-CBC $KEY_128" "AES-256-GCM $KEY_256" "AES-128-GCM $KEY_128"; do
    read -r cipher key <<<"$spec"
    HARNESS_VARIANT=encrypted APP_CIPHER="$cipher" APP_KEY="$key" corpus encrypted
done

HARNESS_VARIANT=laravel10 corpus laravel10
HARNESS_VARIANT=laravel12 corpus laravel12

# The retried form: make a job fail with Laravel's own worker, then let queue:retry push it back.
corpus retry-setup
artisan queue:work redis --queue=whatsapp --once --tries=1 >/dev/null 2>&1 || true
artisan queue:failed | grep -q 'App\\Jobs\\DeferredJob' \
    || { echo "regen-fixtures: queue:work did not fail the job into failed_jobs" >&2; exit 1; }
artisan queue:retry all >/dev/null
corpus retry-capture

# Replace the committed corpus only once everything succeeded.
artisan harness:corpus merge --out="$OUT" --state="$STATE" --manifest="$WORK/manifest.json"
rm -rf "$DEST/payloads"
mkdir -p "$DEST/payloads"
cp "$OUT"/*.json "$DEST/payloads/"
cp "$WORK/manifest.json" "$DEST/manifest.json"
echo "regen-fixtures: $(ls "$DEST/payloads" | wc -l) payloads, $DEST/manifest.json written"
