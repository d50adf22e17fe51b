"""What a translator keeps per inode and per fd, and the hooks the host
calls (issue 11, item 9): Inode.ctx and Fd.ctx live until GlusterFS forgets
the inode or releases the fd, and then forget/release/releasedir run;
notify sees child_up and child_down. The translator (tests/xlators/hooks.py)
writes every event to a file, read here. (fini runs only when a graph is
replaced: tests/test_managed.py sees it on reload.)"""

import json
import os
import uuid

import glusterlib
from test_host import glupy


def events(path):
    return [json.loads(line) for line in glusterlib.read_text(path).splitlines()]


def wait_for_event(path, wanted, timeout=10):
    """The events once one matching wanted (a dict of fields) is among them."""
    found = glusterlib.wait_until(
        lambda: any(all(e.get(k) == v for k, v in wanted.items()) for e in events(path)), timeout)
    assert found, f"no event {wanted} in {events(path)}"
    return events(path)


def gfid_of(brick, name):
    return uuid.UUID(bytes=os.getxattr(brick.directory / name, "trusted.gfid")).hex


def test_inode_and_fd_objects_live_until_forget_and_release(gluster, workdir):
    log = workdir / "events.jsonl"
    brick = gluster.brick([glupy("hooks", events_file=log)])
    client = gluster.gfapi(brick)
    assert {"event": "notify", "name": "child_up"} in events(log)
    client.write_file("/f", b"data")
    client.mkdir("/d")
    gfid, dir_gfid = gfid_of(brick, "f"), gfid_of(brick, "d")

    # The inode's object is there on later requests, the same one.
    client.stat("/f")
    first = json.loads(client.getxattr("/f", "user.hooks.ctx"))
    assert first["kind"] == "inode" and first["gfid"] == gfid
    client.stat("/f")
    assert json.loads(client.getxattr("/f", "user.hooks.ctx"))["uses"] >= first["uses"]
    assert json.loads(client.getxattr("/", "user.hooks.ctx")) is not None  # the root's

    # An fd's object, per open fd, freed on release.
    with client.open("/f") as handle:
        assert json.loads(handle.fgetxattr("user.hooks.ctx")) == {"kind": "fd", "gfid": gfid, "uses": 1}
    released = wait_for_event(log, {"event": "release", "gfid": gfid})
    assert {"event": "ctx_freed", "kind": "fd", "gfid": gfid} in released
    with client.opendir("/d") as directory:
        assert json.loads(directory.fgetxattr("user.hooks.ctx"))["kind"] == "dirfd"
    released = wait_for_event(log, {"event": "releasedir", "gfid": dir_gfid})
    assert {"event": "ctx_freed", "kind": "dirfd", "gfid": dir_gfid} in released

    # Unlinked and unused, the inode is forgotten: its object goes with it.
    assert {"event": "forget", "gfid": gfid} not in events(log)
    client.unlink("/f")
    forgotten = wait_for_event(log, {"event": "forget", "gfid": gfid})
    assert {"event": "ctx_freed", "kind": "inode", "gfid": gfid} in forgotten
    assert brick.alive()


def test_notify_sees_the_child_go_down(gluster, workdir):
    log = workdir / "events.jsonl"
    brick = gluster.brick()
    mount = gluster.mount(brick, layers=[glupy("hooks", events_file=log)])
    (mount.mountpoint / "f").write_bytes(b"data")
    assert {"event": "notify", "name": "child_up"} in events(log)
    assert {"event": "notify", "name": "child_down"} not in events(log)
    brick.stop()
    wait_for_event(log, {"event": "notify", "name": "child_down"})

