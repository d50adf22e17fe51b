"""Arms the host's fault point in the callback entry (a Rust panic there,
before the answering machine is told of the reply) before winding:

- getxattr user.panic.sync: a synchronous wind with a callback;
- statfs: a coroutine's wind (its awaitable must fail, not hang);
every other getxattr passes through."""
import errno
import sys

import glupy

_glupy = sys.modules["glupy._glupy"]  # the host's native half


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.panic.sync":
            _glupy._panic_at("callback-entry")
        frame.wind(loc, name, xdata)

    def getxattr_cbk(self, frame, cookie, this, op_ret, op_errno, dict, xdata):
        frame.unwind(op_ret, op_errno, dict, xdata)

    async def statfs_fop(self, frame, this, loc, xdata):
        _glupy._panic_at("callback-entry")
        try:
            return await frame.wind(loc, xdata)
        except RuntimeError as e:
            self.log.warning("statfs wind failed: %s", e)
            raise glupy.FopError(errno.EREMOTEIO)
