"""Winds fops no client sends on its own, from a coroutine: getxattr of
"user.fop.<fop>" on a path, or fgetxattr of it on an open file or directory,
winds <fop> (twice for the locks: take, then release) to the layers below
and answers, as JSON, what each reply said (tests/test_fop_coverage.py)."""
import fcntl
import json
import os
import stat

import glupy

PREFIX = "user.fop."
VOLUME = "glupy-test"  # the lock domain
ENTRYLK_LOCK_NB, ENTRYLK_UNLOCK, ENTRYLK_WRLCK = 2, 1, 1  # glusterfs-fops.h
GF_XATTROP_ADD_ARRAY = 0
GF_GET_LEASE, GF_RD_LEASE = 1, 1
IPC_OP = 4242  # an op no translator knows
COUNTER = "trusted.glupy.count."  # + the fop's name
PUT_DATA = b"put by the generator"
PUT_PATH = "/p"  # a file the test created
ROOT_GFID = bytes(15) + b"\x01"
CHECKSUM_LEN = 4096
COPY_TO = 8192


def outcome(reply, **values):
    return {"op_ret": reply.op_ret, "op_errno": reply.op_errno, **values}


def counter_of(reply):
    key = COUNTER + reply.fop
    return int.from_bytes(reply.xattr[key], "big") if reply.op_ret >= 0 else None


class xlator(glupy.Translator):
    async def getxattr_fop(self, frame, this, loc, name, xdata):
        if not (name or "").startswith(PREFIX):
            return await frame.wind(loc, name, xdata)
        result = await getattr(self, "loc_" + name[len(PREFIX):])(frame, loc)
        return self.answer("getxattr", name, result)

    async def fgetxattr_fop(self, frame, this, fd, name, xdata):
        if not (name or "").startswith(PREFIX):
            return await frame.wind(fd, name, xdata)
        result = await getattr(self, "fd_" + name[len(PREFIX):])(frame, fd)
        return self.answer("fgetxattr", name, result)

    @staticmethod
    def answer(fop, name, result):
        value = json.dumps(result).encode()
        return glupy.Reply(fop, 0, 0, (glupy.Dict({name: value}), None))

    # -- on a path

    async def loc_inodelk(self, frame, loc):
        take = await frame.wind_fop("inodelk", VOLUME, loc, fcntl.F_SETLK,
                                    glupy.Flock(l_type=fcntl.F_WRLCK), None)
        release = await frame.wind_fop("inodelk", VOLUME, loc, fcntl.F_SETLK,
                                       glupy.Flock(l_type=fcntl.F_UNLCK), None)
        return [outcome(take), outcome(release)]

    async def loc_entrylk(self, frame, loc):
        take = await frame.wind_fop("entrylk", VOLUME, loc, "entry", ENTRYLK_LOCK_NB,
                                    ENTRYLK_WRLCK, None)
        release = await frame.wind_fop("entrylk", VOLUME, loc, "entry", ENTRYLK_UNLOCK,
                                       ENTRYLK_WRLCK, None)
        return [outcome(take), outcome(release)]

    async def loc_xattrop(self, frame, loc):
        reply = await frame.wind_fop("xattrop", loc, GF_XATTROP_ADD_ARRAY,
                                     glupy.Dict({COUNTER + "xattrop": (1).to_bytes(4, "big")}), None)
        return outcome(reply, counter=counter_of(reply))

    async def loc_ipc(self, frame, loc):
        return outcome(await frame.wind_fop("ipc", IPC_OP, None))

    async def loc_lease(self, frame, loc):
        lease = glupy.Lease(cmd=GF_GET_LEASE, lease_type=GF_RD_LEASE, lease_id=b"L" * 16)
        return outcome(await frame.wind_fop("lease", loc, lease, None))

    async def loc_getactivelk(self, frame, loc):
        return outcome(await frame.wind_fop("getactivelk", loc, None))

    async def loc_setactivelk(self, frame, loc):
        return outcome(await frame.wind_fop("setactivelk", loc, None, None))

    async def fd_put(self, frame, fd):
        # put needs a named loc with its inode (the open file's, under "/"),
        # and posix's create the gfid in xdata.
        loc = glupy.Loc(PUT_PATH, inode=fd.inode, pargfid=ROOT_GFID)
        # flags: the create's (O_RDWR) and the xattr's (2: XATTR_REPLACE).
        reply = await frame.wind_fop("put", loc, 0o644, 0, os.O_RDWR, glupy.Vector(PUT_DATA), 1,
                                     0, None, glupy.Dict({"user.put": b"yes"}),
                                     glupy.Dict({"gfid-req": fd.inode.gfid}))
        return outcome(reply, size=reply.buf.st_size if reply.buf else None)

    async def loc_icreate(self, frame, loc):
        reply = await frame.wind_fop("icreate", loc, stat.S_IFREG | 0o644, None)
        return outcome(reply, size=reply.buf.st_size if reply.buf else None)

    async def loc_namelink(self, frame, loc):
        return outcome(await frame.wind_fop("namelink", loc, None))

    # -- on an open file or directory

    async def fd_finodelk(self, frame, fd):
        take = await frame.wind_fop("finodelk", VOLUME, fd, fcntl.F_SETLK,
                                    glupy.Flock(l_type=fcntl.F_WRLCK), None)
        release = await frame.wind_fop("finodelk", VOLUME, fd, fcntl.F_SETLK,
                                       glupy.Flock(l_type=fcntl.F_UNLCK), None)
        return [outcome(take), outcome(release)]

    async def fd_fentrylk(self, frame, fd):
        take = await frame.wind_fop("fentrylk", VOLUME, fd, "entry", ENTRYLK_LOCK_NB,
                                    ENTRYLK_WRLCK, None)
        release = await frame.wind_fop("fentrylk", VOLUME, fd, "entry", ENTRYLK_UNLOCK,
                                       ENTRYLK_WRLCK, None)
        return [outcome(take), outcome(release)]

    async def fd_fxattrop(self, frame, fd):
        reply = await frame.wind_fop("fxattrop", fd, GF_XATTROP_ADD_ARRAY,
                                     glupy.Dict({COUNTER + "fxattrop": (1).to_bytes(4, "big")}), None)
        return outcome(reply, counter=counter_of(reply))

    async def fd_fsyncdir(self, frame, fd):
        return outcome(await frame.wind_fop("fsyncdir", fd, 0, None))

    async def fd_rchecksum(self, frame, fd):
        reply = await frame.wind_fop("rchecksum", fd, 0, CHECKSUM_LEN, None)
        strong = reply.strong_checksum.hex() if reply.strong_checksum else None
        return outcome(reply, weak=reply.weak_checksum, strong=strong)

    async def fd_copy_file_range(self, frame, fd):
        reply = await frame.wind_fop("copy_file_range", fd, 0, fd, COPY_TO, CHECKSUM_LEN, 0, None)
        return outcome(reply, size=reply.postbuf_dst.st_size if reply.postbuf_dst else None)
