#!/usr/bin/python3
"""Issue 14, item 3: sync lookup/stat at 4 and 16 client threads against no
translator, alone (run.py's python experiment measures six configurations;
this one only what a contention experiment needs, so more rounds fit).
With --async-cost, item 2 instead: the async def translator against the
sync one at 1 thread, lookup and stat (added brick CPU, within each round).

    bench/contention.py [--rounds 10] [--candidate NAME,...] [--pool | --async-cost]

--candidate measures host builds installed as XLATORDIR/features/NAME.so
side by side with the installed one (as run.py's); --pool adds the sync
translator with all its Python on a pool of 1 and of 2 threads. Reports
and raw data go to target/bench/ as run.py's do; `bench/paired.py` takes
the per-round ratios of two configurations from the JSON.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402
from run import NONE, Config, glupy  # noqa: E402

POOL = {"python-thread": "pool"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--candidate", default="")
    parser.add_argument("--pool", action="store_true")
    parser.add_argument("--async-cost", action="store_true")
    args = parser.parse_args()

    class Contention(bench.PythonHandled):
        title = "Issue 14, item 3: sync lookup/stat under contention (brick side)"
        OPS = "lookup:1,stat:1" if args.async_cost else "lookup:1,lookup:4,stat:4,lookup:16"

        def base_configs(self):
            configs = [NONE, Config("sync-auto", [glupy("lookup_stat")],
                                    describe="bench/xlators/lookup_stat.py, python-thread auto")]
            if args.async_cost:
                configs.append(Config("async", [glupy("lookup_stat_async")],
                                      describe="bench/xlators/lookup_stat_async.py, auto"))
            elif args.pool:
                configs += [
                    Config(f"pool{n}", [glupy("lookup_stat", **POOL, **{"python-threads": str(n)})],
                           describe=f"the same, python-thread pool, python-threads {n}")
                    for n in (1, 2)]
            return configs

        def report(self):
            return self.throughput_table() + "\n\n" + self.cost_table()

    if args.async_cost:
        Contention.title = "Issue 14, item 2: async def against sync at 1 thread (brick side)"

    bench.EXPERIMENTS = [Contention]
    sys.argv = [sys.argv[0], "--quick", "--rounds", str(args.rounds), "--only", "python",
                "--candidate", args.candidate]
    return bench.main()


if __name__ == "__main__":
    sys.exit(main())
