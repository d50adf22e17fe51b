"""getxattr user.fault.arm arms the host's "conversion" fault point (the
next call's arguments fail to convert after the first: MemoryError) and
answers ENODATA; create passes through (so its arguments are converted:
a loc, then the fd the create opens, which stays unconverted)."""
import errno
import sys

import glupy

_glupy = sys.modules["glupy._glupy"]  # the host's native half


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.fault.arm":
            _glupy._panic_at("conversion")
            frame.unwind(-1, errno.ENODATA, None, None)
            return
        frame.wind(loc, name, xdata)

    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        frame.wind(loc, flags, mode, umask, fd, xdata)
