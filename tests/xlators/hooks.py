"""Keeps an object per inode (Inode.ctx) and per open fd (Fd.ctx), and
records every hook the host calls: notify, forget, release, releasedir,
fini, and each ctx object freed. The record is appended, one JSON line per
event, to the file named by option events-file (readable while the
translator cannot be asked: a child down, a process gone), and
getxattr "user.hooks.ctx" on a path or fgetxattr of it on an fd answers the
object kept for it."""
import json
import threading

import glupy

CTX = "user.hooks.ctx"


class Tracked:
    """A ctx object that says when Python frees it."""

    def __init__(self, owner, kind, gfid):
        self.owner, self.kind, self.gfid = owner, kind, gfid
        self.uses = 0

    def __del__(self):
        self.owner.record("ctx_freed", kind=self.kind, gfid=self.gfid)


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.events_file = self.options["events-file"]

    def record(self, event, **details):
        with self.lock, open(self.events_file, "a") as events:
            events.write(json.dumps({"event": event, **details}) + "\n")

    # -- hooks

    def notify(self, event, info):
        self.record("notify", name=event)

    def forget(self, gfid):
        self.record("forget", gfid=gfid.hex())

    def release(self, gfid):
        self.record("release", gfid=gfid.hex())

    def releasedir(self, gfid):
        self.record("releasedir", gfid=gfid.hex())

    def fini(self):
        self.record("fini")

    # -- contexts

    def keep(self, holder, kind, gfid):
        if holder.ctx is None:
            holder.ctx = Tracked(self, kind, gfid.hex())
        holder.ctx.uses += 1

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        if op_ret == 0 and inode is not None:
            self.keep(inode, "inode", buf.gfid)
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    def open_cbk(self, frame, cookie, this, op_ret, op_errno, fd, xdata):
        if op_ret == 0:
            self.keep(fd, "fd", fd.inode.gfid)
        frame.unwind(op_ret, op_errno, fd, xdata)

    def opendir_cbk(self, frame, cookie, this, op_ret, op_errno, fd, xdata):
        if op_ret == 0:
            self.keep(fd, "dirfd", fd.inode.gfid)
        frame.unwind(op_ret, op_errno, fd, xdata)

    @staticmethod
    def describe(holder):
        ctx = holder.ctx
        return json.dumps(None if ctx is None else {"kind": ctx.kind, "gfid": ctx.gfid,
                                                     "uses": ctx.uses}).encode()

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == CTX:
            frame.unwind(0, 0, glupy.Dict({name: self.describe(loc.inode)}), None)
        else:
            frame.wind(loc, name, xdata)

    def fgetxattr_fop(self, frame, this, fd, name, xdata):
        if name == CTX:
            frame.unwind(0, 0, glupy.Dict({name: self.describe(fd)}), None)
        else:
            frame.wind(fd, name, xdata)
