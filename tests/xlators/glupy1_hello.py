"""Glupy 1's hello world, written as translators for GlusterFS 3.5-5.x were:
it prints on every lookup (print() ends up in the brick log) and passes data
through readv/writev untouched, so the pointers it is given must map back to
the right values."""
from __future__ import print_function

import sys

from gluster.glupy import *


class xlator(Translator):
    def __init__(self, c_this):
        Translator.__init__(self, c_this)

    def lookup_fop(self, frame, this, loc, xdata):
        print("Python xlator: Hello! path=%s id=%d unique=%d"
              % ((loc.contents.path or b"").decode(), dl.get_id(frame), dl.get_rootunique(frame)))
        dl.wind_lookup(frame, POINTER(xlator_t)(), loc, xdata)
        return 0

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata,
                   postparent):
        size = buf.contents.ia_size if buf else -1
        print("Python xlator: Hello again! op_ret=%d op_errno=%d size=%d id=%d"
              % (op_ret, op_errno, size, dl.get_id(frame)))
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
