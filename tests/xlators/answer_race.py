"""Misbehaves after winding, while the reply races back on another thread
(slow_child.py below answers from timer threads):

- create_fop, for names starting "race-", winds, then raises
  (RuntimeError, or FopError(EPERM) for names starting "race-eperm-") after 0-20 ms; no create_cbk, so the reply
  passes straight up;
- mkdir_fop winds, then tries to answer EPERM itself 30 ms later (the
  host must refuse: the reply belongs to mkdir_cbk); mkdir_cbk passes the
  reply up;
- async lookup_fop, for names starting "sib-", awaits its lookup, starts a sibling statfs (answered after
  600 ms) and returns the stat reply while that wind is
  still out: the request must be answered with that reply once the
  sibling is back (other lookups are wound and returned as they come).

getxattr of user.race.report answers a JSON report of what happened.
"""
import asyncio
import errno
import json
import random
import threading
import time

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.seen = {"refused": [], "accepted": [], "answered": [], "sibling_back": []}

    def note(self, key, value):
        with self.lock:
            self.seen[key].append(value)

    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        frame.wind(loc, flags, mode, umask, fd, xdata)
        if not loc.name.startswith("race-"):
            return
        time.sleep(random.uniform(0, 0.02))
        if loc.name.startswith("race-eperm-"):
            raise glupy.FopError(errno.EPERM)
        raise RuntimeError(f"raised after winding {loc.name}")

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        frame.wind(loc, mode, umask, xdata)
        time.sleep(0.03)
        try:
            frame.error(errno.EPERM)
        except RuntimeError as e:
            self.note("refused", str(e))
        else:
            self.note("accepted", loc.name)

    def mkdir_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, preparent, postparent, xdata):
        frame.unwind(op_ret, op_errno, inode, buf, preparent, postparent, xdata)

    async def lookup_fop(self, frame, this, loc, xdata):
        reply = await frame.wind(loc, xdata)
        if not (loc.name or "").startswith("sib-") or reply.op_ret < 0:
            return reply
        found = glupy.Loc(loc.path, inode=loc.inode, gfid=reply.buf.gfid)
        sibling = asyncio.ensure_future(frame.wind_fop("statfs", found, None))
        sibling.add_done_callback(lambda _f: self.note("sibling_back", time.monotonic()))
        await asyncio.sleep(0.05)  # the sibling's wind is out (600 ms to go)
        self.note("answered", time.monotonic())
        return reply

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.race.report":
            with self.lock:
                value = json.dumps(self.seen).encode()
            frame.unwind(len(value), 0, {name: value}, None)
            return
        frame.wind(loc, name, xdata)
