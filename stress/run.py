#!/usr/bin/python3
"""`make stress`: long workloads on FUSE mounts of volumes with glupy
translators, compared with the same workloads on a volume without glupy.

Scenarios (each on its own brick and FUSE mount, all on 127.0.0.1):
  passthrough  tests/xlators/passall.py on the brick: every fop and callback
               goes through Python
  negative     examples/negative.py in the FUSE client
  trace        examples/trace.py on the brick, trace-level DEBUG (the brick
               logs at INFO, so the log stays small)
  plain        no glupy: the reference (replays each scenario's file-tree
               operations exactly, and the same fio job)
  replica      stress/replica.py: replica 3 with a brick killed and restarted
  netcut       stress/replica.py: replica 3 with a brick's network cut and
               restored (the brick in a network namespace of its own)
  pool         stress/pool.py: a 2 x 3 volume on three glusterd (a pool),
               glupy in bricks and clients, a rolling `glupy reload` and a
               server killed and restarted under the file-tree workload

For every glupy scenario: stress/filetree.py for STRESS_SECONDS (every file
checked against its model), fio with verify (crc32c, verify_fatal) for
STRESS_SECONDS, and a deterministic fio write whose file checksum must equal
the plain volume's. Then the brick must be alive, the glupy counters must
show every request answered, and the logs must have no error lines.

    STRESS_SECONDS=60 stress/run.py [scenario ...] [--json results.json]
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import glusterlib  # noqa: E402

SECONDS = float(os.environ.get("STRESS_SECONDS", "600"))
# Scenario name -> the fault stress/replica.py injects.
REPLICA_FAULTS = {"replica": "kill", "netcut": "netcut"}
# Scenarios that are programs of their own: name -> script (stress/pool.py).
PROGRAMS = {"pool": "pool.py"}
PYTHON = "/usr/bin/python3"
DET_SIZE = os.environ.get("STRESS_FIO_SIZE", "256m")
# Error lines glusterfs writes in a normal run of these workloads.
EXPECTED_LOG_ERRORS = (r"Failed to set", r"remote operation failed.*No data available",
                       r"remote operation failed.*No such file or directory")


def glupy_layer(module, path, name, **options):
    opts = {"module-name": module, "module-path": str(path)}
    opts.update({key.replace("_", "-"): str(value) for key, value in options.items()})
    return ("features/glupy", opts, name)


SCENARIOS = {
    "passthrough": {"brick": [glupy_layer("passall", ROOT / "tests/xlators", "pass")], "client": []},
    "negative": {"brick": [], "client": [glupy_layer("negative", ROOT / "examples", "neg")]},
    "trace": {"brick": [glupy_layer("trace", ROOT / "examples", "trace", trace_level="DEBUG")],
              "client": []},
}


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def filetree(mountpoint, seconds=None, ops=None):
    command = [PYTHON, str(HERE / "filetree.py"), str(mountpoint)]
    command += ["--ops", ",".join(map(str, ops))] if ops else ["--seconds", str(seconds)]
    limit = (seconds or SECONDS) * 4 + 600
    done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error_count": -1}
    result["exit"] = done.returncode
    if done.stderr.strip():
        result["stderr"] = done.stderr[-2000:]
    return result


def fio(mountpoint, *args, timeout):
    command = ["fio", f"--directory={mountpoint}", "--ioengine=psync", "--output-format=json",
               *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    try:
        report = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        return {"exit": done.returncode, "stderr": done.stderr[-2000:]}
    jobs = report.get("jobs", [])
    return {
        "exit": done.returncode,
        "errors": sum(job.get("error", 0) for job in jobs),
        "write_MiBps": round(sum(job["write"]["bw"] for job in jobs) / 1024, 1),
        "read_MiBps": round(sum(job["read"]["bw"] for job in jobs) / 1024, 1),
        "stderr": done.stderr[-2000:],
    }


def fio_verify(mountpoint, seconds):
    """Random writes, each block verified (crc32c) as it is read back."""
    return fio(mountpoint, "--name=verify", "--rw=randwrite", "--bs=4k", "--size=64m",
               "--numjobs=2", "--verify=crc32c", "--verify_backlog=512", "--verify_fatal=1",
               "--time_based", f"--runtime={int(seconds)}", timeout=seconds * 3 + 600)


def fio_deterministic(mountpoint):
    """A write whose content depends only on the seed: its checksum must be
    the same on every volume."""
    result = fio(mountpoint, "--name=det", "--rw=write", "--bs=128k", f"--size={DET_SIZE}",
                 "--randrepeat=1", "--randseed=42", "--refill_buffers", timeout=1800)
    path = Path(mountpoint) / "det.0.0"
    result["sha256"] = sha256_file(path) if path.exists() else None
    return result


def glupy_counters(dump):
    """{name: {fop: {calls, answered, ...}}} of every glupy section."""
    found = {}
    for section, values in glusterlib.statedump_sections(dump).items():
        if section.startswith("xlator.features.glupy.") and section.endswith(".priv"):
            name = section[len("xlator.features.glupy."):-len(".priv")]
            found[name] = {key[4:]: dict(pair.split("=") for pair in value.split())
                           for key, value in values.items() if key.startswith("fop.")}
    return found


def unanswered(counters):
    return {f"{name}.{fop}": c for name, fops in counters.items() for fop, c in fops.items()
            if c["calls"] != c["answered"]}


def used_fops(counters):
    return sorted({f"{fop}" for fops in counters.values() for fop, c in fops.items()
                   if int(c["calls"]) > 0})


def log_errors(text):
    """Error lines of a gluster log, each with the traceback lines that
    follow it (a translator's exception is one record over many lines)."""
    records, lines = [], text.splitlines()
    severe = set(glusterlib.severe_log_lines(text, EXPECTED_LOG_ERRORS))
    for index, line in enumerate(lines):
        if line in severe:
            following = []
            for more in lines[index + 1:index + 40]:
                if more.startswith("["):
                    break
                following.append(more)
            records.append("\n".join([line, *following]))
    return records[:20]


def run_scenario(name, layers, workdir, ops=None):
    """One brick and mount with layers; the workloads; what was seen."""
    cluster = glusterlib.Cluster(workdir / name)
    result = {"scenario": name}
    started = time.monotonic()
    try:
        brick = cluster.brick(layers["brick"], name=name)
        mount = cluster.mount(brick, layers["client"], name=f"{name}-mnt")
        tree = mount.mountpoint / "tree"
        tree.mkdir()
        result["filetree"] = filetree(tree, ops=ops) if ops else filetree(tree, seconds=SECONDS)
        if not ops:
            result["fio_verify"] = fio_verify(mount.mountpoint, SECONDS)
        result["fio_det"] = fio_deterministic(mount.mountpoint)
        result["brick_alive"] = brick.alive()
        result["mount_alive"] = mount.alive()
        counters = {}
        if brick.alive():
            counters.update(glupy_counters(brick.statedump()))
        if mount.alive() and layers["client"]:
            counters.update(glupy_counters(mount.statedump()))
        result["glupy_fops_used"] = used_fops(counters)
        result["unanswered"] = unanswered(counters)
        result["brick_log_errors"] = log_errors(brick.log_text())
        result["client_log_errors"] = log_errors(mount.log_text())
        result["brick_log_bytes"] = brick.log_file.stat().st_size
    finally:
        cluster.cleanup()
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    return result


def passed(result, reference=None):
    """Problems of one scenario's result (empty if it passed)."""
    problems = []
    tree = result.get("filetree", {})
    if tree.get("error_count") != 0 or tree.get("exit") != 0:
        problems.append(f"filetree: {tree.get('error_count')} errors {tree.get('errors', [])[:3]}")
    for key in ("fio_verify", "fio_det"):
        if key in result and (result[key].get("exit") != 0 or result[key].get("errors")):
            problems.append(f"{key}: {result[key]}")
    if not result.get("brick_alive") or not result.get("mount_alive"):
        problems.append("a process died")
    if result.get("unanswered"):
        problems.append(f"unanswered requests: {result['unanswered']}")
    if result.get("brick_log_errors") or result.get("client_log_errors"):
        problems.append(f"log errors: {result['brick_log_errors'][:3]} {result['client_log_errors'][:3]}")
    if reference is not None:
        if reference["filetree"].get("manifest") != tree.get("manifest"):
            problems.append("file tree differs from the plain volume's")
        if reference["fio_det"].get("sha256") != result["fio_det"].get("sha256"):
            problems.append("fio file differs from the plain volume's")
    return problems


def run_all(names, workdir):
    results, failures = [], []
    for name in names:
        if name in REPLICA_FAULTS or name in PROGRAMS:
            continue
        result = run_scenario(name, SCENARIOS[name], workdir)
        print(json.dumps(result), flush=True)
        ops = result.get("filetree", {}).get("ops")
        reference = run_scenario(f"plain-for-{name}", {"brick": [], "client": []}, workdir, ops=ops) \
            if ops else None
        if reference:
            print(json.dumps(reference), flush=True)
            failures += [f"plain-for-{name}: {p}" for p in passed(reference)]
        failures += [f"{name}: {p}" for p in passed(result, reference)]
        results += [result] + ([reference] if reference else [])
    programs = [(name, ["replica.py", str(workdir / name), fault], SECONDS * 4 + 900)
                for name, fault in REPLICA_FAULTS.items()]
    programs += [(name, [script, str(workdir / name), "--seconds", str(SECONDS)], SECONDS * 2 + 900)
                 for name, script in PROGRAMS.items()]
    for name, (script, *args), timeout in programs:
        if name not in names:
            continue
        done = subprocess.run([PYTHON, str(HERE / script), *args], capture_output=True, text=True,
                              timeout=timeout)
        lines = done.stdout.strip().splitlines()
        outcome = json.loads(lines[-1]) if lines else {"stderr": done.stderr[-3000:]}
        outcome["exit"] = done.returncode
        print(json.dumps(outcome), flush=True)
        if done.returncode != 0:
            failures.append(f"{name}: {outcome.get('problems') or outcome.get('stderr')}")
        results.append(outcome)
    return results, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=[*SCENARIOS, *REPLICA_FAULTS, *PROGRAMS])
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    known = [*SCENARIOS, *REPLICA_FAULTS, *PROGRAMS]
    unknown = set(args.scenarios) - set(known)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {known}")
    if not shutil.which("fio"):
        sys.exit("fio is missing: apt-get install fio")
    workdir = Path(tempfile.mkdtemp(prefix="glupy-stress-"))
    print(f"# STRESS_SECONDS={SECONDS:g}, work directory {workdir}", flush=True)
    try:
        results, failures = run_all(args.scenarios, workdir)
    finally:
        glusterlib.finish_closing()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(["# FAILED:"] + failures) if failures else "# all scenarios passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
