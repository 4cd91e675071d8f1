#!/usr/bin/env python3
"""Checks of deploy/ that need no Docker engine and no cluster; run through scripts/check-deploy.sh,
which provides the venv (hadolint, shellcheck, kubernetes-validate, KEDA models, check-jsonschema,
supervisor). Prints one line per check and exits 1 when any fails."""

import configparser
import contextlib
import http.server
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN_PATH = "/usr/local/bin/defer-worker"
K8S_VERSIONS = ("1.29.0", "1.37.0")
# Environment keys allowed in the shipped .env files besides defer-worker's catalogue (PHP-side or ours).
EXTRA_ENV_KEYS = {"DEFER_WORKER_LOG", "LOG_CHANNEL", "LOG_LEVEL"}
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "APP_KEY", "PREVIOUS_KEYS")

failures = []
passed = 0
skipped = []


class CheckFailed(Exception):
    pass


def fail(msg):
    raise CheckFailed(msg)


def need(cond, msg):
    if not cond:
        fail(msg)


@contextlib.contextmanager
def check(name):
    global passed
    try:
        yield
    except CheckFailed as e:
        failures.append(name)
        print(f"FAIL {name}")
        for line in str(e).rstrip().splitlines():
            print(f"     {line}")
    except Exception as e:  # a crash in a check is a failure too, with its cause
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")
    else:
        passed += 1
        print(f"ok   {name}")


def skip(name, why):
    skipped.append(name)
    print(f"skip {name}: {why}")


def rel(p):
    return str(Path(p).resolve().relative_to(ROOT))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------------------------------------------
# Facts shared by several checks


def default_drain_timeout():
    """The worker's default --drain-timeout, read from its source (src/worker/options.rs)."""
    src = (ROOT / "src/worker/options.rs").read_text()
    m = re.search(r"drain_timeout:\s*Duration::from_secs\((\d+)\)", src)
    if not m:
        raise SystemExit("check-deploy: cannot find the default drain_timeout in src/worker/options.rs")
    return int(m.group(1))


def catalogue_keys():
    """Every setting defer-worker knows, from src/config/catalogue.rs."""
    src = (ROOT / "src/config/catalogue.rs").read_text()
    keys = set(re.findall(r'def\(\s*[A-Z_]+\s*,\s*"([A-Z][A-Z0-9_]*)"', src))
    if len(keys) < 30:
        raise SystemExit("check-deploy: cannot read the settings catalogue in src/config/catalogue.rs")
    return keys


STRICT = "--strict" in sys.argv[1:]
DRAIN = default_drain_timeout()
KNOWN_KEYS = catalogue_keys() | EXTRA_ENV_KEYS


def flag(args, name):
    """Value of --name=V or --name V in an argument list (last wins), else None."""
    val = None
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            val = a.split("=", 1)[1]
        elif a == f"--{name}" and i + 1 < len(args):
            val = args[i + 1]
    return val


def drain_of(args):
    v = flag(args, "drain-timeout")
    return int(v) if v is not None else DRAIN


def http_port(args):
    v = flag(args, "http")
    need(v is not None, f"no --http in: {' '.join(args)}")
    return int(v.rsplit(":", 1)[1])


def worker_args(argv):
    """The arguments after the binary of a defer-worker command line; checks that it runs `work`."""
    need("work" in argv, f"the command does not run `work`: {' '.join(argv)}")
    return argv


def slug_prefix(app_name):
    """Laravel's Str::slug(APP_NAME, '_') . '_database_' for ASCII names."""
    s = re.sub(r"[-\s]+", "_", app_name.strip())
    s = re.sub(r"[^\w]+", "", s.lower())
    s = re.sub(r"_+", "_", s).strip("_")
    return s + "_database_"


def read_dotenv(path):
    """KEY=value lines (compose and kubectl level: quotes stripped, no ${} expansion)."""
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        need(m, f"{rel(path)}:{n}: not KEY=value: {line}")
        k, v = m.group(1), m.group(2).strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        need(k not in out, f"{rel(path)}:{n}: {k} set twice")
        out[k] = v
    return out


def check_env_keys(keys, where):
    unknown = sorted(set(keys) - KNOWN_KEYS)
    need(not unknown, f"{where}: keys defer-worker does not know (typo?): {', '.join(unknown)}")


# ---------------------------------------------------------------------------------------------------
# systemd


def systemd_unit(path):
    """(section, key) -> [values] of a unit file (keys may repeat)."""
    out, section, buf = {}, None, ""
    for raw in Path(path).read_text().splitlines():
        line = raw.rstrip()
        if buf:
            line, buf = buf + line.lstrip(), ""
        if line.endswith("\\"):
            buf = line[:-1] + " "
            continue
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            section = s.strip("[]")
            continue
        k, _, v = s.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def seconds(v):
    total = 0
    for num, unit in re.findall(r"(\d+)\s*(ms|s|sec|min|m|h)?", v):
        total += int(num) * {"": 1, "s": 1, "sec": 1, "ms": 0.001, "min": 60, "m": 60, "h": 3600}[unit or ""]
    return total


def check_systemd(tmp, cli_lines):
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    need_units = {"defer-worker.service", "defer-worker@.service"}
    with check("systemd: unit files present"):
        need(need_units <= {u.name for u in units}, f"missing: {need_units - {u.name for u in units}}")
    stub_dir = tmp / "systemd-bin"
    stub_dir.mkdir()
    stub = stub_dir / "defer-worker"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    for unit in units:
        # verify needs ExecStart's binary to exist: the copy points at a stub, nothing else changes.
        name = unit.name.replace("@.service", "@check.service")
        copy = tmp / name
        text = unit.read_text()
        copy.write_text(text.replace(BIN_PATH, str(stub)))
        with check(f"systemd-analyze verify {rel(unit)}"):
            r = run(["systemd-analyze", "verify", "--man=no", str(copy)], cwd=tmp)
            out = (r.stdout + r.stderr).strip()
            need(r.returncode == 0 and not out, out or f"exit {r.returncode}")
        with check(f"systemd-analyze security {rel(unit)} (exposure <= 2.0)"):
            r = run(["systemd-analyze", "security", "--offline=yes", "--man=no", "--threshold=20", str(copy)])
            level = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
            need(r.returncode == 0, f"exposure {level.group(1) if level else '?'} over 2.0\n{r.stdout[-2000:]}{r.stderr}")
        with check(f"systemd: {unit.name} restart/stop/hardening settings"):
            u = systemd_unit(unit)
            svc = lambda k: (u.get(("Service", k)) or [None])[-1]  # noqa: E731
            exec_start = svc("ExecStart")
            need(exec_start, "no ExecStart")
            argv = shlex.split(exec_start)
            need(argv[0] == BIN_PATH, f"ExecStart runs {argv[0]}, expected {BIN_PATH}")
            args = worker_args(argv[1:])
            need("--env" in " ".join(args), "ExecStart has no --env (the app's .env, read with Laravel's rules)")
            need(svc("Restart") == "always", "Restart= must be always")
            need(svc("KillSignal") in ("SIGTERM", "TERM", "15"), "KillSignal= must be SIGTERM")
            need(svc("TimeoutStopSec"), "no TimeoutStopSec= (it must be longer than the drain)")
            stop = seconds(svc("TimeoutStopSec"))
            need(stop > drain_of(args), f"TimeoutStopSec={stop}s is not longer than the drain ({drain_of(args)}s)")
            for k, v in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                         "ProtectHome": "yes"}.items():
                need(svc(k) == v, f"{k}= must be {v}")
            need(u.get(("Service", "ReadWritePaths")) or svc("StateDirectory"), "nothing writable: ReadWritePaths/StateDirectory")
            fd = flag(args, "failed-db")
            if fd and svc("StateDirectory"):
                state = "/var/lib/" + svc("StateDirectory").replace("%i", "check")
                need(fd.replace("%i", "check").startswith(state + "/"), f"--failed-db {fd} is outside StateDirectory {state}")
            http = flag(args, "http")
            need(http and http.startswith("127.0.0.1:") or "${" in (http or ""), "--http must listen on 127.0.0.1")
            env_files = u.get(("Service", "EnvironmentFile"), [])
            need(not any(e.lstrip("-").endswith("/.env") for e in env_files),
                 "the app's .env must not be an EnvironmentFile= (systemd does not parse it as Laravel does); use --env")
            # For the CLI check: systemd's ${VAR} / $VAR substitution with example values.
            line = exec_start.replace("${DEFER_WORKER_QUEUES}", "whatsapp").replace(
                "${DEFER_WORKER_HTTP}", "127.0.0.1:9091").replace("$DEFER_WORKER_ARGS", "--concurrency=32 --tries=3")
            line = line.replace("%i", "check")
            need("$" not in line, f"unexpanded variable in ExecStart: {line}")
            cli_lines.append((f"{rel(unit)} ExecStart", shlex.split(line)[1:]))


# ---------------------------------------------------------------------------------------------------
# Supervisor


def check_supervisor(tmp, cli_lines):
    conf = DEPLOY / "supervisor/defer-worker.conf"
    with check(f"configparser loads {rel(conf)}"):
        cp = configparser.RawConfigParser()
        cp.read_string(conf.read_text(), source=str(conf))
        progs = [s for s in cp.sections() if s.startswith("program:")]
        need(progs, "no [program:...] section")
        for s in progs:
            for key in ("command", "user", "autostart", "autorestart", "stopwaitsecs", "stopasgroup",
                        "killasgroup", "stdout_logfile"):
                need(cp.has_option(s, key), f"[{s}] has no {key}")
    with check(f"supervisord's own parser accepts {rel(conf)}"):
        from supervisor.options import ServerOptions
        from supervisor.datatypes import RestartUnconditionally

        logs = tmp / "supervisor-logs"
        logs.mkdir()
        # Log directories must exist for the parser: point them at a temp dir.
        prog = tmp / "defer-worker.conf"
        prog.write_text(re.sub(r"(stdout_logfile|stderr_logfile)=\S*/", rf"\1={logs}/", conf.read_text()))
        main = tmp / "supervisord.conf"
        main.write_text(f"[supervisord]\nlogfile={tmp}/supervisord.log\npidfile={tmp}/supervisord.pid\n"
                        f"[include]\nfiles={prog}\n")
        opts = ServerOptions()
        err = io.StringIO()
        opts.stderr = opts.stdout = err
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
                opts.realize(args=["-c", str(main)])
        except SystemExit:
            fail(err.getvalue().replace(str(prog), rel(conf)).strip())
        procs = [p for g in opts.process_group_configs for p in g.process_configs]
        dw = [p for p in procs if BIN_PATH in p.command]
        need(dw, "no program runs " + BIN_PATH)
        ports = []
        for p in dw:
            argv = shlex.split(p.command)
            args = worker_args(argv[1:])
            need(p.stopsignal.name == "SIGTERM", f"{p.name}: stopsignal must be TERM")
            need(p.stopwaitsecs > drain_of(args), f"{p.name}: stopwaitsecs={p.stopwaitsecs} not longer than the drain ({drain_of(args)}s)")
            need(p.autorestart is RestartUnconditionally, f"{p.name}: autorestart must be true")
            need(p.stopasgroup and p.killasgroup, f"{p.name}: stopasgroup and killasgroup must be true")
            need(p.uid not in (None, 0), f"{p.name}: runs as root (set user=)")
            need(p.redirect_stderr and p.stdout_logfile, f"{p.name}: logs (redirect_stderr, stdout_logfile)")
            ports.append(http_port(args))
            cli_lines.append((f"{rel(conf)} {p.name}", args))
        need(len(set(ports)) == len(ports), f"processes share an --http port: {ports}")
        php = [p for p in procs if "queue:work" in p.command]
        need(php and all("--queue=php" in p.command for p in php), "no PHP worker on the hand-off queue `php`")


# ---------------------------------------------------------------------------------------------------
# Dockerfiles


def dockerfile(path):
    """[(INSTRUCTION, rest)] with continuations joined and comments dropped."""
    out, buf = [], ""
    for raw in Path(path).read_text().splitlines():
        s = raw.strip()
        if s.startswith("#") or (not s and buf):
            continue
        if not s:
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        s, buf = buf + s, ""
        ins, _, rest = s.partition(" ")
        out.append((ins.upper(), rest.strip()))
    return out


def healthcheck_command(instrs):
    hc = [rest for ins, rest in instrs if ins == "HEALTHCHECK"]
    need(len(hc) == 1, "the image needs exactly one HEALTHCHECK")
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc[0])
    need(m, "HEALTHCHECK must use the JSON (exec) form")
    return json.loads(m.group(1))


class _Stub(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *a):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the probe closes after the status line; a reset on our write is expected


def probe(cmd, port, status):
    """Runs the HEALTHCHECK command against a stub answering /health with `status` (None: nothing listens)."""
    server = None
    if status is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port_used = s.getsockname()[1]
    else:
        handler = type("Stub", (_Stub,), {"status": status})
        server = _QuietServer(("127.0.0.1", 0), handler)
        port_used = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        argv = [a.replace(f"/dev/tcp/127.0.0.1/{port}", f"/dev/tcp/127.0.0.1/{port_used}") for a in cmd]
        return subprocess.run(argv, capture_output=True, timeout=15).returncode
    finally:
        if server:
            server.shutdown()


def check_dockerfiles(tmp, cli_lines, facts):
    df = DEPLOY / "docker/Dockerfile"
    for f in (df, DEPLOY / "compose/php.Dockerfile"):
        with check(f"hadolint {rel(f)}"):
            r = run(["hadolint", "--no-color", "--failure-threshold", "info", str(f)])
            need(r.returncode == 0, (r.stdout + r.stderr).strip() or f"exit {r.returncode}")
    instrs = dockerfile(df)
    last = max(i for i, (ins, _) in enumerate(instrs) if ins == "FROM")
    final = instrs[last:]
    with check(f"{rel(df)}: stages, user, entrypoint, healthcheck"):
        froms = [rest for ins, rest in instrs if ins == "FROM"]
        need(len(froms) >= 2, "not a multi-stage build")
        need(any(re.match(r"rust:\S*bookworm", f.split()[0].replace("${RUST_VERSION}", "1").replace("${DEBIAN_RELEASE}", "bookworm")) for f in froms), "no rust:*-bookworm builder stage")
        need(re.search(r"(slim|distroless)", final[0][1]), f"runtime stage is not slim/distroless: {final[0][1]}")
        users = [rest for ins, rest in final if ins == "USER"]
        need(users and users[-1].split(":")[0] not in ("root", "0"), "the runtime stage must end with a non-root USER")
        facts["uid"] = int(users[-1].split(":")[0]) if users[-1].split(":")[0].isdigit() else None
        need(any("ca-certificates" in rest for ins, rest in final if ins == "RUN"), "no ca-certificates in the runtime")
        builds = [rest for ins, rest in instrs if ins == "RUN" and "cargo build" in rest]
        need(builds and all("--locked" in b and "--release" in b for b in builds), "cargo build must use --release --locked")
        need(any("cargo chef cook" in rest for ins, rest in instrs if ins == "RUN"), "no dependency-caching layer (cargo chef cook)")
        ep = [json.loads(rest) for ins, rest in final if ins == "ENTRYPOINT"]
        need(ep and ep[-1] == [BIN_PATH], f"ENTRYPOINT must be [\"{BIN_PATH}\"]")
        cmd = [json.loads(rest) for ins, rest in final if ins == "CMD"]
        need(cmd, "no CMD")
        args = worker_args(cmd[-1])
        port = http_port(args)
        need(flag(args, "http").startswith("0.0.0.0:"), "the container's --http must listen on 0.0.0.0")
        need(str(port) in " ".join(rest for ins, rest in final if ins == "EXPOSE"), f"EXPOSE does not list {port}")
        hc = healthcheck_command(final)
        need(f"/dev/tcp/127.0.0.1/{port}" in " ".join(hc) and "/health" in " ".join(hc),
             f"HEALTHCHECK must ask /health on the --http port {port}")
        workdir = [rest for ins, rest in final if ins == "WORKDIR"]
        facts["workdir"] = workdir[-1] if workdir else "/"
        facts["image_port"] = port
        facts["healthcheck"] = hc
        cli_lines.append((f"{rel(df)} ENTRYPOINT+CMD", args))
    name = f"{rel(df)}: HEALTHCHECK command against a stub /health (200 ok; 503, refused: unhealthy)"
    if "healthcheck" not in facts:
        skip(name, "the Dockerfile check above failed")
    with check(name) if "healthcheck" in facts else contextlib.nullcontext():
        hc, port = facts.get("healthcheck"), facts.get("image_port")
        if hc is None:
            return
        need(shutil.which(hc[0]) or hc[0].startswith("/"), f"{hc[0]} not found here")
        need(probe(hc, port, 200) == 0, "healthy server reported unhealthy")
        need(probe(hc, port, 503) != 0, "503 reported healthy")
        need(probe(hc, port, None) != 0, "closed port reported healthy")
        if hc[:2] == ["bash", "-c"]:
            script = tmp / "healthcheck.sh"
            script.write_text("#!/bin/bash\n" + hc[2] + "\n")
            r = run(["shellcheck", "-s", "bash", str(script)])
            need(r.returncode == 0, r.stdout + r.stderr)
    with check(".dockerignore: keeps the build inputs, drops target/ fuzz/ .git"):
        di = ROOT / ".dockerignore"
        need(di.exists(), "no .dockerignore at the repository root")
        pats = [p.strip() for p in di.read_text().splitlines() if p.strip() and not p.strip().startswith("#")]
        for must in ("target", ".git"):
            need(any(p.strip("/") in (must, must + "/") for p in pats), f".dockerignore does not exclude {must}")
        need(any(p.strip("/").startswith("fuzz") for p in pats), ".dockerignore does not exclude fuzz/ (or its corpus)")
        import fnmatch
        keep = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/laravel/lua/pop.lua"]
        keep += [rel(p) for p in (ROOT / "templates").rglob("*") if p.is_file()]
        manifest = (ROOT / "Cargo.toml").read_text()
        keep += re.findall(r'path\s*=\s*"([^"]+)"', manifest)
        keep += [f"benches/{n}.rs" for n in re.findall(r'\[\[bench\]\]\s*name\s*=\s*"([^"]+)"', manifest)]
        for k in keep:
            parts = k.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            hit = [p for p in pats if not p.startswith("!") and any(fnmatch.fnmatch(x, p.strip("/")) or
                   fnmatch.fnmatch(x, p.strip("/").replace("**/", "")) for x in prefixes)]
            need(not hit, f"{k} is needed by the build but .dockerignore drops it ({hit and hit[0]})")


# ---------------------------------------------------------------------------------------------------
# Shell scripts


def check_shell():
    scripts = [DEPLOY / "compose/php-demo.sh", DEPLOY / "compose/initdb/02-app-data.sh", ROOT / "scripts/check-deploy.sh",
               ROOT / "scripts/release.sh", ROOT / "scripts/check-release.sh"]
    with check("shellcheck " + " ".join(rel(s) for s in scripts)):
        r = run(["shellcheck", "-s", "bash", *map(str, scripts)])
        need(r.returncode == 0, r.stdout + r.stderr)
    # The .deb's maintainer scripts (scripts/release.sh): POSIX sh, as dpkg runs them.
    maint = [DEPLOY / "deb" / n for n in ("postinst", "prerm", "postrm")]
    with check("shellcheck -s sh " + " ".join(rel(s) for s in maint)):
        r = run(["shellcheck", "-s", "sh", *map(str, maint)])
        need(r.returncode == 0, r.stdout + r.stderr)


# ---------------------------------------------------------------------------------------------------
# Compose


def artisan_commands():
    names = set()
    for f in (ROOT / "fixtures/laravel/app/Console/Commands").glob("*.php"):
        m = re.search(r"\$signature\s*=\s*'([\w:-]+)", f.read_text())
        if m:
            names.add(m.group(1))
    return names | {"queue:work", "queue:retry", "queue:failed", "queue:restart"}


def mariadb_reachable():
    if not (shutil.which("mysql") and shutil.which("mysqladmin")):
        return False
    return run(["mysqladmin", "-h127.0.0.1", "-uroot", "--connect-timeout=2", "ping"]).returncode == 0


def check_php_demo(tmp, cdir, dw_args):
    """php-demo.sh's dispatch part, for real: Debian's Laravel pushing onto a local Redis under a scratch
    prefix; every job must land on a queue the compose defer-worker works."""
    name = "php-demo.sh dispatches through real Laravel onto the queues defer-worker works (local Redis)"
    php_ok = shutil.which("php") and Path("/usr/share/php/Illuminate/autoload.php").exists()
    if not php_ok or "redis" not in run(["php", "-m"]).stdout.split():
        skip(name, "no php-cli + php-laravel-framework + php-redis here")
        return
    if not shutil.which("redis-cli") or run(["redis-cli", "-h", "127.0.0.1", "ping"]).stdout.strip() != "PONG":
        skip(name, "no Redis on 127.0.0.1:6379")
        return
    prefix = f"deploy_check_{os.getpid()}_"
    store = tmp / "harness"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "DEMO_ROOT": str(ROOT), "DEMO_DISPATCH_ONLY": "1",
           "APP_NAME": "RestroSaaS", "QUEUE_CONNECTION": "redis", "REDIS_HOST": "127.0.0.1", "REDIS_PREFIX": prefix,
           "DB_CONNECTION": "sqlite", "DB_DATABASE": str(store / "db.sqlite"), "HARNESS_STORAGE": str(store),
           "MAIL_MAILER": "array", "LOG_CHANNEL": "null", "CACHE_DRIVER": "array"}
    redis = ["redis-cli", "-h", "127.0.0.1"]
    with check(name):
        try:
            r = run(["bash", str(cdir / "php-demo.sh")], env=env, timeout=120)
            need(r.returncode == 0, (r.stdout + r.stderr)[-3000:])
            keys = run(redis + ["--scan", "--pattern", prefix + "*"]).stdout.split()
            worked = set(flag(dw_args, "queue").split(","))
            counts = {}
            for k in keys:
                m = re.fullmatch(re.escape(prefix) + r"queues:([^:]+)(:delayed)?", k)
                if not m:
                    continue
                t = run(redis + ["type", k]).stdout.strip()
                n = int(run(redis + (["llen", k] if t == "list" else ["zcard", k])).stdout.strip() or 0)
                counts[m.group(1) + (m.group(2) or "")] = n
            need(counts, "no job reached Redis")
            stray = sorted({q.split(":")[0] for q in counts} - worked)
            need(not stray, f"jobs pushed on queues the compose defer-worker does not work: {stray}")
            print(f"     pushed: {', '.join(f'{q} {n}' for q, n in sorted(counts.items()))}")
        finally:
            keys = run(redis + ["--scan", "--pattern", prefix + "*"]).stdout.split()
            if keys:
                run(redis + ["del", *keys])


def check_compose(tmp, cli_lines, facts):
    cdir = DEPLOY / "compose"
    cf = cdir / "compose.yaml"
    with check(f"compose-spec schema (check-jsonschema vendor.compose-spec) {rel(cf)}"):
        r = run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(cf)])
        need(r.returncode == 0, r.stdout + r.stderr)
    doc = yaml.safe_load(cf.read_text())
    services = doc.get("services", {})
    env = {}
    with check(f"{rel(cf)}: services, paths, references"):
        for s in ("redis", "mariadb", "mailpit", "defer-worker", "php"):
            need(s in services, f"no service {s}")
        for name, svc in services.items():
            for ef in svc.get("env_file", []) if isinstance(svc.get("env_file"), list) else [svc.get("env_file")] if svc.get("env_file") else []:
                ef = ef["path"] if isinstance(ef, dict) else ef
                need((cdir / ef).is_file(), f"{name}: env_file {ef} missing")
            for v in svc.get("volumes", []):
                src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
                if src.startswith((".", "/")):
                    need((cdir / src).exists(), f"{name}: bind mount source {src} missing")
                elif src:
                    need(src in (doc.get("volumes") or {}), f"{name}: named volume {src} not declared")
            b = svc.get("build")
            if b:
                ctx = cdir / (b if isinstance(b, str) else b.get("context", "."))
                need(ctx.is_dir(), f"{name}: build context {ctx} missing")
                dfp = ctx / (b.get("dockerfile", "Dockerfile") if isinstance(b, dict) else "Dockerfile")
                need(dfp.is_file(), f"{name}: Dockerfile {dfp} missing")
            deps = svc.get("depends_on", {})
            for dep, cond in (deps.items() if isinstance(deps, dict) else [(d, {}) for d in deps]):
                need(dep in services, f"{name}: depends_on unknown service {dep}")
                if (cond or {}).get("condition") == "service_healthy":
                    target = services[dep]
                    need(target.get("healthcheck") or dep == "defer-worker",
                         f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
        dw = services["defer-worker"]
        need(dw.get("build", {}).get("dockerfile") == "deploy/docker/Dockerfile", "defer-worker is not built from deploy/docker/Dockerfile")
        args = worker_args(dw["command"])
        need(http_port(args) == facts["image_port"],
             f"defer-worker's --http port {http_port(args)} is not the one the image's HEALTHCHECK asks ({facts['image_port']})")
        need(any(str(p).endswith(f":{http_port(args)}") for p in dw.get("ports", [])), "the --http port is not published")
        need(seconds(str(dw.get("stop_grace_period", "10s"))) > drain_of(args),
             f"stop_grace_period is not longer than the drain ({drain_of(args)}s)")
        mounts = [v.split(":")[1] for v in dw.get("volumes", []) if isinstance(v, str)]
        need(f"{facts['workdir'].rstrip('/')}/defer-worker.toml" in mounts, "defer-worker.toml is not mounted in the image's WORKDIR")
        cli_lines.append((f"{rel(cf)} defer-worker command", args))
        # The PHP demo: the artisan commands it runs exist in the harness.
        demo = (cdir / "php-demo.sh").read_text()
        used = set(re.findall(r'"\$\{artisan\[@\]\}"\s+([\w:-]+)', demo))
        need(used, "php-demo.sh runs no artisan command")
        missing = used - artisan_commands()
        need(not missing, f"php-demo.sh runs artisan commands the harness does not have: {missing}")
        need("queue:work" in used and "--queue=php" in demo, "php-demo.sh does not work the hand-off queue php")
    envf = cdir / ".env.example"
    with check(f"{rel(envf)}: Laravel keys, values for the trial, consistent with compose.yaml"):
        env.update(read_dotenv(envf))
        check_env_keys(env, rel(envf))
        for k, v in {"QUEUE_CONNECTION": "redis", "REDIS_HOST": "redis", "DB_HOST": "mariadb",
                     "MAIL_HOST": "mailpit", "WHATSAPP_DEMO_MODE": "true"}.items():
            need(env.get(k) == v, f"{k} must be {v}, is {env.get(k)!r}")
        need(env.get("MAIL_PORT") == "1025", "MAIL_PORT must be Mailpit's 1025")
        me = services["mariadb"].get("environment", {})
        for k, m in {"DB_DATABASE": "MARIADB_DATABASE", "DB_USERNAME": "MARIADB_USER", "DB_PASSWORD": "MARIADB_PASSWORD"}.items():
            need(env.get(k) == me.get(m), f"{k}={env.get(k)!r} but the mariadb service has {m}={me.get(m)!r}")
    facts["compose_env"] = envf
    check_php_demo(tmp, cdir, worker_args(services["defer-worker"]["command"]))
    # The init SQL, for real, when a MariaDB answers here (CI starts one).
    name = "MariaDB init SQL (deploy/compose/initdb) loads into a scratch database"
    if not mariadb_reachable():
        skip(name, "no MariaDB on 127.0.0.1:3306")
        return
    with check(name):
        db = f"deploy_check_{os.getpid()}"
        mysql = ["mysql", "-h127.0.0.1", "-uroot", "--default-character-set=utf8mb4"]
        r = run(mysql + ["-e", f"CREATE DATABASE {db}"])
        need(r.returncode == 0, r.stderr)
        try:
            for sql in sorted((cdir / "initdb").glob("*.sql")):
                r = run(mysql + [db], input=sql.read_text())
                need(r.returncode == 0, f"{rel(sql)}: {r.stderr}")
            # 02-app-data.sh pipes fixture files: load the same files from the repository.
            sh = (cdir / "initdb/02-app-data.sh").read_text()
            files = re.findall(r"/fixtures/app/(\S+\.sql)", sh)
            need(files, "02-app-data.sh loads no fixture file")
            body = "SET NAMES utf8mb4;\n" + "".join((ROOT / "fixtures/app" / f).read_text() for f in files)
            r = run(mysql + [db], input=body)
            need(r.returncode == 0, f"02-app-data.sh's files: {r.stderr}")
            r = run(mysql + ["-N", db, "-e", "SELECT COUNT(*) FROM failed_jobs; SELECT COUNT(*) FROM jobs; SELECT COUNT(*) FROM orders"])
            need(r.returncode == 0 and r.stdout.split()[2] != "0", f"tables not as expected: {r.stdout}{r.stderr}")
        finally:
            run(mysql + ["-e", f"DROP DATABASE IF EXISTS {db}"])


# ---------------------------------------------------------------------------------------------------
# Kubernetes


def strict_model(model, doc):
    """Validates `doc` with a pydantic model in strict mode and names every field the model drops
    (pydantic ignores unknown fields; the API server would reject or prune them)."""
    m = model.model_validate_json(json.dumps(doc), strict=True)
    back = m.model_dump(mode="json", by_alias=True, exclude_unset=True)
    unknown = []

    def diff(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in a:
                if k not in b:
                    unknown.append(f"{path}.{k}".lstrip("."))
                else:
                    diff(a[k], b[k], f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, f"{path}[{i}]")

    diff(doc, back, "")
    return unknown


def check_k8s(tmp, cli_lines, facts):
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError, SchemaNotFoundError
    from cloudcoil.models.keda import v1alpha1 as keda

    kdir = DEPLOY / "k8s"
    docs = []
    for f in sorted(kdir.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs.append((f, d))
    crds = {("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
            ("keda.sh/v1alpha1", "TriggerAuthentication"): keda.TriggerAuthentication}
    for f, d in docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        key = (d.get("apiVersion"), kind)
        if key in crds:
            with check(f"KEDA 2.16 CRD model (strict) {rel(f)} {kind}/{name}"):
                unknown = strict_model(crds[key], d)
                need(not unknown, "fields KEDA's CRD does not have: " + ", ".join(unknown))
            continue
        with check(f"kubernetes-validate --strict {'/'.join(v[:4] for v in K8S_VERSIONS)} {rel(f)} {kind}/{name}"):
            for v in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(d, v, strict=True)
                except ValidationError as e:
                    fail(f"k8s {e.version}: {'.'.join(map(str, e.path))}: {e.message}")
                except SchemaNotFoundError as e:
                    fail(e.message)
    by = {}
    for f, d in docs:
        by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    with check("kustomization.yaml lists every manifest"):
        kz = yaml.safe_load((kdir / "kustomization.yaml").read_text())
        listed = set(kz.get("resources", []))
        files = {f.name for f, _ in docs}
        need(listed == files, f"listed {sorted(listed)}, present {sorted(files)}")
    deps = by.get("Deployment", {})
    cs = [c for d in deps.values() for c in d["spec"]["template"]["spec"].get("containers", [])
          if c.get("name") == "defer-worker" and "--http" in " ".join(c.get("args", []))]
    if len(deps) != 1 or len(cs) != 1:
        with check("k8s: one Deployment with a container defer-worker running `work --http=...`"):
            fail(f"{len(deps)} Deployments, {len(cs)} such containers")
        return
    dep, c = next(iter(deps.values())), cs[0]
    tpl = dep["spec"]["template"]
    labels, pod = tpl["metadata"].get("labels", {}), tpl["spec"]
    args = c["args"]
    port = http_port(args)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    cms, secs = by.get("ConfigMap", {}), by.get("Secret", {})
    env = {}
    for ef in c.get("envFrom", []):
        if ef.get("configMapRef", {}).get("name") in cms:
            env.update(cms[ef["configMapRef"]["name"]].get("data", {}))
        if ef.get("secretRef", {}).get("name") in secs:
            env.update(secs[ef["secretRef"]["name"]].get("stringData", {}))
            env.update(secs[ef["secretRef"]["name"]].get("data", {}))
    sos = by.get("ScaledObject", {})
    so = next(iter(sos.values()))["spec"] if len(sos) == 1 else None
    with check("k8s: Deployment probes, stop timing, security, resources"):
        sel = dep["spec"]["selector"]["matchLabels"]
        need(all(labels.get(k) == v for k, v in sel.items()), "selector does not match the pod labels")
        worker_args(args)
        need(flag(args, "http").startswith("0.0.0.0:"), "--http must listen on 0.0.0.0 for the kubelet's probes")
        for probe_name, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
            pr = c.get(probe_name, {}).get("httpGet")
            need(pr and pr["path"] == path, f"{probe_name} must GET {path}")
            pp = ports.get(pr["port"], pr["port"])
            need(pp == port, f"{probe_name} port {pr['port']} is not the --http port {port}")
        pre = c.get("lifecycle", {}).get("preStop", {})
        if "exec" in pre:
            cmd = pre["exec"]["command"]
            need(cmd[0] == "sleep" and cmd[1].isdigit(), f"preStop is not `sleep N`: {cmd}")
            pre_s = int(cmd[1])
        else:
            need("sleep" in pre, "no preStop sleep")
            pre_s = int(pre["sleep"]["seconds"])
        grace = pod.get("terminationGracePeriodSeconds", 30)
        need(grace > pre_s + drain_of(args),
             f"terminationGracePeriodSeconds={grace} is not longer than preStop {pre_s}s + drain {drain_of(args)}s")
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        need(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), "runAsNonRoot is not set")
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        need(facts.get("uid") is None or uid == facts["uid"], f"runAsUser {uid} is not the image's USER {facts.get('uid')}")
        need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
        need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
        need("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities must drop ALL")
        res = c.get("resources", {})
        need(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"),
             "set resources.requests cpu/memory and limits.memory")
        fd = flag(args, "failed-db")
        if fd:
            need(any(fd.startswith(mp.rstrip("/") + "/") for mp in mounts), f"--failed-db {fd} is on the read-only root filesystem")
    cli_lines.append((f"{rel(kdir / 'deployment.yaml')} args", args))
    with check("k8s: ConfigMap/Secret references, Laravel keys, config file mount"):
        for ef in c.get("envFrom", []):
            for ref, objs in (("configMapRef", cms), ("secretRef", secs)):
                if ref in ef:
                    need(ef[ref]["name"] in objs, f"envFrom {ref} {ef[ref]['name']} is not in deploy/k8s")
        need(env, "no envFrom")
        check_env_keys(env, "envFrom ConfigMap/Secret")
        for n, cm in cms.items():
            for k in cm.get("data", {}):
                if re.fullmatch(r"[A-Z][A-Z0-9_]*", k):
                    need(not any(w in k for w in SECRET_WORDS), f"ConfigMap {n} holds the secret {k}: move it to the Secret")
        need(env.get("QUEUE_CONNECTION") == "redis", "QUEUE_CONNECTION must be redis")
        facts["k8s_env"] = env
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for mp, m in mounts.items():
            need(m["name"] in vols, f"volumeMount {m['name']} has no volume")
            v = vols[m["name"]]
            if "configMap" in v:
                n = v["configMap"]["name"]
                need(n in cms, f"volume ConfigMap {n} is not in deploy/k8s")
                if m.get("subPath"):
                    need(m["subPath"] in cms[n].get("data", {}), f"ConfigMap {n} has no key {m['subPath']}")
                    if m["subPath"] == "defer-worker.toml":
                        need(mp == f"{facts['workdir'].rstrip('/')}/defer-worker.toml",
                             f"defer-worker.toml mounted at {mp}, not in the image's WORKDIR {facts['workdir']}")
                        facts["k8s_toml"] = cms[n]["data"]["defer-worker.toml"]
        need("k8s_toml" in facts, "no defer-worker.toml mounted from a ConfigMap")
    with check("k8s: Service, PodDisruptionBudget and ScaledObject target the Deployment"):
        for kind in ("Service", "PodDisruptionBudget"):
            objs = by.get(kind, {})
            need(objs, f"no {kind}")
            for n, o in objs.items():
                s = o["spec"]["selector"]
                s = s.get("matchLabels", s) if kind == "PodDisruptionBudget" else s
                need(s and all(labels.get(k) == v for k, v in s.items()), f"{kind} {n} selects no defer-worker pod")
        for n, svc in by.get("Service", {}).items():
            for p in svc["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                need(ports.get(tp, tp) == port, f"Service {n} targets {tp}, not the --http port {port}")
        pdb = next(iter(by["PodDisruptionBudget"].values()))["spec"]
        need("maxUnavailable" in pdb, "use maxUnavailable (minAvailable: 1 blocks drains at 1 replica)")
        need(so, "expected one ScaledObject")
        need(so["scaleTargetRef"]["name"] == dep["metadata"]["name"], "scaleTargetRef is not the Deployment")
        need(so["scaleTargetRef"].get("kind", "Deployment") == "Deployment", "scaleTargetRef kind")
        need("replicas" not in dep["spec"], "the Deployment sets replicas while KEDA scales it")
        need(so.get("minReplicaCount", 0) >= 1, "minReplicaCount must be >= 1 (delayed jobs need a running worker)")
    with check("k8s: one KEDA redis trigger per queue, on <prefix>queues:<name>, with existing env and auth"):
        need(so and flag(args, "queue"), "no ScaledObject, or no --queue in the Deployment's args")
        queues = flag(args, "queue").split(",")
        prefix = env.get("REDIS_PREFIX") or slug_prefix(env.get("APP_NAME", "laravel"))
        lists = {}
        for t in so["triggers"]:
            need(t["type"] == "redis", f"trigger type {t['type']} (redis expected; redis-cluster for a cluster)")
            md = t["metadata"]
            lists[md["listName"]] = t
            for k in ("hostFromEnv", "portFromEnv", "passwordFromEnv"):
                if k in md:
                    need(md[k] in env, f"{k}: {md[k]} is not in the container's env")
            need(str(md.get("listLength", "5")).isdigit(), f"listLength {md.get('listLength')!r} is not a number")
            need(md.get("databaseIndex", "0") == env.get("REDIS_DB", "0"), "databaseIndex is not REDIS_DB")
            ref = t.get("authenticationRef", {}).get("name")
            if ref:
                ta = by.get("TriggerAuthentication", {}).get(ref)
                need(ta, f"authenticationRef {ref} is not in deploy/k8s")
                for st in ta["spec"].get("secretTargetRef", []):
                    sec = by.get("Secret", {}).get(st["name"])
                    need(sec and st["key"] in {**sec.get("stringData", {}), **sec.get("data", {})},
                         f"TriggerAuthentication {ref}: Secret {st['name']} has no key {st['key']}")
        want = {f"{prefix}queues:{q}" for q in queues}
        need(set(lists) == want, f"trigger lists {sorted(lists)} != worker queues {sorted(want)}")


# ---------------------------------------------------------------------------------------------------
# With a defer-worker binary: the command lines and the shipped settings against the real CLI


def find_binary():
    forced = os.environ.get("DEFER_WORKER_BIN")
    if forced == "none":
        return None, "DEFER_WORKER_BIN=none"
    if forced:
        p = Path(forced)
        if not p.is_absolute():
            p = ROOT / p
        if not os.access(p, os.X_OK):
            raise SystemExit(f"check-deploy: DEFER_WORKER_BIN={forced} is not an executable")
        return p, "DEFER_WORKER_BIN"
    sources = [ROOT / "Cargo.toml", ROOT / "Cargo.lock"] + [p for d in ("src", "templates") for p in (ROOT / d).rglob("*") if p.is_file()]
    newest = max(p.stat().st_mtime for p in sources)
    for prof in ("debug", "release"):
        p = ROOT / "target" / prof / "defer-worker"
        if p.is_file() and os.access(p, os.X_OK) and p.stat().st_mtime >= newest:
            return p, f"target/{prof}, newer than the sources"
    return None, "no target/{debug,release}/defer-worker newer than src/ (build it, or set DEFER_WORKER_BIN)"


def check_with_binary(tmp, cli_lines, facts):
    binary, why = find_binary()
    if binary is None:
        skip("command lines and settings against the defer-worker CLI", why)
        return
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp)}
    cwd = tmp / "empty"
    cwd.mkdir()
    with check(f"every deploy command line parses with {rel(binary) if str(binary).startswith(str(ROOT)) else binary} ({why})"):
        bad = []
        for where, args in cli_lines:
            r = run([str(binary), *args, "--help"], cwd=cwd, env=clean)
            if r.returncode != 0:
                bad.append(f"{where}: {' '.join(args)}\n  {r.stderr.strip()}")
        need(not bad, "\n".join(bad))

    def config(label, env_file, toml):
        with check(f"defer-worker config accepts {label}"):
            r = run([str(binary), "--env", str(env_file), "--config", str(toml), "config", "--json"], cwd=cwd, env=clean)
            try:
                problems = json.loads(r.stdout).get("problems") or []
            except ValueError:
                problems = None
            need(not problems, "\n".join(f"{p.get('key')} ({p.get('source')}): {p.get('message')}" for p in problems or []))
            need(r.returncode == 0, r.stderr.strip()[-3000:] or f"exit {r.returncode}")

    config("deploy/compose/.env.example + deploy/compose/defer-worker.toml", facts["compose_env"], DEPLOY / "compose/defer-worker.toml")
    if "k8s_env" in facts and "k8s_toml" in facts:
        env_file, toml = tmp / "k8s.env", tmp / "k8s.toml"
        env_file.write_text("".join(f"{k}={json.dumps(str(v))}\n" for k, v in facts["k8s_env"].items()))
        toml.write_text(facts["k8s_toml"])
        config("deploy/k8s ConfigMap+Secret env + ConfigMap defer-worker.toml", env_file, toml)
    if (DEPLOY / "defer-worker.example.toml").exists():
        empty = tmp / "empty.env"
        empty.write_text("")
        config("deploy/defer-worker.example.toml", empty, DEPLOY / "defer-worker.example.toml")


# ---------------------------------------------------------------------------------------------------


def main():
    start = time.monotonic()
    systemd_v = run(["systemd-analyze", "--version"]).stdout.split()[1]
    hadolint_v = run(["hadolint", "--version"]).stdout.split()[-1]
    shellcheck_v = re.search(r"version: (\S+)", run(["shellcheck", "--version"]).stdout).group(1)
    print(f"check-deploy: default drain {DRAIN}s (src/worker/options.rs); systemd-analyze {systemd_v}, "
          f"hadolint {hadolint_v}, shellcheck {shellcheck_v}")
    cli_lines, facts = [], {}
    with tempfile.TemporaryDirectory(prefix="check-deploy.") as t:
        tmp = Path(t)
        check_systemd(tmp, cli_lines)
        check_supervisor(tmp, cli_lines)
        check_dockerfiles(tmp, cli_lines, facts)
        check_shell()
        if "image_port" in facts:
            check_compose(tmp, cli_lines, facts)
        else:
            skip("compose checks", "the Dockerfile checks failed")
        if "workdir" in facts:
            check_k8s(tmp, cli_lines, facts)
        else:
            skip("Kubernetes checks", "the Dockerfile checks failed")
        if "compose_env" in facts:
            check_with_binary(tmp, cli_lines, facts)
    took = time.monotonic() - start
    if STRICT and skipped:
        for name in skipped:
            if not name.startswith("command lines and settings") or os.environ.get("DEFER_WORKER_BIN") != "none":
                failures.append(name)
                print(f"FAIL {name}: skipped, and --strict forbids skips")
    if failures:
        print(f"check-deploy: {len(failures)} of {len(failures) + passed} checks FAILED ({took:.1f}s)")
        sys.exit(1)
    print(f"check-deploy: all {passed} checks ok, {len(skipped)} skipped ({took:.1f}s)")


if __name__ == "__main__":
    main()
