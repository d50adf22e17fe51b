"""examples/negative.py with its lookup written as one coroutine.

Same options, invalidation and statedump as negative.py (it inherits them);
only the lookup path differs: no separate callback, no frame.local.
"""

import errno

from negative import _key
from negative import xlator as _SyncNegative


class xlator(_SyncNegative):
    lookup_cbk = None  # type: ignore[assignment]  # the coroutine gets the reply itself

    async def lookup_fop(self, frame, this, loc, xdata):
        key = _key(loc)
        if self._hit(key):
            frame.error(errno.ENOENT)
            return None
        snapshot = self._snapshot(key)
        reply = await frame.wind(loc, xdata)
        if snapshot is not None:
            if reply.op_ret < 0 and reply.op_errno == errno.ENOENT:
                self._add(snapshot)
            elif reply.op_ret >= 0:
                self._found(snapshot[0])
        return reply
