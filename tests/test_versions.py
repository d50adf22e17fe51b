"""GlusterFS versions (issue 12): a glupy.so built for one GlusterFS version is
refused by another at load, with one log line, before GlusterFS reads
anything of it (xlator_api_t and xlator_t have other layouts in 10.x and
11.x).

The other version's build comes from the other system: on Debian 12
(GlusterFS 10.3) `make test-debian13` leaves the 11.1 build in
target/debian13/; in the Debian 13 root, `make test` on the host left the
10.3 build in target/release/. Without one the test is skipped.
"""

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from test_host import glupy

REPO = Path(__file__).resolve().parent.parent
BUILDS = (REPO / "target/release/libglupy.so", REPO / "target/debian13/release/libglupy.so")
MARKER = re.compile(rb"glupy-built-for-glusterfs=([0-9][0-9.]*)")
LIBPYTHON = re.compile(rb"libpython3\.(\d+)\.so\.1\.0")


def running_version():
    xlatordir = subprocess.run(["glusterfs", "--print-xlatordir"], check=True,
                               capture_output=True, text=True).stdout.strip()
    return Path(xlatordir).parent.name, Path(xlatordir)


def built_for(so):
    """The GlusterFS version a glupy.so was built for (a string it carries)."""
    found = MARKER.search(so.read_bytes()) if so.is_file() else None
    return found.group(1).decode() if found else None


def build_for_another_version(running):
    for so in BUILDS:
        version = built_for(so)
        if version and version != running:
            return so, version
    pytest.skip(f"no glupy.so built for a GlusterFS other than {running} in target/ "
                "(make test-debian13 builds one for 11.1)")


def libpython_environment(so, workdir):
    """Environment that lets the loader map the other build's libpython.

    A build from the other system also links another libpython (Debian 12:
    3.11, Debian 13: 3.13), and the dynamic loader would refuse it for that
    before glupy's check runs. Where GlusterFS 10.3 and 11.1 share a Python
    (Debian 12 with 11.1 from backports) only glupy's check stands between a
    10.3 build and an 11.1 brick: to test that check here, a newer local
    libpython (a superset of the older one's symbols) stands in under the
    old name. Nothing of Python runs: the check refuses the .so first.
    """
    minor = int(LIBPYTHON.search(so.read_bytes()).group(1))
    if minor == sys.version_info.minor:
        return {}
    if minor > sys.version_info.minor:
        pytest.skip(f"{so} needs Python 3.{minor}: the loader refuses it here before "
                    f"anything of it runs (no libpython3.{minor})")
    local = Path(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME"))
    aliases = workdir / "libpython-alias"
    aliases.mkdir()
    (aliases / f"libpython3.{minor}.so.1.0").symlink_to(local)
    return {"LD_LIBRARY_PATH": str(aliases)}


def test_the_installed_glupy_is_built_for_this_gluster():
    running, xlatordir = running_version()
    assert built_for(xlatordir / "features" / "glupy.so") == running


def test_a_build_for_another_gluster_version_is_refused_at_load(gluster, workdir):
    running, xlatordir = running_version()
    other, version = build_for_another_version(running)
    environment = [f"{k}={v}" for k, v in libpython_environment(other, workdir).items()]
    # glusterfsd loads translators only from its XLATORDIR: bind the other
    # build over the installed one, in a mount namespace of the brick's own.
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" "$1" && shift && exec "$@"',
               str(other), str(xlatordir / "features" / "glupy.so"), "env", *environment]
    brick = gluster.brick([glupy("behaviour")], start=False, wrapper=wrapper)
    log = brick.start_expect_failure()

    assert brick.process.returncode not in (0, None)
    refusals = [line for line in log.splitlines() if "glupy.so was built for" in line]
    assert len(refusals) == 1, log
    assert (f"built for GlusterFS {version} but is loaded by GlusterFS {running}: not loaded; "
            f"install the glupy built for GlusterFS {running}") in refusals[0]
    assert "] E [" in refusals[0]
    # Refused before anything of it ran: no init, no Python, no crash.
    assert "cannot start glupy translator" not in log
    assert "signal received" not in log
    # GlusterFS found no fops table (the zeroed xlator_api) and gave up.
    assert "struct missing" in log and "failed to construct the graph" in log, log
