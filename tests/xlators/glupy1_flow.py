"""A GlusterFlow-style activity logger in Glupy 1 style.

For 15 fops, on the way down only, it writes one JSON record per request
(host, operation, path, start time, request id and unique number) to the
file named by `option flow-log FILE`, then winds. There is no callback, so
no latency, as in GlusterFlow; fd-based fops carry no path and are left out.
"""
from __future__ import print_function

import json
import socket
import threading
import time

from gluster.glupy import *


def path_of(loc):
    path = loc.contents.path if loc else None
    return path.decode("utf-8", "surrogateescape") if path else None


class xlator(Translator):
    def __init__(self, c_this):
        Translator.__init__(self, c_this)
        self.host = socket.gethostname()
        self.lock = threading.Lock()
        # Line-buffered append: each record is on disk when its fop winds
        # (a brick stopped with SIGTERM never calls fini).
        if not self.options.get("flow-log"):
            raise ValueError("glupy1_flow needs 'option flow-log FILE' (where records go)")
        self.out = open(self.options["flow-log"], "a", buffering=1)

    def record(self, frame, operation, loc, **extra):
        line = json.dumps({
            "host": self.host,
            "operation": operation,
            "path": path_of(loc),
            "start": time.time(),
            "id": dl.get_id(frame),
            "unique": dl.get_rootunique(frame),
            **extra,
        })
        with self.lock:
            self.out.write(line + "\n")

    def lookup_fop(self, frame, this, loc, xdata):
        self.record(frame, "lookup", loc)
        dl.wind_lookup(frame, POINTER(xlator_t)(), loc, xdata)
        return 0

    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        self.record(frame, "create", loc, mode=mode)
        dl.wind_create(frame, POINTER(xlator_t)(), loc, flags, mode, umask, fd, xdata)
        return 0

    def open_fop(self, frame, this, loc, flags, fd, xdata):
        self.record(frame, "open", loc, flags=flags)
        dl.wind_open(frame, POINTER(xlator_t)(), loc, flags, fd, xdata)
        return 0

    def opendir_fop(self, frame, this, loc, fd, xdata):
        self.record(frame, "opendir", loc)
        dl.wind_opendir(frame, POINTER(xlator_t)(), loc, fd, xdata)
        return 0

    def stat_fop(self, frame, this, loc, xdata):
        self.record(frame, "stat", loc)
        dl.wind_stat(frame, POINTER(xlator_t)(), loc, xdata)
        return 0

    def statfs_fop(self, frame, this, loc, xdata):
        self.record(frame, "statfs", loc)
        dl.wind_statfs(frame, POINTER(xlator_t)(), loc, xdata)
        return 0

    def setxattr_fop(self, frame, this, loc, dictionary, flags, xdata):
        self.record(frame, "setxattr", loc)
        dl.wind_setxattr(frame, POINTER(xlator_t)(), loc, dictionary, flags, xdata)
        return 0

    def getxattr_fop(self, frame, this, loc, name, xdata):
        self.record(frame, "getxattr", loc, name=name.decode() if name else None)
        dl.wind_getxattr(frame, POINTER(xlator_t)(), loc, name, xdata)
        return 0

    def removexattr_fop(self, frame, this, loc, name, xdata):
        self.record(frame, "removexattr", loc, name=name.decode() if name else None)
        dl.wind_removexattr(frame, POINTER(xlator_t)(), loc, name, xdata)
        return 0

    def link_fop(self, frame, this, oldloc, newloc, xdata):
        self.record(frame, "link", newloc, source=path_of(oldloc))
        dl.wind_link(frame, POINTER(xlator_t)(), oldloc, newloc, xdata)
        return 0

    def symlink_fop(self, frame, this, linkname, loc, umask, xdata):
        self.record(frame, "symlink", loc, target=linkname.decode())
        dl.wind_symlink(frame, POINTER(xlator_t)(), linkname, loc, umask, xdata)
        return 0

    def unlink_fop(self, frame, this, loc, xflags, xdata):
        self.record(frame, "unlink", loc)
        dl.wind_unlink(frame, POINTER(xlator_t)(), loc, xflags, xdata)
        return 0

    def readlink_fop(self, frame, this, loc, size, xdata):
        self.record(frame, "readlink", loc)
        dl.wind_readlink(frame, POINTER(xlator_t)(), loc, size, xdata)
        return 0

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        self.record(frame, "mkdir", loc, mode=mode)
        dl.wind_mkdir(frame, POINTER(xlator_t)(), loc, mode, umask, xdata)
        return 0

    def rmdir_fop(self, frame, this, loc, xflags, xdata):
        self.record(frame, "rmdir", loc)
        dl.wind_rmdir(frame, POINTER(xlator_t)(), loc, xflags, xdata)
        return 0
