"""getxattr user.loop.wind and user.loop.answer: a coroutine that, after a
sleep (so on the event loop, not in its first step), winds (a Python
thread of the host's makes the wind) or answers ENODATA (a Python thread
performs the answer). Just before, it creates the file named by option
`marker` plus "." and the last word of the name. Other getxattrs pass
through."""
import asyncio
import errno

import glupy


class xlator(glupy.Translator):
    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if name in ("user.loop.wind", "user.loop.answer"):
            await asyncio.sleep(0.2)
            open(self.options["marker"] + "." + name.rsplit(".", 1)[1], "w").close()
            if name == "user.loop.answer":
                raise glupy.FopError(errno.ENODATA)
        return await frame.wind(loc, name, xdata)
