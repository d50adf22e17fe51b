"""What `glupy status` reads of processes it cannot ask: a client process's
registration on the volume's root (src/announce.rs), and the status key
asked with a nonce, which a stored xattr cannot answer (src/status.rs).

Judged from the brick's own directory (the xattrs storage/posix stored) and
from the client's statedump and pid, not from glupy's counters."""

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import glusterlib

HERE = Path(__file__).resolve().parent
XLATORS = HERE / "xlators"
sys.path.insert(0, str(HERE.parent / "python"))
from glupy import brickquery  # noqa: E402

PREFIX = "trusted.glupy.client."
# This host as registrations name it: the boot id's first 8 hex digits and
# the UTS namespace's inode.
HOST_ID = (Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8] + "-"
           + str(os.stat("/proc/self/ns/uts").st_ino))


def glupy(module, name, **options):
    opts = {"module-name": module, "module-path": str(XLATORS)}
    opts.update({k.replace("_", "-"): str(v) for k, v in options.items()})
    return ("features/glupy", opts, name)


def registrations(brick):
    """{name: JSON} of the client registrations stored on the brick's root
    (one removed between the listing and the read is left out)."""
    root, found = str(brick.directory), {}
    for name in os.listxattr(root):
        if name.startswith(PREFIX):
            try:
                found[name] = json.loads(os.getxattr(root, name).rstrip(b"\0"))
            except OSError as e:
                if e.errno != errno.ENODATA:
                    raise
    return found


def sha256(module):
    return hashlib.sha256((XLATORS / f"{module}.py").read_bytes()).hexdigest()


def test_a_fuse_client_registers_what_it_runs_on_the_volumes_root_and_writes_it_again(gluster):
    brick = gluster.brick()
    mount = gluster.mount(brick, [glupy("passall", name="seen", status_interval=1)])
    key = f"{PREFIX}{HOST_ID}.{mount.pid}.seen"
    found = {}

    def registered():
        found.update(registrations(brick))
        return key in found

    glusterlib.wait_until(registered, 30, interval=0.2)
    first = found[key]
    assert first["module"] == "passall" and first["module-sha256"] == sha256("passall")
    assert first["pid"] == mount.pid and first["hostname"] == os.uname().nodename
    assert first["mount_point"] == str(mount.mountpoint) and first["interval"] == 1
    assert first["host_id"] == HOST_ID and "module-helpers" not in first  # kept small
    assert abs(first["written_at"] - time.time()) < 30
    section = glusterlib.statedump_sections(mount.statedump())["xlator.features.glupy.seen.priv"]
    for name in ("module-file", "module-sha256", "loaded-at"):
        assert first[name] == section[name], name
    # Written again every interval (and nothing else of the root changed).
    glusterlib.wait_until(lambda: registrations(brick)[key]["written_at"] > first["written_at"] + 1,
                          30, interval=0.3)
    assert list(registrations(brick)) == [key]
    # An xattr of the root the client itself reads like any other.
    assert json.loads(os.getxattr(mount.mountpoint, key).rstrip(b"\0"))["pid"] == mount.pid
    glusterlib.assert_log_clean(mount.log_text(), what="client log")


def test_internal_clients_and_interval_zero_do_not_register_and_bricks_never_do(gluster):
    brick = gluster.brick([glupy("passall", name="brickside")])
    silent = gluster.mount(brick, [glupy("passall", name="off", status_interval=0)])
    internal = gluster.mount(brick, [glupy("passall", name="aux")], extra_args=["--client-pid=-2"])
    watched = gluster.mount(brick, [glupy("passall", name="on")])
    glusterlib.wait_until(lambda: any(k.endswith(".on") for k in registrations(brick)), 30,
                          interval=0.2)
    for mount in (silent, internal, watched):
        (mount.mountpoint / f"f{mount.pid}").write_bytes(b"x")  # each one's child is up
    time.sleep(2)
    names = list(registrations(brick))
    assert names == [f"{PREFIX}{HOST_ID}.{watched.pid}.on"], names


def test_a_bad_status_interval_is_refused_with_what_to_write(gluster):
    # GlusterFS refuses what is no number (the option is an INT); glupy
    # refuses the rest, saying what to write.
    brick = gluster.brick()
    for value, says in (("soon", 'invalid number format "soon"'), ("-5", "whole seconds")):
        name = f"bad{len(value)}"
        with pytest.raises(glusterlib.GlusterError):
            gluster.mount(brick, [glupy("passall", name=name, status_interval=value)], name=name)
        log = (gluster.workdir / f"{name}.log").read_text()
        assert "status-interval" in log and says in log, log[-2000:]


def test_the_status_key_with_a_nonce_is_answered_and_a_stored_value_is_not_believed(gluster):
    probed = gluster.brick([glupy("passall", name="probed")])
    bare = gluster.brick()
    nonce_key = f"{brickquery.STATUS_KEY}.{uuid.uuid4().hex}"
    client = gluster.gfapi(probed)
    answer = json.loads(client.getxattr("/", nonce_key).rstrip(b"\0"))
    assert answer["xlator"] == "probed" and answer["pid"] == probed.pid
    # A lookalike name is no status key: it goes on to posix.
    with pytest.raises(OSError) as other:
        client.getxattr("/", brickquery.STATUS_KEY + "x")
    assert other.value.errno == errno.ENODATA
    # Root stores a fake answer on a brick without glupy: the plain key
    # returns it, the nonce key does not, and `glupy status`'s query says
    # "no glupy".
    fake = json.dumps({"xlator": "fake", "module": "fake", "pid": 1}).encode()
    os.setxattr(str(bare.directory), brickquery.STATUS_KEY, fake)
    bare_client = gluster.gfapi(bare)
    assert bare_client.getxattr("/", brickquery.STATUS_KEY) == fake
    with pytest.raises(OSError) as none:
        bare_client.getxattr("/", nonce_key)
    assert none.value.errno == errno.ENODATA
    volfile = gluster.client_volfile(probed).read_text() + gluster.client_volfile(bare).read_text()
    results = brickquery.ask([("127.0.0.1", probed.top), ("127.0.0.1", bare.top)], volfile)()
    assert results[("127.0.0.1", probed.top)]["answer"]["pid"] == probed.pid
    assert "none" in results[("127.0.0.1", bare.top)], results


def test_status_reads_registrations_from_the_bricks_calls_silent_ones_gone_and_disable_forgets(
        gluster):
    from glupy import pool

    brick = gluster.brick()
    mount = gluster.mount(brick, [glupy("passall", name="seen", status_interval=1)])
    volfile = gluster.client_volfile(brick).read_text()
    where = [("127.0.0.1", brick.top)]

    def shown():
        found = pool.registrations(brickquery.ask(where, volfile)())
        return found.get((HOST_ID, mount.pid))

    glusterlib.wait_until(shown, 30, interval=0.3)
    process = pool.registered_process((HOST_ID, mount.pid), shown(), time.time())
    assert process["running"][0]["sha256"] == sha256("passall") and "gone" not in process
    assert process["serves"] == str(mount.mountpoint) and process["written_ago"] <= 5
    # Killed: nothing writes it again; after three intervals (and the slack)
    # status calls it gone, not a running process.
    os.kill(mount.pid, 9)
    mount.process.wait(10)
    time.sleep(pool.GONE_INTERVALS * 1 + pool.GONE_SLACK + 2)
    process = pool.registered_process((HOST_ID, mount.pid), shown(), time.time())
    assert "not heard from" in process["gone"], process
    # disable's forget: read, then removed from the brick itself.
    results = brickquery.ask(where, volfile, forget=True)()
    assert list(results[where[0]]["clients"]) == [f"{PREFIX}{HOST_ID}.{mount.pid}.seen"]
    assert results[where[0]]["forget"] == "ok" and "forget_error" not in results[where[0]]
    assert registrations(brick) == {}


def test_a_writer_removes_what_is_left_behind_and_nothing_else(gluster):
    """Nothing removes a registration when a process ends; each writer
    removes this host's whose process is gone and any silent for a day past
    its intervals, and leaves other hosts' current ones alone."""
    brick = gluster.brick()
    ended = subprocess.Popen(["true"])
    ended.wait()
    now = int(time.time())
    planted = {
        f"{PREFIX}{HOST_ID}.{ended.pid}.old": {"host_id": HOST_ID, "pid": ended.pid,
                                                "written_at": now, "interval": 60},
        f"{PREFIX}0badc0de-1.4242.silent": {"host_id": "0badc0de-1", "pid": 4242,
                                             "written_at": now - 2 * 86400, "interval": 60},
        f"{PREFIX}0badc0de-1.4243.current": {"host_id": "0badc0de-1", "pid": 4243,
                                              "written_at": now - 30, "interval": 60},
        f"{PREFIX}{HOST_ID}.{os.getpid()}.alive": {"host_id": HOST_ID, "pid": os.getpid(),
                                                    "written_at": now - 86400, "interval": 60},
    }
    for name, value in planted.items():
        # As a client's setxattr stores it: with the C string's NUL.
        os.setxattr(str(brick.directory), name, json.dumps(value).encode() + b"\0")
    mount = gluster.mount(brick, [glupy("passall", name="w", status_interval=1)])
    mine = f"{PREFIX}{HOST_ID}.{mount.pid}.w"
    glusterlib.wait_until(lambda: mine in registrations(brick), 30, interval=0.2)
    time.sleep(1.5)  # its second write, after it listed the root again
    assert sorted(registrations(brick)) == sorted(
        [mine, f"{PREFIX}0badc0de-1.4243.current", f"{PREFIX}{HOST_ID}.{os.getpid()}.alive"])


def test_the_topmost_glupy_of_a_brick_answers_for_every_glupy_under_it(gluster):
    brick = gluster.brick([glupy("passall", name="lower"), glupy("empty", name="middle"),
                           glupy("status_probe", name="upper")])
    answer = json.loads(gluster.gfapi(brick).getxattr("/", brickquery.STATUS_KEY).rstrip(b"\0"))
    sections = glusterlib.statedump_sections(brick.statedump())
    assert answer["xlator"] == "upper"
    assert [b["xlator"] for b in answer["below"]] == ["middle", "lower"], answer
    for shown in [answer, *answer["below"]]:
        dumped = sections[f"xlator.features.glupy.{shown['xlator']}.priv"]
        assert (shown["module"], shown["module-sha256"], shown["loaded-at"]) == (
            dumped["module"], dumped["module-sha256"], dumped["loaded-at"])
        assert shown["module-sha256"] == sha256(shown["module"])


def test_registrations_keep_within_status_space_and_a_client_over_it_says_so(gluster):
    """ext4 keeps all of an inode's xattrs in one 4 KiB block: registrations
    take at most status-space bytes of the root's, and GlusterFS keeps room
    for its own keys."""
    brick = gluster.brick()
    now = int(time.time())
    others = {f"{PREFIX}0badc0de-1.{pid}.big": json.dumps(
        {"host_id": "0badc0de-1", "pid": pid, "written_at": now, "interval": 3600,
         "padding": "x" * 1300}).encode() + b"\0" for pid in (1, 2)}
    for name, value in others.items():
        os.setxattr(str(brick.directory), name, value)
    used = sum(len(n) + len(v) for n, v in others.items())
    crowded = gluster.mount(brick, [glupy("passall", name="crowded", status_interval=1)])
    glusterlib.wait_until(lambda: "not registered for glupy status" in crowded.log_text(), 30,
                          interval=0.2)
    log = crowded.log_text()
    assert f"take {used} of the 3072 bytes of status-space" in log, log[-2000:]
    assert sorted(registrations(brick)) == sorted(others)
    # No limit (bricks on XFS): it registers beside them.
    free = gluster.mount(brick, [glupy("passall", name="free", status_space=0)])
    glusterlib.wait_until(lambda: f"{PREFIX}{HOST_ID}.{free.pid}.free" in registrations(brick), 30,
                          interval=0.2)
    # Room again: the crowded one registers at its next interval.
    for name in others:
        os.removexattr(str(brick.directory), name)
    mine = f"{PREFIX}{HOST_ID}.{crowded.pid}.crowded"
    glusterlib.wait_until(lambda: mine in registrations(brick), 30, interval=0.2)
    assert mine in registrations(brick)
    assert crowded.log_text().count("not registered for glupy status") == 1  # said once


def test_a_registration_stuck_below_one_translator_holds_up_no_other(gluster):
    """Two glupy translators of one client process, over two bricks under
    distribute: the first one's registration waits below it (its child
    holds the root's listing); the second one's is written meanwhile."""
    first, second = gluster.brick(), gluster.brick()
    workdir = gluster.workdir
    fifo, marker = workdir / "hold.fifo", workdir / "hold.marker"
    os.mkfifo(fifo)
    text = (glusterlib.client_volfile_text(first.port, first.top, [
                ("features/glupy", {"module-name": "root_list_blocker",
                                    "module-path": str(XLATORS), "fifo": str(fifo),
                                    "marker": str(marker)}, "holder"),
                glupy("passall", "waits")], name="one")
            + glusterlib.client_volfile_text(second.port, second.top,
                                             [glupy("passall", "goes", status_interval=1)],
                                             name="two")
            + "\n" + glusterlib.volume_block("both", "cluster/distribute", {}, ["waits", "goes"]))
    volfile = workdir / "both.vol"
    volfile.write_text(text)
    mount = glusterlib.FuseMount(volfile, workdir / "both", workdir / "both.log")
    gluster.mounts.append(mount)
    try:
        mount.mount()
        assert glusterlib.wait_until(marker.exists, 30, interval=0.1)  # "waits" is held below
        goes = f"{PREFIX}{HOST_ID}.{mount.pid}.goes"
        assert glusterlib.wait_until(lambda: goes in registrations(second), 20, interval=0.2)
        # Written again (every second) while "waits" is held, whichever
        # of the two wrote first.
        first_written = registrations(second)[goes]["written_at"]
        assert glusterlib.wait_until(
            lambda: registrations(second)[goes]["written_at"] >= first_written + 2, 20,
            interval=0.2)
        assert not Path(f"{marker}.done").exists()  # still held meanwhile
        waits = f"{PREFIX}{HOST_ID}.{mount.pid}.waits"
        assert waits not in registrations(first)  # the one held is its writer's listing
    finally:
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        os.write(fd, b"x")
        os.close(fd)
    assert glusterlib.wait_until(lambda: waits in registrations(first), 30, interval=0.2)
