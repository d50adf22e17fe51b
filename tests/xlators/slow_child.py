"""A child that answers from another thread: every create and mkdir
is wound from a timer thread after a delay (create: random, 0-20 ms; mkdir:
0 or 80 ms by the name's last digit; statfs: 600 ms), so the reply reaches the layer above
on that thread, at a time the layer above does not choose."""
import random
import threading

import glupy


class xlator(glupy.Translator):
    def later(self, frame, args, delay=None):
        delay = random.uniform(0, 0.02) if delay is None else delay
        threading.Timer(delay, frame.wind, args).start()

    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        self.later(frame, (loc, flags, mode, umask, fd, xdata))

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        # Names ending in an even digit are answered at once, odd ones after
        # 80 ms: answer_race.py tries to answer in between.
        odd = (loc.name or "0")[-1] in "13579"
        self.later(frame, (loc, mode, umask, xdata), 0.08 if odd else 0)

    def statfs_fop(self, frame, this, loc, xdata):
        self.later(frame, (loc, xdata), 0.6)
