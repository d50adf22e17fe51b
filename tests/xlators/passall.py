"""Defines every fop and callback; winds and unwinds what it gets and
counts each one (shown in the statedump through dump()), and the names
looked up. MODULE_TOTAL is module-level state: two instances of this module
in one graph must each have their own."""
import collections
import threading

import glupy

MODULE_TOTAL = 0


def _fop(fop):
    def method(self, frame, this, *args):
        global MODULE_TOTAL
        with self.lock:
            self.seen[fop + "_fop"] += 1
            MODULE_TOTAL += 1
            if fop == "lookup" and args[0].name:
                self.seen["lookup:" + args[0].name] += 1
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
            return {**self.seen, "module_total": MODULE_TOTAL}


for _name in glupy.FOPS:
    setattr(xlator, _name + "_fop", _fop(_name))
    setattr(xlator, _name + "_cbk", _cbk(_name))
