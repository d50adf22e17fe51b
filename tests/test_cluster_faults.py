"""Faults in the cluster (issue 6.3), short enough for CI; `make stress`
runs the same scenarios for 10 minutes each (stress/replica.py)."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stress"))

import replica  # noqa: E402

# The cut (a sixth of the run) must outlast the client's ping-timeout (10 s),
# so that the client gives the brick up and heal has work to do.
SECONDS = 96

# GlusterFS 11.1's AFR sometimes leaves a `trusted.afr.dirty` mark on the cut
# brick's copies of a few files, with every copy identical, that client-side
# heal never clears. It does so without glupy as well (stress/replica.py
# --plain in the Debian 13 root; the runs are in RELIABILITY.md section 7).
# On 11 the test tolerates exactly that and nothing more: copies that differ,
# or any other mark left, still fail, and so does lost data.
GLUSTER_11 = subprocess.run(["glusterfs", "--version"], capture_output=True,
                            text=True).stdout.startswith("glusterfs 11")
# Heal takes a few seconds when it works.
HEAL_SECONDS = 120


def leftover_dirty_marks_only(result):
    return result["pending_differing"] == 0 and result["pending_marks"] == ["trusted.afr.dirty"]


def test_replica_3_loses_nothing_when_one_bricks_network_is_cut(tmp_path):
    result = replica.scenario(tmp_path, "netcut", seconds=SECONDS, heal_timeout=HEAL_SECONDS)
    problems = result["problems"]
    if GLUSTER_11 and leftover_dirty_marks_only(result):
        unfinished = [p for p in problems if p.startswith("heal did not finish")]
        print(f"GlusterFS 11: {unfinished} (see the comment at GLUSTER_11)")
        problems = [p for p in problems if p not in unfinished]
    assert problems == [], result
    assert result["files_needing_heal"] > 0 and result["lost_files"] == {}, result
    if not (GLUSTER_11 and leftover_dirty_marks_only(result)):
        assert result["pending_after_heal"] == {}, result
    # The cut brick's translator answered requests before and after the cut.
    assert result["r1_glupy_calls"] > 0, result
