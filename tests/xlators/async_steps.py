"""async def fops whose first step runs on the calling thread (the fast
path: src/step.rs) and then do what may take them
off it: wind twice, sleep between winds, raise after a wind, answer early
and go on, get cancelled or time out. getxattr ``user.step.<case>`` picks
the case; the reply's value says what the coroutine saw.

It also finishes requests of sync methods from a coroutine: a truncate of
/q... is kept by truncate_fop; ``user.step.release`` (on the event loop after
its first await) winds the kept truncates, ``user.step.fail`` answers them
EROFS; both answer how many requests they finished so far, in four digits (a
client asks for the size first). GlusterFS's code (the wind below, the unwind
above) must not run on the loop's thread: truncate_cbk notes the thread it
runs on (the wind's, when the child answers inline), and
``user.step.seen`` answers those names."""

import asyncio
import copy
import errno
import gc
import pickle
import threading
import time

import glupy
from glupy import _aio


def here():
    """glupy-asyncio on the loop's thread, else the thread's name as the
    system knows it (glfs_iotwr000, glupy-py3, ...)."""
    if threading.current_thread().name == "glupy-asyncio":
        return "glupy-asyncio"
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
        return comm.read().strip()


def turn_checks():
    """The loop's turn (glupy._glupy.Turn) behaves as threading.Lock does
    where _aio uses it: "ok", or what went wrong."""
    import time
    from glupy._glupy import Turn

    turn, problems = Turn(), []

    def check(what, ok):
        if not ok:
            problems.append(what)

    check("a new turn is free", turn.acquire(False) and turn.locked())
    check("a held turn is not taken without waiting", turn.acquire(False) is False)
    started = time.monotonic()
    check("a held turn is not taken within a timeout", turn.acquire(True, 0.05) is False)
    check("the timeout is waited", time.monotonic() - started >= 0.045)
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(turn.acquire()))
    waiter.start()
    time.sleep(0.05)
    check("a waiter waits", not taken)
    turn.release()  # given back by another thread than the waiter's
    waiter.join(5)
    check("a waiter is woken when the turn is given back", taken == [True])
    turn.release()
    try:
        turn.release()
        problems.append("giving back a free turn raises")
    except RuntimeError:
        pass
    for args in ((False, 1.0), (True, -2.0)):
        try:
            turn.acquire(*args)
            problems.append(f"acquire{args} raises ValueError")
        except ValueError:
            pass
    with turn:
        check("with takes it", turn.locked())
    check("with gives it back", not turn.locked())
    return "ok" if not problems else "; ".join(problems)


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.kept, self.seen = [], []
        self.finished = {"release": 0, "fail": 0}
        self.lock = threading.Lock()

    def lookup_fop(self, frame, this, loc, xdata):
        if not (loc.path or "").startswith("/f"):
            # gfapi's own lookups (at init and fini) go on synchronously,
            # as its getxattrs: a broken first step fails the tests' calls
            # on /f..., never the client's setup or teardown.
            frame.wind(loc, xdata)
            return None
        return self.lookup_async(frame, loc, xdata)  # a coroutine: async

    async def lookup_async(self, frame, loc, xdata):
        return await frame.wind(loc, xdata)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.turn":  # the host's Turn, alone (a sync answer)
            data = turn_checks().encode()
            frame.unwind(len(data), 0, glupy.Dict({name: data}), None)
            return None
        if name in ("user.debug.on", "user.debug.off"):  # the loop's debug mode
            glupy.loop().set_debug(name == "user.debug.on")
            frame.unwind(2, 0, glupy.Dict({name: b"ok"}), None)
            return None
        if not (name or "").startswith("user.step."):
            frame.wind(loc, name, xdata)  # gfapi's own (at init): synchronous
            return None
        case = name[len("user.step."):]
        return getattr(self, "case_" + case)(frame, loc, name)  # a coroutine: async

    @staticmethod
    def text(name, value):
        data = value.encode()
        return glupy.Reply("getxattr", len(data), 0, (glupy.Dict({name: data}), None))

    async def case_changed_reply(self, frame, loc, name):
        # A wind's reply, changed in place and returned: what goes up is
        # what it says now (posix answers the absent name ENODATA).
        reply = await frame.wind(loc, "user.absent", None)
        if type(reply) is not glupy.Reply or reply.op_errno != errno.ENODATA:
            return self.text(name, f"unexpected {reply!r}")
        reply.op_errno = errno.EROFS
        return reply

    async def case_replaced_reply(self, frame, loc, name):
        reply = await frame.wind(loc, "user.absent", None)
        return reply.replace(op_errno=errno.EXDEV)

    async def case_subclass_reply(self, frame, loc, name):
        class Mine(glupy.Reply):
            __slots__ = ()

        data = b"mine"
        return Mine("getxattr", len(data), 0, [glupy.Dict({name: data}), None])

    async def case_subclass_init(self, frame, loc, name):
        # A subclass with a constructor of its own, calling Reply's.
        class Refusal(glupy.Reply):
            def __init__(self, errno_, note):
                super().__init__("getxattr", -1, errno_, (None, None))
                self.note = note

        return Refusal(errno.EROFS, "read-only")

    async def case_subclass_property(self, frame, loc, name):
        # A subclass may compute a field: the answer is what it says.
        class Computed(glupy.Reply):
            __slots__ = ()

            @property
            def op_errno(self):
                return errno.EXDEV

            @op_errno.setter
            def op_errno(self, value):
                pass  # Reply.__init__ sets it; this one is computed

        return Computed("getxattr", -1, 0, (None, None))

    async def case_reply_fields(self, frame, loc, name):
        """What a Reply is, in words: "ok" or what went wrong."""
        problems = []

        def check(what, ok):
            if not ok:
                problems.append(what)

        value = glupy.Dict({name: b"v"})
        made = glupy.Reply(fop="getxattr", op_ret=1, op_errno=0, args=[value, None])
        check("args become a tuple", type(made.args) is tuple and made.args[0] is value)
        check("args are read by name", made.dict is value and made.xdata is None)
        check("the fields are read", (made.fop, made.op_ret, made.op_errno) == ("getxattr", 1, 0))
        try:
            made.inode
            problems.append("an unknown name raises")
        except AttributeError as e:
            check("an unknown name says what there is", "dict, xdata" in str(e))
        try:
            made.other = 1
            problems.append("no new attributes")
        except AttributeError:
            pass
        twin = copy.copy(made)
        check("a copy has the fields", (twin.fop, twin.op_ret, twin.args) == ("getxattr", 1, made.args))
        check("a copy is a Reply", type(twin) is glupy.Reply and twin is not made)
        check("repr", repr(made) == "<glupy.Reply getxattr op_ret=1 op_errno=0>")
        try:
            glupy.Reply("getxattr", 0, 0)
            problems.append("args are required")
        except TypeError:
            pass
        try:
            glupy.Reply("getxattr", 0, 0, 5)
            problems.append("args must be iterable")
        except TypeError:
            pass
        plain = glupy.Reply("getxattr", -1, errno.ENODATA, (None, None))
        back = pickle.loads(pickle.dumps(plain))
        check("a Reply pickles", type(back) is glupy.Reply
              and (back.fop, back.op_ret, back.op_errno, back.args) == ("getxattr", -1, errno.ENODATA, (None, None)))
        made.op_ret = -1
        check("a field is set", made.op_ret == -1)
        # What a first step's wind returns is an asyncio future, done when
        # the reply came back during the wind (posix answers inline).
        awaitable = frame.wind(loc, "user.absent", None)
        check("a wind returns a future", asyncio.isfuture(awaitable) and awaitable.done())
        wound = await awaitable
        check("a wind's reply is a Reply", type(wound) is glupy.Reply and type(wound.args) is tuple)
        check("a wind's reply names its fop", wound.fop == "getxattr")
        check("a wind's future keeps its result", awaitable.result() is wound)
        return self.text(name, "ok" if not problems else "; ".join(problems))

    async def case_twice(self, frame, loc, name):
        first = await frame.wind_fop("stat", loc, None)
        second = await frame.wind_fop("stat", loc, None)
        return self.text(name, f"{first.buf.st_size},{second.buf.st_size}")

    async def case_sleep_between(self, frame, loc, name):
        first = await frame.wind_fop("stat", loc, None)
        await asyncio.sleep(0.01)
        second = await frame.wind_fop("stat", loc, None)
        return self.text(name, f"{first.buf.st_size},{second.buf.st_size}")

    async def case_gather(self, frame, loc, name):
        a, b = await asyncio.gather(frame.wind_fop("stat", loc, None), frame.wind_fop("stat", loc, None))
        return self.text(name, f"{a.buf.st_size},{b.buf.st_size}")

    async def case_raise_after(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        raise RuntimeError("async_steps: raised after a wind")

    async def case_fop_error_after(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        raise glupy.FopError(errno.EROFS)

    async def case_exit_first(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        raise SystemExit("async_steps: SystemExit in the first step")

    async def case_exit_later(self, frame, loc, name):
        await asyncio.sleep(0)  # the rest runs on the loop's thread
        raise SystemExit("async_steps: SystemExit on the loop")

    async def case_odd_errno_later(self, frame, loc, name):
        """An OSError whose errno no reply can carry (a str; one too big
        for a C int), raised off the first step: answered EIO at once, not
        when the garbage collector drops the frame."""
        await asyncio.sleep(0)
        error = OSError("an odd errno")
        error.errno = "abc" if loc.path.endswith("f") else 10**30
        raise error

    async def case_swallow_cancel(self, frame, loc, name):
        """Catches its cancellation (by async-timeout) and sleeps on: the
        request must still be answered ETIMEDOUT at the deadline."""
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(30)
        return self.text(name, "late")

    async def case_orphan(self, frame, loc, name):
        """Awaits a future nothing else holds: the task can never go on. The
        collector frees it, and its request must then be answered (EIO) as
        a dropped frame's is, not left waiting for ever."""
        await asyncio.get_running_loop().create_future()

    async def case_hog(self, frame, loc, name):
        """Keeps the loop's thread (and so its turn) 1.5 s: a first step
        meanwhile cannot take the turn, and its coroutine goes to the loop."""
        await asyncio.sleep(0)
        time.sleep(1.5)
        return self.text(name, "hogged")

    async def case_collect(self, frame, loc, name):
        gc.collect()
        return self.text(name, "collected")

    async def case_timeout(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        await asyncio.sleep(30)  # longer than the instance's async-timeout

    async def case_cancel(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        asyncio.current_task().cancel()
        await asyncio.sleep(5)

    async def case_answer_then_sleep(self, frame, loc, name):
        reply = self.text(name, "early")
        frame.unwind(reply.op_ret, reply.op_errno, *reply.args)
        await asyncio.sleep(0.01)
        await frame.wind_fop("stat", loc, None)  # answered: refused
        return None

    async def case_pause_fails(self, frame, loc, name):
        """The host cannot take the first step off the loop for its wind:
        here the loop's current task is not this one (as inside an eager
        sub-task of Python 3.12+). The wind raises RuntimeError, and what
        the coroutine answers then must reach the client."""
        if here() == "glupy-asyncio":
            return self.text(name, "on-loop")  # no first step: no pause
        loop, me = asyncio.get_running_loop(), asyncio.current_task()
        stand_in = loop.create_future()  # any object will do as the current task
        asyncio.tasks._leave_task(loop, me)
        asyncio.tasks._enter_task(loop, stand_in)
        try:
            await frame.wind_fop("stat", loc, None)
        except RuntimeError:
            raise glupy.FopError(errno.EPERM) from None
        finally:
            asyncio.tasks._leave_task(loop, stand_in)
            asyncio.tasks._enter_task(loop, me)
        return self.text(name, "wound")

    async def case_where(self, frame, loc, name):
        """Threads and asyncio state seen before the first wind, after it,
        and after a sleep: the first step runs on the calling thread as a
        task of the glupy loop, one of asyncio.all_tasks(), the rest on the
        loop's thread."""
        seen = []

        def note():
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            listed = task in asyncio.all_tasks(loop)
            log_id = _aio.current_log_id.get()
            seen.append(f"{here()}|{loop is glupy.loop()}|{task is not None}|{listed}"
                        f"|{log_id is not None}")

        note()
        await frame.wind_fop("stat", loc, None)
        note()
        await asyncio.sleep(0)
        note()
        return self.text(name, ";".join(seen))

    async def case_call_soon(self, frame, loc, name):
        """The loop's call_soon, shadowed by the host (src/step.rs,
        capture_call_soon), called from a first step and from the loop's
        thread: callbacks run with their arguments and context, in order,
        and a task made with create_task runs. Answers what ran."""
        import contextvars

        loop = asyncio.get_running_loop()
        var = contextvars.ContextVar("var", default="unset")
        ran = []

        def note(*args):
            ran.append("-".join(map(str, args)) + ":" + var.get())

        async def child():
            note("task")

        context = contextvars.copy_context()
        context.run(var.set, "set")
        handles = [loop.call_soon(note, 1, 2), loop.call_soon(note, "ctx", context=context),
                   loop.call_soon(note)]
        task = loop.create_task(child())
        await asyncio.sleep(0)  # on the loop's thread from here
        loop.call_soon(note, "loop", 3)
        await task
        await asyncio.sleep(0)
        kinds = {type(h).__name__ for h in handles}
        return self.text(name, ",".join(ran) + ";" + ",".join(sorted(kinds)))

    async def case_registered(self, frame, loc, name):
        """How many references asyncio's registry of tasks holds (a WeakSet:
        each task's goes when the task dies), after a collection."""
        gc.collect()
        registry = next(getattr(asyncio.tasks, n) for n in ("_all_tasks", "_scheduled_tasks")
                        if hasattr(asyncio.tasks, n))
        return self.text(name, str(len(registry.data)))

    async def case_registry_while_iterated(self, frame, loc, name):
        """A task that dies while asyncio's registry is iterated over (as
        asyncio.all_tasks() does) is taken out when the iteration ends, not
        during it; the next task added takes it out at once. Answers how many
        references are pending at each point, and whether the dead task's
        is still in the set after the iteration."""
        registry = next(getattr(asyncio.tasks, n) for n in ("_all_tasks", "_scheduled_tasks")
                        if hasattr(asyncio.tasks, n))

        async def nothing():
            pass

        async def ended_task():
            task = asyncio.get_running_loop().create_task(nothing())
            await task
            return task

        seen = []
        iteration = iter(registry)
        next(iteration)  # this task is listed: the iteration is under way
        task = await ended_task()
        gc.collect()
        dead = next(r for r in registry.data if r() is task)
        del task
        await asyncio.sleep(0)  # the loop's handle that woke us held it
        gc.collect()
        seen.append(len(registry._pending_removals))  # 1: pending while iterated
        iteration.close()
        seen.append(len(registry._pending_removals))  # 0: the iteration's end took it out
        seen.append(dead in registry.data)

        iteration = iter(registry)
        next(iteration)
        task = await ended_task()
        del task
        await asyncio.sleep(0)  # the loop's handle that woke us held it
        gc.collect()
        seen.append(len(registry._pending_removals))  # 1
        added = asyncio.get_running_loop().create_task(nothing())
        seen.append(len(registry._pending_removals))  # 0: taken out by the add
        await added
        iteration.close()
        return self.text(name, ",".join(map(str, seen)))

    # Sync requests a coroutine finishes (see the module's doc).

    def truncate_fop(self, frame, this, loc, offset, xdata):
        if (loc.path or "").startswith("/q"):
            with self.lock:
                self.kept.append((frame, (loc, offset, xdata)))
            return
        frame.wind(loc, offset, xdata)

    def truncate_cbk(self, frame, cookie, this, op_ret, op_errno, prebuf, postbuf, xdata):
        with self.lock:
            self.seen.append(here())
        frame.unwind(op_ret, op_errno, prebuf, postbuf, xdata)

    def take_kept(self):
        with self.lock:
            kept, self.kept = self.kept, []
        return kept

    def count(self, name, case, more):
        with self.lock:
            self.finished[case] += more
            return self.text(name, f"{self.finished[case]:04d}")

    async def case_release(self, frame, loc, name):
        await asyncio.sleep(0)  # on the loop's thread from here
        kept = self.take_kept()
        for f, args in kept:
            f.wind(*args)
        return self.count(name, "release", len(kept))

    async def case_fail(self, frame, loc, name):
        await asyncio.sleep(0)
        kept = self.take_kept()
        for f, _ in kept:
            f.error(errno.EROFS)
        return self.count(name, "fail", len(kept))

    async def case_seen(self, frame, loc, name):
        with self.lock:
            return self.text(name, ",".join(self.seen))
