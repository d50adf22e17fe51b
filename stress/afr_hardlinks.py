#!/usr/bin/python3
"""GlusterFS's own AFR, without glupy: a sink that holds two stale hard links
of one file keeps one of them after self-heal while the volume option
`cluster.use-anonymous-inode` is on (the default on 10.x and 11.x).

Entry heal moves a stale name out of the way by renaming it to
`.glusterfs-anonymous-inode-*/<gfid>` on the sink. When the second stale name
of the same gfid is moved, that target is already a link to the same inode,
and rename(2) between two links of one inode does nothing and succeeds
(POSIX). AFR logs "Rename ... successful", clears its pending marks, and the
stale name stays on the sink: a second mount may list it, and a lookup of it
can fail with ENOTCONN ("no read subvols"). This is what stress/pool.py ran
into after a server restart with the file-tree workload's hard links.

One glusterd of its own (tests/test_managed.py), a replica 3 volume on it:
a file with two names, the third brick killed, both names renamed, the brick
started again, heal. Run once with the option on and once off:

    stress/afr_hardlinks.py WORKDIR

Prints one JSON object; exit status 0 when the option off heals and the
option on shows the upstream defect (1 if that changes: then the workaround
in stress/pool.py can go).
"""

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import glusterlib  # noqa: E402
import test_managed  # noqa: E402

HEAL_SECONDS = 120


def names_after_heal(workdir, anonymous_inode):
    """(names on a source brick, names on the healed sink brick)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    glusterd = test_managed.Glusterd(workdir).start()
    try:
        bricks = glusterd.create_volume("hardlinks", bricks=3, replica=3)
        glusterd.gluster("volume", "set", "hardlinks", "cluster.use-anonymous-inode",
                         anonymous_inode)
        mount = glusterd.mount("hardlinks", "m")
        directory = mount.mountpoint / "d"
        directory.mkdir()
        (directory / "a").write_bytes(b"x" * 1000)
        os.link(directory / "a", directory / "b")
        sink = bricks[2]
        pid = dict(glusterd.bricks("hardlinks"))[str(sink)]
        os.kill(pid, 9)
        # Gone from /proc (glusterd would take a dying brick for a running one).
        glusterlib.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30, interval=0.2)
        os.rename(directory / "a", directory / "c")
        os.rename(directory / "b", directory / "e")
        glusterd.gluster("volume", "start", "hardlinks", "force")
        glusterd.wait_bricks_online("hardlinks")
        glusterd.gluster("volume", "heal", "hardlinks", check=False)

        def listing():
            return sorted(os.listdir(bricks[0] / "d")), sorted(os.listdir(sink / "d"))

        def healed():
            source, sink_names = listing()
            return source == sink_names

        glusterlib.wait_until(healed, HEAL_SECONDS, interval=2)
        return listing()
    finally:
        for mount in glusterd.mounts:
            mount.unmount()
        glusterd.stop()


def main():
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/glupy-afr-hardlinks")
    result = {}
    for option in ("on", "off"):
        source, sink = names_after_heal(workdir / option, option)
        result[option] = {"source": source, "sink": sink, "healed": source == sink}
    result["upstream_defect_present"] = not result["on"]["healed"]
    print(json.dumps(result))
    return 0 if result["off"]["healed"] and result["upstream_defect_present"] else 1


if __name__ == "__main__":
    sys.exit(main())
