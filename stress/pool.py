#!/usr/bin/python3
"""Stress scenario `pool`: the file-tree workload on a 2 x 3 volume of a
three-server pool (three glusterd on 127.1.1.1-3, as tests/test_pool.py),
with tests/xlators/passall.py (Python in every fop and callback) in every
brick and in the FUSE clients, while `glupy reload` rolls a changed module
out to the whole pool and one server (its glusterd and bricks) is killed and
started again. Nothing may be lost: filetree.py checks every file against
its model, and a second mount from another server must read every file with
the same content.

    stress/pool.py WORKDIR [--seconds N]

Prints one JSON object last; exit status 0 only if nothing went wrong.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_pool  # noqa: E402

PYTHON = "/usr/bin/python3"


def tree_digests(root):
    out = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as stream:
                out[os.path.relpath(path, root)] = hashlib.sha256(stream.read()).hexdigest()
    return out


GLFSHEAL = Path("/usr/lib/x86_64-linux-gnu/glusterfs/glfsheal")


def heal_done(server):
    """True once heal info lists no entry on any brick. glfsheal itself, told
    the server's socket: `gluster volume heal V info` runs it with the
    machine's default glusterd socket, which is not this pool's."""
    done = subprocess.run([str(GLFSHEAL), "stresspool", "glusterd-sock", str(server.sock)],
                          capture_output=True, text=True, timeout=120)
    counts = [line.split(":")[1].strip() for line in done.stdout.splitlines()
              if line.startswith("Number of entries:")]
    return done.returncode == 0 and counts and all(c == "0" for c in counts)


def changed(source, generation):
    text = (ROOT / "tests" / "xlators" / "passall.py").read_text()
    (source / "passall.py").write_text(f"{text}\n# generation {generation}\n")


def scenario(workdir, seconds, plain=False):
    workdir = Path(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    pool = test_pool.Pool(workdir)
    result = {"scenario": "pool-plain" if plain else "pool", "events": [], "problems": []}
    try:
        pool.start()
        s1, s2, s3 = pool.servers
        pool.create_volume("stresspool")
        # GlusterFS's entry heal keeps one of two stale hard links of a file
        # on a sink while this is on (its default): stress/afr_hardlinks.py
        # shows it without glupy. The workload makes hard links; off, heal
        # deletes stale names instead of moving them aside.
        s1.gluster("volume", "set", "stresspool", "cluster.use-anonymous-inode", "off")
        brick_src, client_src = workdir / "brick-src", workdir / "client-src"
        for source in (brick_src, client_src):
            source.mkdir(mode=0o755)
            changed(source, 0)
        if not plain:
            s1.glupy("enable", "stresspool", "passall", "--module-path", brick_src, "--restart")
            s1.glupy("enable", "stresspool", "passall", "--side", "client", "--module-path",
                     client_src)
        m1 = s1.mount("stresspool", "m1")
        tree = m1.mountpoint / "tree"
        tree.mkdir()
        workload = subprocess.Popen([PYTHON, str(HERE / "filetree.py"), str(tree), "--seconds",
                                     str(seconds), "--workers", "3", "--readers", "1",
                                     # DHT's link counts of hard links differ from POSIX's
                                     # (the same without glupy: --plain shows it).
                                     "--no-nlink"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outcome = {}
        reader = threading.Thread(target=lambda: outcome.update(zip(("out", "err"),
                                                                     workload.communicate())))
        reader.start()
        start = time.monotonic()

        def at(fraction):
            time.sleep(max(0.0, start + seconds * fraction - time.monotonic()))

        at(0.2)
        changed(brick_src, 1)
        changed(client_src, 1)
        if not plain:
            done = s2.glupy("reload", "stresspool", check=False)
            result["events"].append({"t": round(time.monotonic() - start), "reload": done.returncode})
            if done.returncode != 0:
                result["problems"].append(f"rolling reload: {done.stdout}{done.stderr}")
        at(0.45)
        pool.kill_server(s3)
        result["events"].append({"t": round(time.monotonic() - start), "killed": s3.address})
        at(0.55)
        changed(brick_src, 2)
        if not plain:
            done = s1.glupy("reload", "stresspool", "--side", "brick", check=False)
            result["events"].append({"t": round(time.monotonic() - start), "reload_with_s3_down":
                                     done.returncode})
        at(0.65)
        s3.start()
        result["events"].append({"t": round(time.monotonic() - start), "restarted": s3.address})
        reader.join()
        lines = (outcome.get("out") or "").strip().splitlines()
        result["filetree"] = json.loads(lines[-1]) if lines else {"stderr": outcome.get("err")}
        if workload.returncode != 0:
            result["problems"].append(f"filetree: {result['filetree'].get('errors')}")
        test_pool.wait_for(lambda: pool.status()["consistent"], timeout=180,
                           what="the pool to run one module everywhere")
        # As an administrator would: let self-heal finish after the restart.
        s1.gluster("volume", "heal", "stresspool", check=False)
        healed = test_pool.glusterlib.wait_until(lambda: heal_done(s1), 300, interval=3)
        result["healed"] = bool(healed)
        if not healed:
            result["problems"].append("self-heal did not finish within 300 s")
        m2 = s2.mount("stresspool", "m2")
        first, second = tree_digests(tree), tree_digests(m2.mountpoint / "tree")
        result["files"] = len(first)
        if first != second:
            result["problems"].append(f"{len(set(first.items()) ^ set(second.items()))} files "
                                      f"differ between the mounts from {s1.address} and {s2.address}")
    except Exception as error:  # reported as a problem, the pool still goes
        result["problems"].append(f"{type(error).__name__}: {error}")
    finally:
        try:
            pool.stop()
        except Exception as error:
            result["problems"].append(f"cleanup: {error}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("STRESS_SECONDS", "600")))
    parser.add_argument("--plain", action="store_true",
                        help="the same faults without glupy: the reference")
    args = parser.parse_args()
    result = scenario(args.workdir, args.seconds, args.plain)
    print(json.dumps(result))
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
