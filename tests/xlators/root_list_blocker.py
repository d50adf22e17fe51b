"""A listing of the volume root's xattrs (getxattr without a name on "/",
as a client registration's writer makes before each write) waits until a
byte arrives on the FIFO of option `fifo`; it creates the file of option
`marker` first, and `marker`.done when it winds on. Everything else passes
through."""
import os

import glupy


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if not name and loc.path == "/" and not os.path.exists(self.options["marker"]):
            open(self.options["marker"], "w").close()
            # O_RDWR: a FIFO with a writer (ourselves), so read blocks for
            # data; os.read lets go of the GIL meanwhile.
            fd = os.open(self.options["fifo"], os.O_RDWR)
            try:
                os.read(fd, 1)
            finally:
                os.close(fd)
                open(self.options["marker"] + ".done", "w").close()
        frame.wind(loc, name, xdata)
