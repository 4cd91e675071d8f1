#!/usr/bin/env bash
# Validates deploy/ without a Docker engine or a cluster: systemd units (systemd-analyze verify and
# security), the Supervisor program (Supervisor's own parser), the Dockerfiles (hadolint, and the image's
# HEALTHCHECK command run against a local HTTP stub), the compose file (compose-spec JSON schema plus
# path and reference checks), the Kubernetes manifests (kubernetes-validate, strict, against 1.29 and
# 1.37; KEDA objects against KEDA 2.16's CRD models), shell scripts (shellcheck), the MariaDB init SQL
# (loaded into a scratch database when a local MariaDB answers), the PHP demo's dispatch (through
# Debian's Laravel onto a local Redis, when both are here), and the consistency between them
# (drain timeout vs stop timeouts, ports, probes, queue names vs KEDA list keys, labels, references).
# With a defer-worker binary built from this tree (target/debug or target/release newer than the
# sources, or DEFER_WORKER_BIN=path), it also checks every command line against the real CLI and every
# shipped .env / defer-worker.toml with `defer-worker config` (DEFER_WORKER_BIN=none skips this part).
#
#   scripts/check-deploy.sh                 # exit 0: all good; 1: a problem (each is printed)
#   scripts/check-deploy.sh --strict        # a check skipped for want of a tool or service fails too
#                                           # (except the binary part when DEFER_WORKER_BIN=none)
#
# The validators live in a venv under ${XDG_CACHE_HOME:-~/.cache}/defer-worker/check-deploy (override
# with CHECK_DEPLOY_VENV), built from scripts/check-deploy.requirements.txt on the first run and again
# only when that file changes.
set -euo pipefail
cd "$(dirname "$0")/.."

# systemd-analyze (Debian's systemd package; no running systemd is needed).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-deploy: installing systemd (for systemd-analyze)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "check-deploy: systemd-analyze is missing and this is not root: apt-get install systemd" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

req=scripts/check-deploy.requirements.txt
venv=${CHECK_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/defer-worker/check-deploy}
python=${CHECK_DEPLOY_PYTHON:-python3}
stamp="$(sha256sum "$req" | cut -d' ' -f1) $("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "check-deploy: building the validators' venv in $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
  echo "$stamp" > "$venv/.stamp"
fi

PATH="$venv/bin:$PATH" exec "$venv/bin/python" scripts/check_deploy.py "$@"
