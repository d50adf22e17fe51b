#!/usr/bin/python3
"""The cost of an async def fop against a sync one (issue 7).

Fresh brick per run (posix -> locks -> glupy -> io-threads -> server), one
gfapi client in this process doing N stats of one file (each a lookup through
the translator), configurations interleaved round by round; prints ops/s
and the statedump's python_avg_us (for sync: the fop call, which includes
the wind and the callback run inline below io-threads; for async: only the
call that creates the coroutine), medians of the rounds with their range.
Run it on a quiet machine: on a loaded 2-core box the spread swamps the
differences.

    /usr/bin/python3 bench/async_vs_sync.py [--rounds 5] [--ops 3000]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import glusterlib  # noqa: E402

XLATORS = str(ROOT / "bench/xlators")
IOT = ("performance/io-threads", {})
CONFIGS = {
    "none": [IOT],
    "sync": [("features/glupy", {"module-name": "lookup_sync", "module-path": XLATORS}), IOT],
    "async": [("features/glupy", {"module-name": "lookup_async", "module-path": XLATORS}), IOT],
}


def one_run(layers, ops):
    with tempfile.TemporaryDirectory(prefix="glupy-bench-") as tmp:
        cluster = glusterlib.Cluster(tmp)
        try:
            brick = cluster.brick(layers)
            client = cluster.gfapi(brick)
            client.write_file("/f", b"x")
            for _ in range(300):
                client.stat("/f")
            started = time.perf_counter()
            for _ in range(ops):
                client.stat("/f")
            rate = ops / (time.perf_counter() - started)
            python_us = None
            for name, section in glusterlib.statedump_sections(brick.statedump()).items():
                if name.endswith(".priv") and "glupy" in name:
                    counters = dict(kv.split("=") for kv in section["fop.lookup"].split())
                    python_us = float(counters["python_avg_us"])
            return rate, python_us
        finally:
            cluster.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=3000)
    args = parser.parse_args()
    results = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name, layers in CONFIGS.items():
            results[name].append(one_run(layers, args.ops))
    base = statistics.median(r for r, _ in results["none"])
    print(f"{'config':8} {'ops/s median':>13} {'range':>17} {'vs none':>8} {'µs in Python/call':>18}")
    for name, runs in results.items():
        rates = [r for r, _ in runs]
        us = [u for _, u in runs if u is not None]
        shown_us = f"{statistics.median(us):.1f}" if us else "-"
        print(f"{name:8} {statistics.median(rates):13.0f} {min(rates):8.0f}-{max(rates):<8.0f} "
              f"{statistics.median(rates) / base:8.2f} {shown_us:>18}")
    glusterlib.finish_closing()


if __name__ == "__main__":
    main()
