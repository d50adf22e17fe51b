"""xor_data's replacements (every write wound with new bytes, every read
reply answered with new bytes, XOR 0x5A) written as `async def` fops: the
first step winds from the calling thread, and the reply comes back as a
glupy.Reply. It also keeps the last few read Replies past their answers and
drops older ones, so values outlive the request and are then released.

options: xor-writes on|off, xor-reads on|off.
"""
import glupy

TABLE = bytes(b ^ 0x5A for b in range(256))
KEPT = 8


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.kept = []

    def on(self, name):
        return self.options.get(name, "off") == "on"

    async def writev_fop(self, frame, this, fd, vector, count, offset, flags, iobref, xdata):
        if self.on("xor-writes"):
            vector = bytes(vector).translate(TABLE)
        return await frame.wind(fd, vector, count, offset, flags, iobref, xdata)

    async def readv_fop(self, frame, this, fd, size, offset, flags, xdata):
        reply = await frame.wind(fd, size, offset, flags, xdata)
        self.kept = self.kept[-(KEPT - 1):] + [reply]
        if reply.op_ret > 0 and self.on("xor-reads"):
            return reply.replace(vector=bytes(reply.vector).translate(TABLE))
        return reply
