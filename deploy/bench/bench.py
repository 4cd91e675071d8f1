#!/usr/bin/env python3
"""End-to-end benchmark: defer-worker against the real Laravel worker, on the same payloads.

Run through deploy/bench/run.sh (which builds the release binary and checks the services). Measures,
each over --runs runs (medians printed, with the ratios):

  drain    N no-op DeferredJob payloads (made by the real Laravel harness, uuids made unique):
           `php artisan queue:work --tries=3` (one process, as the app runs it) vs `defer-worker work
           --concurrency C` (the `log` kind with logging off): jobs/s, CPU s per job, peak RSS.
  redis    the Redis-bound limit: redis-benchmark running the pop script (EVALSHA, pipelined, several
           connections) on the same payloads: pops/s.
  latency  pickup latency of an idle worker: RPUSH (as Laravel's push script does it) -> the job starts;
           p50/p99 over --samples pushes spaced 20 ms apart. PHP with its default --sleep=3.
  io       the `whatsapp` kind (seeded app database on MariaDB, whatsapp_messages_log written) against
           deploy/bench/meta_stub.py answering every send in 100 ms: jobs/s of one defer-worker process
           (--io-concurrency jobs in flight). One PHP worker runs one job at a time, so it cannot beat
           1 / 0.1 s = 10 jobs/s there; that bound is printed, not measured.

Only the standard library: Redis is spoken to with a minimal RESP client.
"""

import argparse
import calendar
import json
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
BIN = os.environ.get("DEFER_WORKER_BIN") or os.path.join(REPO, "target", "release", "defer-worker")
POP_LUA = os.path.join(REPO, "src", "laravel", "lua", "pop.lua")
HOT_SYMBOLS = os.path.join(REPO, "link", "hot-symbols.txt")
# A command put before defer-worker's (scripts/hot-symbols.sh runs it under callgrind this way).
WRAP = shlex.split(os.environ.get("DEFER_WORKER_WRAP", ""))


class Redis:
    """The smallest RESP client that does what this script needs."""

    def __init__(self, host="127.0.0.1", port=6379):
        self.sock = socket.create_connection((host, port))
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

    def pipeline(self, commands, chunk=2000):
        for i in range(0, len(commands), chunk):
            part = commands[i : i + chunk]
            self.sock.sendall(b"".join(self.encode(*c) for c in part))
            for _ in part:
                self._reply()


def env_for(prefix, storage):
    e = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_NAME": "RestroSaaS",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "6379",
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


def timed(cmd, env, cwd):
    """Runs cmd under /usr/bin/time; returns (wall s, cpu s, max RSS KB)."""
    fmt = "BENCH %e %U %S %M"
    p = subprocess.run(["/usr/bin/time", "-f", fmt] + cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    m = re.search(r"BENCH ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", p.stderr)
    wall, user, sys_, rss = float(m[1]), float(m[2]), float(m[3]), int(m[4])
    return wall, user + sys_, rss


def drain(args, env, storage, seed, who):
    r = Redis()
    prefix = env["REDIS_PREFIX"]
    clear(r, prefix, "bench")
    fill(r, prefix, "bench", seed, args.jobs)
    if who == "php":
        cmd = ["php", ARTISAN, "queue:work", "redis", "--queue=bench", "--tries=3", "--stop-when-empty"]
        cwd = REPO
    else:
        cfg = os.path.join(storage, "bench.toml")
        with open(cfg, "w") as f:
            f.write('[actions."*"]\nkind = "log"\n')
        cmd = WRAP + [BIN, "--config", cfg, "work", "--queue=bench", "--tries=3", "--stop-when-empty",
               f"--concurrency={args.concurrency}", "--failed-db", os.path.join(storage, "failed.sqlite")]
        cwd = storage
    wall, cpu, rss = timed(cmd, env, cwd)
    left = r.call("LLEN", prefix + "queues:bench") + r.call("ZCARD", prefix + "queues:bench:reserved")
    if left:
        raise SystemExit(f"{who} left {left} jobs")
    return {"jobs_s": args.jobs / wall, "cpu_ms_job": cpu * 1000 / args.jobs, "rss_mb": rss / 1024, "wall": wall}


def redis_bound(args, env, seed):
    r = Redis()
    prefix = env["REDIS_PREFIX"]
    clear(r, prefix, "bench")
    fill(r, prefix, "bench", seed, args.jobs)
    with open(POP_LUA, "rb") as f:
        sha = r.call("SCRIPT", "LOAD", f.read()).decode()
    key = prefix + "queues:bench"
    out = subprocess.run(
        ["redis-benchmark", "-q", "-n", str(args.jobs), "-c", "8", "-P", "16",
         "EVALSHA", sha, "3", key, key + ":reserved", key + ":notify", str(int(time.time()) + 3600), "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    m = re.findall(r"([\d.]+) requests per second", out)
    clear(r, prefix, "bench")
    return {"jobs_s": float(m[-1])}


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
        wall, cpu, rss = timed(cmd, wenv, storage)
        stub.terminate()
        sent = int(stub.communicate(timeout=10)[0].split()[-1])
        left = r.call("LLEN", prefix + "queues:bench_io") + r.call("ZCARD", prefix + "queues:bench_io:reserved")
        if left or sent != args.io_jobs:
            raise SystemExit(f"io: {left} jobs left, stub got {sent} of {args.io_jobs}")
        return {"jobs_s": args.io_jobs / wall, "rss_mb": rss / 1024, "cpu_ms_job": cpu * 1000 / args.io_jobs}
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
    args = ap.parse_args()

    storage = tempfile.mkdtemp(prefix="dw-bench-")
    prefix = f"dwbench_{uuid.uuid4().hex[:8]}_"
    env = env_for(prefix, storage)
    seed = seed_payload(env)
    print(f"payload: {len(seed)} bytes; {args.jobs} jobs x {args.runs} runs; concurrency {args.concurrency}")
    print(symbol_order_note())

    rows = {"php": [], "ours": [], "redis": []}
    io_runs = []
    if args.only == "io":
        runs = [io_bound(args, env, storage) for _ in range(args.runs)]
        print("whatsapp io jobs/s:", ", ".join(f"{r['jobs_s']:.0f}" for r in runs),
              f"(median {median(runs, 'jobs_s'):.0f}; RSS {median(runs, 'rss_mb'):.1f} MB, "
              f"CPU {median(runs, 'cpu_ms_job'):.3f} ms/job)")
        return
    for i in range(args.runs):
        if not args.skip_php:
            rows["php"].append(drain(args, env, storage, seed, "php"))
        rows["ours"].append(drain(args, env, storage, seed, "ours"))
        rows["redis"].append(redis_bound(args, env, seed))
        if args.io_jobs:
            io_runs.append(io_bound(args, env, storage))
        print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]['jobs_s']:.0f} jobs/s" for k, v in rows.items() if v)
              + f" (ours: {rows['ours'][-1]['cpu_ms_job']:.4f} ms CPU/job, peak RSS {rows['ours'][-1]['rss_mb']:.1f} MB)"
              + (f", whatsapp io {io_runs[-1]['jobs_s']:.0f} jobs/s" if io_runs else ""))
    lat_ours = latency(args, env, storage, seed, "ours")
    lat_php = None if args.skip_php else latency(args, env, storage, seed, "php")

    ours_js, redis_js = median(rows["ours"], "jobs_s"), median(rows["redis"], "jobs_s")
    print()
    print(f"| measure (median of {args.runs}) | PHP queue:work | defer-worker | ratio |")
    print("| --- | --- | --- | --- |")
    if rows["php"]:
        php_js = median(rows["php"], "jobs_s")
        php_cpu, ours_cpu = median(rows["php"], "cpu_ms_job"), median(rows["ours"], "cpu_ms_job")
        php_rss, ours_rss = median(rows["php"], "rss_mb"), median(rows["ours"], "rss_mb")
        print(f"| drain {args.jobs} no-op jobs, jobs/s | {php_js:.0f} | {ours_js:.0f} | {ours_js / php_js:.1f}x |")
        print(f"| CPU per job, ms | {php_cpu:.3f} | {ours_cpu:.4f} | 1/{php_cpu / ours_cpu:.0f} |")
        print(f"| peak RSS, MB | {php_rss:.1f} | {ours_rss:.1f} | 1/{php_rss / ours_rss:.1f} |")
    else:
        print(f"| drain {args.jobs} no-op jobs, jobs/s | - | {ours_js:.0f} | - |")
        print(f"| CPU per job, ms | - | {median(rows['ours'], 'cpu_ms_job'):.4f} | - |")
        print(f"| peak RSS, MB | - | {median(rows['ours'], 'rss_mb'):.1f} | - |")
    print(f"| Redis-bound limit (pop script, redis-benchmark), pops/s | | {redis_js:.0f} | defer-worker at {100 * ours_js / redis_js:.0f}% |")
    php_lat = f"{lat_php['p50_ms']:.1f} / {lat_php['p99_ms']:.1f}" if lat_php else "-"
    print(f"| pickup latency p50 / p99, ms | {php_lat} | {lat_ours['p50_ms']:.2f} / {lat_ours['p99_ms']:.2f} | |")
    if io_runs:
        io_js = median(io_runs, "jobs_s")
        print(f"| whatsapp kind, stub answering in 100 ms, jobs/s (concurrency {args.io_concurrency}) "
              f"| <= 10 (one job at a time) | {io_js:.0f} | >= {io_js / 10:.0f}x |")
    shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    main()
