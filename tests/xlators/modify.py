"""Changes what it winds and unwinds: data, directory listings, xattrs,
attributes, and the path a lookup goes to."""
import glupy


class xlator(glupy.Translator):
    def writev_fop(self, frame, this, fd, vector, count, offset, flags, iobref, xdata):
        path = fd.inode.path if fd.inode else None
        if path and path.endswith(".upper"):
            vector = bytes(vector).upper()  # new data: the host builds a new buffer
        frame.wind(fd, vector, count, offset, flags, iobref, xdata)

    def readv_cbk(self, frame, cookie, this, op_ret, op_errno, vector, count, stbuf, iobref, xdata):
        if op_ret > 0:
            view = memoryview(vector)  # zero-copy look at the reply
            if bytes(view[:4]) == b"ROT:":
                data = b"ROT:" + bytes((b + 1) % 256 for b in view[4:])
                vector = data
        frame.unwind(op_ret, op_errno, vector, count, stbuf, iobref, xdata)

    def readdirp_cbk(self, frame, cookie, this, op_ret, op_errno, entries, xdata):
        if op_ret > 0:
            entries = [e for e in entries if not e.name.startswith("hidden-")]
            op_ret = len(entries)
        frame.unwind(op_ret, op_errno, entries, xdata)

    readdir_cbk = readdirp_cbk

    def getxattr_cbk(self, frame, cookie, this, op_ret, op_errno, dict, xdata):
        if op_ret >= 0 and dict is not None:
            dict["user.glupy.added"] = b"by python"
        frame.unwind(op_ret, op_errno, dict, xdata)

    def lookup_fop(self, frame, this, loc, xdata):
        if loc.name == "alias":
            loc = loc.copy(path=loc.path[: -len("alias")] + "target")
        frame.wind(loc, xdata)

    def stat_cbk(self, frame, cookie, this, op_ret, op_errno, buf, xdata):
        if op_ret == 0 and buf is not None:
            buf.st_mode = (buf.st_mode & ~0o777) | 0o751  # an edited Iatt
        frame.unwind(op_ret, op_errno, buf, xdata)

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        frame.local = (loc.name or "").startswith("edited-")
        frame.wind(loc, mode, umask, xdata)

    def mkdir_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, preparent, postparent,
                  xdata):
        # An edited Iatt in a reply of three: each must go up as its own.
        if op_ret == 0 and frame.local:
            buf.st_mode = (buf.st_mode & ~0o777) | 0o705
        frame.unwind(op_ret, op_errno, inode, buf, preparent, postparent, xdata)
