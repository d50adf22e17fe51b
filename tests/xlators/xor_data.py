"""Replaces the data of every write it winds and/or every read reply it
answers with the bytes XOR 0x5A, exactly as README shows: new bytes, wound
or unwound with the request's own count and iobref. Tests read the files
back through a client without it and compare byte for byte.

options: xor-writes on|off, xor-reads on|off, eof-as-none on|off (a readv
reply of 0 bytes answered with vector None and count 1), short-reads on|off
(half the data, op_ret unchanged: the host must refuse it).
"""
import glupy

TABLE = bytes(b ^ 0x5A for b in range(256))


class xlator(glupy.Translator):
    def on(self, name):
        return self.options.get(name, "off") == "on"

    def writev_fop(self, frame, this, fd, vector, count, offset, flags, iobref, xdata):
        if self.on("xor-writes"):
            vector = bytes(vector).translate(TABLE)
        frame.wind(fd, vector, count, offset, flags, iobref, xdata)

    def readv_cbk(self, frame, cookie, this, op_ret, op_errno, vector, count, stbuf, iobref, xdata):
        if op_ret > 0 and self.on("xor-reads"):
            vector = bytes(vector).translate(TABLE)
        elif op_ret > 1 and self.on("short-reads"):
            vector = bytes(vector)[: op_ret // 2]
        elif op_ret >= 0 and self.on("eof-as-none"):
            op_ret, vector = 0, None  # count stays what it was (1): the host must send 0
        frame.unwind(op_ret, op_errno, vector, count, stbuf, iobref, xdata)
