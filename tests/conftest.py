"""Pytest fixtures for tests that run real GlusterFS processes."""

import os
import shutil

import pytest

import glusterlib


@pytest.fixture(scope="session", autouse=True)
def gluster_environment():
    """Check the machine can run bricks and mounts; finish closing clients at the end."""
    problems = []
    if os.geteuid() != 0:
        problems.append("tests must run as root (trusted.* xattrs, FUSE mounts)")
    for program in (glusterlib.GLUSTERFSD, glusterlib.GLUSTERFS):
        if not shutil.which(program):
            problems.append(f"{program} not found (apt-get install glusterfs-server)")
    if not os.path.exists("/dev/fuse"):
        problems.append("/dev/fuse is missing")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    yield
    # Clients close in the background (glfs_fini can take 10 s): let them end
    # before the interpreter exits under their threads.
    glusterlib.finish_closing()


@pytest.fixture(autouse=True)
def no_asan_report():
    """Under `make test-asan`: a test fails if a process wrote an AddressSanitizer
    report while it ran. Autouse, so set up before and torn down after the
    test's processes (which write their report as they die)."""
    before = set(glusterlib.asan_reports())
    yield
    new = {path: text for path, text in glusterlib.asan_reports().items() if path not in before}
    if new:
        pytest.fail("AddressSanitizer report(s):\n" + "\n".join(
            f"--- {path}\n{glusterlib.tail(text, 60)}" for path, text in new.items()),
            pytrace=False)


@pytest.fixture
def workdir(tmp_path):
    """A fresh directory for this test's bricks, volfiles, logs and mounts."""
    return tmp_path


@pytest.fixture
def gluster(workdir):
    """A glusterlib.Cluster: gluster.brick(), .gfapi(brick), .mount(brick), ...

    Everything it started is stopped and unmounted after the test, pass or fail.
    """
    cluster = glusterlib.Cluster(workdir)
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def assert_log_clean():
    """assert_log_clean(text, allowed=(regex, ...)): no E/C lines in a gluster log."""
    return glusterlib.assert_log_clean
