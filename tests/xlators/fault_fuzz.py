"""Answers requests with values a fuzzer chose (see fuzz/ and RELIABILITY.md).

The fuzz harness (a gfapi client) sets the xattr ``user.fuzz.program`` to a
JSON program, then sends the request the program is for. This translator
builds the Python values the program describes (ints of any size, floats,
str with any bytes, bytes, bytearray, memoryview, lists, tuples, dicts,
glupy.Dict, Vector, Iatt, Dirent, Loc) and answers (unwinds) or winds with
them. The host must convert them into the reply or refuse them with a
Python exception; never crash, never answer twice, never hang.

A refused program is answered EINVAL (what a translator that catches the
error does); every refusal is counted in the statedump (dump()).
"""

import collections
import errno
import json
import os
import threading

import glupy

PROGRAM_KEY = "user.fuzz.program"
REFUSED = (TypeError, ValueError, OverflowError, AttributeError)


def build(value):
    """The Python value a program's JSON value describes."""
    if value is None:
        return None
    (tag, body), = value.items()
    return BUILDERS[tag](body)


def _iatt(fields):
    iatt = glupy.Iatt()
    for name, number in fields.items():
        setattr(iatt, name, int(number))
    return iatt


def _dirent(body):
    name, d_off, d_type, stat = body
    return glupy.Dirent(build(name), d_off=int(d_off), d_type=int(d_type), stat=build(stat))


BUILDERS = {
    "i": lambda body: int(body),
    "f": float,
    "s": lambda body: os.fsdecode(bytes.fromhex(body)),
    "b": bytes.fromhex,
    "ba": lambda body: bytearray.fromhex(body),
    "mv": lambda body: memoryview(bytes.fromhex(body)),
    "l": lambda body: [build(item) for item in body],
    "t": lambda body: tuple(build(item) for item in body),
    "d": lambda body: {build(k): build(v) for k, v in body},
    "gd": lambda body: glupy.Dict({build(k): build(v) for k, v in body}),
    "vec": lambda body: glupy.Vector(bytes.fromhex(body)),
    "iatt": _iatt,
    "dirent": _dirent,
    "loc": lambda body: glupy.Loc(build(body)),
}


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.program = None
        self.counts = collections.Counter()

    def dump(self):
        with self.lock:
            return dict(self.counts)

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def take_program(self, kind):
        with self.lock:
            program, self.program = self.program, None
        if program is not None and program["kind"] != kind:
            self.count("program_for_another_fop")
            return None
        return program

    def run(self, frame, program, answer):
        """Builds the values and answers with them; a refusal answers EINVAL."""
        kind = program["kind"]
        try:
            values = [build(v) for v in program["values"]]
        except REFUSED as error:
            self.count(f"{kind}.build_refused.{type(error).__name__}")
            frame.error(errno.EINVAL)
            return
        try:
            answer(values)
        except REFUSED as error:
            self.count(f"{kind}.refused.{type(error).__name__}")
            frame.error(errno.EINVAL)
            return
        self.count(f"{kind}.accepted")

    # -- the program arrives

    def setxattr_fop(self, frame, this, loc, dict, flags, xdata):
        raw = dict.get(PROGRAM_KEY) if dict is not None else None
        if raw is None:
            frame.wind(loc, dict, flags, xdata)
            return
        with self.lock:
            self.program = json.loads(raw)
        frame.unwind(0, 0, None)

    # -- the request it is for

    def getxattr_fop(self, frame, this, loc, name, xdata):
        program = self.take_program("getxattr") if name == "user.fuzz.get" else None
        if program is None:
            frame.wind(loc, name, xdata)
        elif program.get("wind"):
            self.run(frame, program, lambda values: frame.wind(loc, *values))
        else:
            self.run(frame, program, lambda values: frame.unwind(
                int(program["op_ret"]), int(program["op_errno"]), *values))

    def getxattr_cbk(self, frame, cookie, this, op_ret, op_errno, dict, xdata):
        frame.unwind(op_ret, op_errno, dict, xdata)

    def fstat_fop(self, frame, this, fd, xdata):
        self._answer("fstat", frame, lambda: frame.wind(fd, xdata))

    def readv_fop(self, frame, this, fd, size, offset, flags, xdata):
        self._answer("readv", frame, lambda: frame.wind(fd, size, offset, flags, xdata))

    def readdir_fop(self, frame, this, fd, size, offset, xdata):
        if offset != 0:  # the listing was given whole at offset 0
            frame.unwind(0, 0, [], None)
            return
        self._answer("readdir", frame, lambda: frame.wind(fd, size, offset, xdata))

    def _answer(self, kind, frame, wind):
        program = self.take_program(kind)
        if program is None:
            wind()
            return
        self.run(frame, program, lambda values: frame.unwind(
            int(program["op_ret"]), int(program["op_errno"]), *values))
