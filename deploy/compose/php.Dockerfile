# PHP side of the local trial: Debian's PHP 8.2 and Laravel 8.83 (php-laravel-framework, no composer),
# the same packages the tests use. It runs fixtures/laravel (the harness app that dispatches through the
# app's own defer() helpers), mounted from the repository.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       php-cli php-laravel-framework php-redis php-mysql php-sqlite3 php-mbstring php-xml \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /work
# www-data (uid 33 in Debian): HARNESS_STORAGE in /tmp is all it writes.
USER 33:33
CMD ["bash", "/work/php-demo.sh"]
