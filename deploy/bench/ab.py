#!/usr/bin/env python3
"""A/B drains of defer-worker alone: the same no-op drain as the benchmark's (the `log` kind,
--concurrency 64, the app's payload) by each variant in turn, round after round, so that every variant
sees the same machine states; per drain and as medians: jobs/s, CPU per job (user and system), how busy
Redis was, peak RSS and involuntary context switches. For a question about one change (a binary, a log
level, an environment variable), not for the PHP comparison (deploy/bench/run.sh).

A variant is BINARY@LEVEL[@VAR=VALUE...][@null]: LEVEL is a DEFER_WORKER_LOG value, or `default` to leave
it unset; stderr goes to a file unless the level is `off` or `@null` sends it to /dev/null.

    python3 deploy/bench/ab.py target/release/defer-worker@default target/release/defer-worker@off
    python3 deploy/bench/ab.py /tmp/old@default /tmp/new@default --jobs 60000 --rounds 4
    python3 deploy/bench/ab.py target/release/defer-worker@default@null target/release/defer-worker@default

Needs what deploy/bench/bench.py needs (php and the harness for the payload, redis-server); the binaries
are built beforehand (cargo build --release --locked --bin defer-worker).
"""

import argparse
import os
import statistics
import tempfile

import bench


def variant(spec):
    """BINARY@LEVEL[@VAR=VALUE...][@null] -> (binary, level, extra environment, stderr to a file?)."""
    binary, level, *rest = spec.split("@")
    to_file = level != "off" and "null" not in rest
    extra = dict(item.split("=", 1) for item in rest if item != "null")
    return os.path.abspath(binary), level, extra, to_file


def drain(args, env, storage, seed, spec):
    binary, level, extra, to_file = variant(spec)
    cfg = os.path.join(storage, "ab.toml")
    with open(cfg, "w") as f:
        f.write('[actions."*"]\nkind = "log"\n')
    cmd = bench.WRAP + [binary, "--config", cfg, "work", "--queue=bench", "--tries=3", "--stop-when-empty",
                        f"--concurrency={args.concurrency}", "--failed-db", os.path.join(storage, "failed.sqlite")]
    penv = dict(env, DEFER_WORKER_LOG=level, **extra)
    if level == "default":
        penv.pop("DEFER_WORKER_LOG")
    out = os.path.join(storage, "ab.log") if to_file else None
    return bench.timed_drain(args, env, seed, spec, cmd, penv, storage, out)


def line(name, r):
    return (f"{name:48s} {r['jobs_s']:8.0f} jobs/s  CPU {1000 * r['cpu_ms_job']:5.1f} us/job (user "
            f"{1000 * r['user_ms_job']:4.1f}, sys {1000 * r['sys_ms_job']:4.1f})  Redis busy "
            f"{100 * r['redis_busy']:3.0f}%  RSS {r['rss_mb']:4.1f} MB  preempted {r['preempted']:5.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", metavar="BINARY@LEVEL")
    ap.add_argument("--jobs", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    for spec in args.variants:
        binary = variant(spec)[0]
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"ab: {binary} is not an executable (variant {spec})")
    storage = tempfile.mkdtemp(prefix="dw-ab-")
    server = bench.PrivateRedis(storage)
    try:
        env = bench.env_for("dwab_", storage)
        seed = bench.seed_payload(env)
        runs = {spec: [] for spec in args.variants}
        for i in range(args.rounds):
            for spec in args.variants:
                runs[spec].append(drain(args, env, storage, seed, spec))
                print(f"round {i + 1}: " + line(spec, runs[spec][-1]), flush=True)
        print(f"\nmedians of {args.rounds} rounds of {args.jobs} jobs:")
        for spec, rs in runs.items():
            medians = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            print(line(spec, medians))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
