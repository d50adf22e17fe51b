"""Bench: lookup through Python, fop + callback, doing nothing else."""
import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)
