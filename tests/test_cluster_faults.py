"""Faults in the cluster (issue 6.3), short enough for CI; `make stress`
runs the same scenarios for 10 minutes each (stress/replica.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stress"))

import replica  # noqa: E402

# The cut (a sixth of the run) must outlast the client's ping-timeout (10 s),
# so that the client gives the brick up and heal has work to do.
SECONDS = 96


def test_replica_3_loses_nothing_when_one_bricks_network_is_cut(tmp_path):
    result = replica.scenario(tmp_path, "netcut", seconds=SECONDS)
    assert result["problems"] == [], result
    assert result["files_needing_heal"] > 0 and result["lost_files"] == {}, result
    assert result["pending_after_heal"] == {}, result
    # The cut brick's translator answered requests before and after the cut.
    assert result["r1_glupy_calls"] > 0, result
