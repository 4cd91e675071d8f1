#!/usr/bin/env bash
# Screenshots of every console page, at 1280x800 and at a phone's 390x844, into screenshots/
# (git-ignored), with data seeded so no page is empty: jobs dispatched onto three queues under a
# throwaway Redis prefix, e-mail jobs failed by a real worker (failed_jobs in a temporary SQLite file),
# a worker left running for the Workers page and the history charts, one queue paused.
# Needs Redis on 127.0.0.1:6379 and Chromium (`apt-get install -y chromium`); builds the binary.
# Deletes its Redis keys and stops what it started when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin="$PWD/target/debug/defer-worker"
out="$PWD/screenshots"
mkdir -p "$out"
tmp="$(mktemp -d)"
prefix="dw_shots_$$_"
port="${SCREENSHOT_PORT:-19191}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

export REDIS_HOST=127.0.0.1 REDIS_PORT=6379 REDIS_PREFIX="$prefix" CACHE_DRIVER=redis APP_NAME=RestroSaaS
unset DB_CONNECTION DATABASE_URL DEFER_WORKER_CONSOLE_TOKEN DEFER_WORKER_CONSOLE_TOKEN_FILE DEFER_WORKER_CONSOLE_READ_TOKEN
failed_db="$tmp/failed.sqlite"
cat >"$tmp/work.toml" <<'TOML'
[actions."*"]
kind = "log"
sleep_ms = 40

[actions.email_notification]
kind = "fail"
message = "SMTP 451 4.7.1 Try again later (mail to jane.doe@example.com)"
TOML

dispatch() { # action queue count data
  for _ in $(seq 1 "$3"); do
    "$bin" dispatch "$1" --queue "$2" --data "$4" >/dev/null 2>&1
  done
}
# History and failed jobs: a worker drains these (the e-mails fail), then stays up.
dispatch email_notification emails 6 '{"order_id":1042,"customer_email":"jane.doe@example.com","customer_mobile":"+919876543210"}'
dispatch analytics_tracking analytics 40 '{"order_id":1042,"vendor_id":7}'
dispatch whatsapp_notification whatsapp 25 '{"order_id":1042,"phone":"+919876543210"}'
"$bin" --config "$tmp/work.toml" work --queue whatsapp,analytics,emails,default --failed-db "$failed_db" \
  2>"$tmp/worker.log" & pids+=($!)
for _ in $(seq 1 100); do
  [ "$(redis-cli -h 127.0.0.1 llen "${prefix}queues:analytics")" = 0 ] \
    && [ "$(redis-cli -h 127.0.0.1 llen "${prefix}queues:emails")" = 0 ] && break
  sleep 0.2
done
sleep 6 # one fleet beat flushes the history
# Waiting work for the queue table, and a paused queue.
"$bin" pause redis:cache >/dev/null
dispatch cache_warming cache 12 '{"vendor_id":7}'
dispatch whatsapp_notification whatsapp-bulk 30 '{"order_id":7}'

"$bin" console --http "127.0.0.1:$port" --queue whatsapp,whatsapp-bulk,analytics,emails,cache,default \
  --failed-db "$failed_db" 2>"$tmp/console.log" & pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
uuid="$(curl -fs "http://127.0.0.1:$port/api/failed" | sed -n 's/.*"uuid":"\([^"]*\)".*/\1/p' | head -n1)"

chromium_bin="$(command -v chromium || command -v chromium-browser)"
shoot() { # name path width height
  "$chromium_bin" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --window-size="$3,$4" --screenshot="$out/$1-$3.png" "http://127.0.0.1:$port$2" >/dev/null 2>&1
}
for size in "1280 800" "390 844"; do
  set -- $size
  shoot overview / "$1" "$2"
  shoot workers /workers "$1" "$2"
  shoot failed /failed "$1" "$2"
  shoot failed-job "/failed/$uuid" "$1" "$2"
  shoot queues /queues "$1" "$2"
  shoot confirm-clear /queues/whatsapp-bulk/clear "$1" "$2"
done
ls -l "$out"
