"""A negative-lookup cache in Glupy 1 style (like Glupy's negative.py).

A lookup of a name that was missing the last time in the same parent
directory is answered ENOENT without going further. Lookups that fail with
ENOENT add the name, lookups that succeed drop it, and create, mkdir,
symlink and link drop the name they make before winding, so a file created
after it was cached is seen. Keyed on (parent gfid, name); one cache per
translator instance.

Limits, as in the original: no expiry and no size bound; names made by fops
Glupy 1 did not dispatch (mknod, rename) or behind the brick's back are not
noticed, and a lookup racing with a create can still cache the name as
missing (examples/negative.py, written for glupy, has none of these).
"""
from __future__ import print_function

import threading
from uuid import UUID

from gluster.glupy import *

ENOENT = 2
NO_GFID = "00000000-0000-0000-0000-000000000000"


def uuid2str(gfid):
    return str(UUID(bytes=bytes(gfid)))


def entry_of(loc):
    """(parent gfid, name) of a named loc, else None (gfid-only lookups)."""
    name = loc.contents.name
    pargfid = uuid2str(loc.contents.pargfid)
    if not name or pargfid == NO_GFID:
        return None
    return (pargfid, name[:])


class xlator(Translator):
    def __init__(self, c_this):
        Translator.__init__(self, c_this)
        self.lock = threading.Lock()
        self.cache = {}  # parent gfid -> set of names known to be missing
        self.requests = {}  # dl.get_id(frame) -> entry being looked up
        self.hits = 0

    def is_missing(self, entry):
        with self.lock:
            return entry[1] in self.cache.get(entry[0], ())

    def remember_missing(self, entry):
        with self.lock:
            self.cache.setdefault(entry[0], set()).add(entry[1])

    def forget(self, entry):
        if entry is None:
            return
        with self.lock:
            self.cache.get(entry[0], set()).discard(entry[1])

    def dump(self):
        with self.lock:
            return {"hits": self.hits, "cached": sum(len(s) for s in self.cache.values())}

    def lookup_fop(self, frame, this, loc, xdata):
        entry = entry_of(loc)
        if entry is not None and self.is_missing(entry):
            print("negative: %s/%s is cached as missing" % (entry[0], entry[1].decode()))
            with self.lock:
                self.hits += 1
            dl.unwind_lookup(frame, 0, this, -1, ENOENT, None, None, None, None)
            return 0
        if entry is not None:
            with self.lock:
                self.requests[dl.get_id(frame)] = entry
        dl.wind_lookup(frame, POINTER(xlator_t)(), loc, xdata)
        return 0

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata,
                   postparent):
        with self.lock:
            entry = self.requests.pop(dl.get_id(frame), None)
        if entry is not None:
            if op_ret == 0:
                self.forget(entry)
            elif op_errno == ENOENT:
                self.remember_missing(entry)
        dl.unwind_lookup(frame, cookie, this, op_ret, op_errno, inode, buf, xdata,
                         postparent)
        return 0

    # Fops that make a name exist: forget it before the brick makes it, so
    # no lookup after this point can be answered from the cache.
    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        self.forget(entry_of(loc))
        dl.wind_create(frame, POINTER(xlator_t)(), loc, flags, mode, umask, fd, xdata)
        return 0

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        self.forget(entry_of(loc))
        dl.wind_mkdir(frame, POINTER(xlator_t)(), loc, mode, umask, xdata)
        return 0

    def symlink_fop(self, frame, this, linkname, loc, umask, xdata):
        self.forget(entry_of(loc))
        dl.wind_symlink(frame, POINTER(xlator_t)(), linkname, loc, umask, xdata)
        return 0

    def link_fop(self, frame, this, oldloc, newloc, xdata):
        self.forget(entry_of(newloc))
        dl.wind_link(frame, POINTER(xlator_t)(), oldloc, newloc, xdata)
        return 0
