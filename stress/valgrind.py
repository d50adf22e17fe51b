#!/usr/bin/python3
"""Bricks under valgrind memcheck: the fault tests and a short file-tree
workload, then every memcheck error and definite leak whose stack goes
through the glupy host (glupy.so, src/ frames) is listed.

1. A plain brick (no glupy) runs a workload under valgrind with
   --gen-suppressions: what it reports is GlusterFS's own noise, written to
   WORKDIR/glusterfs-generated.supp.
2. tests/test_faults.py runs with every brick under valgrind (suppressions:
   stress/valgrind.supp for CPython's allocator, plus the generated file).
3. A passthrough glupy brick runs the file-tree workload under valgrind.

    stress/valgrind.py [--seconds 60] [--workdir DIR] [-k PYTEST_EXPRESSION]

Prints a JSON summary; exit status 1 if an error or leak involves glupy.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import glusterlib  # noqa: E402

PYTHON = "/usr/bin/python3"
REAL_GLUSTERFSD = glusterlib.GLUSTERFSD  # before under_valgrind() replaces it
VALGRIND_TIMEOUT = 300  # a brick under valgrind starts and stops slowly
GLUPY_FRAME = re.compile(r"glupy\.so|/work/main/src/|src/[a-z_/]+\.rs|glupy::")


def wrapper(workdir, suppressions, generate=False):
    """A glusterfsd stand-in that runs the real one under memcheck."""
    logs = workdir / "vg"
    logs.mkdir(parents=True, exist_ok=True)
    options = ["--tool=memcheck", "--error-limit=no", "--num-callers=40",
               "--leak-check=full", "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
               "--child-silent-after-fork=yes", f"--log-file={logs}/vg.%p.log"]
    options += [f"--suppressions={path}" for path in suppressions]
    if generate:
        options.append("--gen-suppressions=all")
    script = workdir / ("glusterfsd-gen" if generate else "glusterfsd-vg")
    script.write_text("#!/bin/sh\nexec valgrind " + " ".join(options)
                      + f" {REAL_GLUSTERFSD} \"$@\"\n")
    script.chmod(0o755)
    return script, logs


def under_valgrind(script):
    """Makes glusterlib start bricks through script, with patient timeouts."""
    glusterlib.GLUSTERFSD = str(script)
    glusterlib.Brick.start.__defaults__ = (VALGRIND_TIMEOUT,)
    glusterlib.Brick.stop.__defaults__ = (VALGRIND_TIMEOUT,)


def workload(cluster, layers, seconds):
    brick = cluster.brick(layers, name="vgb")
    mount = cluster.mount(brick, name="vgm")
    tree = mount.mountpoint / "tree"
    tree.mkdir()
    done = subprocess.run([PYTHON, str(HERE / "filetree.py"), str(tree), "--seconds", str(seconds),
                           "--workers", "2", "--readers", "1"],
                          capture_output=True, text=True, timeout=seconds * 5 + 600)
    client = cluster.gfapi(brick)
    client.write_file("/g", os.urandom(100_000))
    client.stat("/g")
    brick.statedump()
    result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    return {"filetree_errors": result.get("error_count"), "ops": result.get("ops")}


def error_blocks(log_text):
    """Memcheck's error records: (kind line, stack text, suppression text)."""
    blocks, current = [], []
    for line in log_text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if not body.strip():
            if current:
                blocks.append("\n".join(current))
            current = []
        else:
            current.append(body)
    if current:
        blocks.append("\n".join(current))
    return [b for b in blocks if re.match(r"(Invalid|Conditional|Use of|Syscall param|Mismatched|"
                                          r"Source and destination|\d[\d,]* bytes in .* definitely)", b)
            or b.startswith("{")]


def generated_suppressions(logs, target):
    """Collects the {...} suppressions of the baseline run into target."""
    found = set()
    for log in logs.glob("vg.*.log"):
        text = log.read_text(errors="replace")
        found.update(m.group(0) for m in re.finditer(r"^\{\n(?:.*\n)*?\}$", text, re.M))
    target.write_text("\n".join(sorted(found)) + "\n")
    return len(found)


def summarize(logs):
    summary = {"logs": 0, "errors": 0, "glupy_errors": [], "error_kinds": {}}
    for log in sorted(logs.glob("vg.*.log")):
        text = log.read_text(errors="replace")
        if "glusterfsd" not in text:
            continue
        summary["logs"] += 1
        match = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        summary["errors"] += int(match.group(1)) if match else 0
        if not match:
            summary.setdefault("unfinished", []).append(log.name)
        for block in error_blocks(text):
            if block.startswith("{"):
                continue
            kind = block.splitlines()[0]
            kind = re.sub(r"0x[0-9A-Fa-f]+|\d[\d,]*", "N", kind)
            summary["error_kinds"][kind] = summary["error_kinds"].get(kind, 0) + 1
            if GLUPY_FRAME.search(block):
                summary["glupy_errors"].append(f"{log.name}:\n{block}")
    summary["glupy_errors"] = summary["glupy_errors"][:30]
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workdir")
    parser.add_argument("-k", default="", help="pytest -k expression for the fault tests")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="glupy-valgrind-"))
    workdir.mkdir(parents=True, exist_ok=True)
    generated = workdir / "glusterfs-generated.supp"
    result = {"workdir": str(workdir)}

    if not args.skip_baseline:
        script, logs = wrapper(workdir / "baseline", [HERE / "valgrind.supp"], generate=True)
        under_valgrind(script)
        cluster = glusterlib.Cluster(workdir / "baseline" / "run")
        try:
            result["baseline"] = workload(cluster, [], args.seconds / 2)
        finally:
            cluster.cleanup()
            glusterlib.finish_closing()
        result["generated_suppressions"] = generated_suppressions(logs, generated)
        result["baseline_valgrind"] = summarize(logs)

    suppressions = [HERE / "valgrind.supp"] + ([generated] if generated.exists() else [])
    script, logs = wrapper(workdir / "glupy", suppressions)
    under_valgrind(script)
    env = dict(os.environ, GLUPY_FAULT_CALL_TIMEOUT="120", GLUPY_VALGRIND_WRAPPER=str(script))
    tests = subprocess.run([PYTHON, str(HERE / "valgrind_pytest.py"), str(ROOT / "tests/test_faults.py"),
                            "-q", "-p", "no:cacheprovider", *(["-k", args.k] if args.k else [])],
                           capture_output=True, text=True, env=env, timeout=7200)
    result["fault_tests"] = tests.stdout.strip().splitlines()[-1:] if tests.stdout else tests.stderr[-2000:]
    (workdir / "fault-tests.out").write_text(tests.stdout + tests.stderr)
    cluster = glusterlib.Cluster(workdir / "glupy" / "run")
    try:
        layer = ("features/glupy", {"module-name": "passall",
                                    "module-path": str(ROOT / "tests/xlators")}, "pass")
        result["glupy_workload"] = workload(cluster, [layer], args.seconds)
    finally:
        cluster.cleanup()
        glusterlib.finish_closing()
    result["glupy_valgrind"] = summarize(logs)
    print(json.dumps(result, indent=1))
    return 1 if result["glupy_valgrind"]["glupy_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
