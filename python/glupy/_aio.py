"""Fop methods written with async/await.

An ``async def <fop>_fop`` runs as a coroutine on one asyncio event loop per
process, on a thread of the host's (64 MiB stack). ``await frame.wind(...)``
resumes with the reply (a :class:`Reply`); returning a Reply (or raising)
answers the request. The loop never runs GlusterFS code that may block:
winds made from it run on the host's Python threads.

The first step (first_step): a coroutine's first step runs on the thread
that called the fop method (where a sync method would have run), as a
step of a real asyncio Task of the loop, while that thread holds the
loop's *turn*. The loop thread holds the turn whenever it runs anything
and lets go of it only while it waits in select, so a thread holding it
is, for that time, the loop's only runner: every asyncio call works there
as on the loop thread (get_running_loop, current_task, sleep, timeouts,
gather, cancellation), and the contextvars of the task are its own. A
wind made in the step runs directly on that thread with the turn and the
GIL given back (the thread is one that may block on GlusterFS: the sync
path winds from it too); a reply that comes back during the wind (a child
below io-threads answers inline) resolves the wind's future as soon as the
turn is taken back, so ``await`` goes straight on. When the coroutine
waits for anything not yet done, the step ends there and the loop thread
runs the rest of the task, as for any task. If the turn is taken (the loop
is running something, or this thread is already inside a first step), the
coroutine is submitted to the loop instead, as before. Answers given
during the step are performed by the host once the step is over and the
turn given back (src/frame.rs), never on the loop.
"""

import asyncio
import contextvars
import errno
import logging
import selectors
import threading
import traceback
import weakref
from asyncio import events, tasks

from . import FOPS

_loop = None
# The translator a coroutine works for: lines of loggers other than its own
# (a module's logger, print) logged there go to that translator's log.
current_log_id = contextvars.ContextVar("glupy_log_id", default=None)
_loop_lock = threading.Lock()
LOOP_STACK_BYTES = 64 << 20


class Reply:
    """A callback's arguments: ``op_ret``, ``op_errno``, ``args`` (the rest,
    in the callback's order) and each of them by name (``reply.inode``)."""

    __slots__ = ("fop", "op_ret", "op_errno", "args")

    def __init__(self, fop, op_ret, op_errno, args):
        self.fop, self.op_ret, self.op_errno, self.args = fop, op_ret, op_errno, tuple(args)

    def __getattr__(self, name):
        names = FOPS[self.fop][1]
        if name in names:
            return self.args[names.index(name)]
        raise AttributeError(f"a {self.fop} reply has no {name!r} (it has {', '.join(names)})")

    def replace(self, **changes):
        """A copy with some fields changed: reply.replace(op_ret=-1, op_errno=errno.ENOENT)."""
        names = FOPS[self.fop][1]
        args = [changes.pop(n, v) for n, v in zip(names, self.args)]
        op_ret = changes.pop("op_ret", self.op_ret)
        op_errno = changes.pop("op_errno", self.op_errno)
        if changes:
            raise TypeError(f"a {self.fop} reply has no {', '.join(changes)}")
        return Reply(self.fop, op_ret, op_errno, args)

    def __repr__(self):
        return f"<glupy.Reply {self.fop} op_ret={self.op_ret} op_errno={self.op_errno}>"


class _TurnSelector(selectors.DefaultSelector):
    """The loop thread's selector: the loop's turn is given up only while
    the loop waits for events."""

    def __init__(self, turn):
        super().__init__()
        self._turn = turn

    def select(self, timeout=None):
        self._turn.release()
        try:
            return super().select(timeout)
        finally:
            self._turn.acquire()


class _Loop(asyncio.SelectorEventLoop):
    """The glupy event loop: a selector loop with a turn (see the module's
    docstring) and a way to take a new task's first step out of call_soon."""

    def __init__(self):
        self.turn = threading.Lock()
        self._capture = None
        super().__init__(_TurnSelector(self.turn))

    def call_soon(self, callback, *args, context=None):
        capture = self._capture
        if capture is not None:  # only its holder of the turn sets it (first_step)
            self._capture = None
            capture.append((callback, args, context))
            return None  # (the task's constructor, the only caller then, drops it)
        return super().call_soon(callback, *args, context=context)


def loop():
    """The process's event loop, started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            new = _Loop()
            ready = threading.Event()
            previous = threading.stack_size(LOOP_STACK_BYTES)
            try:
                threading.Thread(target=_serve, args=(new, ready), name="glupy-asyncio", daemon=True).start()
            finally:
                threading.stack_size(previous)
            ready.wait()
            _loop = new
    return _loop


def _serve(new, ready):
    new.turn.acquire()  # held whenever this thread is not waiting in select
    asyncio.set_event_loop(new)
    new.call_soon(ready.set)
    new.run_forever()


def new_future():
    """The awaitable frame.wind returns in a coroutine."""
    try:
        return asyncio.get_running_loop().create_future()
    except RuntimeError:
        raise RuntimeError("an async frame is wound from its coroutine (on the glupy event loop)") from None


def resolve(future, reply):
    if _holds_turn(future.get_loop()):
        _settle(future, reply, None)  # this thread is the loop's runner now
    else:
        future.get_loop().call_soon_threadsafe(_settle, future, reply, None)


def fail(future, exc):
    future.get_loop().call_soon_threadsafe(_settle, future, None, exc)


def _settle(future, reply, exc):
    if future.done():  # the coroutine was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(reply)


# The coroutines running for each translator object, cancelled at its fini.
_running: dict = {}
_running_lock = threading.Lock()
_shut_down: weakref.WeakSet = weakref.WeakSet()


# How long a first step waits for the loop's turn before leaving the
# coroutine to the loop (seconds).
TURN_WAIT = 0.002

# This thread's first step: .task while it holds the turn, .paused while
# a wind of the step runs below (the turn given back).
_here = threading.local()


def _holds_turn(lp):
    task = getattr(_here, "task", None)
    return task is not None and task.get_loop() is lp


def first_step(coro, frame, translator):
    """Runs the coroutine's first step on this thread (see the module's
    docstring); the rest, if any, runs on the loop thread. False if the
    step cannot run here now: the caller submits the coroutine instead."""
    lp = _loop if _loop is not None else loop()
    if getattr(_here, "task", None) is not None or getattr(_here, "paused", None) is not None:
        return False  # inside a first step already (a wind below it came back here)
    # Other first steps hold the turn only while their Python runs (as
    # they hold the GIL): wait that long. The loop thread may hold it
    # longer (a coroutine's later step): then the loop runs this one too.
    if lp.get_debug() or not lp.turn.acquire(True, TURN_WAIT):
        return False
    try:
        previous = _here.previous = events._get_running_loop()
        events._set_running_loop(lp)
        try:
            ready, scheduled = len(lp._ready), len(lp._scheduled)
            _here.before = (ready, scheduled)
            captured = lp._capture = []
            try:
                task = tasks.Task(_run(coro, frame, translator), loop=lp)
            finally:
                lp._capture = None
            if captured:  # the task's first step, taken out of call_soon
                ((step, args, context),) = captured
                _here.task = task
                try:
                    if context is None:
                        step(*args)
                    else:
                        context.run(step, *args)
                finally:
                    _here.task = None
            # (else an asyncio that schedules a task's first step without
            # call_soon: it is in the loop's queue, and the loop runs it)
        finally:
            events._set_running_loop(previous)
        if not task.done():
            _track(task, translator)
        ready, scheduled = _here.before
        if not task.done() or len(lp._ready) > ready or len(lp._scheduled) != scheduled:
            lp._write_to_self()  # the loop computed its wait before this step
    finally:
        lp.turn.release()
    return True


def _pause():
    """A wind from a first step is about to run GlusterFS's code on this
    thread: the turn is given back meanwhile (the task leaves the loop, as
    between two steps). False if this thread is not in a first step."""
    task = getattr(_here, "task", None)
    if task is None:
        return False
    lp = task.get_loop()
    tasks._leave_task(lp, task)
    events._set_running_loop(_here.previous)  # (an application's own loop, client side)
    _here.task, _here.paused = None, task
    ready, scheduled = _here.before
    if len(lp._ready) > ready or len(lp._scheduled) != scheduled:
        # The step made work for the loop (a timer, a task): it may run
        # while the wind does (the loop computed its wait before).
        _here.before = (len(lp._ready), len(lp._scheduled))
        lp._write_to_self()
    lp.turn.release()
    return True


def _resume():
    """The wind returned: the turn is taken back and the step goes on."""
    task = _here.paused
    lp = task.get_loop()
    lp.turn.acquire()
    _here.task, _here.paused = task, None
    events._set_running_loop(lp)
    tasks._enter_task(lp, task)


def submit(coro, frame, translator):
    future = asyncio.run_coroutine_threadsafe(_run(coro, frame, translator), loop())
    _track(future, translator)


def _track(future, translator):
    """Keeps a running coroutine (its concurrent future, or its task) for
    cancel_all."""
    key = id(translator)
    with _running_lock:
        _running.setdefault(key, set()).add(future)

    def _done(f):
        with _running_lock:
            futures = _running.get(key)
            if futures is not None:
                futures.discard(f)
                if not futures:
                    del _running[key]

    future.add_done_callback(_done)


def cancel_all(translator):
    """Cancels the translator's coroutines (at its fini); returns how many.
    Their requests are answered when the cancellation reaches them, or
    by the host right after, whichever comes first."""
    with _running_lock:
        try:
            _shut_down.add(translator)
        except TypeError:  # a translator class with __slots__ and no __weakref__
            pass
        futures = _running.pop(id(translator), set())
    for future in futures:
        if isinstance(future, asyncio.Future):  # a task: cancelled on its loop
            future.get_loop().call_soon_threadsafe(future.cancel)
        else:
            future.cancel()
    return len(futures)


def _timeout(translator):
    value = translator.options.get("async-timeout")
    if not value:
        return None
    try:
        value = float(value)
    except ValueError:
        translator.log.error("option async-timeout must be a number of seconds; ignoring it")
        return None
    return value if value > 0 else None


def _give_up(frame, code):
    # Now, or when the winds still in flight return: the host's answering
    # machine (src/answer.rs) decides, exactly once.
    frame._give_up(code)


async def _run(coro, frame, translator):
    log = translator.log
    current_log_id.set(getattr(log, "glupy_log_id", None))  # in this task's own context
    fop = frame.fop
    timeout = _timeout(translator)
    try:
        if timeout is None:
            result = await coro
        else:
            # In this task (a first step's winds run on its thread): a wind
            # that outlived the deadline there still answers ETIMEDOUT.
            async with asyncio.timeout(timeout) as deadline:
                result = await coro
            if deadline.expired() or deadline.when() <= asyncio.get_running_loop().time():
                raise asyncio.TimeoutError
    except asyncio.TimeoutError:
        log.error("%s_fop did not finish within async-timeout %ss; answered ETIMEDOUT", fop, timeout)
        _give_up(frame, errno.ETIMEDOUT)
    except asyncio.CancelledError:
        if translator in _shut_down:
            log.warning("%s_fop was cancelled: the translator is shut down; answered EIO", fop)
            _give_up(frame, errno.EIO)
        else:
            log.error("%s_fop was cancelled; answered ETIMEDOUT", fop)
            _give_up(frame, errno.ETIMEDOUT)
    except OSError as e:
        if e.errno and e.errno > 0:
            _give_up(frame, e.errno)
        else:
            log.error("%s_fop raised; the request is answered EIO.\n%s", fop, traceback.format_exc().rstrip())
            _give_up(frame, errno.EIO)
    except BaseException:
        log.error("%s_fop raised; the request is answered EIO.\n%s", fop, traceback.format_exc().rstrip())
        _give_up(frame, errno.EIO)
    else:
        _answer(frame, result, log)


def _answer(frame, result, log):
    if frame.answered:
        return  # the coroutine answered itself (frame.unwind / frame.error)
    try:
        if isinstance(result, Reply):
            if result.fop != frame.fop:
                raise TypeError(f"{frame.fop}_fop returned a {result.fop} reply")
            frame.unwind(result.op_ret, result.op_errno, *result.args)
        elif isinstance(result, tuple):
            frame.unwind(*result)
        elif result is None:
            log.warning(
                "%s_fop returned without answering; answered EIO. Return the reply, "
                "or call frame.unwind/frame.error.",
                frame.fop,
            )
            _give_up(frame, errno.EIO)
        else:
            raise TypeError(f"{frame.fop}_fop returned {type(result).__name__}; return a glupy.Reply or None")
    except Exception:
        log.error("answering %s failed; answered EIO.\n%s", frame.fop, traceback.format_exc().rstrip())
        _give_up(frame, errno.EIO)


logging.getLogger(__name__).addHandler(logging.NullHandler())
