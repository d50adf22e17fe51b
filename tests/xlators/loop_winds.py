"""Requests of sync methods that a coroutine finishes: a truncate of /q... is
kept by truncate_fop; getxattr ``user.release`` (a coroutine, on the event
loop after its first await) winds the kept truncates, ``user.fail`` answers
them EROFS. GlusterFS's code (the wind below, the unwind above) must not run
on the loop's thread: truncate_cbk notes the thread it runs on (the wind's,
when the child answers inline), and getxattr ``user.seen`` answers those
names. ``user.release`` and ``user.fail`` answer how many requests they
finished so far, in four digits (a client asks for the size first)."""

import asyncio
import errno
import threading

import glupy


def here():
    """glupy-asyncio on the loop's thread, else the thread's name as the
    system knows it (glfs_iotwr000, glupy-py3, ...)."""
    if threading.current_thread().name == "glupy-asyncio":
        return "glupy-asyncio"
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
        return comm.read().strip()


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.kept, self.seen = [], []
        self.finished = {"user.release": 0, "user.fail": 0}
        self.lock = threading.Lock()

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

    def count(self, name, more):
        with self.lock:
            self.finished[name] += more
            return self.text(name, f"{self.finished[name]:04d}")

    @staticmethod
    def text(name, value):
        data = value.encode()
        return glupy.Reply("getxattr", len(data), 0, (glupy.Dict({name: data}), None))

    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.release":
            await asyncio.sleep(0)  # on the loop's thread from here
            kept = self.take_kept()
            for f, args in kept:
                f.wind(*args)
            return self.count(name, len(kept))
        if name == "user.fail":
            await asyncio.sleep(0)
            kept = self.take_kept()
            for f, _ in kept:
                f.error(errno.EROFS)
            return self.count(name, len(kept))
        if name == "user.seen":
            with self.lock:
                return self.text(name, ",".join(self.seen))
        return await frame.wind(loc, name, xdata)
