"""Glupy 1's hello world, written as translators for GlusterFS 3.5-5.x were:
it prints on every lookup (print() ends up in the brick log) and passes data
through readv/writev untouched, so the pointers it is given must map back to
the right values. Its lookup callback names the path its fop saw under the
same dl.get_id: after a lookup of "hold-next", HELD lookups of sized-* are
held and wound together, so only an id unique per request pairs them."""
from __future__ import print_function

import sys
import threading

from gluster.glupy import *


HELD = 4  # lookups of sized-* held together after a lookup of hold-next


class xlator(Translator):
    def __init__(self, c_this):
        Translator.__init__(self, c_this)
        self.lock = threading.Lock()
        self.paths = {}  # get_id of a lookup in flight -> its path
        self.holding, self.held = False, []

    def lookup_fop(self, frame, this, loc, xdata):
        path = (loc.contents.path or b"").decode()
        print("Python xlator: Hello! path=%s id=%d unique=%d"
              % (path, dl.get_id(frame), dl.get_rootunique(frame)))
        name = path.rsplit("/", 1)[-1]
        with self.lock:
            self.paths[dl.get_id(frame)] = path
            if name == "hold-next":
                self.holding = True
            if self.holding and name.startswith("sized-"):
                # Several lookups in flight at once, wound in reverse order:
                # their callbacks tell them apart only by get_id.
                self.held.append((frame, loc, xdata))
                if len(self.held) < HELD:
                    return 0
                batch, self.held, self.holding = self.held, [], False
            else:
                batch = [(frame, loc, xdata)]
        for held_frame, held_loc, held_xdata in reversed(batch):
            dl.wind_lookup(held_frame, POINTER(xlator_t)(), held_loc, held_xdata)
        return 0

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata,
                   postparent):
        size = buf.contents.ia_size if buf else -1
        with self.lock:
            path = self.paths.pop(dl.get_id(frame), "?")
        print("Python xlator: Hello again! op_ret=%d op_errno=%d size=%d id=%d path=%s"
              % (op_ret, op_errno, size, dl.get_id(frame), path))
        dl.unwind_lookup(frame, cookie, this, op_ret, op_errno, inode, buf, xdata,
                         postparent)
        return 0

    def writev_fop(self, frame, this, fd, vector, count, offset, flags, iobref, xdata):
        dl.wind_writev(frame, POINTER(xlator_t)(), fd, vector, count, offset, flags,
                       iobref, xdata)
        return 0

    def writev_cbk(self, frame, cookie, this, op_ret, op_errno, prebuf, postbuf, xdata):
        dl.unwind_writev(frame, cookie, this, op_ret, op_errno, prebuf, postbuf, xdata)
        return 0

    def readv_fop(self, frame, this, fd, size, offset, flags, xdata):
        dl.wind_readv(frame, POINTER(xlator_t)(), fd, size, offset, flags, xdata)
        return 0

    def readv_cbk(self, frame, cookie, this, op_ret, op_errno, vector, count, stbuf,
                  iobref, xdata):
        dl.unwind_readv(frame, cookie, this, op_ret, op_errno, vector, count, stbuf,
                        iobref, xdata)
        return 0
