"""A negative-lookup cache that is never stale for this client's own changes.

Lookups of names known to be missing in their directory are answered ENOENT
at once, without a round trip to the bricks. Unlike Glupy 1's negative.py:

- every entry fop that can make a name exist (create, mkdir, mknod, symlink,
  link, rename's target) invalidates the name before it is wound, and a
  per-directory generation stops a lookup that was already under way from
  caching a stale "missing" after such a change;
- unlink, rmdir and rename's source record the name as missing once done;
- entries expire (cache-timeout), the cache holds at most cache-limit names
  (least recently used go first), child up/down events empty it, and
  cache-invalidation upcalls drop the directory they name;
- the statedump shows hits, misses, size and evictions.

Options:
    cache-timeout   seconds a missing name is trusted (default 60)
    cache-limit     most names held (default 65536)
"""

import errno
import threading
import time
from collections import OrderedDict

import glupy

ROOT_GFID = b"\0" * 15 + b"\1"


def _key(loc):
    if not loc.name:
        return None  # a nameless (gfid) lookup says nothing about a name
    pargfid = loc.pargfid
    if pargfid == b"\0" * 16:
        return None
    return (pargfid, loc.name)


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.missing = OrderedDict()  # (pargfid, name) -> expiry (monotonic)
        self.by_dir = {}  # pargfid -> set of names, to drop a directory at once
        self.generation = {}  # pargfid -> changes seen, to spot racing lookups
        self.hits = self.misses = self.evictions = self.invalidations = 0
        self.reconfigure(self.options)

    def reconfigure(self, options):
        timeout = float(options.get("cache-timeout", 60))
        limit = int(options.get("cache-limit", 65536))
        if timeout < 0 or limit < 0:
            raise ValueError("cache-timeout and cache-limit must not be negative")
        self.timeout, self.limit = timeout, limit
        with self.lock:
            self._shrink()

    # -- the cache -------------------------------------------------------
    def _add(self, key, generation=None):
        if self.limit == 0 or self.timeout == 0:
            return
        with self.lock:
            if generation is not None and self.generation.get(key[0], 0) != generation:
                return  # the directory changed while the lookup ran
            self.missing[key] = time.monotonic() + self.timeout
            self.missing.move_to_end(key)
            self.by_dir.setdefault(key[0], set()).add(key[1])
            self._shrink()

    def _shrink(self):
        while len(self.missing) > self.limit:
            old, _ = self.missing.popitem(last=False)
            self._unindex(old)
            self.evictions += 1

    def _unindex(self, key):
        names = self.by_dir.get(key[0])
        if names is not None:
            names.discard(key[1])
            if not names:
                del self.by_dir[key[0]]

    def _forget(self, key):
        """The name may exist now: drop it and fence racing lookups."""
        if key is None:
            return
        with self.lock:
            self.generation[key[0]] = self.generation.get(key[0], 0) + 1
            if self.missing.pop(key, None) is not None:
                self._unindex(key)
                self.invalidations += 1

    def _drop_dir(self, pargfid):
        with self.lock:
            self.generation[pargfid] = self.generation.get(pargfid, 0) + 1
            for name in self.by_dir.pop(pargfid, ()):
                self.missing.pop((pargfid, name), None)
                self.invalidations += 1

    def _clear(self):
        with self.lock:
            for pargfid in self.by_dir:
                self.generation[pargfid] = self.generation.get(pargfid, 0) + 1
            self.invalidations += len(self.missing)
            self.missing.clear()
            self.by_dir.clear()

    def _cached(self, key):
        with self.lock:
            expiry = self.missing.get(key)
            if expiry is None:
                return False
            if expiry < time.monotonic():
                del self.missing[key]
                self._unindex(key)
                return False
            self.missing.move_to_end(key)
            return True

    # -- lookups ------------------------------------------------------------
    def lookup_fop(self, frame, this, loc, xdata):
        key = _key(loc)
        if key is not None and self._cached(key):
            self.hits += 1
            frame.error(errno.ENOENT)
            return
        self.misses += 1
        if key is not None:
            frame.local = (key, self.generation.get(key[0], 0))
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        pending = frame.local
        if pending is not None:
            key, generation = pending
            if op_ret < 0 and op_errno == errno.ENOENT:
                self._add(key, generation)
            elif op_ret >= 0:
                self._forget(key)
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    # -- entry fops that can make a name exist ---------------------------------
    def create_fop(self, frame, this, loc, flags, mode, umask, fd, xdata):
        self._forget(_key(loc))
        frame.wind(loc, flags, mode, umask, fd, xdata)

    def mkdir_fop(self, frame, this, loc, mode, umask, xdata):
        self._forget(_key(loc))
        frame.wind(loc, mode, umask, xdata)

    def mknod_fop(self, frame, this, loc, mode, rdev, umask, xdata):
        self._forget(_key(loc))
        frame.wind(loc, mode, rdev, umask, xdata)

    def symlink_fop(self, frame, this, linkname, loc, umask, xdata):
        self._forget(_key(loc))
        frame.wind(linkname, loc, umask, xdata)

    def link_fop(self, frame, this, oldloc, newloc, xdata):
        self._forget(_key(newloc))
        frame.wind(oldloc, newloc, xdata)

    def rename_fop(self, frame, this, oldloc, newloc, xdata):
        self._forget(_key(newloc))
        self._forget(_key(oldloc))
        frame.local = _key(oldloc)
        frame.wind(oldloc, newloc, xdata)

    # -- entry fops that make a name missing -----------------------------------
    def rename_cbk(self, frame, cookie, this, op_ret, op_errno, *rest):
        if op_ret >= 0 and frame.local is not None:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, *rest)

    def unlink_fop(self, frame, this, loc, xflags, xdata):
        frame.local = _key(loc)
        frame.wind(loc, xflags, xdata)

    def unlink_cbk(self, frame, cookie, this, op_ret, op_errno, preparent, postparent, xdata):
        if op_ret >= 0 and frame.local is not None:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, preparent, postparent, xdata)

    def rmdir_fop(self, frame, this, loc, xflags, xdata):
        frame.local = _key(loc)
        frame.wind(loc, xflags, xdata)

    def rmdir_cbk(self, frame, cookie, this, op_ret, op_errno, preparent, postparent, xdata):
        if op_ret >= 0 and frame.local is not None:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, preparent, postparent, xdata)

    # -- the rest of the world -------------------------------------------------
    def notify(self, event, info):
        if event in ("child_up", "child_down", "some_descendent_down", "some_descendent_up"):
            self._clear()
        elif event == "upcall" and "gfid" in info:
            self._drop_dir(info["gfid"])  # something in that directory changed

    def dump(self):
        with self.lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self.missing),
                "directories": len(self.by_dir),
                "evictions": self.evictions,
                "invalidations": self.invalidations,
                "cache-timeout": self.timeout,
                "cache-limit": self.limit,
            }
