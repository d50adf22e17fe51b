"""The fops no plain client sends reach Python both ways (issue 11, item 9):
inodelk, finodelk, entrylk, fentrylk, xattrop, fxattrop, rchecksum, ipc,
lease, getactivelk, setactivelk, put, icreate, namelink, copy_file_range and
fsyncdir.

The brick: posix -> locks -> fop_terminal -> fop_recorder (under test: every
fop and callback in Python, passing requests through) -> fop_generator ->
server. The generator winds each fop from a coroutine when a client asks
getxattr/fgetxattr "user.fop.<fop>", and answers what the reply said; the
recorder tells what it saw on the way down and up. Expected values are what
GlusterFS 10.3's features/locks and storage/posix answer (or, for the fops
they cannot take, what fop_terminal answers).
"""

import errno
import fcntl
import hashlib
import json
import os
import zlib

import pytest

from test_host import glupy

LAYERS = [glupy("fop_terminal", name="terminal"), glupy("fop_recorder", name="recorder"),
          glupy("fop_generator", name="generator")]
DATA = bytes(range(256)) * 64  # 16 KiB, the file the fd fops work on
OK = {"op_ret": 0, "op_errno": 0}


@pytest.fixture
def covered(gluster):
    """(client, brick) with /f holding DATA and a directory /d."""
    brick = gluster.brick(LAYERS)
    client = gluster.gfapi(brick)
    client.write_file("/f", DATA)
    client.mkdir("/d")
    return client, brick


def recorded(client):
    return json.loads(client.getxattr("/", "user.recorder.report"))


def path_fop(client, fop, path="/f"):
    return json.loads(client.getxattr(path, f"user.fop.{fop}"))


def test_sixteen_fops_wind_and_unwind_through_python(covered):
    client, brick = covered
    answers = {fop: path_fop(client, fop) for fop in (
        "inodelk", "xattrop", "ipc", "lease", "getactivelk", "setactivelk", "icreate",
        "namelink")}
    answers["entrylk"] = path_fop(client, "entrylk", "/d")
    with client.open("/f", os.O_RDWR) as handle:
        for fop in ("finodelk", "fxattrop", "rchecksum", "copy_file_range"):
            answers[fop] = json.loads(handle.fgetxattr(f"user.fop.{fop}"))
    client.write_file("/p", b"x" * 100)
    client.setxattr("/p", "user.put", b"old")  # put replaces it
    with client.open("/p", os.O_RDWR) as handle:
        answers["put"] = json.loads(handle.fgetxattr("user.fop.put"))
    with client.opendir("/d") as directory:
        for fop in ("fentrylk", "fsyncdir"):
            answers[fop] = json.loads(directory.fgetxattr(f"user.fop.{fop}"))

    assert len(answers) == 16
    # What the client got: the replies of locks and posix (and the terminal).
    for fop in ("inodelk", "finodelk", "entrylk", "fentrylk"):
        assert answers[fop] == [OK, OK], (fop, answers[fop])  # taken, released
    for fop in ("fsyncdir", "getactivelk", "setactivelk", "namelink"):
        assert answers[fop] == OK, (fop, answers[fop])
    # gfapi asks twice per getxattr (size, then value): the counter was added to twice.
    assert answers["xattrop"] == {**OK, "counter": 2}
    assert answers["fxattrop"] == {**OK, "counter": 2}
    assert answers["ipc"] == {"op_ret": -1, "op_errno": errno.EOPNOTSUPP}  # posix_ipc
    assert answers["lease"] == {"op_ret": -1, "op_errno": errno.ENOSYS}  # no features/leases
    assert answers["icreate"] == {**OK, "size": 4242}  # fop_terminal's answer
    block = DATA[:4096]
    assert answers["rchecksum"] == {**OK, "weak": zlib.adler32(block, 0),
                                    "strong": hashlib.md5(block).hexdigest()}
    assert answers["copy_file_range"] == {"op_ret": 4096, "op_errno": 0, "size": len(DATA)}
    assert client.read_file("/f")[8192:8192 + 4096] == block
    assert answers["put"] == {**OK, "size": 100}
    assert client.read_file("/p") == b"put by the generator" + b"x" * 80
    assert client.getxattr("/p", "user.put") == b"yes"

    assert os.getxattr(brick.directory / "f", "trusted.glupy.count.xattrop") == (2).to_bytes(4, "big")

    # What the recorder saw: every fop went down and its reply came up through Python.
    seen = recorded(client)
    assert seen["inodelk"]["args"][:3] == ["glupy-test", {"loc": "/f"}, fcntl.F_SETLK]
    assert seen["inodelk"]["args"][3] == {"flock": [fcntl.F_UNLCK, 0, 0]}  # the release came last
    assert seen["entrylk"]["args"][2:5] == ["entry", 1, 1]  # ENTRYLK_UNLOCK, ENTRYLK_WRLCK
    assert seen["copy_file_range"]["args"][1:5] == [0, seen["copy_file_range"]["args"][0], 8192, 4096]
    assert seen["rchecksum"]["reply"][2][:2] == [zlib.adler32(block, 0), hashlib.md5(block).hexdigest()]
    assert seen["put"]["args"][4] == {"vector": b"put by the generator".hex()}
    assert seen["icreate"]["reply"][2][1] == {"iatt": [4242, 0]}
    for fop, answer in answers.items():
        record = seen.get(fop, {})
        assert record.get("fops", 0) >= 2 and record.get("cbks") == record.get("fops"), (fop, record)
        last = answer[-1] if isinstance(answer, list) else answer
        assert record["reply"][:2] == [last["op_ret"], last["op_errno"]], (fop, record)
