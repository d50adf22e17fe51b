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
below io-threads answers inline) is kept by the callback entry and set as
the result of the future the wind returns (src/awaited.rs), so ``await``
goes straight on; one that comes later resolves that future through the
loop. When the coroutine
waits for anything not yet done, the step ends there and the loop thread
runs the rest of the task, as for any task. If the turn is taken (the loop
is running something, or this thread is already inside a first step), the
coroutine is submitted to the loop instead, as before. Answers given
during the step are performed by the host once the step is over and the
turn given back (src/frame.rs), never on the loop. The first step itself
(the turn, the task, the pause and resume around a wind, the wind's
reply and future) is the host's, in Rust (src/step.rs): as Python functions they
cost more than a sync fop does. Without an async-timeout the task runs the
coroutine itself, and its end is answered by the host (a Reply) or by
_settled; with one, _run wraps it. Every task of a translator starts from a
copy of that translator's context (task_context: glupy's log id set), not
from the calling thread's, and is named after its fop.
"""

import asyncio
import contextvars
import errno
import logging
import selectors
import threading
import traceback
import weakref

from . import FOPS

_loop = None
# The translator a coroutine works for: lines of loggers other than its own
# (a module's logger, print) logged there go to that translator's log.
current_log_id = contextvars.ContextVar("glupy_log_id", default=None)
_loop_lock = threading.Lock()
LOOP_STACK_BYTES = 64 << 20


try:  # the host's (src/reply_fields.rs): made and read without a Python call
    from ._glupy import ReplyFields as _ReplyFields
except ImportError:  # outside GlusterFS

    class _ReplyFields:  # type: ignore[no-redef]
        __slots__ = ("fop", "op_ret", "op_errno", "args")


class Reply(_ReplyFields):
    """A callback's arguments: ``op_ret``, ``op_errno``, ``args`` (the rest,
    in the callback's order) and each of them by name (``reply.inode``)."""

    # The host makes a wind's Reply without __init__, setting the fields
    # itself (src/reply_fields.rs, make): keep the two in step.
    __slots__ = ()

    def __init__(self, fop, op_ret, op_errno, args):
        self.fop, self.op_ret, self.op_errno, self.args = fop, op_ret, op_errno, tuple(args)

    def __reduce__(self):
        return type(self), (self.fop, self.op_ret, self.op_errno, self.args)

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


try:  # the host's turn (src/turn.rs): a first step takes it without a Python call
    from ._glupy import Turn as _Turn
except ImportError:  # outside GlusterFS
    _Turn = threading.Lock

try:  # (apart: a host build without it still has its own turn)
    from ._glupy import _runs_a_first_step
except ImportError:  # outside GlusterFS, or a host from before it

    def _runs_a_first_step():
        return False


class _Loop(asyncio.SelectorEventLoop):
    """The glupy event loop: a selector loop with a turn (see the module's
    docstring). From the first first step on, the host shadows call_soon
    with an attribute of this object (src/step.rs, capture_call_soon) that
    keeps the step of a task a first step makes and hands any other call to
    the method."""

    def __init__(self):
        self.turn = _Turn()
        super().__init__(_TurnSelector(self.turn))

    def _check_thread(self):
        # (Debug mode only.) A first step runs on the thread that called its
        # fop, holding the loop's turn: for that time this thread is the
        # loop's runner, as the loop's own thread is otherwise.
        if not _runs_a_first_step():
            super()._check_thread()

    def set_debug(self, enabled):
        super().set_debug(enabled)
        # Every Future and Task asks get_debug when made: a C callable,
        # not a Python method call per coroutine and per wind.
        self.get_debug = (True).__bool__ if enabled else (False).__bool__


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


try:  # the host never runs GlusterFS's code on the loop's thread (src/step.rs)
    from ._glupy import _serving_the_loop
except ImportError:  # outside GlusterFS
    _serving_the_loop = None


def _serve(new, ready):
    if _serving_the_loop is not None:
        _serving_the_loop()
    new.turn.acquire()  # held whenever this thread is not waiting in select
    asyncio.set_event_loop(new)
    new.call_soon(ready.set)
    while not new.is_closed():  # (closed by hand: nothing left to serve)
        try:
            new.run_forever()
        except BaseException:  # noqa: BLE001
            # A coroutine that raised SystemExit or KeyboardInterrupt: asyncio
            # raises them out of run_forever (the task keeps them, and its end
            # answers its request EIO). The loop must go on serving every
            # translator of the process; this thread still holds the turn.
            logging.getLogger("glupy").error(
                "a coroutine raised out of glupy's event loop; it goes on.\n%s", traceback.format_exc().rstrip()
            )


def new_future():
    """The awaitable frame.wind returns in a coroutine, off a first step
    (a first step's is made by the host, src/step.rs)."""
    try:
        return asyncio.get_running_loop().create_future()
    except RuntimeError:
        raise RuntimeError("an async frame is wound from its coroutine (on the glupy event loop)") from None


def resolve(future, reply):
    """Hands a reply to a coroutine that is not in its first step."""
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


# The tasks running for each translator object, cancelled at its fini.
# Weakly: a task is kept alive by what it waits for (the loop's timer, a
# wind's future the host will resolve, a future the translator keeps), and
# one that waits for something nothing holds can never go on. The collector
# then frees it (asyncio logs "Task was destroyed but it is pending!"), and
# its request is answered as a dropped frame's is, instead of never.
_running: dict = {}
_running_lock = threading.Lock()
# The translator objects cancel_all has run for, by id and compared by
# identity (a translator class may define __eq__ or leave itself unhashable).
_shut_down: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _is_shut_down(translator):
    return _shut_down.get(id(translator)) is translator


def task_context(translator):
    """The contextvars a translator's coroutines start from (each task gets
    a copy): its log id set, so that lines of other loggers logged in the
    coroutine go to that translator's log."""
    context = contextvars.Context()
    context.run(current_log_id.set, getattr(translator.log, "glupy_log_id", None))
    return context


def submit(coro, frame, translator):
    """Runs the coroutine as a task of the loop (its first step could not
    run on the calling thread)."""
    loop().call_soon_threadsafe(_start, coro, frame, translator)


def _start(coro, frame, translator):
    """On the loop: the submitted coroutine's task (not held here, see
    _running)."""
    task = asyncio.get_running_loop().create_task(
        _run(coro, frame, translator), name=frame.fop, context=task_context(translator))
    _track(task, translator)


def _track(task, translator):
    """Keeps a running task (weakly) for cancel_all. One that comes after
    cancel_all (a submitted coroutine that starts late, a first step that
    was still in a wind then) is cancelled at once instead."""
    key = id(translator)
    with _running_lock:
        shut_down = _is_shut_down(translator)
        if not shut_down:
            _running.setdefault(key, weakref.WeakSet()).add(task)
    if shut_down:
        task.get_loop().call_soon_threadsafe(task.cancel)
        return

    def _done(t):
        with _running_lock:
            tasks = _running.get(key)
            if tasks is not None:
                tasks.discard(t)
                if not tasks:
                    del _running[key]

    task.add_done_callback(_done)


def cancel_all(translator):
    """Cancels the translator's coroutines (at its fini); returns how many.
    Their requests are answered when the cancellation reaches them, or
    by the host right after, whichever comes first."""
    with _running_lock:
        _shut_down[id(translator)] = translator
        tasks = list(_running.pop(id(translator), ()))
    for task in tasks:  # cancelled on their loop
        task.get_loop().call_soon_threadsafe(task.cancel)
    return len(tasks)


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
    """A coroutine submitted to the loop, or one with an async-timeout:
    runs it and answers its request."""
    current_log_id.set(getattr(translator.log, "glupy_log_id", None))  # in this task's own context
    timeout = _timeout(translator)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    # The request is answered ETIMEDOUT at the deadline itself, whatever the
    # coroutine does then (it may catch its cancellation and go on).
    expiry = None if timeout is None else loop.call_later(timeout, _expired, frame, translator, timeout)
    try:
        if timeout is None:
            result = await coro
        else:
            # In this task (a first step's winds run on its thread): a wind
            # that outlived the deadline there still answers ETIMEDOUT.
            async with asyncio.timeout(timeout) as deadline:
                result = await coro
            if deadline.expired() or deadline.when() <= loop.time():
                raise asyncio.TimeoutError
    except BaseException as e:
        if isinstance(e, GeneratorExit) and asyncio.current_task(loop) is not task:
            # Thrown in by the collector closing this coroutine (it waited
            # for something nothing holds; no step of its task runs): its
            # frame, dropped with it, answers the request (EIO, logged).
            # Raised by the coroutine in a step, it is answered as any
            # exception is (a frame the translator keeps would never answer).
            raise
        try:
            _failed(frame, translator, e, timeout)
        except BaseException as again:
            _last_resort(frame, translator, again)
    else:
        _answer(frame, result, translator.log)
    finally:
        if expiry is not None:
            expiry.cancel()


def _expired(frame, translator, timeout):
    """The async-timeout passed (on the loop): answered now, once; the
    coroutine's cancellation comes from `asyncio.timeout` in `_run`."""
    if not frame.answered:
        _timed_out(frame, translator, timeout)


def _timed_out(frame, translator, timeout):
    translator.log.error("%s_fop did not finish within async-timeout %ss; answered ETIMEDOUT",
                         frame.fop, timeout)
    _give_up(frame, errno.ETIMEDOUT)


def _settled(frame, translator, task):
    """A task that runs the coroutine itself (no async-timeout; src/step.rs)
    ended: answers its request as _run does."""
    try:
        if task.cancelled():
            try:
                task.result()
            except asyncio.CancelledError as e:
                _failed(frame, translator, e, None)
            return
        exc = task.exception()
        if exc is not None:
            _failed(frame, translator, exc, None)
        else:
            _answer(frame, task.result(), translator.log)
    except BaseException as e:
        _last_resort(frame, translator, e)


def _last_resort(frame, translator, exc):
    """Answering the request failed itself (an exception whose errno or
    text cannot be read, say): EIO, so that it is not left waiting."""
    try:
        trace = "".join(traceback.format_exception(exc)).rstrip()
    except BaseException:
        trace = type(exc).__name__
    try:
        translator.log.error("%s_fop: answering its outcome failed; answered EIO.\n%s",
                             frame.fop, trace)
    finally:
        try:
            _give_up(frame, errno.EIO)
        except BaseException:  # answered already: nothing is left to answer
            pass


def _errno(exc):
    """An OSError's errno if a reply can carry it (a positive C int)."""
    try:
        code = exc.errno
    except BaseException:
        return None
    if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 2**31:
        return code
    return None


def _failed(frame, translator, exc, timeout):
    """The coroutine raised `exc` (or was cancelled, or timed out)."""
    log, fop = translator.log, frame.fop
    if frame.answered:  # at its async-timeout, or by the coroutine before it raised
        if not isinstance(exc, (asyncio.CancelledError, asyncio.TimeoutError)):
            trace = "".join(traceback.format_exception(exc)).rstrip()
            log.warning("%s_fop raised after its request was answered; ignored.\n%s", fop, trace)
        return
    if isinstance(exc, asyncio.TimeoutError):
        if timeout is not None:
            _timed_out(frame, translator, timeout)
        else:
            log.error("%s_fop raised TimeoutError; answered ETIMEDOUT", fop)
            _give_up(frame, errno.ETIMEDOUT)
    elif isinstance(exc, asyncio.CancelledError):
        if _is_shut_down(translator):
            log.warning("%s_fop was cancelled: the translator is shut down; answered EIO", fop)
            _give_up(frame, errno.EIO)
        else:
            log.error("%s_fop was cancelled; answered ETIMEDOUT", fop)
            _give_up(frame, errno.ETIMEDOUT)
    elif isinstance(exc, OSError) and (code := _errno(exc)):
        _give_up(frame, code)
    else:
        trace = "".join(traceback.format_exception(exc)).rstrip()
        log.error("%s_fop raised; the request is answered EIO.\n%s", fop, trace)
        _give_up(frame, errno.EIO)


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
