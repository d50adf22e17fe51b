"""Answer tables used by tests/test_answer_table.py.

- create: names ending in ".tmp" are refused EACCES; the decision goes into
  a name-keyed table, so the host refuses that name again without Python;
- lookup (entry table): lookups answered ENOENT by the child are cached for
  option ttl seconds (default 60), with the directory's token from when the
  lookup started.
getxattr user.rules.stats answers the tables' counters and how many creates
and lookups (by name) reached Python, as JSON (padded to 8 KiB).
"""
import errno
import json
import threading

import glupy


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.refused = self.answer_table("create", key="name", limit=100)
        self.missing = self.answer_table("lookup", key="entry", limit=int(self.options.get("limit", 1000)))
        self.ttl = float(self.options.get("ttl", 60))
        self.lock = threading.Lock()
        self.in_python = {"create": 0, "lookup": 0}
        self.lookups_of = {}  # name -> lookups that reached Python

    def count(self, fop, name=None):
        with self.lock:
            self.in_python[fop] += 1
            if name:
                self.lookups_of[name] = self.lookups_of.get(name, 0) + 1

    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        self.count("create")
        if loc.name.endswith(".tmp"):
            self.refused.add(loc.name, errno=errno.EACCES, ttl=3600)
            raise glupy.FopError(errno.EACCES)
        frame.wind(loc, flags, mode, umask, fd, xdata)

    def lookup_fop(self, frame, this, loc, xdata):
        self.count("lookup", loc.name)
        parent = loc.pargfid if loc.pargfid != b"\0" * 16 else (loc.parent.gfid if loc.parent else None)
        frame.local = (parent, loc.name, self.missing.token(parent)) if parent and loc.name else None
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        if op_ret < 0 and op_errno == errno.ENOENT and frame.local:
            parent, name, token = frame.local
            self.missing.add(parent, name, errno=errno.ENOENT, ttl=self.ttl, token=token)
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.rules.stats":
            with self.lock:
                value = json.dumps({"create": self.refused.stats(), "lookup": self.missing.stats(),
                                    "in_python": dict(self.in_python),
                                    "lookups_of": dict(self.lookups_of)}).encode()
            # One size whatever the counters say: clients ask for the size first.
            value = value.ljust(8192)
            frame.unwind(len(value), 0, {name: value}, None)
            return
        if name == "user.rules.late-table":
            try:
                self.answer_table("stat")
            except RuntimeError as e:
                raise glupy.FopError(errno.EPERM, str(e))
        frame.wind(loc, name, xdata)
