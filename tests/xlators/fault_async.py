"""async def fop methods that misbehave on purpose: they raise, cancel
themselves, outlive async-timeout while a wind is out, answer twice, wind
with wrong arguments, or (option ``chaos-rate``, seeded by ``chaos-seed``)
do one of these at random for every lookup, stat and getxattr.

getxattr names select the misbehaviour: ``user.fault.<case>``; anything else
is wound. ``user.fault.report`` answers the counters as JSON.
"""

import asyncio
import collections
import errno
import json
import random
import threading

import glupy

CHAOS = ("raise", "cancel", "noanswer", "twice", "wrong_args", "sleep")


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.rate = float(self.options.get("chaos-rate", "0"))
        self.random = random.Random(int(self.options.get("chaos-seed", "1")))
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.violations = []

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def violation(self, text):
        self.log.error("fault VIOLATION %s", text)
        with self.lock:
            self.violations.append(text)

    def pick(self):
        with self.lock:
            if self.rate <= 0 or self.random.random() >= self.rate:
                return None
            return self.random.choice(CHAOS)

    # ------------------------------------------------------------- chaos

    async def lookup_fop(self, frame, this, loc, xdata):
        return await self.misbehave(frame, (loc, xdata))

    async def stat_fop(self, frame, this, loc, xdata):
        return await self.misbehave(frame, (loc, xdata))

    async def misbehave(self, frame, args):
        action = self.pick()
        if action is None:
            return await frame.wind(*args)
        self.count(f"chaos.{action}")
        return await getattr(self, "chaos_" + action)(frame, args)

    async def chaos_raise(self, frame, args):
        reply = await frame.wind(*args)
        raise RuntimeError(f"chaos: a coroutine raises after its wind ({reply.op_ret})")

    async def chaos_cancel(self, frame, args):
        asyncio.current_task().cancel()
        await asyncio.sleep(1)  # cancelled here: answered ETIMEDOUT

    async def chaos_noanswer(self, frame, args):
        await frame.wind(*args)
        return None  # the host answers EIO and says why

    async def chaos_twice(self, frame, args):
        reply = await frame.wind(*args)
        frame.unwind(reply.op_ret, reply.op_errno, *reply.args)
        try:
            frame.unwind(reply.op_ret, reply.op_errno, *reply.args)
        except RuntimeError as error:
            self.log.warning("fault: second unwind refused: %s", error)
            self.count("refused.twice")
        else:
            self.violation("a coroutine's second unwind was accepted")
        return reply  # already answered: the host must not answer again

    async def chaos_wrong_args(self, frame, args):
        try:
            await frame.wind(*args, "one too many")
        except TypeError as error:
            self.log.warning("fault: wrong wind refused: %s", error)
            self.count("refused.wrong_args")
            return await frame.wind(*args)
        self.violation("a wind with an extra argument was accepted")
        return None

    async def chaos_sleep(self, frame, args):
        await asyncio.sleep(self.random.uniform(0, 0.05))
        return await frame.wind(*args)

    # ---------------------------------------------------------- commands

    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if not (name or "").startswith("user.fault."):
            return await frame.wind(loc, name, xdata)
        case = name[len("user.fault."):].replace("-", "_").replace(".", "_")
        self.count(f"case.{case}")
        handler = getattr(self, "case_" + case, None)
        if handler is None:
            raise glupy.FopError(errno.EOPNOTSUPP)
        return await handler(frame, loc, name, xdata)

    @staticmethod
    def text(name, value):
        data = value.encode()
        return glupy.Reply("getxattr", len(data), 0, (glupy.Dict({name: data}), None))

    async def case_report(self, frame, loc, name, xdata):
        with self.lock:
            report = {"counts": dict(self.counts), "violations": list(self.violations)}
        return self.text(name, json.dumps(report))

    async def case_raise(self, frame, loc, name, xdata):
        raise KeyError("a bug in a coroutine")

    async def case_raise_after_wind(self, frame, loc, name, xdata):
        await frame.wind(loc, "user.other", xdata)
        raise ValueError("a bug after the wind returned")

    async def case_fop_error(self, frame, loc, name, xdata):
        await asyncio.sleep(0.01)
        raise glupy.FopError(errno.EROFS)

    async def case_cancel_self(self, frame, loc, name, xdata):
        asyncio.current_task().cancel()
        await asyncio.sleep(5)

    async def case_cancel_wind(self, frame, loc, name, xdata):
        """A wind's awaitable cancelled: its reply still comes back, after
        the coroutine returned; the request is answered exactly once."""
        pending = asyncio.ensure_future(frame.wind(loc, "user.other", xdata))
        await asyncio.sleep(0)
        pending.cancel()
        try:
            await pending
        except asyncio.CancelledError:
            pass
        return self.text(name, "cancelled a wind")

    async def case_timeout_with_wind_out(self, frame, loc, name, xdata):
        # The child (a fault_chaos below) sleeps 1.5 s: longer than async-timeout.
        reply = await frame.wind(loc, "user.fault.sleep.1500", xdata)
        return reply.replace()

    async def case_sleep_past_timeout(self, frame, loc, name, xdata):
        await asyncio.sleep(30)

    async def case_twice(self, frame, loc, name, xdata):
        first = self.text(name, "first")
        frame.unwind(first.op_ret, first.op_errno, *first.args)
        try:
            frame.error(errno.EIO)
        except RuntimeError as error:
            self.log.warning("fault: second answer refused: %s", error)
            self.count("refused.twice")
        else:
            self.violation("second answer from a coroutine accepted")
        return self.text(name, "second")  # ignored: already answered

    async def case_wrong_wind(self, frame, loc, name, xdata):
        try:
            await frame.wind(loc)
        except TypeError as error:
            return self.text(name, f"TypeError: {error}")
        self.violation("a wind with missing arguments was accepted")
        return None

    async def case_wrong_wind_uncaught(self, frame, loc, name, xdata):
        await frame.wind(loc, 42, xdata)

    async def case_wrong_return(self, frame, loc, name, xdata):
        return "not a reply"

    async def case_reply_for_stat(self, frame, loc, name, xdata):
        return glupy.Reply("stat", 0, 0, (glupy.Iatt(), None))

    async def case_blocking_executor(self, frame, loc, name, xdata):
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(None, lambda: "from an executor")
        return self.text(name, value)
