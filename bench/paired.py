#!/usr/bin/python3
"""Per-round comparisons of two configurations of one run (run.py's or
contention.py's JSON): throughput of B against A, and CPU per operation of
each (the brick's, the driver's, and both), medians over the rounds with
their range. Ratios taken within a round cancel what the machine did to both.

    bench/paired.py target/bench/quick-....json[.gz] A B [--experiment python]
"""

import argparse
import gzip
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import aggregate  # noqa: E402


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def measured(round_results):
    """(vol, op, threads) -> {ops_per_s, client_cpu_us, brick_cpu_us (only if
    every slice has the brick's CPU: not a client-side experiment, an old
    run)}, over the slices of one round (run.py's `aggregate`); None for a
    measurement that did nothing."""
    slices = defaultdict(list)
    for s in round_results:
        slices[(s["vol"], s["op"], s["threads"])].append(s)
    out = {}
    for key, group in slices.items():
        keys = ["ops_per_s", "client_cpu_us"]
        if all("brick_cpu_s" in s for s in group):
            keys.append("brick_cpu_us")
        values = {k: aggregate(group, k) for k in keys}
        out[key] = None if values["ops_per_s"] is None else values
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json")
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--experiment", default="python")
    args = parser.parse_args()
    if args.a == args.b:
        parser.error("A and B are the same configuration")
    rounds = load(args.json)["experiments"][args.experiment]["rounds"]
    seen = {s["vol"] for r in rounds for s in r["results"]}
    if missing := [name for name in (args.a, args.b) if name not in seen]:
        parser.error(f"no configuration {missing} in this run: it has {sorted(seen)}")
    rows = defaultdict(list)
    for r in rounds:
        # A round's job (run.py's negative experiment runs two, over 200 and
        # 10,000 names, with the same configurations and operations).
        job = f"{r['job']}: " if r.get("job") not in (None, "ops") else ""
        found = measured(r["results"])
        for (vol, op, threads), a in found.items():
            b = found.get((args.b, op, threads))
            if vol != args.a or not a or not b:
                continue  # not both measured, or one did nothing: no ratio
            key = f"{job}{op} {threads} thr."
            rows[(key, f"ops/s {args.b} / {args.a}")].append(b["ops_per_s"] / a["ops_per_s"])
            for name, t in ((args.a, a), (args.b, b)):
                rows[(key, f"driver CPU µs/op {name}")].append(t["client_cpu_us"])
                if "brick_cpu_us" in t:
                    rows[(key, f"brick CPU µs/op {name}")].append(t["brick_cpu_us"])
                    rows[(key, f"both µs/op {name} (per round)")].append(
                        t["brick_cpu_us"] + t["client_cpu_us"])
    if not rows:
        print(f"{args.a} and {args.b} have no operation in common in any round")
    for (key, what), values in sorted(rows.items()):
        print(f"{key:14} {what:36} {statistics.median(values):9.3f} "
              f"({min(values):.3f}–{max(values):.3f}) n={len(values)}")


if __name__ == "__main__":
    main()
