"""statfs keeps a Python thread of the host's until a byte arrives on the
FIFO of option `fifo` (it creates the file of option `marker` first), then
winds, and creates `marker`.done whatever that wind did. Run it with python-thread pool and python-threads 1: every Python
thread of the process is busy meanwhile. Everything else passes through."""
import os

import glupy


class xlator(glupy.Translator):
    def statfs_fop(self, frame, this, loc, xdata):
        # O_RDWR: a FIFO with a writer (ourselves), so read blocks for data;
        # os.read lets go of the GIL meanwhile.
        fd = os.open(self.options["fifo"], os.O_RDWR)
        open(self.options["marker"], "w").close()
        os.read(fd, 1)
        os.close(fd)
        try:
            frame.wind(loc, xdata)
        finally:
            open(self.options["marker"] + ".done", "w").close()
