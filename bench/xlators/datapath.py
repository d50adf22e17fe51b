"""writev and readv in Python, looking at the data as a file-type sniffer
would (the first bytes, the length).

Option inspect:
    view   (default) a memoryview of the data: no copy
    copy   bytes(vector): the translator asks for a copy of every byte
"""
import glupy

MAGIC = b"GFBENCH\n"


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        mode = self.options.get("inspect", "view")
        if mode not in ("view", "copy"):
            raise ValueError(f"option inspect: {mode!r} is not view or copy")
        self.copy = mode == "copy"
        self.tagged = 0
        self.bytes_seen = 0

    def _inspect(self, vector):
        data = bytes(vector) if self.copy else memoryview(vector)
        self.bytes_seen += len(data)
        if data[:len(MAGIC)] == MAGIC:
            self.tagged += 1

    def writev_fop(self, frame, this, fd, vector, count, offset, flags, iobref, xdata):
        self._inspect(vector)
        frame.wind(fd, vector, count, offset, flags, iobref, xdata)

    def readv_fop(self, frame, this, fd, size, offset, flags, xdata):
        frame.wind(fd, size, offset, flags, xdata)

    def readv_cbk(self, frame, cookie, this, op_ret, op_errno, vector, count, stbuf, iobref, xdata):
        if op_ret > 0:
            self._inspect(vector)
        frame.unwind(op_ret, op_errno, vector, count, stbuf, iobref, xdata)

    def dump(self):
        return {"inspect": "copy" if self.copy else "view", "tagged": self.tagged,
                "bytes_seen": self.bytes_seen}
