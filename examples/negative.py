"""A negative-lookup cache that is never stale for this client's own changes.

Lookups of names known to be missing in their directory are answered ENOENT
at once, without a round trip to the bricks. Unlike Glupy 1's negative.py:

- every entry fop that can make a name exist (create, mkdir, mknod, symlink,
  link, rename's target, put) invalidates the name before it is wound, and a
  per-directory generation stops a lookup or unlink that was already under way
  from caching a stale "missing" after such a change;
- unlink, rmdir and rename's source record the name as missing once done;
- entries expire (cache-timeout), the cache holds at most cache-limit names
  (least recently used go first), child up/down events empty it, and
  cache-invalidation upcalls drop the directory they name;
- the statedump shows hits, misses, size and evictions.

Place it on the CLIENT side (FUSE or gfapi volfile), where it saves the
network round trip; names created by other clients are seen after at most
cache-timeout seconds (sooner with features.cache-invalidation on the volume).

Options:
    cache-timeout   seconds a missing name is trusted (default 60)
    cache-limit     most names held (default 65536)
"""

import errno
import itertools
import threading
import time
from collections import OrderedDict

import glupy

NULL_GFID = b"\0" * 16
# Directories whose generation is remembered; older ones fold into a floor.
GENERATIONS_KEPT = 4096


def _key(loc):
    """(parent gfid, name) of a named loc, or None for a nameless (gfid) one."""
    if loc is None or not loc.name:
        return None
    pargfid = loc.pargfid
    if pargfid == NULL_GFID and loc.parent is not None:
        pargfid = loc.parent.gfid  # FUSE fills the parent inode, not always pargfid
    if pargfid == NULL_GFID:
        return None
    return (pargfid, loc.name)


def _option(options, key, default, convert):
    raw = options.get(key, default)
    try:
        value = convert(raw)
    except ValueError:
        raise ValueError(f"option {key}: {raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"option {key}: {raw!r} must not be negative")
    return value


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.missing = OrderedDict()  # (pargfid, name) -> expiry (monotonic)
        self.by_dir = {}  # pargfid -> set of names, to drop a directory at once
        # pargfid -> stamp of its last change; a directory not listed changed
        # at most at generation_floor. Stamps come from one counter, so a
        # pruned directory never looks unchanged to a lookup that saw it.
        self.generation = OrderedDict()
        self.generation_floor = 0
        self.stamps = itertools.count(1)
        self.hits = self.misses = self.evictions = self.invalidations = 0
        self.reconfigure(self.options)

    def reconfigure(self, options):
        timeout = _option(options, "cache-timeout", 60, float)
        limit = _option(options, "cache-limit", 65536, int)
        with self.lock:
            self.timeout, self.limit = timeout, limit
            self._shrink()

    # -- the cache (call with self.lock held) --------------------------------
    def _generation_of(self, pargfid):
        return self.generation.get(pargfid, self.generation_floor)

    def _changed(self, pargfid):
        self.generation[pargfid] = next(self.stamps)
        self.generation.move_to_end(pargfid)
        while len(self.generation) > GENERATIONS_KEPT:
            _, stamp = self.generation.popitem(last=False)
            self.generation_floor = max(self.generation_floor, stamp)

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

    def _remove(self, key):
        if self.missing.pop(key, None) is not None:
            self._unindex(key)
            self.invalidations += 1

    # -- the cache (public: take the lock) ----------------------------------
    def _snapshot(self, key):
        """What a fop must remember to record key as missing when it returns."""
        if key is None:
            return None
        with self.lock:
            return (key, self._generation_of(key[0]))

    def _add(self, snapshot):
        """Records a name as missing, unless its directory changed since snapshot."""
        if snapshot is None:
            return
        key, generation = snapshot
        with self.lock:
            if self.limit == 0 or self.timeout == 0:
                return
            if self._generation_of(key[0]) != generation:
                return  # an entry fop ran meanwhile: the answer may be stale
            self.missing[key] = time.monotonic() + self.timeout
            self.missing.move_to_end(key)
            self.by_dir.setdefault(key[0], set()).add(key[1])
            self._shrink()

    def _forget(self, key):
        """The name may exist now: drop it and fence racing lookups."""
        if key is None:
            return
        with self.lock:
            self._changed(key[0])
            self._remove(key)

    def _found(self, key):
        """A lookup found the name: it is not missing (no fence needed)."""
        if key is None:
            return
        with self.lock:
            self._remove(key)

    def _drop_dir(self, pargfid):
        with self.lock:
            self._changed(pargfid)
            for name in self.by_dir.pop(pargfid, ()):
                if self.missing.pop((pargfid, name), None) is not None:
                    self.invalidations += 1

    def _clear(self):
        with self.lock:
            # Every stamp handed out so far becomes stale at once.
            self.generation.clear()
            self.generation_floor = next(self.stamps)
            self.invalidations += len(self.missing)
            self.missing.clear()
            self.by_dir.clear()

    def _hit(self, key):
        """True (and counted) if key is cached as missing and not expired."""
        with self.lock:
            expiry = self.missing.get(key) if key is not None else None
            if expiry is not None and expiry < time.monotonic():
                del self.missing[key]
                self._unindex(key)
                expiry = None
            if expiry is None:
                self.misses += 1
                return False
            self.missing.move_to_end(key)
            self.hits += 1
            return True

    # -- lookups --------------------------------------------------------------
    def lookup_fop(self, frame, this, loc, xdata):
        key = _key(loc)
        if self._hit(key):
            frame.error(errno.ENOENT)
            return
        frame.local = self._snapshot(key)
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        snapshot = frame.local
        if snapshot is not None:
            if op_ret < 0 and op_errno == errno.ENOENT:
                self._add(snapshot)
            elif op_ret >= 0:
                self._found(snapshot[0])
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    # -- entry fops that can make a name exist ----------------------------------
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

    def put_fop(self, frame, this, loc, mode, umask, flags, vector, count, offset, iobref, xattr, xdata):
        self._forget(_key(loc))
        frame.wind(loc, mode, umask, flags, vector, count, offset, iobref, xattr, xdata)

    def rename_fop(self, frame, this, oldloc, newloc, xdata):
        self._forget(_key(newloc))
        frame.local = self._snapshot(_key(oldloc))
        frame.wind(oldloc, newloc, xdata)

    # -- entry fops that make a name missing ------------------------------------
    def rename_cbk(self, frame, cookie, this, op_ret, op_errno, *rest):
        if op_ret >= 0:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, *rest)

    def unlink_fop(self, frame, this, loc, xflags, xdata):
        frame.local = self._snapshot(_key(loc))
        frame.wind(loc, xflags, xdata)

    def unlink_cbk(self, frame, cookie, this, op_ret, op_errno, preparent, postparent, xdata):
        if op_ret >= 0:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, preparent, postparent, xdata)

    def rmdir_fop(self, frame, this, loc, xflags, xdata):
        frame.local = self._snapshot(_key(loc))
        frame.wind(loc, xflags, xdata)

    def rmdir_cbk(self, frame, cookie, this, op_ret, op_errno, preparent, postparent, xdata):
        if op_ret >= 0:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, preparent, postparent, xdata)

    # -- the rest of the world ----------------------------------------------------
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
