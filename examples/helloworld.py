"""The smallest useful translator: says hello on every lookup.

    volume demo-hello
        type features/glupy
        option module-name helloworld
        option module-path /usr/share/glupy/examples
        subvolumes demo-locks
    end-volume
"""

import glupy


class xlator(glupy.Translator):
    def lookup_fop(self, frame, this, loc, xdata):
        self.log.info("hello: lookup of %s", loc.path)
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        self.log.info("hello again: lookup answered %d (%s)", op_ret, glupy.errno_name(op_errno))
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)
