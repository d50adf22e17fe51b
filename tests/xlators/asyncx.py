"""async def fop methods: awaits winds, answers by returning the reply."""
import asyncio
import errno

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.missing = set()
        self.napping = 0  # coroutines asleep in user.glupy.nap

    async def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name in self.missing:
            raise glupy.FopError(errno.ENOENT)
        if name == "aboom":
            raise RuntimeError("boom in a coroutine")
        if name == "noanswer":
            return None
        if name == "slow":
            await asyncio.sleep(30)  # longer than the test's async-timeout
        reply = await frame.wind(loc, xdata)
        if reply.op_ret < 0 and reply.op_errno == errno.ENOENT and name.startswith("gone-"):
            self.missing.add(name)
        return reply

    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.glupy.two":
            # Two winds at once: a stat and a getxattr of another name.
            st, gx = await asyncio.gather(frame.wind_fop("stat", loc, None), frame.wind(loc, "user.x", xdata))
            found = gx.dict["user.x"].decode() if gx.op_ret >= 0 else glupy.errno_name(gx.op_errno)
            value = f"size={st.buf.st_size} x={found}".encode()
            return glupy.Reply("getxattr", len(value), 0, (glupy.Dict({name: value}), None))
        if name == "user.glupy.napping":
            value = str(self.napping).encode()
            return glupy.Reply("getxattr", len(value), 0, (glupy.Dict({name: value}), None))
        if name == "user.glupy.nap":
            self.napping += 1  # only the loop's thread runs coroutines: no lock
            try:
                await asyncio.sleep(2)
            finally:
                self.napping -= 1
            value = b"rested"
            return glupy.Reply("getxattr", len(value), 0, (glupy.Dict({name: value}), None))
        reply = await frame.wind(loc, name, xdata)
        return reply

    def stat_fop(self, frame, this, loc, xdata):  # a plain method beside the coroutines
        frame.wind(loc, xdata)
