"""A callback that winds its frame again (a retry): a lookup of "retry-N"
is wound N more times from lookup_cbk before its reply goes up. Every
wind's reply comes back inline (posix is right below): a retry chain must
not nest a level deeper per retry."""
import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if name.startswith("retry-"):
            frame.local = [int(name.split("-")[1]), loc, xdata]
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        local = frame.local
        if local is not None and local[0] > 0:
            local[0] -= 1
            frame.wind(local[1], local[2])
            return
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)
