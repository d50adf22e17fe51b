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
from collections import defaultdict


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def totals(round_results):
    """(vol, op, threads) -> [ops, seconds, brick CPU s or None, driver CPU s]"""
    out = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for s in round_results:
        t = out[(s["vol"], s["op"], s["threads"])]
        t[0] += s["ops"]
        t[1] += s["seconds"]
        # None once any slice lacks it (a client-side experiment, an old run).
        t[2] = t[2] + s["brick_cpu_s"] if t[2] is not None and "brick_cpu_s" in s else None
        t[3] += s["cpu_s"]
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
        tot = totals(r["results"])
        for (vol, op, threads), a in tot.items():
            if vol != args.a or (args.b, op, threads) not in tot:
                continue
            b = tot[(args.b, op, threads)]
            if not (a[0] and a[1] and b[0] and b[1]):
                continue  # a slice that did nothing: no ratio to take
            key = f"{job}{op} {threads} thr."
            rows[(key, f"ops/s {args.b} / {args.a}")].append((b[0] / b[1]) / (a[0] / a[1]))
            for name, t in ((args.a, a), (args.b, b)):
                rows[(key, f"driver CPU µs/op {name}")].append(t[3] / t[0] * 1e6)
                if t[2] is not None:
                    rows[(key, f"brick CPU µs/op {name}")].append(t[2] / t[0] * 1e6)
                    rows[(key, f"both µs/op {name} (per round)")].append(
                        (t[2] + t[3]) / t[0] * 1e6)
    if not rows:
        print(f"{args.a} and {args.b} have no operation in common in any round")
    for (key, what), values in sorted(rows.items()):
        print(f"{key:14} {what:36} {statistics.median(values):9.3f} "
              f"({min(values):.3f}–{max(values):.3f}) n={len(values)}")


if __name__ == "__main__":
    main()
