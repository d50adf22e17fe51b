"""Answers the fops that must not reach features/locks or storage/posix
from a test: icreate and namelink (posix has neither, and GlusterFS's
default winds them to posix's missing child) and setactivelk without a lock
list (locks would read it). Everything else passes through untouched."""
import glupy

ICREATE_SIZE = 4242  # what the answer's iatt says, for the test to recognise


class xlator(glupy.Translator):
    def icreate_fop(self, frame, this, loc, mode, xdata):
        buf = glupy.Iatt()
        buf.st_size = ICREATE_SIZE
        frame.unwind(0, 0, loc.inode, buf, None)

    def namelink_fop(self, frame, this, loc, xdata):
        frame.unwind(0, 0, glupy.Iatt(), glupy.Iatt(), None)

    def setactivelk_fop(self, frame, this, loc, locklist, xdata):
        frame.unwind(0, 0, None)
