"""Hostile async def fops whose first step runs on the calling thread
(src/step.rs), from an independent review. getxattr ``user.hs.<case>`` picks the case; the
reply's value says what the coroutine saw. Other getxattrs, and lookups,
go on synchronously."""

import asyncio
import contextvars
import errno
import gc
import threading
import weakref

import glupy

VAR = contextvars.ContextVar("hostile_var", default="unset")


def text(name, value):
    data = value.encode()
    return glupy.Reply("getxattr", len(data), 0, (glupy.Dict({name: data}), None))


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.factory_made = weakref.WeakSet()
        self.gc_armed = False
        self.gc_calls = {"loop": 0, "worker": 0, "errors": []}
        self.gc_ran = []

    def getxattr_fop(self, frame, this, loc, name, xdata):
        name = name or ""
        if name.startswith("user.sync."):  # set-up, synchronously
            what = name[len("user.sync."):]
            value = getattr(self, "sync_" + what)()
            data = value.encode()
            frame.unwind(len(data), 0, glupy.Dict({name: data}), None)
            return None
        if not name.startswith("user.hs."):
            frame.wind(loc, name, xdata)
            return None
        case = name[len("user.hs."):]
        if case == "gc_step":
            self.gc_armed = True  # the gc callback calls call_soon from now
        return getattr(self, "case_" + case)(frame, loc, name)

    # -- synchronous set-up -------------------------------------------------

    def sync_debug_on(self):
        glupy.loop().set_debug(True)  # the first step then submits every coroutine
        return "ok"

    def sync_debug_off(self):
        glupy.loop().set_debug(False)
        return "ok"

    def sync_factory_on(self):
        def factory(loop, coro, **kwargs):
            task = asyncio.Task(coro, loop=loop, **kwargs)
            self.factory_made.add(task)
            return task

        glupy.loop().set_task_factory(factory)
        return "ok"

    def sync_factory_off(self):
        glupy.loop().set_task_factory(None)
        return "ok"

    def sync_gc_on(self):
        if getattr(self, "_gc_callback", None) is not None:
            return "ok"  # (gfapi asks twice: the size, then the value)
        loop = glupy.loop()

        def noted():
            self.gc_ran.append(1)

        def callback(phase, info):
            if phase != "start" or not self.gc_armed:
                return
            if threading.current_thread().name == "glupy-asyncio":
                return
            try:
                loop.call_soon(noted)
                self.gc_calls["worker"] += 1
            except BaseException as e:  # noqa: BLE001
                self.gc_calls["errors"].append(repr(e))

        self._gc_callback = callback
        gc.callbacks.append(callback)
        self._threshold = gc.get_threshold()
        gc.set_threshold(1)
        return "ok"

    def sync_gc_off(self):
        self.gc_armed = False
        if self._gc_callback is not None:
            gc.callbacks.remove(self._gc_callback)
            gc.set_threshold(*self._threshold)
            self._gc_callback = None
        return f"calls={self.gc_calls['worker']} ran={len(self.gc_ran)} errors={self.gc_calls['errors']}"

    # -- coroutines ---------------------------------------------------------

    async def case_plain(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        return text(name, "plain")

    async def case_timeout_block(self, frame, loc, name):
        """asyncio.timeout around a wind whose child is slow on this very
        thread (nap_child below sleeps in its getxattr_fop). In asyncio the
        block either finishes or raises TimeoutError at its end: either way
        the coroutine's own answer goes up."""
        try:
            async with asyncio.timeout(0.05):
                await frame.wind(loc, "user.nap", None)
        except TimeoutError:
            return text(name, "timed-out")
        return text(name, "finished")

    async def case_timeout_block_then_sleep(self, frame, loc, name):
        try:
            async with asyncio.timeout(0.05):
                await frame.wind(loc, "user.nap", None)
        except TimeoutError:
            return text(name, "timed-out")
        await asyncio.sleep(0)
        return text(name, "finished")

    async def case_debug_in_step(self, frame, loc, name):
        """Debug mode turned on in a first step: asyncio itself lets a task
        do so and go on."""
        asyncio.get_running_loop().set_debug(True)
        await asyncio.sleep(0)
        return text(name, "ok")

    async def case_factory(self, frame, loc, name):
        return text(name, str(asyncio.current_task() in self.factory_made))

    async def case_gc_step(self, frame, loc, name):
        """Where its step ran: the calling thread, unless the gc callback's
        call_soon was taken for the task's own step."""
        self.gc_armed = False
        return text(name, threading.current_thread().name)

    async def case_ctxvar(self, frame, loc, name):
        before = VAR.get()
        VAR.set("first")
        await frame.wind_fop("stat", loc, None)
        mid = VAR.get()
        await asyncio.sleep(0)
        return text(name, f"{before},{mid},{VAR.get()}")

    async def case_keyboard(self, frame, loc, name):
        await frame.wind_fop("stat", loc, None)
        raise KeyboardInterrupt("review_b")

    async def case_genexit(self, frame, loc, name):
        raise GeneratorExit

    async def case_cancel_return(self, frame, loc, name):
        asyncio.current_task().cancel()
        return text(name, "returned")

    async def case_unwind_and_return(self, frame, loc, name):
        r = text(name, "unwound")
        frame.unwind(r.op_ret, r.op_errno, *r.args)
        return text(name, "returned")

    async def case_other_fop_reply(self, frame, loc, name):
        return await frame.wind_fop("stat", loc, None)

    async def case_never_await(self, frame, loc, name):
        frame.wind_fop("stat", loc, None)
        return text(name, "ok")

    async def case_await_twice(self, frame, loc, name):
        fut = frame.wind_fop("stat", loc, None)
        a = await fut
        b = await fut
        return text(name, str(a is b))

    async def case_where(self, frame, loc, name):
        return text(name, threading.current_thread().name)

    async def case_genexit_kept(self, frame, loc, name):
        """Raises GeneratorExit (not closed by anyone) while the translator
        keeps the frame (a list of recent frames, say)."""
        self.__dict__.setdefault("kept_frames", []).append(frame)
        raise GeneratorExit
