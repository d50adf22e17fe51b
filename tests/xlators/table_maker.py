"""An entry-keyed negative lookup cache (as examples/negative_async.py) whose
mkdir also makes a companion directory "<name>.meta" beside the one asked,
wound from the mkdir coroutine with frame.wind_fop: a name the translator
makes itself, which the request's own arguments do not name.
Options: ttl (default 600)."""

import errno
import uuid

import glupy

NULL = b"\0" * 16


def parent_of(loc):
    if loc.pargfid != NULL:
        return loc.pargfid
    return loc.parent.gfid if loc.parent is not None else None


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.missing = self.answer_table("lookup", key="entry", limit=1000)
        self.ttl = float(self.options.get("ttl", 600))

    async def lookup_fop(self, frame, this, loc, xdata):
        parent = parent_of(loc)
        token = self.missing.token(parent) if parent and loc.name else None
        reply = await frame.wind(loc, xdata)
        if token is not None and reply.op_ret < 0 and reply.op_errno == errno.ENOENT:
            self.missing.add(parent, loc.name, errno=errno.ENOENT, ttl=self.ttl, token=token)
        return reply

    async def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        reply = await frame.wind(loc, mode, umask, xdata)
        if reply.op_ret >= 0 and not loc.name.endswith(".meta"):
            companion = glupy.Loc(loc.path + ".meta", parent=loc.parent, pargfid=parent_of(loc))
            await frame.wind_fop("mkdir", companion, 0o755, 0, glupy.Dict({"gfid-req": uuid.uuid4().bytes}))
        return reply
