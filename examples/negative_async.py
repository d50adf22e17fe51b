"""examples/negative.py with its lookup written as one coroutine.

Same options, table, invalidation and statedump as negative.py (it inherits
them); only the lookup path differs: no separate callback, no frame.local.
Hits never reach it: the host answers them from the table.
"""

import errno

from negative import _key
from negative import xlator as _SyncNegative


class xlator(_SyncNegative):
    lookup_cbk = None  # type: ignore[assignment]  # the coroutine gets the reply itself

    async def lookup_fop(self, frame, this, loc, xdata):
        snapshot = self._snapshot(_key(loc))
        reply = await frame.wind(loc, xdata)
        if reply.op_ret < 0 and reply.op_errno == errno.ENOENT:
            self._add(snapshot)
        return reply
