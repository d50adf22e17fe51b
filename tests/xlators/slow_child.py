"""A child that answers from another thread: every create and mkdir
is wound from a timer thread after a random delay (0-20 ms; a statfs after
600 ms), so the reply reaches the layer above
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
        self.later(frame, (loc, mode, umask, xdata))

    def statfs_fop(self, frame, this, loc, xdata):
        self.later(frame, (loc, xdata), 0.6)
