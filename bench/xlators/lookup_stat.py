"""lookup and stat in Python, fop and callback: the least a Python
translator that looks at replies does (wind, then unwind what comes back)."""
import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    def stat_fop(self, frame, this, loc, xdata):
        frame.wind(loc, xdata)

    def stat_cbk(self, frame, cookie, this, op_ret, op_errno, buf, xdata):
        frame.unwind(op_ret, op_errno, buf, xdata)
