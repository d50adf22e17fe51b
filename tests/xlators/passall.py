"""Defines every fop and callback; winds and unwinds what it gets and
counts each one (shown in the statedump through dump())."""
import collections
import threading

import glupy


def _fop(fop):
    def method(self, frame, this, *args):
        with self.lock:
            self.seen[fop + "_fop"] += 1
        frame.wind(*args)

    return method


def _cbk(fop):
    def method(self, frame, cookie, this, op_ret, op_errno, *args):
        with self.lock:
            self.seen[fop + "_cbk"] += 1
        frame.unwind(op_ret, op_errno, *args)

    return method


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.seen = collections.Counter()

    def dump(self):
        with self.lock:
            return dict(self.seen)


for _name in glupy.FOPS:
    setattr(xlator, _name + "_fop", _fop(_name))
    setattr(xlator, _name + "_cbk", _cbk(_name))
