#!/usr/bin/python3
"""Instructions the brick runs per operation, by configuration (callgrind).

CPU time per operation moves with what else the machine runs (on a shared
2-core VM, ±30 % from slice to slice); an instruction count of the same
binary, input and operations moves little. So this counts the brick's
user-space instructions per fop with a translator and without: each
configuration's brick runs under `valgrind --tool=callgrind`,
instrumentation off until the driver's warm-up is over; the driver, one
client thread, pauses at each mark until callgrind is switched on or off
(gfbench --ack-marks), so the count covers exactly the operations measured;
the brick's total (all its threads) is divided by them.

What it does not see: the kernel's work (system calls, futexes, context
switches), cache misses, and contention (valgrind runs one thread at a
time, so a spinning or waiting thread behaves otherwise than natively).
Read it beside run.py's CPU figures, not instead of them.

    bench/instructions.py [--ops lookup,stat] [--seconds 10]
                          [--configs none,sync-auto,fop-only,async] [--keep DIR]
                          [--candidate NAME]
    callgrind_annotate --inclusive=yes DIR/sync-auto-lookup.callgrind*
"""

import argparse
import datetime
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402


def configs_by_name(candidates=()):
    experiment = bench.PythonHandled(bench.QUICK, "/nonexistent", candidates)
    return {c.name: c for c in experiment.configs()}


class Failed(Exception):
    """A measurement that cannot be trusted: says why."""


def callgrind(pid, switch):
    """Switches callgrind's instrumentation of `pid` on or off; raises if it
    was not done (callgrind_control exits 0 even when it finds no one)."""
    done = subprocess.run(["callgrind_control", "-i", switch, str(pid)], capture_output=True,
                          text=True, timeout=120)
    if "OK" not in done.stdout:
        raise Failed(f"callgrind_control -i {switch} {pid}: {done.stdout.strip()} "
                     f"{done.stderr.strip()}")


def measure(config, op, seconds, workdir):
    """(instructions, operations) of the brick while the driver measured:
    the driver pauses its threads at each mark until callgrind is switched
    (--ack-marks), so the count brackets exactly the operations done."""
    out = workdir / f"{config.name}-{op}.callgrind"
    wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}", "--trace-children=no"]
    brick = bench.glusterlib.Brick(workdir / f"brick-{config.name}-{op}",
                                   config.brick_layers(), name="instr", wrapper=wrapper)
    brick.start(timeout=300)
    ops, marks, driver = 0, 0, None
    try:
        volfile = brick.client_volfile(workdir / f"c-{config.name}-{op}.vol", config.client, "c")
        command = [str(bench.DRIVER), "--workdir", str(workdir), "--volume",
                   f"{config.name}={volfile}", "--op", f"{op}:1", "--seconds", str(seconds),
                   "--warmup", "3", "--ack-marks"]
        driver = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        for line in driver.stdout:
            if line.startswith("mark "):
                callgrind(brick.pid, "on" if line.startswith("mark start") else "off")
                marks += 1
                driver.stdin.write("go\n")
                driver.stdin.flush()
            elif line.startswith("result"):
                ops += bench.parse_fields(line)["ops"]
        if driver.wait() != 0:
            raise Failed(f"the driver exited {driver.returncode}")
    finally:
        if driver and driver.poll() is None:
            driver.kill()
            driver.wait()
        brick.stop(timeout=300)
    total = None
    for path in workdir.glob(f"{out.name}*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total = (total or 0) + int(line.split()[1])
    if marks != 2 or not ops or not total:
        raise Failed(f"{marks} marks, {ops} operations, {total} instructions counted: "
                     "nothing to divide")
    return total, ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="lookup,stat")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--configs", default="none,sync-auto,fop-only,async")
    parser.add_argument("--keep", help="copy callgrind's profiles to this directory")
    parser.add_argument("--candidate", default="",
                        help="comma-separated NAMEs of host builds installed as "
                             "XLATORDIR/features/NAME.so, as run.py's; their configs are "
                             "CONFIG-NAME (e.g. sync-auto-NAME)")
    args = parser.parse_args()
    if not bench.DRIVER.exists():
        sys.exit(f"{bench.DRIVER} is missing: run `make target/bench/gfbench`")
    known = configs_by_name(tuple(n for n in args.candidate.split(",") if n))
    names = args.configs.split(",")
    if unknown := [n for n in names if n not in known]:
        sys.exit(f"unknown config(s) {unknown}: use {', '.join(known)}")
    per_op, failed = {}, False
    with tempfile.TemporaryDirectory(prefix="glupy-instr-", dir="/dev/shm") as tmp:
        for op in args.ops.split(","):
            for name in names:
                try:
                    total, ops = measure(known[name], op, args.seconds, Path(tmp))
                except Failed as why:
                    print(f"{name} {op}: not measured: {why}", file=sys.stderr, flush=True)
                    failed = True
                    continue
                per_op[(name, op)] = (total / ops, ops)
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
