"""GlusterFS's own regression test of Glupy 1 (issue 12, item 5).

GlusterFS 5.13 shipped tests/features/glupy.t: a FUSE mount of posix under
features/glupy with `module-name helloworld` and no module-path, the module
installed in <xlatordir>/features/glupy. It runs here, unchanged, on
GlusterFS's own harness (tests/include.rc), taken from a snapshot of
GlusterFS's repository: set GLUPY_GLUSTERFS_SOURCE to a git repository of
GlusterFS (a clone or a bare mirror holding tag v5.13) or to an unpacked
source tree of 5.13. Without one the test is skipped (nothing is fetched:
CI has no network, and GlusterFS's code is not part of this checkout).

The harness assumes a machine of its own: its cleanup kills every gluster
process, unmounts every GlusterFS mount and empties glusterd's working
directory. So it runs in namespaces of its own (pid, mount, network) where
it sees only its processes, its mounts and its loopback, with everything it
writes in the test's temp dir: the brick and mount directories and glusterd's
directories through env.rc and the harness's variables, the log directory
and the translator directory (a copy, with helloworld.py in features/glupy)
bind-mounted over the machine's, and rpcinfo (which would unregister the
machine's NFS services from rpcbind over its Unix socket) replaced by true.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = os.environ.get("GLUPY_GLUSTERFS_SOURCE")
TAG = "v5.13"
TEST = "tests/features/glupy.t"
HELLOWORLD = "xlators/features/glupy/examples/helloworld.py"
PYTHON = "/usr/bin/python3"

INSIDE = r"""
set -eu
ip link set lo up
mount --bind "$T/features" "$FEATURES"
mount --bind "$T/log" "$LOGDIR_REAL"
rpcinfo="$(command -v rpcinfo || true)"
[ -z "$rpcinfo" ] || mount --bind /bin/true "$rpcinfo"
cd "$T/src"
exec bash "$TEST"
"""


def snapshot(into):
    """Copies the harness, the test and helloworld.py of GlusterFS 5.13 into into."""
    source = Path(SOURCE)
    if (source / TEST).is_file():
        for part in ("tests", HELLOWORLD):
            if (source / part).is_dir():
                shutil.copytree(source / part, into / part, symlinks=True)
            else:
                (into / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source / part, into / part)
        return
    archive = subprocess.run(["git", "-C", str(source), "archive", TAG, "tests", HELLOWORLD],
                             capture_output=True, timeout=120)
    if archive.returncode != 0:
        pytest.fail(f"GLUPY_GLUSTERFS_SOURCE={SOURCE}: no {TAG} to take {TEST} from: "
                    f"{archive.stderr.decode()}", pytrace=False)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=120)


@pytest.mark.skipif(not SOURCE, reason="GLUPY_GLUSTERFS_SOURCE (a GlusterFS repository with tag v5.13) is not set")
def test_glusterfs_5_13_glupy_t_passes(workdir):
    src = workdir / "src"
    snapshot(src)
    xlatordir = subprocess.check_output(["glusterfs", "--print-xlatordir"], text=True).strip()
    logdir = subprocess.check_output(["gluster", "--print-logdir"], text=True).strip()
    if not os.path.isdir(logdir):
        pytest.skip(f"{logdir} does not exist: nothing to mount the test's log directory on")
    # Where the Glupy 1 examples were installed (xlators/features/glupy/examples/Makefile.am).
    features = workdir / "features"
    shutil.copytree(Path(xlatordir) / "features", features, symlinks=True)
    (features / "glupy").mkdir(mode=0o755)
    shutil.copy(src / HELLOWORLD, features / "glupy" / "helloworld.py")
    (features / "glupy" / "helloworld.py").chmod(0o644)  # as installed (make install)
    for directory in (workdir, features):
        directory.chmod(0o755)
    (workdir / "log").mkdir()
    site = subprocess.check_output([PYTHON, "-c", "import site; print(site.getsitepackages()[0])"],
                                   text=True).strip()
    # tests/env.rc is made by GlusterFS's configure from env.rc.in.
    (src / "tests" / "env.rc").write_text(
        f"PATH=/usr/sbin:$PATH\nexport PATH\n"
        f"GLUSTERD_PIDFILEDIR={workdir}/run\nexport GLUSTERD_PIDFILEDIR\n"
        f"GLUSTERD_WORKDIR={workdir}/glusterd\nexport GLUSTERD_WORKDIR\n"
        f"PYTHONPATH={site}:$PYTHON_PATH\nexport PYTHONPATH\n"
        f"PYTHON={PYTHON}\nexport PYTHON\n"
        f"GLUSTER_CMD_DIR=/usr/sbin\nexport GLUSTER_CMD_DIR\n"
        f"GLUSTER_LIBEXECDIR=/usr/libexec/glusterfs\nexport GLUSTER_LIBEXECDIR\n")
    for directory in ("run", "glusterd"):
        (workdir / directory).mkdir()
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "T": str(workdir), "TEST": TEST, "FEATURES": str(Path(xlatordir) / "features"),
        "LOGDIR_REAL": logdir,
        # The harness's places (include.rc takes them from the environment).
        "B0": f"{workdir}/d/backends",
        **{m: f"{workdir}/mnt/{m}" for m in ("M0", "M1", "M2", "M3", "N0", "N1")},
    }
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "--mount", "--net", "--propagation", "private",
         "bash", "-c", INSIDE], env=env, capture_output=True, text=True, timeout=300)
    tap = done.stdout.splitlines()
    log = (workdir / "log" / "glupy.log")
    log_text = log.read_text(errors="replace") if log.exists() else "(no glupy.log)"
    report = f"{done.stdout}\n--- stderr\n{done.stderr}\n--- glupy.log\n{log_text[-4000:]}"
    plan = [line for line in tap if line.startswith("1..")]
    assert plan == ["1..6"], report  # glupy.t's six TEST/EXPECT lines
    assert [line.split(",")[0] for line in tap if "ok " in line] == [f"ok {i}" for i in range(1, 7)], report
    # Beyond the upstream test: helloworld.py itself ran, in the mount's graph.
    assert "Python xlator: Hello!" in log_text and "Python xlator: Hello again!" in log_text, report
