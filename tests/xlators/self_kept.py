"""A frame kept only by its own frame.local, for the collector (issue:
a request nobody can answer any more must not hang). Role upper: a lookup
of "kept-in-local" keeps its frame in its own local and returns without
answering ("cbk-kept-in-local" does so in its callback); "wound-kept-*" keeps it there too, winds, and answers from the
callback only if local is intact; "collect" runs the collector, then
winds. Role lower: sleeps 1.5 s in a lookup of "wound-kept-*" (its reply
comes back late, the upper's method long returned)."""
import errno
import gc
import time

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.wound_kept = set()  # unique numbers of wound-kept lookups

    def lookup_fop(self, frame, this, loc, xdata):
        name = loc.name or ""
        if self.options.get("role") == "lower":
            if name.startswith("wound-kept-"):
                time.sleep(1.5)
            frame.wind(loc, xdata)
            return
        if name == "kept-in-local":
            frame.local = {"frame": frame}
            return  # neither wound nor answered, and kept by itself alone
        if name == "cbk-kept-in-local":
            frame.local = "keep it in the callback"
        elif name.startswith("wound-kept-"):
            self.wound_kept.add(frame.unique)
            frame.local = {"frame": frame, "name": name}
        elif name == "collect":
            gc.collect()
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        if frame.local == "keep it in the callback":
            frame.local = {"frame": frame}
            return  # the callback's turn, kept by itself alone
        if frame.unique in self.wound_kept:
            self.wound_kept.discard(frame.unique)
            local = frame.local
            intact = isinstance(local, dict) and local.get("name", "").startswith("wound-kept-") \
                and getattr(local.get("frame"), "fop", None) == "lookup"
            if not intact:  # the collector took what a wound request still holds
                self.log.error("a wound request's frame.local was lost: %r", local)
                frame.error(errno.ENODATA)
                return
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)
