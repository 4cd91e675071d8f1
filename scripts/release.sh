#!/usr/bin/env bash
# Release artefacts in dist/, for servers with no Rust toolchain (README "Install"):
#   dist/defer-worker-<version>-x86_64-unknown-linux-musl   the static binary (no shared library at all)
#   dist/defer-worker_<version>-1_amd64.deb                 that binary in /usr/bin, the systemd units
#                                                           (installed, not enabled), an example
#                                                           /etc/defer-worker/defer-worker.toml (conffile),
#                                                           a `defer-worker` system user, docs, a man page
#   dist/SHA256SUMS                                         for `sha256sum -c`
# then scripts/check-release.sh on them.
#
#   scripts/release.sh              # ~9 min from cold on 2 cores (two links), under 2 min after a commit
#   scripts/release.sh --no-check   # build only
#
# Installs what it lacks when run as root: the Rust target (rustup), Debian's musl-tools (musl-gcc, for
# the C in ring and SQLite), help2man (the man page), and cargo-deb from crates.io. Not part of the test
# command (scripts/test.sh). With SOURCE_DATE_EPOCH set, --version's build date and the .deb's file
# times are that time (reproducible builds).
set -euo pipefail
cd "$(dirname "$0")/.."

check=1
for arg in "$@"; do
  case $arg in
    --no-check) check=0 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "release: unknown argument $arg" >&2; exit 2 ;;
  esac
done

target=x86_64-unknown-linux-musl
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
root=$(id -u)
need_root() { [ "$root" -eq 0 ] || { echo "release: $1 is missing (as root this script installs it)" >&2; exit 1; }; }

# Tools.
if ! rustup target list --installed | grep -qx "$target"; then
  echo "release: rustup target add $target"
  rustup target add "$target"
fi
apt_missing=()
command -v musl-gcc >/dev/null 2>&1 || apt_missing+=(musl-tools)
command -v help2man >/dev/null 2>&1 || apt_missing+=(help2man)
command -v dpkg-deb >/dev/null 2>&1 || apt_missing+=(dpkg)
command -v file >/dev/null 2>&1 || apt_missing+=(file)
command -v c++filt >/dev/null 2>&1 || apt_missing+=(binutils)
if [ ${#apt_missing[@]} -gt 0 ]; then
  need_root "${apt_missing[*]}"
  echo "release: apt-get install ${apt_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "release: cargo install cargo-deb (about 1 min)"
  cargo install --locked cargo-deb
fi

# The commit --version will name. SOURCE_DATE_EPOCH, when the caller sets it (e.g. to the commit's time,
# `git log -1 --format=%ct`), becomes --version's build date and the .deb's file times; it is not set
# here, as C build scripts (cc) track it: a new value rebuilds ring, SQLite and what depends on them.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=0
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "release: WARNING: uncommitted changes; --version will name commit $commit, which does not hold them" >&2
  dirty=1
fi

# The static binary. No debug info (as in the container image); symbols stay, for readable backtraces.
# musl-gcc compiles the C of ring and libsqlite3-sys against musl; the link is rustc's static-pie.
export CC_x86_64_unknown_linux_musl=musl-gcc
# The static binary's allocator is mimalloc (musl's own serialises threads on one lock: half the drain
# throughput, measured). Its arenas commit memory lazily here: eager commit cost 7 MB more peak RSS in a drain.
export CFLAGS_x86_64_unknown_linux_musl="-DMI_DEFAULT_ARENA_EAGER_COMMIT=0"
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo
target_dir=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/$target/release/defer-worker
# Release link layout (build.rs, link/README.md): LLD and DT_RELR apply to this target as they are; the
# function order needs link/hot-symbols.txt's names for this target, whose crate hashes differ from the
# list's (x86_64-unknown-linux-gnu): they are matched by demangled name, hash left out, on the symbols of
# a first link, then the binary is linked again with that list. The list is kept in the target directory,
# so the next release needs a second pass only if the set of functions has changed.
order=$target_dir/hot-symbols.$target.txt
order_for() { # binary -> list for it, on stdout
  local key='s/\[[0-9a-f]+\]//g; s/::h[0-9a-f]{16}$//'
  nm --defined-only "$1" | awk '{print $NF}' | sort -u >"$order.syms"
  paste <(c++filt <"$order.syms" | sed -E "$key") "$order.syms" >"$order.bin"
  paste <(c++filt <link/hot-symbols.txt | sed -E "$key") link/hot-symbols.txt >"$order.list"
  # In the list's order; a name with more instances in the binary than in the list (generic code) is
  # left out rather than guessed.
  awk -F'\t' 'NR == FNR {n[$1]++; m[$1] = ($1 in m) ? m[$1] "\n" $2 : $2; next}
               {l[$1]++; k[++N] = $1}
               END {for (i = 1; i <= N; i++) if ((k[i] in n) && n[k[i]] <= l[k[i]]) print m[k[i]]}' \
    "$order.bin" "$order.list" | awk '!seen[$0]++'
  rm -f "$order.syms" "$order.bin" "$order.list"
}
[ -s "$order" ] && export DEFER_WORKER_SYMBOL_ORDER=$order
echo "release: cargo build --release --locked --target $target (defer-worker $version, commit $commit)"
start=$(date +%s)
cargo build --release --locked --target "$target" --bin defer-worker
passes=1
order_for "$bin" >"$order.new"
if cmp -s "$order.new" "$order" && [ -n "${DEFER_WORKER_SYMBOL_ORDER:-}" ]; then
  rm "$order.new"
else
  passes=2
  mv "$order.new" "$order"
  export DEFER_WORKER_SYMBOL_ORDER=$order
  echo "release: linking again with the function order for $target ($(wc -l <"$order") functions)"
  cargo build --release --locked --target "$target" --bin defer-worker
fi
build_s=$(( $(date +%s) - start ))

mkdir -p dist
rm -f dist/defer-worker-* dist/defer-worker_*.deb dist/SHA256SUMS
static=defer-worker-$version-$target
install -m 0755 "$bin" "dist/$static"

# What the .deb takes besides the binary (Cargo.toml [package.metadata.deb] points here).
stage=target/deb-staging
rm -rf "$stage"
mkdir -p "$stage/systemd" "$stage/help" "$stage/examples"
# The units of deploy/systemd/ with the package's paths: /usr/bin (not /usr/local/bin) and the conffile
# /etc/defer-worker/defer-worker.toml as --config. Same user (www-data), hardening and timeouts.
for unit in defer-worker.service defer-worker@.service; do
  {
    echo "# Installed by the defer-worker package, not enabled. Change it with \`systemctl edit ${unit/@/@<group>}\`"
    echo "# (a drop-in that upgrades keep), not here: an upgrade replaces this file."
    sed -e 's#/usr/local/bin/defer-worker #/usr/bin/defer-worker --config /etc/defer-worker/defer-worker.toml #' \
        -e 's#^\(\# What it does with each action:\) .*#\1 /etc/defer-worker/defer-worker.toml (--config).#' \
        "deploy/systemd/$unit"
  } > "$stage/systemd/$unit"
  if ! grep -q '^ExecStart=/usr/bin/defer-worker --config /etc/defer-worker/defer-worker.toml ' "$stage/systemd/$unit" \
     || grep -q /usr/local/bin "$stage/systemd/$unit"; then
    echo "release: deploy/systemd/$unit: its ExecStart did not take the package's paths" >&2
    exit 1
  fi
done
sed 's#/usr/local/bin/defer-worker #/usr/bin/defer-worker #' deploy/supervisor/defer-worker.conf \
  > "$stage/examples/supervisor-defer-worker.conf"
# --help of the binary and of every subcommand, as text (the man page has the top level).
help_of() {
  local name=$1; shift
  "$bin" "$@" --help > "$stage/help/$name.txt"
  local sub _
  while read -r sub _; do
    [ "$sub" = help ] || help_of "$name-$sub" "$@" "$sub"
  done < <(awk '/^Commands:/ {on=1; next} on && /^$/ {exit} on && /^  [^ ]/ {print $1}' "$stage/help/$name.txt")
}
help_of defer-worker
help2man --no-info --section=1 --name="Laravel queue worker for RestroSaaS (replaces php artisan queue:work)" \
  --version-string="$version" "$bin" > "$stage/defer-worker.1"
cat >> "$stage/defer-worker.1" <<'EOF'
.SH "SEE ALSO"
Every subcommand's \fB\-\-help\fR: /usr/share/doc/defer-worker/help/.
README and deploy notes: /usr/share/doc/defer-worker/.
EOF
gzip -9n "$stage/defer-worker.1"
# Debian's changelog.Debian.gz: one entry for this build, dated by the commit.
maintainer=$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
cat > "$stage/changelog" <<EOF
defer-worker ($version-1) unstable; urgency=medium

  * Built from commit $commit$([ "$dirty" = 1 ] && echo ' (dirty)') by scripts/release.sh.

 -- $maintainer  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
EOF
[ -z "${SOURCE_DATE_EPOCH:-}" ] || touch -d "@$SOURCE_DATE_EPOCH" "$stage"/systemd/* "$stage"/help/* "$stage"/examples/* "$stage"/defer-worker.1.gz "$stage/changelog"

# The .deb: the very binary built above (no second build, no second strip).
deb=defer-worker_${version}-1_amd64.deb
start=$(date +%s)
cargo deb --no-build --no-strip --target "$target" --output "dist/$deb"
deb_s=$(( $(date +%s) - start ))

(cd dist && sha256sum "$static" "$deb" > SHA256SUMS)

echo
echo "release: defer-worker $version, commit $commit$([ "$dirty" = 1 ] && echo ' + uncommitted changes')"
echo "release: cargo build ${build_s} s ($passes pass(es)), cargo deb ${deb_s} s"
echo "release: function order: $(wc -l <"$order") functions of link/hot-symbols.txt's $(wc -l <link/hot-symbols.txt) found in this target's symbols"
for f in dist/*; do
  printf 'release: %-52s %10d bytes (%s MiB)\n' "$f" "$(stat -c %s "$f")" "$(awk -v b="$(stat -c %s "$f")" 'BEGIN {printf "%.1f", b / 1048576}')"
done
if [ "$check" = 1 ]; then
  echo
  exec scripts/check-release.sh
fi
