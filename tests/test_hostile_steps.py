"""Hostile async def fops whose first step runs on the calling thread
(tests/xlators/hostile_steps.py; src/step.rs), from an independent review:
each request is answered once, with what asyncio's own rules give."""

import errno

import pytest

from test_answers_and_buffers import call_with_timeout
from test_async_first_step import within
from test_host import glupy, glupy_section

IO_THREADS = ("performance/io-threads", {})


def counts(brick, layer):
    section = glupy_section(brick.statedump(), layer)
    return dict(kv.split("=") for kv in section["fop.getxattr"].split())


def outcome(client, path, name):
    try:
        return within(client.getxattr, path, name)
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)


def hostile_brick(gluster, *below, **options):
    return gluster.brick([*below, glupy("hostile_steps", **options), IO_THREADS])


def test_an_asyncio_timeout_that_expires_during_a_wind_raises_at_the_wind(gluster):
    # The child naps 0.3 s on this very thread; the loop runs meanwhile and
    # the timeout (0.05 s) cancels the task. asyncio cancels what a task
    # awaits: the block raises TimeoutError, and the coroutine's own answer
    # goes up (not ETIMEDOUT for a cancellation left to strike at its end).
    brick = hostile_brick(gluster, glupy("nap_child", role="lower", nap="0.3"))
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    got = [outcome(client, "/f", "user.hs.timeout_block") for _ in range(3)]
    got += [outcome(client, "/f", "user.hs.timeout_block_then_sleep") for _ in range(3)]
    assert got == [b"timed-out"] * 6, (got, brick.log_text()[-3000:])


def test_debug_mode_turned_on_inside_a_first_step(gluster):
    # asyncio lets a task turn debug mode on and go on scheduling: the
    # first step's thread is the loop's runner while it holds the turn.
    brick = hostile_brick(gluster)
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    try:
        assert outcome(client, "/f", "user.hs.debug_in_step") == b"ok", brick.log_text()[-3000:]
        # Debug on: first steps are left to the loop, and still answered.
        assert outcome(client, "/f", "user.hs.plain") == b"plain"
    finally:
        within(client.getxattr, "/f", "user.sync.debug_off")
    assert "Task was destroyed but it is pending" not in brick.log_text()


def test_a_call_soon_from_a_gc_callback_while_a_task_is_made_is_the_callers(gluster):
    # With gc's threshold at 1 a collection runs inside the first step's
    # Task() allocation; its callback calls loop.call_soon: that call is
    # scheduled as asked, and the task's own step is still the one kept.
    brick = hostile_brick(gluster)
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    assert within(client.getxattr, "/f", "user.sync.gc_on") == b"ok"
    got = [outcome(client, "/f", "user.hs.gc_step") for _ in range(5)]
    summary = within(client.getxattr, "/f", "user.sync.gc_off")
    assert all(isinstance(g, bytes) and g != b"glupy-asyncio" for g in got), (
        got, summary, brick.log_text()[-3000:])
    assert b"errors=[]" in summary, summary
    calls, ran = (int(part.split(b"=")[1]) for part in summary.split()[:2])
    assert calls > 0 and ran == calls, summary


def test_a_task_factory_makes_a_first_steps_task_too(gluster):
    brick = hostile_brick(gluster)
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    assert within(client.getxattr, "/f", "user.sync.factory_on") == b"ok"
    try:
        assert outcome(client, "/f", "user.hs.factory") == b"True"
    finally:
        within(client.getxattr, "/f", "user.sync.factory_off")
    assert outcome(client, "/f", "user.hs.factory") == b"False"


@pytest.mark.parametrize("timeout", [None, 5], ids=["bare", "async-timeout"])
def test_a_coroutine_raising_generatorexit_is_answered(gluster, timeout):
    # It keeps its frame, so no drop answers for it: the host must.
    brick = hostile_brick(gluster, **({"async_timeout": timeout} if timeout else {}))
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    got = call_with_timeout(client.getxattr, "/f", "user.hs.genexit_kept", timeout=12)
    assert isinstance(got, OSError) and got.errno == errno.EIO, got


@pytest.mark.parametrize("timeout", [None, 2], ids=["bare", "async-timeout"])
def test_odd_first_steps_are_answered_once(gluster, timeout):
    brick = hostile_brick(gluster, **({"async_timeout": timeout} if timeout else {}))
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    got = {case: outcome(client, "/f", f"user.hs.{case}") for case in (
        "plain", "ctxvar", "keyboard", "genexit", "unwind_and_return", "other_fop_reply",
        "never_await", "await_twice")}
    assert got == {
        "plain": b"plain", "ctxvar": b"unset,first,first", "keyboard": "EIO", "genexit": "EIO",
        "unwind_and_return": b"unwound", "other_fop_reply": "EIO", "never_await": b"ok",
        "await_twice": b"True"}, got
    c = counts(brick, brick.layer_names[0])
    assert c["calls"] == c["answered"] and c["dropped"] == "0", c
    assert brick.alive()
