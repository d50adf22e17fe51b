"""Records the order in which forget reaches Python (the first one slowly),
by the names of directories made through it; getxattr
user.glupy.forgotten on any path answers the names, in that order."""
import json
import threading
import time

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.names = {}  # gfid -> name, from mkdir replies
        self.forgotten = []
        self.lock = threading.Lock()

    def mkdir_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, preparent, postparent, xdata):
        if op_ret == 0 and inode is not None:
            self.names[bytes(buf.gfid)] = frame.local
            inode.ctx = frame.local  # forget reaches only translators with a context
        frame.unwind(op_ret, op_errno, inode, buf, preparent, postparent, xdata)

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        frame.local = loc.name
        frame.wind(loc, mode, umask, xdata)

    def forget(self, gfid):
        with self.lock:
            first = not self.forgotten
        if first:
            time.sleep(1.0)  # slow: later forgets must wait for it, not overtake it
        with self.lock:
            self.forgotten.append(self.names.get(bytes(gfid), gfid.hex()))

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name != "user.glupy.forgotten":
            frame.wind(loc, name, xdata)
            return
        with self.lock:
            value = json.dumps(self.forgotten).encode()
        frame.unwind(len(value), 0, glupy.Dict({name: value}), None)
