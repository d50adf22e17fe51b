"""Defines a fop and a callback for every fop GlusterFS has, passes each
request through unchanged and records what it saw: per fop, how many
requests and replies, the last request's arguments and the last reply
(op_ret, op_errno, values), as plain data. getxattr of "user.recorder.report"
answers the record as JSON (tests/test_fop_coverage.py)."""
import collections
import json
import threading

import glupy

REPORT = "user.recorder.report"


def summary(value):
    """What a value shows, as JSON-able data."""
    if isinstance(value, glupy.Loc):
        return {"loc": value.path}
    if isinstance(value, glupy.Fd):
        return {"fd": value.inode.gfid.hex() if value.inode else None}
    if isinstance(value, glupy.Inode):
        return {"inode": value.gfid.hex()}
    if isinstance(value, glupy.Iatt):
        return {"iatt": [value.st_size, value.st_mode]}
    if isinstance(value, glupy.Dict):
        return {"dict": {key: value[key].hex() for key in sorted(value.keys())}}
    if isinstance(value, glupy.Flock):
        return {"flock": [value.l_type, value.l_start, value.l_len]}
    if isinstance(value, glupy.Lease):
        return {"lease": [value.cmd, value.lease_type]}
    if isinstance(value, glupy.Vector):
        return {"vector": bytes(value).hex()}
    if isinstance(value, list) and all(isinstance(v, glupy.ActiveLock) for v in value):
        return {"locks": [[v.flock.l_type, v.flock.l_start, v.flock.l_len] for v in value]}
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, (int, str)):
        return value
    return type(value).__name__


def _fop(fop):
    def method(self, frame, this, *args):
        if fop == "getxattr" and args[1] == REPORT:
            with self.lock:
                value = json.dumps(self.seen).encode()
            frame.unwind(0, 0, glupy.Dict({REPORT: value}), None)
            return
        with self.lock:
            record = self.seen[fop]
            record["fops"] = record.get("fops", 0) + 1
            record["args"] = [summary(arg) for arg in args]
        frame.wind(*args)

    method.__name__ = fop + "_fop"
    return method


def _cbk(fop):
    def method(self, frame, cookie, this, op_ret, op_errno, *args):
        with self.lock:
            record = self.seen[fop]
            record["cbks"] = record.get("cbks", 0) + 1
            record["reply"] = [op_ret, op_errno, [summary(arg) for arg in args]]
        frame.unwind(op_ret, op_errno, *args)

    method.__name__ = fop + "_cbk"
    return method


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.seen = collections.defaultdict(dict)


for _name in glupy.FOPS:
    setattr(xlator, _name + "_fop", _fop(_name))
    setattr(xlator, _name + "_cbk", _cbk(_name))
