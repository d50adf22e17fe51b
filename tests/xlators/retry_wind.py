"""A callback that winds its frame again (a retry): a lookup of "retry-N"
is wound N more times from lookup_cbk before its reply goes up. Every
wind's reply comes back inline (posix is right below): a retry chain must
not nest a level deeper per retry."""
import errno
import threading

import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name.startswith("retry-"):
            frame.local = [int(name.split("-")[1]), loc, xdata]
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        local = frame.local
        if local is not None and local[0] > 0:
            local[0] -= 1
            frame.wind(local[1], local[2])
            return
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    # fstat: a sync fop whose callback is a coroutine that winds the frame
    # again and awaits it. Its reply comes back inline, during the first
    # step's wind, from inside the job that runs this callback: the await
    # must go straight on, on this thread (not on the loop's, later).
    def fstat_fop(self, frame, this, fd, xdata):
        frame.local = (fd, xdata)
        frame.wind(fd, xdata)

    async def fstat_cbk(self, frame, cookie, this, op_ret, op_errno, buf, xdata):
        fd, wound_xdata = frame.local
        reply = await frame.wind(fd, wound_xdata)
        if threading.current_thread().name == "glupy-asyncio":
            return reply.replace(op_ret=-1, op_errno=errno.EXDEV)  # went to the loop
        return reply
