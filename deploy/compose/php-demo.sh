#!/bin/bash
# Runs in the `php` service of compose.yaml, from /work (fixtures/ is mounted there): dispatches demo
# jobs through real Laravel, exactly as the app does, then becomes the PHP worker of the hand-off queue.
#
#   docker compose -f deploy/compose/compose.yaml run --rm -e DEMO_DISPATCH_ONLY=1 php   # dispatch again
#
# DEMO_DISPATCH_ONLY=1: dispatch and exit, without starting the worker. DEMO_ROOT: where fixtures/ is
# (default /work). scripts/check-deploy.sh runs it so against a local Redis.
set -euo pipefail
cd "${DEMO_ROOT:-/work}"
artisan=(php fixtures/laravel/artisan)

echo "php-demo: tables"
"${artisan[@]}" harness:schema

echo "php-demo: dispatching"
# deferWhatsApp(['order_id' => 1]) ten times: queue whatsapp, run by defer-worker (demo mode: logged).
"${artisan[@]}" harness:dispatch whatsapp_notification --data='{"order_id":1}' --queue=whatsapp --count=10 >/dev/null
# deferEmail: queue emails; the customer's and the restaurant's invoice mails appear in Mailpit.
"${artisan[@]}" harness:dispatch --via=deferEmail --data='{"order_id":2}' >/dev/null
# deferAnalytics: queue analytics; the vendor's realtime metrics in the Redis cache store.
"${artisan[@]}" harness:dispatch --via=deferAnalytics --data='{"order_id":1}' --count=5 >/dev/null
# deferCacheWarming: delayed 5 s, lands on `default` (the app's later() bug, kept).
"${artisan[@]}" harness:dispatch --via=deferCacheWarming --data='{"vendor_id":2}' >/dev/null
# An action nobody handles: the `*` rule forwards it to PHP.
"${artisan[@]}" harness:dispatch unknown_action --data='{"x":1}' >/dev/null
# Foreign jobs (not DeferredJob): defer-worker hands them, unchanged, to the `php` queue below.
"${artisan[@]}" harness:dispatch-foreign mailable --order-id=7 >/dev/null
"${artisan[@]}" harness:dispatch-foreign closure >/dev/null
echo "php-demo: dispatched; watch: docker compose logs -f defer-worker, http://localhost:8025, http://localhost:9090/metrics"

[ "${DEMO_DISPATCH_ONLY:-}" = 1 ] && exit 0

# The PHP worker for what defer-worker hands off (as in production: queue:work --queue=php).
exec "${artisan[@]}" queue:work redis --queue=php --tries=3 --sleep=3
