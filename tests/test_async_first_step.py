"""The first step of an async def fop on the calling thread (issue 14): a
coroutine that winds twice, sleeps between winds, raises after a wind,
answers early and goes on, or is cancelled or timed out, is answered
exactly once, with what it said; none is lost (each call has a deadline
here) and none doubled (the statedump's calls equal its answers, nothing
dropped)."""

import errno
import re
import threading
import time

import pytest

import glusterlib

from test_answers_and_buffers import call_with_timeout
from test_host import glupy, glupy_section

DEADLINE = 20  # seconds: a lost answer never comes back


def within(call, *args):
    """call(*args), or fail if it does not return within DEADLINE (a lost answer)."""
    outcome = call_with_timeout(call, *args, timeout=DEADLINE)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def counters(brick):
    section = glupy_section(brick.statedump(), brick.layer_names[0])
    return {fop: dict(kv.split("=") for kv in section[f"fop.{fop}"].split())
            for fop in ("getxattr", "lookup")}


def errno_of(client, path, name):
    with pytest.raises(OSError) as e:
        within(client.getxattr, path, name)
    return e.value.errno


@pytest.mark.parametrize("timeout", [2, None], ids=["async-timeout", "bare-task"])
def test_first_step_cases_are_answered_once_each(gluster, timeout):
    # With an async-timeout, glupy._aio._run wraps the coroutine and answers
    # from inside its task; without, the task runs the coroutine itself and
    # the host (src/step.rs) or _aio._settled answers when it ends.
    brick = gluster.brick([glupy("async_steps", async_timeout=timeout)] if timeout
                          else [glupy("async_steps")])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"12345")
    rounds = 20
    for _ in range(rounds):
        assert within(client.getxattr, "/f", "user.step.twice") == b"5,5"
        assert within(client.getxattr, "/f", "user.step.sleep_between") == b"5,5"
        assert within(client.getxattr, "/f", "user.step.gather") == b"5,5"
        assert within(client.getxattr, "/f", "user.step.answer_then_sleep") == b"early"
        assert errno_of(client, "/f", "user.step.raise_after") == errno.EIO
        assert errno_of(client, "/f", "user.step.fop_error_after") == errno.EROFS
        assert errno_of(client, "/f", "user.step.odd_errno_later") == errno.EIO  # errno "abc"
        assert errno_of(client, "/", "user.step.odd_errno_later") == errno.EIO  # errno 10**30
        assert errno_of(client, "/f", "user.step.cancel") == errno.ETIMEDOUT
        # A Reply changed in place, replaced, or of a subclass (its own
        # constructor, a computed field) answers as it says.
        assert errno_of(client, "/f", "user.step.changed_reply") == errno.EROFS
        assert errno_of(client, "/f", "user.step.replaced_reply") == errno.EXDEV
        assert within(client.getxattr, "/f", "user.step.subclass_reply") == b"mine"
        assert errno_of(client, "/f", "user.step.subclass_init") == errno.EROFS
        assert errno_of(client, "/f", "user.step.subclass_property") == errno.EXDEV
        assert within(client.getxattr, "/f", "user.step.reply_fields") == b"ok"
        # asyncio raises these out of the task's step; the loop goes on
        # (the next round's sleeps run on it).
        assert errno_of(client, "/f", "user.step.exit_first") == errno.EIO
        assert errno_of(client, "/f", "user.step.exit_later") == errno.EIO
    for _ in range(2 if timeout else 0):
        assert errno_of(client, "/f", "user.step.timeout") == errno.ETIMEDOUT
    if timeout:  # at the deadline, though the coroutine swallows its cancellation
        started = time.monotonic()
        assert errno_of(client, "/f", "user.step.swallow_cancel") == errno.ETIMEDOUT
        assert time.monotonic() - started < timeout + 5
    assert brick.alive()
    # Every getxattr that reached the translator was answered exactly once
    # (gfapi asks twice per getxattr: the size, then the value).
    assert glusterlib.wait_until(
        lambda: (lambda c: c["calls"] == c["answered"])(counters(brick)["getxattr"]), 10)
    got = counters(brick)
    for fop in ("getxattr", "lookup"):
        assert got[fop]["calls"] == got[fop]["answered"], got
        assert got[fop]["dropped"] == "0", got
    # gfapi asks twice per getxattr that succeeds (the size, then the value).
    assert int(got["getxattr"]["calls"]) == (2 * 6 + 11) * rounds + (3 if timeout else 0), got
    log = brick.log_text()
    assert log.count("async_steps: raised after a wind") >= rounds
    assert log.count("getxattr_fop was cancelled; answered ETIMEDOUT") >= rounds
    assert log.count("SystemExit in the first step") >= rounds
    assert log.count("SystemExit on the loop") >= rounds
    assert "never retrieved" not in log
    if timeout:
        assert log.count("did not finish within async-timeout") >= 2


IO_THREADS = ("performance/io-threads", {})


def test_a_wind_that_cannot_leave_the_first_step_is_not_waited_for(gluster):
    # The wind raises before anything is wound: the coroutine's answer
    # (EPERM) must reach the client, not wait for a reply that never comes.
    brick = gluster.brick([glupy("async_steps")])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"12345")
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(within(client.getxattr, "/f", "user.step.pause_fails"))
        except OSError as e:
            outcomes.append(e.errno)
    assert set(outcomes) <= {errno.EPERM, b"on-loop"} and errno.EPERM in outcomes, outcomes
    calls = counters(brick)["getxattr"]
    assert calls["calls"] == calls["answered"], calls


def test_sync_requests_a_coroutine_finishes_do_not_run_glusterfs_on_the_loop(gluster):
    # truncate_fop (sync) keeps truncates of /q*; a coroutine, on the loop's
    # thread, winds them (their callback notes the thread the wind ran on:
    # the child answers inline) or answers them EROFS.
    brick = gluster.brick([glupy("async_steps")])
    client = within(gluster.gfapi, brick)
    names = ("/q1", "/q2")
    for name in names:
        within(client.write_file, name, b"12345")

    def kept_truncates():
        results = {}

        def truncate(name):
            results[name] = call_with_timeout(client.truncate, name, 3, timeout=DEADLINE)

        threads = [threading.Thread(target=truncate, args=(n,)) for n in names]
        for t in threads:
            t.start()
        return threads, results

    def finish(how):
        deadline = time.monotonic() + DEADLINE
        while (done := int(within(client.getxattr, "/", how))) < len(names):
            assert time.monotonic() < deadline, f"{how}: {done} truncates were kept"
            time.sleep(0.05)

    threads, results = kept_truncates()
    finish("user.step.release")
    for t in threads:
        t.join(DEADLINE)
    assert [results[n] for n in names] == [None, None], results  # no error
    assert [within(client.stat, n).st_size for n in names] == [3, 3]
    seen = within(client.getxattr, "/", "user.step.seen").decode().split(",")
    assert len(seen) == 2 and "glupy-asyncio" not in seen, seen

    threads, results = kept_truncates()
    finish("user.step.fail")
    for t in threads:
        t.join(DEADLINE)
    assert [getattr(results[n], "errno", results[n]) for n in names] == [errno.EROFS] * 2, results


def test_first_step_runs_on_the_calling_thread_as_a_task_of_the_loop(gluster):
    brick = gluster.brick([glupy("async_steps"), IO_THREADS])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    seen = within(client.getxattr, "/f", "user.step.where").decode().split(";")
    threads = [s.split("|")[0] for s in seen]
    # Before and after a wind whose reply came back inline (posix below
    # io-threads): the io-threads worker; after a sleep: the loop's thread.
    assert re.fullmatch(r"glfs_iotwr\w+", threads[0]), seen
    assert threads[1] == threads[0], seen
    assert threads[2] == "glupy-asyncio", seen
    # A task of the glupy loop everywhere, listed by asyncio.all_tasks(),
    # with the log contextvar set.
    assert all(s.split("|")[1:] == ["True"] * 4 for s in seen), seen
    # A loop in debug mode runs every coroutine itself (asyncio's checks
    # hold only there), and the first step goes back to the calling thread
    # when it leaves debug mode.
    assert within(client.getxattr, "/f", "user.debug.on") == b"ok"
    seen = within(client.getxattr, "/f", "user.step.where").decode().split(";")
    assert [s.split("|")[0] for s in seen] == ["glupy-asyncio"] * 3, seen
    assert within(client.getxattr, "/f", "user.debug.off") == b"ok"
    seen = within(client.getxattr, "/f", "user.step.where").decode().split(";")
    assert re.fullmatch(r"glfs_iotwr\w+", seen[0].split("|")[0]), seen


def test_a_method_below_a_first_step_sees_the_loop_that_ran_before_it(gluster):
    # The glupy loop stays set on the thread through a first step's wind;
    # a sync translator's fop and callback called below meanwhile (on the
    # same io-threads worker: posix answers inline) see none, as they would
    # without the async translator above, and the coroutine sees its loop
    # again after the wind.
    brick = gluster.brick([glupy("running_loop_probe"), glupy("async_steps"), IO_THREADS])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    for _ in range(3):
        seen = within(client.getxattr, "/f", "user.step.where").decode().split(";")
        assert re.fullmatch(r"glfs_iotwr\w+", seen[0].split("|")[0]), seen
        assert all(s.split("|")[1:] == ["True"] * 4 for s in seen), seen
    assert within(client.getxattr, "/f", "user.probe.loops") == b"cbk:none,fop:none"


@pytest.mark.parametrize("below_io_threads", [True, False], ids=["io-threads", "pool"])
def test_many_concurrent_first_steps_lose_and_double_nothing(gluster, below_io_threads):
    brick = gluster.brick([glupy("async_steps"), IO_THREADS] if below_io_threads
                          else [glupy("async_steps")])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"12345")
    cases = ["twice", "sleep_between", "gather", "answer_then_sleep"]
    expected = {"twice": b"5,5", "sleep_between": b"5,5", "gather": b"5,5",
                "answer_then_sleep": b"early"}
    failures = []

    def worker(n):
        for i in range(40):
            case = cases[(n + i) % len(cases)]
            try:
                value = client.getxattr("/f", f"user.step.{case}")
            except OSError as error:
                failures.append((case, error))
                continue
            if value != expected[case]:
                failures.append((case, value))
            client.stat("/f")

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a request got no answer within 60 s"
    assert failures == []
    got = counters(brick)
    for fop in ("getxattr", "lookup"):
        assert got[fop]["calls"] == got[fop]["answered"], got
        assert got[fop]["dropped"] == "0", got
    # The 320 tasks are gone from asyncio's registry of tasks (a weak
    # reference each, taken out when the task dies: src/task_registry.rs);
    # those of answer_then_sleep may sleep 10 ms more.
    time.sleep(0.5)
    assert int(within(client.getxattr, "/f", "user.step.registered")) <= 2
    assert brick.alive()


@pytest.mark.parametrize("case, expected", [
    # src/task_registry.rs does asyncio's registry's add and _remove
    # natively: a task that dies while all_tasks() iterates is taken out
    # after the iteration, or by the next add, as _weakrefset.WeakSet does.
    ("registry_while_iterated", b"1,0,False,1,0"),
    # The host shadows the loop's call_soon for good (a task's first step
    # is kept by it): any other call reaches the loop as it was made.
    ("call_soon", b"1-2:unset,ctx:set,:unset,task:unset,loop-3:unset;Handle"),
], ids=["registry-of-tasks", "call-soon"])
def test_what_the_host_does_for_asyncio_keeps_asyncios_rules(gluster, case, expected):
    brick = gluster.brick([glupy("async_steps"), IO_THREADS])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    for _ in range(2):
        assert within(client.getxattr, "/f", f"user.step.{case}") == expected


def test_the_loops_turn_is_a_lock_that_any_thread_gives_back(gluster):
    brick = gluster.brick([glupy("async_steps")])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"x")
    assert within(client.getxattr, "/f", "user.turn") == b"ok"


def test_a_coroutine_that_can_never_go_on_is_collected_and_answered(gluster):
    # A coroutine awaiting a future nothing else holds: the loop keeps no
    # reference to its task, nor may glupy's own list of running tasks, so
    # the collector frees it and the request is answered EIO, with a log
    # line that says why. Once in its first step, once submitted to the
    # loop (the loop's thread is busy, so the first step cannot start).
    brick = gluster.brick([glupy("async_steps")])
    client = within(gluster.gfapi, brick)
    within(client.write_file, "/f", b"12345")
    within(client.write_file, "/g", b"12345")  # its lookups are sync: they need no loop
    outcomes = {}

    def ask(key, case):
        try:
            outcomes[key] = client.getxattr("/g", f"user.step.{case}")
        except OSError as e:
            outcomes[key] = e.errno

    def start(key, case):
        threading.Thread(target=ask, args=(key, case), daemon=True).start()

    start("first-step", "orphan")
    time.sleep(0.3)
    start("hog", "hog")
    time.sleep(0.3)
    start("submitted", "orphan")
    deadline = time.monotonic() + DEADLINE
    while len(outcomes) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
        assert within(client.getxattr, "/f", "user.step.collect") == b"collected"
    assert outcomes == {"first-step": errno.EIO, "hog": b"hogged", "submitted": errno.EIO}
    log = brick.log_text()
    assert log.count("Task was destroyed but it is pending") == 2, log
    assert "coro=<xlator.case_orphan()" in log and "coro=<_run()" in log, log  # one of each path
    assert "GeneratorExit" not in log, log  # closed by the collector: not an exception of the fop's
    assert log.count("returned without winding or unwinding") == 2, log
    assert counters(brick)["getxattr"]["dropped"] == "2"
