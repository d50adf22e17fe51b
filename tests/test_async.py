"""async def fop methods on real bricks (issue 7)."""

import errno
import threading
import time

import pytest

import glusterlib

from test_host import XLATORS, glupy, glupy_section


def test_coroutine_winds_and_returns_the_reply(gluster):
    brick = gluster.brick([glupy("asyncx")])
    client = gluster.gfapi(brick)
    data = b"async " * 1000
    client.write_file("/f", data)
    assert client.read_file("/f") == data
    assert client.stat("/f").st_size == len(data)
    with pytest.raises(FileNotFoundError):
        client.stat("/gone-1")
    with pytest.raises(FileNotFoundError):
        client.stat("/gone-1")  # now answered from the coroutine's own cache
    assert brick.alive()


def test_two_winds_awaited_together(gluster):
    brick = gluster.brick([glupy("asyncx")])
    client = gluster.gfapi(brick)
    client.write_file("/f", b"12345")
    assert client.getxattr("/f", "user.glupy.two") == b"size=5 x=ENODATA"
    client.setxattr("/f", "user.x", b"yes")
    assert client.getxattr("/f", "user.glupy.two") == b"size=5 x=yes"


def test_coroutine_exceptions_and_missing_answers(gluster):
    brick = gluster.brick([glupy("asyncx")])
    client = gluster.gfapi(brick)
    with pytest.raises(OSError) as e:
        client.stat("/aboom")
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        client.stat("/noanswer")
    assert e.value.errno == errno.EIO
    log = brick.log_text()
    assert "RuntimeError: boom in a coroutine" in log
    assert "lookup_fop returned without answering" in log
    client.write_file("/still", b"ok")
    assert client.read_file("/still") == b"ok"


def test_deadline_answers_etimedout(gluster):
    brick = gluster.brick([glupy("asyncx", async_timeout=1)])
    client = gluster.gfapi(brick)
    started = time.monotonic()
    with pytest.raises(OSError) as e:
        client.stat("/slow")
    assert e.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - started < 10
    assert "did not finish within async-timeout" in brick.log_text()


def test_many_pending_coroutines_leave_other_fops_responsive(gluster):
    brick = gluster.brick([glupy("asyncx")])
    client = gluster.gfapi(brick)
    client.write_file("/f", b"x")
    results = []

    def nap():
        results.append(client.getxattr("/f", "user.glupy.nap"))

    threads = [threading.Thread(target=nap) for _ in range(300)]
    for t in threads:
        t.start()
    # Every coroutine is asleep on the loop (gfapi's getxattr asks for the
    # size first: that is the first of its two requests).
    assert glusterlib.wait_until(lambda: client.getxattr("/f", "user.glupy.napping") == b"300", 20), \
        client.getxattr("/f", "user.glupy.napping")
    started = time.monotonic()
    handle = client.open("/f")
    assert handle.pread(1, 0) == b"x"  # readv: not in Python
    handle.close()
    assert time.monotonic() - started < 1.5
    for t in threads:
        t.join(60)
    assert results == [b"rested"] * 300
    section = glupy_section(brick.statedump(), brick.layer_names[0])
    assert "exceptions=0" in section["fop.getxattr"]
