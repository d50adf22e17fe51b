#!/usr/bin/python3
"""Instructions the brick runs per operation, by configuration (callgrind).

CPU time per operation moves with what else the machine runs (a hypervisor
that takes a quarter of the vCPUs' time makes ±30 % of it); an instruction
count of the same binary, input and operations does not. So this measures
what run.py's CPU figures measure, the brick's work per fop with a
translator against without, as instructions: each configuration's brick
runs under `valgrind --tool=callgrind`, instrumentation off until the
driver's warm-up is over and on only while it measures (callgrind_control),
one client thread, then the brick's total (all its threads) is divided by
the operations done.

    bench/instructions.py [--ops lookup,stat] [--seconds 10]
                          [--configs none,sync-auto,fop-only,async] [--keep DIR]
    callgrind_annotate --inclusive=yes DIR/sync-auto-lookup.callgrind*

Instructions are not time: a cache miss or a context switch costs time and
few instructions. Read it beside run.py's CPU figures, not instead of them.
"""

import argparse
import datetime
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402


def configs_by_name():
    experiment = bench.PythonHandled(bench.QUICK, "/nonexistent")
    return {c.name: c for c in experiment.configs()}


def callgrind(pid, switch):
    subprocess.run(["callgrind_control", "-i", switch, str(pid)], check=True,
                   capture_output=True, timeout=120)


def measure(config, op, seconds, workdir):
    """(instructions, operations) of the brick while the driver measured."""
    out = workdir / f"{config.name}-{op}.callgrind"
    wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}", "--trace-children=no"]
    brick = bench.glusterlib.Brick(workdir / f"brick-{config.name}-{op}",
                                   config.brick_layers(), name="instr", wrapper=wrapper)
    brick.start(timeout=300)
    ops = 0
    try:
        volfile = brick.client_volfile(workdir / f"c-{config.name}-{op}.vol", config.client, "c")
        command = [str(bench.DRIVER), "--workdir", str(workdir), "--volume",
                   f"{config.name}={volfile}", "--op", f"{op}:1", "--seconds", str(seconds),
                   "--warmup", "3"]
        driver = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        for line in driver.stdout:
            if line.startswith("mark start"):
                callgrind(brick.pid, "on")
            elif line.startswith("mark end"):
                callgrind(brick.pid, "off")
            elif line.startswith("result"):
                ops += int(re.search(r" ops=(\d+)", line).group(1))
        if driver.wait() != 0:
            raise SystemExit(f"the driver failed for {config.name} {op}")
    finally:
        brick.stop(timeout=300)
    time.sleep(0.5)
    total = 0
    for path in workdir.glob(f"{out.name}*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total, ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="lookup,stat")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--configs", default="none,sync-auto,fop-only,async")
    parser.add_argument("--keep", help="copy callgrind's profiles to this directory")
    args = parser.parse_args()
    if not bench.DRIVER.exists():
        sys.exit(f"{bench.DRIVER} is missing: run `make target/bench/gfbench`")
    known = configs_by_name()
    names = args.configs.split(",")
    if unknown := [n for n in names if n not in known]:
        sys.exit(f"unknown config(s) {unknown}: use {', '.join(known)}")
    per_op = {}
    with tempfile.TemporaryDirectory(prefix="glupy-instr-", dir="/dev/shm") as tmp:
        for op in args.ops.split(","):
            for name in names:
                total, ops = measure(known[name], op, args.seconds, Path(tmp))
                per_op[(name, op)] = (total / ops if ops else float("nan"), ops)
                print(f"{name:10} {op:7} {ops:7} ops {total:14,} instructions "
                      f"{per_op[(name, op)][0]:10,.0f} per op", flush=True)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for profile in Path(tmp).glob("*.callgrind*"):
                shutil.copy(profile, args.keep)
    info = bench.machine()
    lines = ["# Brick instructions per operation (callgrind, 1 client thread)", "",
             f"- {info['glusterfs']}; {info['python']}; git {info['git']}; "
             f"features/glupy.so {info['glupy_so']}",
             f"- {args.seconds} s measured per configuration and operation, after 3 s of "
             "warm-up", "",
             "| config | op | operations | instructions per op (brick) | added to none's |",
             "|---|---|---|---|---|"]
    for (name, op), (value, ops) in per_op.items():
        added = value - per_op.get(("none", op), (float("nan"), 0))[0]
        lines.append(f"| {name} | {op} | {ops} | {value:,.0f} | {added:,.0f} |")
    for op in args.ops.split(","):
        sync, asyn, none = (per_op.get((n, op), (None,))[0] for n in ("sync-auto", "async", "none"))
        if sync and asyn and none and sync > none:
            lines += ["", f"{op}: added instructions, async against sync-auto: "
                      f"{(asyn - none) / (sync - none):.2f}×"]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    report = bench.RESULTS / f"instructions-{stamp}.md"
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
