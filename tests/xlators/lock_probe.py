"""Reads the active lock list of features/locks (getactivelk), which
GlusterFS frees as soon as the reply's callback returns.

role prober (top): getxattr user.probe.activelk winds getactivelk from a
coroutine, keeps the reply for 100 ms, and answers the locks it listed as
JSON.
role keeper (below it): getactivelk_fop winds synchronously (its reply comes
back inside the wind and its callback runs when the wind returns, after
features/locks freed the list), keeps the list for 50 ms in its callback,
then unwinds it.
"""
import asyncio
import json
import time

import glupy


def describe(locks):
    return [
        {
            "client_uid": lock.client_uid.decode(errors="replace"),
            "l_type": lock.flock.l_type,
            "l_start": lock.flock.l_start,
            "l_len": lock.flock.l_len,
            "lk_flags": lock.lk_flags,
        }
        for lock in locks or []
    ]


class xlator(glupy.Translator):
    def getactivelk_fop(self, frame, this, loc, xdata):
        frame.wind(loc, xdata)

    def getactivelk_cbk(self, frame, cookie, this, op_ret, op_errno, locklist, xdata):
        time.sleep(0.05)
        frame.unwind(op_ret, op_errno, locklist, xdata)

    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if self.options.get("role") != "prober" or name != "user.probe.activelk":
            return await frame.wind(loc, name, xdata)
        reply = await frame.wind_fop("getactivelk", loc, None)
        await asyncio.sleep(0.1)
        value = json.dumps({"op_ret": reply.op_ret, "op_errno": reply.op_errno,
                            "locks": describe(reply.locklist)}).encode()
        return glupy.Reply("getxattr", len(value), 0, ({name: value}, None))
