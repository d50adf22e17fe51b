#!/usr/bin/python3
"""Profiles one benchmark configuration with perf: starts its brick, runs the
driver against it, and records the brick (or the driver, for client-side
translators) with `perf record` while the driver measures.

    bench/profile.py EXPERIMENT CONFIG [--op lookup:4] [--seconds 5]
                     [--target brick|client] [--output perf.data] [--dwarf] [--stat]
    perf report -i perf.data --no-children --sort dso,symbol

--stat counts instead of sampling (`perf stat`: context switches, task
clock, futex calls) and prints them per operation.

e.g. bench/profile.py python sync-auto --op lookup:4
     bench/profile.py negative negative-caller --op missing:1 --target client
"""

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402


def find_config(experiment_name, config_name):
    experiments = {e.name: e for e in bench.EXPERIMENTS}
    if experiment_name not in experiments:
        sys.exit(f"no experiment {experiment_name!r}: use {', '.join(experiments)}")
    experiment = experiments[experiment_name](bench.QUICK, "/nonexistent")
    configs = {c.name: c for c in experiment.configs()}
    if config_name not in configs:
        sys.exit(f"{experiment_name} has no config {config_name!r}: use {', '.join(configs)}")
    return configs[config_name]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment")
    parser.add_argument("config")
    parser.add_argument("--op", default="lookup:4")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--target", choices=("brick", "client"), default="brick")
    parser.add_argument("--output", help="default: perf.data, or perf-stat.txt with --stat")
    parser.add_argument("--dwarf", action="store_true",
                        help="call graphs from DWARF (bigger, slower; Rust has no frame pointers)")
    parser.add_argument("--stat", action="store_true",
                        help="perf stat (context switches, task clock, futex calls per op)")
    args = parser.parse_args()
    if args.stat and args.target == "client":
        # perf stat would count the driver's whole life (start-up, warm-up)
        # against the operations of its measured slice only.
        parser.error("--stat counts the brick only (no --target client)")
    if args.stat and "," in args.op:
        parser.error("--stat takes one --op (its counts are for one measured slice)")
    args.output = args.output or ("perf-stat.txt" if args.stat else "perf.data")
    return args


def main():
    args = parse_args()
    config = find_config(args.experiment, args.config)
    graph = ["--call-graph", "dwarf,16384"] if args.dwarf else ["-g"]
    perf_command = (["perf", "stat", "-e", STAT_EVENTS, "-o", args.output] if args.stat
                    else ["perf", "record", "-F", "4000", *graph, "-o", args.output])
    ops = 0
    with tempfile.TemporaryDirectory(prefix="glupy-profile-", dir="/dev/shm") as tmp:
        workdir = Path(tmp)
        brick = bench.glusterlib.Brick(workdir / "brick", config.brick_layers(), name="prof")
        brick.start()
        try:
            volfile = brick.client_volfile(workdir / "c.vol", config.client, "c")
            command = [str(bench.DRIVER), "--workdir", str(workdir), "--volume",
                       f"{config.name}={volfile}", "--op", args.op, "--seconds",
                       str(args.seconds), "--warmup", "1", "--names", str(args.names)]
            if args.target == "client":
                command = [*perf_command, "--", *command]
                print(subprocess.run(command, capture_output=True, text=True).stdout)
                return 0
            # The driver pauses at each mark until told to go on: perf is
            # attached before the slice's first operation and detached after
            # its last (the brick idles meanwhile).
            driver = subprocess.Popen([*command, "--ack-marks"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            perf = None
            for line in driver.stdout:
                if line.startswith("mark start"):
                    perf = subprocess.Popen([*perf_command, "-p", str(brick.pid)],
                                            stderr=subprocess.DEVNULL)
                    time.sleep(0.5)  # perf attaches to every thread of the brick
                elif line.startswith("mark end") and perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(30)
                if line.startswith("mark "):
                    driver.stdin.write("go\n")
                    driver.stdin.flush()
                elif line.startswith("result"):
                    print(line.strip())
                    ops += bench.parse_fields(line)["ops"]
            driver.wait()
            time.sleep(0.2)
        finally:
            brick.stop()
    if args.stat:
        print_per_op(args.output, ops)
    else:
        print(f"perf report -i {args.output} --no-children --sort dso,symbol")
    return 0


STAT_EVENTS = "context-switches,task-clock,syscalls:sys_enter_futex"


def print_per_op(path, ops):
    """perf stat's counts (in its output file) divided by `ops`."""
    if not ops:
        print("no operations: nothing to divide by")
        return
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "<not":
            print(f"{fields[2]:28} not counted ({' '.join(fields[:2])})")
            continue
        if len(fields) < 2 or not fields[0].replace(",", "").replace(".", "").isdigit():
            continue
        if fields[1] not in ("msec", *STAT_EVENTS.split(",")):
            continue  # the elapsed, user and sys seconds
        value = float(fields[0].replace(",", ""))
        if fields[1] == "msec":  # task-clock
            print(f"{'CPU µs':28} {value * 1000 / ops:10.2f} per op")
        else:
            print(f"{fields[1]:28} {value / ops:10.3f} per op")


if __name__ == "__main__":
    sys.exit(main())
