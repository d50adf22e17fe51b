"""Fop methods written with async/await.

An ``async def <fop>_fop`` runs as a coroutine on one asyncio event loop per
process, on a thread of the host's (64 MiB stack). ``await frame.wind(...)``
resumes with the reply (a :class:`Reply`); returning a Reply (or raising)
answers the request. Winds themselves run on the host's Python threads, so
the loop never runs GlusterFS code that may block.
"""

import asyncio
import contextvars
import errno
import logging
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


def loop():
    """The process's event loop, started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            new = asyncio.new_event_loop()
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
_running = {}
_running_lock = threading.Lock()
_shut_down = weakref.WeakSet()


def submit(coro, frame, translator):
    future = asyncio.run_coroutine_threadsafe(_run(coro, frame, translator), loop())
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
        future.cancel()
    return len(futures)


def _timeout(translator):
    try:
        value = float(translator.options.get("async-timeout", 0) or 0)
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
            result = await asyncio.wait_for(coro, timeout)
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
