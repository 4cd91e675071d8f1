#!/usr/bin/env python3
"""End-to-end benchmark: defer-worker against the real Laravel worker, on the same payloads.

Run through deploy/bench/run.sh (which builds the release binary and checks the services). Everything
runs against a private redis-server this script starts (no persistence), so other users of the
machine's Redis neither slow the drains nor blur the Redis figures. Each of --runs runs does, in turn:

  drain, two pairs, N no-op DeferredJob payloads each (made by the real Laravel harness, uuids made
  unique), `php artisan queue:work --tries=3` (one process, as the app runs it) against `defer-worker
  work --concurrency C` (the `log` kind): jobs/s, CPU ms per job, peak RSS.
    as deployed  PHP runs the app's DeferredJob, whose handle() writes its Log::info lines to
                 storage/logs/laravel.log, and its console output goes to a file (as Supervisor's
                 stdout_logfile keeps it); defer-worker logs at its default level and format (info,
                 text), stderr to a file.
    quiet        PHP runs a job that returns at once (HARNESS_RETURN_AT_ONCE), console to /dev/null;
                 defer-worker with logging off (DEFER_WORKER_LOG=off).
  redis    the Redis-bound limit for what the worker really sends per job: the same drain by
           examples/redis_limit.rs, which makes the worker's own library calls (its batched pop script,
           the migrate scripts, a ZREM per job, same concurrency, same runtime) and nothing else. Printed per run with
           the share of it the quiet drain reached, and how busy Redis was in both (its own CPU time,
           INFO cpu, over the wall time).
Then once:
  latency  pickup latency of an idle worker: RPUSH (as Laravel's push script does it) -> the job starts;
           p50/p99 over --samples pushes spaced 20 ms apart. PHP with its default --sleep=3.
  io       the `whatsapp` kind (seeded app database on MariaDB, whatsapp_messages_log written) against
           deploy/bench/meta_stub.py answering every send in 100 ms: jobs/s of one defer-worker process
           (--io-concurrency jobs in flight). One PHP worker runs one job at a time, so it cannot beat
           1 / 0.1 s = 10 jobs/s there; that bound is printed, not measured.

--soak SECONDS (not for CI) instead pushes jobs at a steady --rate for that long to one defer-worker
(JSON log at info), from a process of its own about every millisecond, and every 30 s samples the
worker's RSS and the p50/p99 pickup latency (its start - the time the push was sent) of the jobs it
started in that window: a table (with how many jobs each window holds; the last one runs on until
every job pushed has started), and target/soak.png when matplotlib is installed.

Only the standard library: Redis is spoken to with a minimal RESP client.
"""

import argparse
import calendar
import json
import multiprocessing
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTISAN = os.path.join(REPO, "fixtures", "laravel", "artisan")
BIN = os.path.abspath(os.environ.get("DEFER_WORKER_BIN") or os.path.join(REPO, "target", "release", "defer-worker"))
LIMIT_BIN = os.path.join(REPO, "target", "release", "examples", "redis_limit")
HOT_SYMBOLS = os.path.join(REPO, "link", "hot-symbols.txt")
# A command put before defer-worker's (scripts/hot-symbols.sh runs it under callgrind this way).
WRAP = shlex.split(os.environ.get("DEFER_WORKER_WRAP", ""))


# The private redis-server's port (PrivateRedis sets it).
REDIS_PORT = 6379


class Redis:
    """The smallest RESP client that does what this script needs."""

    def __init__(self, host="127.0.0.1", port=None):
        self.sock = socket.create_connection((host, port or REDIS_PORT))
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self._reply()

    def cpu_seconds(self):
        """The server's CPU time so far (INFO cpu: user + system)."""
        info = self.call("INFO", "cpu").decode()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])

    def pipeline(self, commands, chunk=2000):
        for i in range(0, len(commands), chunk):
            part = commands[i : i + chunk]
            self.sock.sendall(b"".join(self.encode(*c) for c in part))
            for _ in part:
                self._reply()


class PrivateRedis:
    """A redis-server of this run's own, on a free port, without persistence."""

    def __init__(self, storage):
        global REDIS_PORT
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", storage],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while True:
            try:
                Redis(port=port).call("PING")
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit(f"redis-server on port {port} did not start")
                time.sleep(0.05)
        REDIS_PORT = port

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def env_for(prefix, storage):
    e = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_NAME": "RestroSaaS",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(REDIS_PORT),
        "REDIS_PREFIX": prefix,
        "HARNESS_STORAGE": storage,
        "LOG_CHANNEL": "null",
        "DB_CONNECTION": "sqlite",
        "DB_DATABASE": os.path.join(storage, "bench.sqlite"),
        "DEFER_WORKER_LOG": "warn",
        "CACHE_DRIVER": "array",
    }
    return e


def seed_payload(env):
    """One payload exactly as the app's defer() writes it, through real Laravel."""
    subprocess.run(["php", ARTISAN, "harness:schema"], env=env, check=True, capture_output=True)
    subprocess.run(
        ["php", ARTISAN, "harness:dispatch", "analytics_tracking", '--data={"order_id":1}', "--queue=bench_seed"],
        env=env,
        check=True,
        capture_output=True,
    )
    r = Redis()
    key = env["REDIS_PREFIX"] + "queues:bench_seed"
    payload = r.call("LPOP", key)
    r.call("DEL", key, key + ":notify")
    return payload


def fill(r, prefix, queue, seed, n):
    """n copies of `seed` with fresh uuids, pushed as Laravel's push script does (RPUSH + notify)."""
    original = json.loads(seed)["uuid"].encode()
    key = prefix + "queues:" + queue
    cmds = []
    for _ in range(n):
        cmds.append(("RPUSH", key, seed.replace(original, str(uuid.uuid4()).encode())))
        cmds.append(("RPUSH", key + ":notify", 1))
    r.pipeline(cmds)


def clear(r, prefix, queue):
    key = prefix + "queues:" + queue
    r.call("DEL", key, key + ":notify", key + ":delayed", key + ":reserved")


def timed(cmd, env, cwd, out):
    """Runs cmd under /usr/bin/time, its stdout and stderr to the file `out` (or /dev/null); returns
    wall, user and system seconds, cpu (their sum), max RSS in KB and `preempted` (involuntary context
    switches)."""
    fd, stats = tempfile.mkstemp(prefix="dw-bench-time-")
    os.close(fd)
    with open(out or os.devnull, "w") as sink:
        p = subprocess.run(["/usr/bin/time", "-o", stats, "-f", "BENCH %e %U %S %M %c"] + cmd, env=env, cwd=cwd,
                           stdout=sink, stderr=sink)
    if p.returncode != 0:
        tail = open(out).read()[-4000:] if out else ""
        sys.stderr.write(tail)
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    with open(stats) as f:
        m = re.search(r"BENCH ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)", f.read())
    os.unlink(stats)
    user, sys_ = float(m[2]), float(m[3])
    return {"wall": float(m[1]), "user": user, "sys": sys_, "cpu": user + sys_, "rss_kb": int(m[4]),
            "preempted": int(m[5])}


# The two pairs: (PHP's environment and console file, defer-worker's environment and stderr file).
PAIRS = ("deployed", "quiet")


def drain(args, env, storage, seed, who, pair):
    """One drain of --jobs jobs by `who` set up as `pair` says."""
    logs = os.path.join(storage, "logs")
    os.makedirs(logs, exist_ok=True)
    if who == "php":
        cmd = ["php", ARTISAN, "queue:work", "redis", "--queue=bench", "--tries=3", "--stop-when-empty"]
        cwd = REPO
        if pair == "deployed":
            penv = dict(env, LOG_CHANNEL="single")
            out = os.path.join(logs, "php-console.log")
        else:
            penv = dict(env, LOG_CHANNEL="null", HARNESS_RETURN_AT_ONCE="1")
            out = None
    else:
        cfg = os.path.join(storage, "bench.toml")
        with open(cfg, "w") as f:
            f.write('[actions."*"]\nkind = "log"\n')
        cmd = WRAP + [BIN, "--config", cfg, "work", "--queue=bench", "--tries=3", "--stop-when-empty",
                      f"--concurrency={args.concurrency}", "--failed-db", os.path.join(storage, "failed.sqlite")]
        cwd = storage
        penv = dict(env)
        if pair == "deployed":
            penv.pop("DEFER_WORKER_LOG", None)
            out = os.path.join(logs, "defer-worker.log")
        else:
            penv["DEFER_WORKER_LOG"] = "off"
            out = None
    return timed_drain(args, env, seed, f"{who} ({pair})", cmd, penv, cwd, out)


def redis_limit(args, env, storage, seed):
    """The Redis-bound limit: the same drain by examples/redis_limit.rs, which sends what the worker
    sends per job (its batched pop script, the migrate scripts, a ZREM per job, through the same library
    calls and with the same concurrency, on the worker's runtime) and does nothing else."""
    return timed_drain(args, env, seed, "redis_limit", [LIMIT_BIN, "bench", str(args.concurrency)], env,
                       storage, None)


def timed_drain(args, env, seed, who, cmd, penv, cwd, out):
    """Fills the bench queue with --jobs jobs and runs `cmd` until it has drained them: jobs/s, CPU ms per
    job, peak RSS, and how busy Redis was meanwhile (its own CPU time over the wall time)."""
    r = Redis()
    prefix = env["REDIS_PREFIX"]
    clear(r, prefix, "bench")
    fill(r, prefix, "bench", seed, args.jobs)
    cpu_before = r.cpu_seconds()
    t = timed(cmd, penv, cwd, out)
    redis_cpu = r.cpu_seconds() - cpu_before
    left = r.call("LLEN", prefix + "queues:bench") + r.call("ZCARD", prefix + "queues:bench:reserved")
    if left:
        raise SystemExit(f"{who} left {left} jobs")
    per_job = 1000 / args.jobs
    return {"jobs_s": args.jobs / t["wall"], "cpu_ms_job": t["cpu"] * per_job, "user_ms_job": t["user"] * per_job,
            "sys_ms_job": t["sys"] * per_job, "rss_mb": t["rss_kb"] / 1024, "wall": t["wall"],
            "redis_busy": redis_cpu / t["wall"], "preempted": t["preempted"]}


def latency(args, env, storage, seed, who):
    """Idle worker; push one job every 20 ms; pickup = action start - push time."""
    r = Redis()
    prefix = env["REDIS_PREFIX"]
    clear(r, prefix, "lat")
    done_key = prefix + "bench_done"
    r.call("DEL", done_key)
    log_path = os.path.join(storage, f"lat-{who}.log")
    cfg = os.path.join(storage, "lat.toml")
    with open(cfg, "w") as f:
        f.write('[actions."*"]\nkind = "log"\n')
    if who == "php":
        cmd = ["php", ARTISAN, "queue:work", "redis", "--queue=lat", "--tries=3"]
        penv = dict(env, HARNESS_DONE_KEY="bench_done")
    else:
        cmd = WRAP + [BIN, "--log-format=json", "--config", cfg, "work", "--queue=lat",
               "--failed-db", os.path.join(storage, "failed.sqlite")]
        penv = dict(env, DEFER_WORKER_LOG="info")
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, env=penv, cwd=storage, stdout=subprocess.DEVNULL, stderr=log)
    time.sleep(2.0)  # let it reach its idle wait
    original = json.loads(seed)["uuid"].encode()
    pushed = {}
    key = prefix + "queues:lat"
    samples = args.samples if who != "php" else min(args.samples, 40)
    for _ in range(samples):
        u = str(uuid.uuid4())
        body = seed.replace(original, u.encode())
        t = time.time()
        r.sock.sendall(Redis.encode("RPUSH", key, body) + Redis.encode("RPUSH", key + ":notify", 1))
        r._reply(), r._reply()
        pushed[u] = t
        time.sleep(0.02 if who != "php" else 0.1)
    deadline = time.time() + 15
    got = {}
    while time.time() < deadline and len(got) < len(pushed):
        if who == "php":
            reply = r.call("BLPOP", done_key, 1)
            if reply:
                got[reply[1].decode()] = time.time()
        else:
            time.sleep(0.2)
            for line in open(log_path):
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if doc.get("outcome") == "done":
                    ts = doc["timestamp"]
                    # RFC 3339 with microseconds and Z
                    base, frac = ts.rstrip("Z").split(".")
                    end = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
                    end += float("0." + frac)
                    got[doc["uuid"]] = end - doc["ms"] / 1000.0
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    lat = sorted((got[u] - pushed[u]) * 1000 for u in got if u in pushed)
    if not lat:
        raise SystemExit(f"{who}: no latency sample")
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    clear(r, prefix, "lat")
    return {"p50_ms": p(0.5), "p99_ms": p(0.99), "n": len(lat)}


def seed_whatsapp(env):
    """A whatsapp_notification payload for seeded order 2, as the app's deferWhatsApp() writes it."""
    subprocess.run(
        ["php", ARTISAN, "harness:dispatch", '--data={"order_id":2}', "--via=deferWhatsApp"],
        env=env, check=True, capture_output=True,
    )
    r = Redis()
    key = env["REDIS_PREFIX"] + "queues:whatsapp"
    payload = r.call("LPOP", key)
    r.call("DEL", key, key + ":notify")
    return payload


def io_bound(args, env, storage):
    """Drains --io-jobs WhatsApp jobs against a stub that answers in 100 ms."""
    db = "dwbench_" + uuid.uuid4().hex[:8]
    subprocess.run(["mysql", "-h127.0.0.1", "-uroot", "-e", f"CREATE DATABASE {db}"], check=True)
    try:
        subprocess.run([os.path.join(REPO, "fixtures", "app", "load.sh"), "mysql", db], check=True,
                       capture_output=True)
        # The worker refuses to start without the app's failed_jobs table (Laravel's migration).
        subprocess.run(["mysql", "-h127.0.0.1", "-uroot", db, "-e",
                        "CREATE TABLE IF NOT EXISTS failed_jobs (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
                        " uuid VARCHAR(255) NOT NULL UNIQUE, connection TEXT NOT NULL, queue TEXT NOT NULL,"
                        " payload LONGTEXT NOT NULL, exception LONGTEXT NOT NULL,"
                        " failed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"], check=True)
        stub = subprocess.Popen([sys.executable, os.path.join(REPO, "deploy", "bench", "meta_stub.py"),
                                 "--delay", "0.1"], stdout=subprocess.PIPE, text=True)
        port = int(stub.stdout.readline().split()[1])
        wenv = dict(env, DB_CONNECTION="mysql", DB_HOST="127.0.0.1", DB_PORT="3306", DB_DATABASE=db,
                    DB_USERNAME="root", DB_PASSWORD="", WHATSAPP_API_URL=f"http://127.0.0.1:{port}/v25.0",
                    WHATSAPP_API_TOKEN="bench-token", WHATSAPP_PHONE_NUMBER_ID="123456789",
                    APP_URL="https://resto.test")
        seed = seed_whatsapp(env)
        r = Redis()
        prefix = env["REDIS_PREFIX"]
        clear(r, prefix, "bench_io")
        fill(r, prefix, "bench_io", seed, args.io_jobs)
        cfg = os.path.join(storage, "io.toml")
        with open(cfg, "w") as f:
            # Meta's default throughput is 80 msg/s per number; higher tiers allow up to 1 000.
            f.write('[actions.whatsapp_notification]\nkind = "whatsapp"\n'
                    'rate_limit = { per_second = 1000, burst = 1000, per_recipient_ms = 0 }\n')
        cmd = WRAP + [BIN, "--config", cfg, "work", "--queue=bench_io", "--tries=3", "--stop-when-empty",
               f"--concurrency={args.io_concurrency}"]
        try:
            t = timed(cmd, wenv, storage, os.path.join(storage, "io.log"))
        finally:
            stub.terminate()
        sent = int(stub.communicate(timeout=10)[0].split()[-1])
        left = r.call("LLEN", prefix + "queues:bench_io") + r.call("ZCARD", prefix + "queues:bench_io:reserved")
        if left or sent != args.io_jobs:
            raise SystemExit(f"io: {left} jobs left, stub got {sent} of {args.io_jobs}")
        return {"jobs_s": args.io_jobs / t["wall"], "rss_mb": t["rss_kb"] / 1024,
                "cpu_ms_job": t["cpu"] * 1000 / args.io_jobs}
    finally:
        subprocess.run(["mysql", "-h127.0.0.1", "-uroot", "-e", f"DROP DATABASE IF EXISTS {db}"])


def symbol_order_note():
    """How much of link/hot-symbols.txt the benchmarked binary's link could use (see link/README.md)."""
    try:
        listed = set(open(HOT_SYMBOLS).read().split())
        nm = subprocess.run(["nm", "--defined-only", BIN], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        return f"hot-symbol order: not checked ({err})"
    found = len(listed & {line.split()[-1] for line in nm.splitlines() if line})
    hint = "" if found >= 0.9 * len(listed) else " (stale list: run scripts/hot-symbols.sh)"
    return f"hot-symbol order: {found} of {len(listed)} listed functions are in the binary{hint}"


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def pair_table(rows, pair, args):
    """The table of one pair: medians of PHP and defer-worker, with the ratios."""
    ours, php = rows[("ours", pair)], rows[("php", pair)]
    title = {"deployed": "as deployed (logs written as in production)",
             "quiet": "quiet (PHP job returns at once, console to /dev/null; defer-worker logging off)"}[pair]
    print(f"\n{title}\n")
    print(f"| {pair}: median of {args.runs} | PHP queue:work | defer-worker | ratio |")
    print("| --- | --- | --- | --- |")
    ours_js, ours_cpu, ours_rss = median(ours, "jobs_s"), median(ours, "cpu_ms_job"), median(ours, "rss_mb")
    if php:
        php_js, php_cpu, php_rss = median(php, "jobs_s"), median(php, "cpu_ms_job"), median(php, "rss_mb")
        print(f"| drain {args.jobs} no-op jobs, jobs/s | {php_js:.0f} | {ours_js:.0f} | {ours_js / php_js:.1f}x |")
        print(f"| CPU per job, ms | {php_cpu:.3f} | {ours_cpu:.4f} | 1/{php_cpu / ours_cpu:.0f} |")
        print(f"| peak RSS, MB | {php_rss:.1f} | {ours_rss:.1f} | 1/{php_rss / ours_rss:.1f} |")
    else:
        print(f"| drain {args.jobs} no-op jobs, jobs/s | - | {ours_js:.0f} | - |")
        print(f"| CPU per job, ms | - | {ours_cpu:.4f} | - |")
        print(f"| peak RSS, MB | - | {ours_rss:.1f} | - |")


def push_steadily(port, key, seed, rate, seconds, out):
    """The soak's pusher, a process of its own so that reading the log never holds a push back: about
    every millisecond it pushes the jobs due by then (RPUSH payload, RPUSH notify, as Laravel's push
    script) and sends `out` their uuids with the time taken just before the send, then None at the end."""
    r = Redis(port=port)
    original = json.loads(seed)["uuid"].encode()
    start = time.time()
    sent = 0
    while True:
        now = time.time()
        due = int((min(now, start + seconds) - start) * rate) - sent
        if due > 0:
            ids = [str(uuid.uuid4()) for _ in range(due)]
            cmds = []
            for u in ids:
                cmds += [("RPUSH", key, seed.replace(original, u.encode())), ("RPUSH", key + ":notify", 1)]
            at = time.time()
            r.pipeline(cmds)
            out.send((ids, at))
            sent += due
        if now >= start + seconds:
            break
        time.sleep(0.001)
    out.send(None)


def soak(args, env, storage, seed):
    """Steady pushes at --rate for --soak s; RSS and pickup p50/p99 every 30 s."""
    r = Redis()
    prefix = env["REDIS_PREFIX"]
    clear(r, prefix, "soak")
    cfg = os.path.join(storage, "soak.toml")
    with open(cfg, "w") as f:
        f.write('[actions."*"]\nkind = "log"\n')
    log_path = os.path.join(storage, "soak.log")
    log = open(log_path, "w")
    cmd = WRAP + [BIN, "--log-format=json", "--config", cfg, "work", "--queue=soak", "--tries=3",
                  f"--concurrency={args.concurrency}", "--failed-db", os.path.join(storage, "failed.sqlite")]
    proc = subprocess.Popen(cmd, env=dict(env, DEFER_WORKER_LOG="info"), cwd=storage,
                            stdout=subprocess.DEVNULL, stderr=log)
    mp = multiprocessing.get_context("fork")
    receive, send = mp.Pipe(duplex=False)
    pusher = mp.Process(target=push_steadily,
                        args=(REDIS_PORT, prefix + "queues:soak", seed, args.rate, args.soak, send))
    # A job's pickup = its start (the done line's time - its ms) - the time its push was sent. The done
    # line can be read before the pusher's message about it: whichever comes second completes the pair.
    pushed, begun, rows, window = {}, {}, [], []

    def pair(u, push_at=None, start_at=None):
        if push_at is None:
            push_at = pushed.pop(u, None)
        if start_at is None:
            start_at = begun.pop(u, None)
        if push_at is not None and start_at is not None:
            window.append((start_at - push_at) * 1000)
        elif push_at is not None:
            pushed[u] = push_at
        else:
            begun[u] = start_at

    reader, pending = open(log_path), ""
    start = time.time()
    pusher.start()
    next_sample = start + 30
    sent = started = 0
    pushing, stopped_at, soak_end = True, None, start + args.soak
    print(f"soak: {args.rate} jobs/s for {args.soak} s, concurrency {args.concurrency}")
    print("| t, s | pushed | started | in window | RSS, MB | pickup p50, ms | pickup p99, ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    while True:
        while pushing and receive.poll():
            msg = receive.recv()
            if msg is None:
                pushing = False
                break
            ids, at = msg
            sent += len(ids)
            for u in ids:
                pair(u, push_at=at)
        lines = (pending + reader.read()).split("\n")
        pending = lines.pop()  # a line not yet written to its end
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("outcome") != "done" or "uuid" not in doc:
                continue
            base, frac = doc["timestamp"].rstrip("Z").split(".")
            end = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)
            pair(doc["uuid"], start_at=end - doc["ms"] / 1000.0)
        now = time.time()
        if not pushing and stopped_at is None:
            stopped_at = now
        # The last window is the one the pusher's end falls in, closed once every job pushed has been
        # seen to start (or 30 s after the end): not a sliver of a few jobs after the last full window.
        last = stopped_at is not None and (not pushed or now > stopped_at + 30)
        if (now >= next_sample and next_sample < soak_end) or last:
            started += len(window)
            lat = sorted(window)
            p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
            rows.append((round(now - start), sent, started, len(window), vm_rss_mb(proc.pid), p(0.5), p(0.99)))
            print("| {} | {} | {} | {} | {:.1f} | {:.2f} | {:.2f} |".format(*rows[-1]), flush=True)
            window = []
            next_sample += 30
            if last:
                break
        time.sleep(0.01)
    if pushed:
        print(f"soak: {len(pushed)} jobs pushed were not seen to start within 30 s of the end")
    pusher.join()
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    clear(r, prefix, "soak")
    plot_soak(rows, os.path.join(REPO, "target", "soak.png"))


def vm_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plot_soak(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: table only)")
        return
    t = [row[0] for row in rows]
    fig, (a, b) = plt.subplots(2, 1, sharex=True, figsize=(7, 5))
    a.plot(t, [row[4] for row in rows])
    a.set_ylabel("RSS, MB")
    b.plot(t, [row[5] for row in rows], label="p50")
    b.plot(t, [row[6] for row in rows], label="p99")
    b.set_ylabel("pickup, ms")
    b.set_xlabel("s")
    b.legend()
    fig.savefig(path)
    print(f"plot: {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--skip-php", action="store_true", help="only defer-worker and Redis (no ratios)")
    ap.add_argument("--io-jobs", type=int, default=10_000, help="WhatsApp jobs for the I/O-bound run (0: skip)")
    ap.add_argument("--io-concurrency", type=int, default=256)
    ap.add_argument("--only", choices=["io"], help="run only this part (e.g. to tune it)")
    ap.add_argument("--soak", type=int, metavar="SECONDS", help="soak mode instead of the benchmark (not for CI)")
    ap.add_argument("--rate", type=int, default=3000, help="soak mode: jobs pushed per second")
    ap.add_argument("--no-fleet", action="store_true",
                    help="workers without the fleet registry and history (DEFER_WORKER_NO_FLEET=1), to measure their cost")
    args = ap.parse_args()

    storage = tempfile.mkdtemp(prefix="dw-bench-")
    redis = PrivateRedis(storage)
    try:
        run(args, storage)
    finally:
        redis.stop()
        shutil.rmtree(storage, ignore_errors=True)


def run(args, storage):
    prefix = f"dwbench_{uuid.uuid4().hex[:8]}_"
    env = env_for(prefix, storage)
    if args.no_fleet:
        env["DEFER_WORKER_NO_FLEET"] = "1"
    seed = seed_payload(env)
    if args.soak:
        soak(args, env, storage, seed)
        return
    print(f"payload: {len(seed)} bytes; {args.jobs} jobs x {args.runs} runs; concurrency {args.concurrency}; "
          f"private redis-server on port {REDIS_PORT}")
    print(symbol_order_note())

    if args.only == "io":
        runs = [io_bound(args, env, storage) for _ in range(args.runs)]
        print("whatsapp io jobs/s:", ", ".join(f"{r['jobs_s']:.0f}" for r in runs),
              f"(median {median(runs, 'jobs_s'):.0f}; RSS {median(runs, 'rss_mb'):.1f} MB, "
              f"CPU {median(runs, 'cpu_ms_job'):.3f} ms/job)")
        return
    rows = {(who, pair): [] for who in ("php", "ours") for pair in PAIRS}
    io_runs, limits = [], []
    for i in range(args.runs):
        # PHP's two drains, then ours back to back (their order alternating from run to run), so that
        # logging's cost is read from two drains in the same machine state, not half a minute apart.
        if not args.skip_php:
            for pair in PAIRS:
                rows[("php", pair)].append(drain(args, env, storage, seed, "php", pair))
        for pair in PAIRS if i % 2 == 0 else PAIRS[::-1]:
            rows[("ours", pair)].append(drain(args, env, storage, seed, "ours", pair))
        limits.append(redis_limit(args, env, storage, seed))
        if args.io_jobs:
            io_runs.append(io_bound(args, env, storage))
        line = []
        for pair in PAIRS:
            php, ours = rows[("php", pair)], rows[("ours", pair)][-1]
            line.append(f"{pair}: " + (f"php {php[-1]['jobs_s']:.0f}, " if php else "")
                        + f"ours {ours['jobs_s']:.0f} jobs/s ({ours['cpu_ms_job']:.4f} ms CPU/job,"
                        f" RSS {ours['rss_mb']:.1f} MB)")
        quiet, limit = rows[("ours", "quiet")][-1], limits[-1]
        logged = rows[("ours", "deployed")][-1]["jobs_s"] / quiet["jobs_s"] - 1
        line.append(f"ours as deployed {100 * logged:+.0f}% against quiet")
        line.append(f"Redis-bound limit {limit['jobs_s']:.0f} jobs/s (Redis busy {100 * limit['redis_busy']:.0f}%),"
                    f" quiet drain at {100 * quiet['jobs_s'] / limit['jobs_s']:.0f}% of it"
                    f" (Redis busy {100 * quiet['redis_busy']:.0f}%)")
        if io_runs:
            line.append(f"whatsapp io {io_runs[-1]['jobs_s']:.0f} jobs/s")
        print(f"run {i + 1}: " + "; ".join(line), flush=True)
    lat_ours = latency(args, env, storage, seed, "ours")
    lat_php = None if args.skip_php else latency(args, env, storage, seed, "php")

    for pair in PAIRS:
        pair_table(rows, pair, args)
    quiet = rows[("ours", "quiet")]
    shares = [q["jobs_s"] / lim["jobs_s"] for q, lim in zip(quiet, limits)]
    print(f"\n| other measures (median of {args.runs}) | PHP queue:work | defer-worker | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| Redis-bound limit (examples/redis_limit.rs: the worker's pop/migrate/delete only), jobs/s | "
          f"| {median(limits, 'jobs_s'):.0f} | quiet drain at {100 * min(shares):.0f}-{100 * max(shares):.0f}%"
          f" of it, run by run |")
    costs = [d["jobs_s"] / q["jobs_s"] - 1 for d, q in zip(rows[("ours", "deployed")], quiet)]
    print(f"| defer-worker as deployed against quiet (logging at the default level), jobs/s, run by run | | "
          + ", ".join(f"{100 * c:+.0f}%" for c in costs) + f" | median {100 * statistics.median(costs):+.0f}% |")
    php_lat = f"{lat_php['p50_ms']:.1f} / {lat_php['p99_ms']:.1f}" if lat_php else "-"
    print(f"| pickup latency p50 / p99, ms | {php_lat} | {lat_ours['p50_ms']:.2f} / {lat_ours['p99_ms']:.2f} | |")
    if io_runs:
        io_js = median(io_runs, "jobs_s")
        print(f"| whatsapp kind, stub answering in 100 ms, jobs/s (concurrency {args.io_concurrency}) "
              f"| <= 10 (one job at a time) | {io_js:.0f} | >= {io_js / 10:.0f}x |")


if __name__ == "__main__":
    main()
