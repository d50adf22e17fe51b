"""Answers getxattr user.glupy.interp with what the embedded interpreter
sees of the process: its UTF-8 mode, encodings and the C environment."""
import ctypes
import json
import locale
import sys

import glupy

libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p
libc.getenv.argtypes = [ctypes.c_char_p]


def c_getenv(name):
    value = libc.getenv(name.encode())
    return None if value is None else value.decode()


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name != "user.glupy.interp":
            frame.wind(loc, name, xdata)
            return
        report = {
            "utf8_mode": sys.flags.utf8_mode,
            "filesystem_encoding": sys.getfilesystemencoding(),
            "LC_CTYPE": c_getenv("LC_CTYPE"),
            "LC_ALL": c_getenv("LC_ALL"),
            "process_ctype_locale": locale.setlocale(locale.LC_CTYPE),  # a query: changes nothing
        }
        value = json.dumps(report).encode()
        frame.unwind(len(value), 0, glupy.Dict({name: value}), None)
