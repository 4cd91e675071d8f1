#!/usr/bin/env python3
"""Logging's cost per job, counted in instructions (callgrind), which other load on the machine does not
change, unlike CPU time: a no-op drain (the `log` kind) of --jobs jobs by each given binary, at `info`
(the default text format, stderr to a file) and with logging off, two rounds.

    python3 deploy/bench/log_cost.py BINARY [BINARY...] [--jobs 3000]

Needs valgrind, php and the harness as deploy/bench/bench.py does (it reuses its private redis-server,
payload and queue filling).
"""

import argparse
import os
import subprocess
import tempfile

import bench


def drain(binary, env, storage, cfg, seed, jobs, level):
    r = bench.Redis()
    bench.clear(r, env["REDIS_PREFIX"], "bench")
    bench.fill(r, env["REDIS_PREFIX"], "bench", seed, jobs)
    out = os.path.join(storage, "callgrind.out")
    log_path = os.path.join(storage, "stderr.log")
    with open(log_path, "w") as log:
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "--config", cfg,
                        "work", "--queue=bench", "--tries=3", "--stop-when-empty", "--concurrency=64",
                        "--failed-db", os.path.join(storage, "failed.sqlite")],
                       env=dict(env, DEFER_WORKER_LOG=level), cwd=storage, stdout=subprocess.DEVNULL, stderr=log,
                       check=True)
    total = next(int(line.split()[1]) for line in open(out) if line.startswith(("summary:", "totals:")))
    return total / jobs, os.path.getsize(log_path) / jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", type=os.path.abspath)  # the drains run in a scratch directory
    ap.add_argument("--jobs", type=int, default=3000)
    args = ap.parse_args()
    storage = tempfile.mkdtemp(prefix="dw-logcost-")
    redis = bench.PrivateRedis(storage)
    try:
        env = bench.env_for("dwlogcost_", storage)
        seed = bench.seed_payload(env)
        cfg = os.path.join(storage, "cost.toml")
        with open(cfg, "w") as f:
            f.write('[actions."*"]\nkind = "log"\n')
        print("| round | binary | instructions/job at info | with logging off | logging's share | log bytes/job |")
        print("| --- | --- | --- | --- | --- | --- |")
        for rnd in (1, 2):
            for binary in args.binaries:
                info, size = drain(binary, env, storage, cfg, seed, args.jobs, "info")
                off, _ = drain(binary, env, storage, cfg, seed, args.jobs, "off")
                print(f"| {rnd} | {binary} | {info:,.0f} | {off:,.0f} | +{100 * (info - off) / off:.0f} % "
                      f"| {size:.0f} |", flush=True)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
