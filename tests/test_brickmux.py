"""A glupy brick detached and attached again in a multiplexed brick process
(issue 11, item 5), under valgrind memcheck.

glusterd with cluster.brick-multiplex on runs the bricks of two volumes in
one glusterfsd: `host` (plain) starts it, `life` (tests/xlators/lifecycle.py
in its brick graph) is attached to it (GLUSTERD_BRICK_ATTACH) by `volume
start` and detached (GLUSTERD_BRICK_TERMINATE) by `volume stop`. Each round
a FUSE client of `life` writes (Python keeps the fd, vector and xdata of
the writev and an inode of a lookup) and sends a getxattr Python keeps for
a second, and the volume is stopped while Python holds all of that.

What a detach does (glusterfs_handle_terminate, protocol/server's
GF_EVENT_CLEANUP): the server disconnects the brick's clients (they see
ENOTCONN for what is in flight), waits until every request of theirs is
answered (each holds its transport), then sends PARENT_DOWN, destroys the
brick's inode table (its inodes and fds), calls every fini and frees the
xlators. So a frame Python keeps is answered by Python (its reply goes
nowhere) before the graph goes; the values Python keeps die on PARENT_DOWN
and refuse use afterwards (the module uses them from a thread 0.5 s after
fini). Checked: the brick process survives every round, no memcheck error
involves glupy (or reads or writes memory it should not at all), the
client's requests all return, and the brick log and the module's record say
what happened.

Setup traps (why test_managed's harness alone failed): every `volume set`
on a started volume makes a multiplexed glusterfsd fetch each attached
brick's volfile again, compare it with its whole graph (server plus all
bricks: never the same topology) and build a new graph with a second
protocol/server on the same port: "binding ... Address already in use". So
everything is set before the volumes start, and nothing while they run.
glusterd starts bricks as /usr/sbin/glusterfsd; in a mount namespace of its
own that path is a script that runs bricks under valgrind.
"""

import errno
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import glusterlib
from test_managed import Glusterd, ManagedMount, module_dir, unique

HERE = Path(__file__).parent
REPO = HERE.parent
SKIP_SLOW = os.environ.get("GLUPY_SKIP_SLOW") == "1"
REAL_GLUSTERFSD = "/usr/sbin/glusterfsd"
ROUNDS = int(os.environ.get("GLUPY_BRICKMUX_ROUNDS", "3"))
VALGRIND_START = 240  # a brick under memcheck (with Python) starts slowly
GLUPY_FRAME = re.compile(r"glupy\.so|libglupy|src/[a-z_/]+\.rs|glupy::")
NOT_ANSWERED = "not answered"


def valgrind_dispatcher(root, logs):
    """A stand-in for /usr/sbin/glusterfsd (also what glusterd and glusterfs
    link to): bricks run under memcheck, everything else as usual."""
    real = root / "real" / "glusterfsd"  # a copy: the path itself is covered
    real.parent.mkdir(parents=True)
    shutil.copy2(REAL_GLUSTERFSD, real)
    options = ["--tool=memcheck", "--error-limit=no", "--num-callers=40", "--leak-check=no",
               f"--suppressions={REPO / 'stress' / 'valgrind.supp'}",
               f"--log-file={logs}/vg.%p.log"]
    script = root / "glusterfsd-dispatch"
    script.write_text(f"""#!/bin/bash
case " $* " in
*" --process-name brick "*) exec valgrind {' '.join(options)} {real} "$@" ;;
esac
exec -a "$0" {real} "$@"
""")
    script.chmod(0o755)
    return script


def in_namespace_with(dispatcher):
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /usr/sbin/glusterfsd && exec "$@"', str(dispatcher)]


def error_blocks(text):
    """memcheck's error records in a log (blank-line separated)."""
    blocks, current = [], []
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        if body.strip():
            current.append(body)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return [b for b in blocks if re.match(r"(Invalid|Conditional|Use of|Syscall param|Mismatched|"
                                          r"Source and destination)", b)]


def returned(results, key, call):
    try:
        results[key] = call()
    except OSError as e:
        results[key] = e.errno


def start_and_wait(glusterd, volume, timeout):
    glusterd.gluster("volume", "start", volume)
    [(_path, pid)] = glusterd.wait_bricks_online(volume, timeout=timeout)
    return pid


def _write_read(path, data):
    """True once data written to path reads back (a client reconnects to a
    brick attached again after a few seconds)."""
    try:
        path.write_bytes(data)
        return path.read_bytes() == data or None
    except OSError:
        return None


def records(path):
    return Path(path).read_text().splitlines() if Path(path).exists() else []


@pytest.mark.skipif(SKIP_SLOW, reason="GLUPY_SKIP_SLOW=1")
@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
def test_brick_detached_while_python_keeps_frames_and_values_under_valgrind(tmp_path):
    logs = tmp_path / "vg"
    logs.mkdir()
    glusterd = Glusterd(tmp_path / "gd")
    glusterd.launcher = in_namespace_with(valgrind_dispatcher(tmp_path, logs))
    glusterd.start()
    mount = None
    try:
        glusterd.gluster("volume", "set", "all", "cluster.brick-multiplex", "on")
        host = unique("host")
        glusterd.volumes.append(host)
        life = unique("life")
        glusterd.volumes.append(life)
        for volume in (host, life):
            brick = glusterd.root / "bricks" / volume
            brick.mkdir(parents=True)
            glusterd.gluster("volume", "create", volume, f"{glusterd.address}:{brick}", "force")
        record = tmp_path / "record.txt"
        # Set while stopped (see the module's doc); its check of running bricks fails then.
        enabled = glusterd.glupy("enable", life, "lifecycle", "--module-path",
                                 module_dir(tmp_path, "lifecycle"), "-o", f"record={record}",
                                 "-o", "keep-seconds=1", "-o", "keep-values=yes", check=False)
        assert "bricks get glupy module lifecycle" in enabled.stdout, enabled.stdout + enabled.stderr
        pid = start_and_wait(glusterd, host, VALGRIND_START)
        brick_log = glusterd.brick_log(glusterd.bricks(host)[0][0])
        mount = ManagedMount(glusterd.address, life, tmp_path / "m", tmp_path / "m.log")
        for round_ in range(1, ROUNDS + 1):
            attached = start_and_wait(glusterd, life, VALGRIND_START)
            assert attached == pid, f"round {round_}: {life}'s brick is not multiplexed"
            if mount.process is None:
                mount.mount(timeout=VALGRIND_START)
            data = f"round {round_}".encode() * 100
            assert glusterlib.wait_until(
                lambda: _write_read(mount.mountpoint / "f", data), VALGRIND_START, interval=1), \
                f"round {round_}: the mount of {life} does not work\n{mount.describe()}"
            results = {}
            keeper = threading.Thread(target=returned, args=(
                results, "getxattr", lambda: os.getxattr(mount.mountpoint, "user.lc.keep")))
            keeper.start()
            time.sleep(0.3)  # the request reaches Python, which keeps it a second
            glusterd.gluster("volume", "stop", life)
            keeper.join(VALGRIND_START)
            assert not keeper.is_alive(), f"round {round_}: the kept getxattr never returned"
            print(f"round {round_}: {results}")
            # The detach disconnects the client first: what was in flight fails ENOTCONN.
            assert results["getxattr"] in (errno.ENOTCONN, b"kept"), results
            assert glusterlib.wait_until(
                lambda: records(record).count("values dropped") >= round_, VALGRIND_START,
                interval=0.5), f"round {round_}: no fini\n{records(record)}"
            assert glusterlib.pid_alive(pid), f"round {round_}: the brick process died"
        lines = records(record)
        print("\n".join(lines))
        log = glusterlib.read_text(brick_log)
    finally:
        if mount is not None:
            mount.unmount()
        glusterd.stop()
    glusterlib.wait_until(lambda: not glusterlib.pid_alive(pid), 120)
    reports = {p.name: p.read_text(errors="replace") for p in logs.glob("vg.*.log")}
    brick_reports = [text for text in reports.values() if "--process-name brick" in text
                     and "ERROR SUMMARY" in text]
    assert brick_reports, f"no finished memcheck log of the brick process: {list(reports)}"
    errors = [b for text in brick_reports for b in error_blocks(text)]
    glupy_errors = [b for b in errors if GLUPY_FRAME.search(b)]
    invalid = [b for b in errors if b.startswith("Invalid")]
    assert not glupy_errors and not invalid, "memcheck:\n" + "\n\n".join((glupy_errors + invalid)[:4])
    assert lines.count("init 1") == ROUNDS and lines.count("fini 1 kept=0") == ROUNDS, lines
    for name in ("inode", "fd", "vector", "xdata"):
        assert sum(l.startswith(f"{name}: RuntimeError: the translator ") for l in lines) == ROUNDS, lines
    assert not any(l.endswith(": usable") for l in lines), lines
    assert log.count("detaching not-only child") >= ROUNDS, log[-3000:]
    # The graph went only after Python answered the kept request (logged
    # by the server as a reply it could not send any more).
    assert log.count("Start call fini for brick") >= ROUNDS, log[-3000:]
