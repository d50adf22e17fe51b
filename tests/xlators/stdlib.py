"""Imports standard modules with C parts: they must load for real in a brick
(libpython promoted to global scope), not fall back to pure Python."""
import ctypes
import decimal
import json
import json.decoder
import socket
import sqlite3
import ssl
import sys

import glupy


class xlator(glupy.Translator):
    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name != "user.glupy.stdlib":
            frame.wind(loc, name, xdata)
            return
        facts = {
            "json_c": json.decoder.c_scanstring is not None,
            "ctypes": ctypes.sizeof(ctypes.c_void_p) == 8,
            "sqlite": sqlite3.connect(":memory:").execute("select 6*7").fetchone()[0] == 42,
            "socket": socket.socketpair() is not None,
            "ssl": bool(ssl.OPENSSL_VERSION),
            "decimal_c": decimal.__name__ == "decimal" and hasattr(decimal, "__libmpdec_version__"),
            "executable": sys.executable,
        }
        value = json.dumps(facts, sort_keys=True).encode()
        frame.unwind(len(value), 0, glupy.Dict({name: value}), None)
