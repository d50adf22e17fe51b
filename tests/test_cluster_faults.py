"""Faults in the cluster (issue 6.3), short enough for CI; `make stress`
runs the same scenarios for 10 minutes each (stress/replica.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stress"))

import replica  # noqa: E402

# The cut (a sixth of the run) must outlast the client's ping-timeout (10 s),
# so that the client gives the brick up and heal has work to do.
SECONDS = 96

# AFR sometimes leaves a `trusted.afr.dirty` mark on the cut brick's copy of a
# file or a few, every copy identical, that client-side heal never clears (the
# mark a write transaction leaves on a brick its post-op did not reach). It
# does so without glupy:
# stress/replica.py --plain in the Debian 13 root (GlusterFS 11.1) left such
# marks in 2 of 3 runs. On 10.3 it was seen once, with glupy, in a loaded run;
# RELIABILITY.md section 7 has the runs. The test tolerates exactly that and
# nothing more: copies that differ, or any other mark left, still fail, and
# so does lost data.
# Heal takes a few seconds when it works.
HEAL_SECONDS = 120


def leftover_dirty_marks_only(result):
    return result["pending_differing"] == 0 and result["pending_marks"] == ["trusted.afr.dirty"]


def test_replica_3_loses_nothing_when_one_bricks_network_is_cut(tmp_path):
    result = replica.scenario(tmp_path, "netcut", seconds=SECONDS, heal_timeout=HEAL_SECONDS)
    problems = result["problems"]
    if leftover_dirty_marks_only(result):
        unfinished = [p for p in problems if p.startswith("heal did not finish")]
        print(f"{unfinished}: AFR's leftover dirty marks (see leftover_dirty_marks_only)")
        problems = [p for p in problems if p not in unfinished]
    assert problems == [], result
    assert result["files_needing_heal"] > 0 and result["lost_files"] == {}, result
    if not leftover_dirty_marks_only(result):
        assert result["pending_after_heal"] == {}, result
    # The cut brick's translator answered requests before and after the cut.
    assert result["r1_glupy_calls"] > 0, result
