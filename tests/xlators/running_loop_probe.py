"""A sync translator that notes which asyncio loop is running on its thread
in each stat_fop and stat_cbk. Below an async translator's first step
(src/step.rs keeps the glupy loop set on the thread through a wind), a
translator's method sees the loop that ran before that step: none on a
GlusterFS thread. getxattr ``user.probe.loops`` answers what it saw."""

import asyncio
import threading

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.seen = set()
        self.lock = threading.Lock()

    def note(self, where):
        loop = asyncio._get_running_loop()
        name = "none" if loop is None else "glupy" if loop is glupy.loop() else "other"
        with self.lock:
            self.seen.add(f"{where}:{name}")

    def stat_fop(self, frame, this, loc, xdata):
        self.note("fop")
        frame.wind(loc, xdata)

    def stat_cbk(self, frame, cookie, this, op_ret, op_errno, buf, xdata):
        self.note("cbk")
        frame.unwind(op_ret, op_errno, buf, xdata)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name != "user.probe.loops":
            frame.wind(loc, name, xdata)
            return
        with self.lock:
            data = ",".join(sorted(self.seen)).encode()
        frame.unwind(len(data), 0, glupy.Dict({name: data}), None)
