#!/usr/bin/env bash
# Checks the artefacts scripts/release.sh left in dist/ (it runs this at its end), and prints every
# figure (sizes) for release notes:
#   - SHA256SUMS verifies;
#   - the static binary: no program interpreter, no shared library (`file`, `ldd`, `readelf`), runs with
#     an empty environment, `--version` names this version, commit and target, `--help` of every
#     subcommand works; it decodes a fixture, and with Redis on 127.0.0.1:6379 it works a real job into
#     a failed_jobs SQLite file (tokio, Redis, the bundled SQLite's C), lists it back, and runs `check`;
#   - the .deb: control fields, conffiles, maintainer scripts (user created, units neither enabled nor
#     started), every file where it belongs; unpacked into a temp root: the same binary as the static
#     one, the packaged units verified by systemd-analyze with their command lines parsed by the binary,
#     the packaged defer-worker.toml loaded by `defer-worker config`.
#   - with --install: the .deb really installed, upgraded (reinstalled), removed and purged in a throwaway
#     Debian root (debootstrap, cached in ~/.cache/defer-worker/release-root; the first run downloads a
#     minimal bookworm, a few minutes; needs root): user created, units present and disabled, conffile
#     kept on remove, user and conffile gone on purge.
#
#   scripts/check-release.sh [--install]     # exit 0: all good; 1: a problem (each is printed)
set -euo pipefail
cd "$(dirname "$0")/.."

install_test=0
for arg in "$@"; do
  case $arg in
    --install) install_test=1 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-release: unknown argument $arg" >&2; exit 2 ;;
  esac
done

target=x86_64-unknown-linux-musl
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
static=dist/defer-worker-$version-$target
deb=dist/defer-worker_${version}-1_amd64.deb
fails=0
ok() { echo "  ok    $*"; }
bad() { echo "  FAIL  $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
has() { grep -qE -- "$2" <<<"$1"; }
size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$static" "$deb" dist/SHA256SUMS; do
  [ -f "$f" ] || { echo "check-release: $f is missing: run scripts/release.sh first" >&2; exit 1; }
done

echo "== checksums"
check "sha256sum -c dist/SHA256SUMS" bash -c 'cd dist && sha256sum --quiet -c SHA256SUMS'

echo "== static binary: $static"
f=$(file -b "$static"); echo "  file: $f"
l=$(ldd "$static" 2>&1 || true); echo "  ldd: $(echo "$l" | tr -s ' \t\n' ' ')"
check "file says static" has "$f" 'static-pie linked|statically linked'
check "ldd finds no shared library" has "$l" 'not a dynamic executable|statically linked'
check "no program interpreter (PT_INTERP)" bash -c "! readelf -lW '$static' | grep -q INTERP"
check "no DT_NEEDED library" bash -c "! readelf -dW '$static' | grep -q NEEDED"
v=$(env -i "$PWD/$static" --version 2>&1) || true
while IFS= read -r line; do echo "  --version: $line"; done <<<"$v"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
check "--version: defer-worker $version" has "$v" "^defer-worker $version\$"
check "--version: commit $commit (HEAD)" has "$v" "^commit: $commit\$"
check "--version: build date" has "$v" '^built: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'
check "--version: target $target" has "$v" "^target: $target\$"
check "--version: link layout" has "$v" '^link: symbol ordering: (yes|no), DT_RELR: (yes|no)$'
check "-V is one line" test "$("$static" -V)" = "defer-worker $version"
subs=$("$static" --help | awk '/^Commands:/ {on=1; next} on && /^$/ {exit} on && /^  [^ ]/ && $1 != "help" {print $1}')
for s in "" $subs; do
  # shellcheck disable=SC2086 # $s is one word or none
  check "defer-worker${s:+ $s} --help" "$static" $s --help
done
check "decode fixtures/payloads/whatsapp.json" "$static" decode fixtures/payloads/whatsapp.json
if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  prefix="check_release_$$_"
  printf '[actions."*"]\nkind = "fail"\n' >"$tmp/fail.toml"
  run() { env -i REDIS_PREFIX="$prefix" "$PWD/$static" --config "$tmp/fail.toml" "$@"; }
  check "dispatch a job onto Redis" run dispatch smoke --queue=check_release --data='{"n":1}'
  check "work it (fails by config) into SQLite" run work --queue=check_release --tries=1 --stop-when-empty --failed-db="$tmp/failed.sqlite"
  check "failed list shows it" has "$(run failed list --failed-db="$tmp/failed.sqlite" 2>&1)" 'check_release'
  # The preflight runs from the static binary too (exit 1 is expected here: no app database or mail).
  pre=$(run check --queue=check_release --failed-db="$tmp/failed.sqlite" 2>/dev/null || true)
  check "check: redis.connect passes" has "$pre" '^✓ redis\.connect '
  redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 DEL >/dev/null
else
  echo "  skip  a real job (no Redis on 127.0.0.1:6379)"
fi
echo "  size: $(size "$static") bytes ($(mib "$(size "$static")"))"

echo "== .deb: $deb"
info=$(dpkg-deb --info "$deb")
echo "$info" | sed -n '/^ Package:/,$p' | sed 's/^ /  /'
field() { dpkg-deb --field "$deb" "$1"; }
check "Package: defer-worker" test "$(field Package)" = defer-worker
check "Version: $version-1" test "$(field Version)" = "$version-1"
check "Architecture: amd64" test "$(field Architecture)" = amd64
check "Depends: adduser (nothing else: static binary)" test "$(field Depends)" = adduser
mkdir "$tmp/control"
dpkg-deb --control "$deb" "$tmp/control"
check "conffiles: /etc/defer-worker/defer-worker.toml" grep -qx /etc/defer-worker/defer-worker.toml "$tmp/control/conffiles"
check "postinst creates the system user" grep -q 'adduser --system --quiet --group --no-create-home --home /nonexistent' "$tmp/control/postinst"
check "postinst: no login shell" grep -q 'shell /usr/sbin/nologin' "$tmp/control/postinst"
check "postinst leaves the units disabled (cargo-deb's don't-enable snippet)" \
  bash -c "grep -q 'deb-systemd-helper debian-installed' '$tmp/control/postinst' && ! grep -q 'new installations run enable' '$tmp/control/postinst'"
check "postinst starts nothing (try-restart of a running unit on upgrade only)" \
  bash -c "grep -q 'try-restart' '$tmp/control/postinst' && ! grep -v '^[[:space:]]*echo' '$tmp/control/postinst' | grep -Eq '_dh_action=start|deb-systemd-invoke start|systemctl (--system )?(start|enable)'"
check "postrm removes the user on purge" grep -q 'deluser --system' "$tmp/control/postrm"
for s in postinst prerm postrm; do
  check "$s: sh -n" sh -n "$tmp/control/$s"
done
contents=$(dpkg-deb --contents "$deb")
echo "$contents" | awk '$NF !~ /\/$/ {printf "  %s %s %9d %s\n", $1, $2, $3, $NF}'
want() { has "$contents" "^$1 +(root/root|0/0) +[0-9]+ .* \\./$2\$"; }
check "/usr/bin/defer-worker (0755)" want -rwxr-xr-x usr/bin/defer-worker
for f in usr/lib/systemd/system/defer-worker.service usr/lib/systemd/system/defer-worker@.service \
  etc/defer-worker/defer-worker.toml usr/share/doc/defer-worker/README.md usr/share/doc/defer-worker/deploy.md \
  usr/share/doc/defer-worker/copyright usr/share/doc/defer-worker/changelog.Debian.gz \
  usr/share/doc/defer-worker/help/defer-worker.txt \
  usr/share/doc/defer-worker/help/defer-worker-work.txt usr/share/doc/defer-worker/help/defer-worker-failed-retry.txt \
  usr/share/doc/defer-worker/examples/supervisor-defer-worker.conf usr/share/man/man1/defer-worker.1.gz; do
  check "/$f (0644)" want -rw-r--r-- "$f"
done
check "nothing under /usr/local" bash -c "! grep -q ' ./usr/local' <<<'$contents'"

echo "== .deb unpacked (dpkg -x) into a temp root"
root=$tmp/root
dpkg-deb -x "$deb" "$root"
check "the packaged binary is the static one" cmp "$root/usr/bin/defer-worker" "$static"
check "it runs from there: --version" "$root/usr/bin/defer-worker" --version
helps=$(find "$root/usr/share/doc/defer-worker/help" -name '*.txt' | wc -l)
check "help files for every subcommand ($helps)" test "$helps" -ge "$(( $(wc -w <<<"$subs") + 1 ))"
check "man page: roff, named defer-worker(1)" bash -c "zcat '$root/usr/share/man/man1/defer-worker.1.gz' | grep -q '^\\.TH DEFER-WORKER \"1\"'"
check "packaged defer-worker.toml loads (defer-worker config)" \
  env -i "$root/usr/bin/defer-worker" --config "$root/etc/defer-worker/defer-worker.toml" config --json
units=$root/usr/lib/systemd/system
for u in defer-worker.service defer-worker@.service; do
  exec_start=$(sed -n 's/^ExecStart=//p' "$units/$u")
  check "$u: ExecStart=/usr/bin/defer-worker --config /etc/defer-worker/defer-worker.toml" \
    has "$exec_start" '^/usr/bin/defer-worker --config /etc/defer-worker/defer-worker.toml '
  check "$u: User=www-data (as deploy/systemd)" grep -qx 'User=www-data' "$units/$u"
  check "$u: same lines as deploy/systemd/$u but the package's paths" bash -c "diff <(grep -v '^#' 'deploy/systemd/$u') <(grep -v '^#' '$units/$u' | sed 's#/usr/bin/defer-worker --config /etc/defer-worker/defer-worker.toml #/usr/local/bin/defer-worker #')"
  # The command line through the real CLI (as scripts/check-deploy.sh does for deploy/): systemd's
  # variables and specifiers given example values, the config path moved into the temp root.
  # shellcheck disable=SC2016 # systemd's ${VAR} and $VAR, literally
  line=$(sed -e 's/\${DEFER_WORKER_QUEUES}/whatsapp/; s/\${DEFER_WORKER_HTTP}/127.0.0.1:9091/; s/\$DEFER_WORKER_ARGS/--concurrency=32/; s/%i/whatsapp/g' \
    -e "s#^/usr/bin/defer-worker --config /etc/#$root/usr/bin/defer-worker --config $root/etc/#" <<<"$exec_start")
  # shellcheck disable=SC2086 # a command line, split as systemd splits it (no quotes in these)
  check "$u: its command line parses (--help)" $line --help
  # systemd-analyze verify needs ExecStart's binary to exist: point it at the unpacked one.
  mkdir -p "$tmp/verify"
  sed "s#^ExecStart=/usr/bin/defer-worker #ExecStart=$root/usr/bin/defer-worker #" "$units/$u" >"$tmp/verify/$u"
  if command -v systemd-analyze >/dev/null 2>&1; then
    vu=$u; [ "$u" = defer-worker@.service ] && vu=defer-worker@whatsapp.service && cp "$tmp/verify/$u" "$tmp/verify/$vu"
    out=$(cd "$tmp/verify" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$PWD/$vu" 2>&1 || echo "exit $?")
    out=$(grep -v 'AssertPathExists\|redis-server.service\|mariadb.service' <<<"$out" || true)
    check "$u: systemd-analyze verify${out:+ ($out)}" test -z "$out"
  else
    echo "  skip  $u: systemd-analyze verify (no systemd-analyze)"
  fi
done

if [ "$install_test" = 1 ]; then
  echo "== .deb installed in a throwaway Debian root (chroot)"
  [ "$(id -u)" -eq 0 ] || { echo "check-release: --install needs root (chroot)" >&2; exit 1; }
  base=${XDG_CACHE_HOME:-$HOME/.cache}/defer-worker/release-root
  if [ ! -x "$base/usr/bin/dpkg" ]; then
    command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    mirror=$(sed -n 's/^URIs: *//p; s/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\) .*/\2/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)
    echo "  debootstrap --variant=minbase bookworm from ${mirror:-the default mirror} (once)"
    rm -rf "$base"
    debootstrap --variant=minbase --include=adduser,systemd bookworm "$base" ${mirror:+"$mirror"} >"$tmp/debootstrap.log" 2>&1 \
      || { tail -n 20 "$tmp/debootstrap.log"; bad "debootstrap"; exit 1; }
  fi
  chroot_root=$tmp/chroot
  cp -a "$base" "$chroot_root"
  cp "$deb" "$chroot_root/tmp/"
  in_root() { chroot "$chroot_root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
  d=/tmp/$(basename "$deb")
  check "dpkg -i" in_root dpkg -i "$d"
  pw=$(in_root getent passwd defer-worker || true)
  echo "  getent passwd defer-worker: $pw"
  IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
  check "user defer-worker: system uid, no login shell, no home" \
    test -n "$pw" -a "${uid:-99999}" -lt 1000 -a "$shell" = /usr/sbin/nologin -a "$home" = /nonexistent
  check "defer-worker.service installed, disabled" test "$(in_root systemctl is-enabled defer-worker.service 2>&1)" = disabled
  check "no enablement symlink" bash -c "! ls '$chroot_root'/etc/systemd/system/*/defer-worker* 2>/dev/null"
  check "installed binary runs" in_root /usr/bin/defer-worker --version
  echo "# edited" >>"$chroot_root/etc/defer-worker/defer-worker.toml"
  check "dpkg -i again (upgrade path)" in_root dpkg -i --force-confold "$d"
  check "edited conffile kept" grep -q '^# edited' "$chroot_root/etc/defer-worker/defer-worker.toml"
  check "dpkg --remove" in_root dpkg --remove defer-worker
  check "removed: binary gone" test ! -e "$chroot_root/usr/bin/defer-worker"
  check "removed: conffile kept" test -f "$chroot_root/etc/defer-worker/defer-worker.toml"
  check "dpkg --purge" in_root dpkg --purge defer-worker
  check "purged: conffile and /etc/defer-worker gone" test ! -e "$chroot_root/etc/defer-worker"
  check "purged: user and group gone" bash -c "! chroot '$chroot_root' getent passwd defer-worker && ! chroot '$chroot_root' getent group defer-worker"
fi

echo
echo "check-release: static binary $(size "$static") bytes ($(mib "$(size "$static")")), .deb $(size "$deb") bytes ($(mib "$(size "$deb")")), installed size $(field Installed-Size) KiB"
if [ "$fails" -gt 0 ]; then
  echo "check-release: $fails problem(s)"
  exit 1
fi
echo "check-release: all good"
