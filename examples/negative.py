"""A negative-lookup cache that is never stale for this client's own changes.

Lookups of names known to be missing in their directory are answered ENOENT
at once, without a round trip to the bricks, and without Python: the cache is
a `glupy.AnswerTable`, which the host consults in the fop entry before the
GIL. Python decides what goes in; the host answers from it. Unlike Glupy 1's
negative.py:

- every entry fop that can make a name exist (create, mkdir, mknod, symlink,
  link, rename's target, put) drops the name in the host before it is wound,
  and fences a lookup or unlink that was already under way (its `add` comes
  with the directory's token from when it started, and is refused);
- unlink, rmdir and rename's source record the name as missing once done
  (not a rename onto another link of the same file, which leaves both names);
- entries expire (cache-timeout), the cache holds at most cache-limit names
  (oldest added go first), child up/down events empty it, and
  cache-invalidation upcalls drop the directory they name (in the host);
- the statedump shows hits, misses, size, evictions and invalidations.

Place it on the CLIENT side (FUSE or gfapi volfile), where it saves the
network round trip; names created by other clients are seen after at most
cache-timeout seconds (sooner with features.cache-invalidation on the volume).

Options:
    cache-timeout   seconds a missing name is trusted (default 60)
    cache-limit     most names held (default 65536)
"""

import errno

import glupy

NULL_GFID = b"\0" * 16


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


def _gfid(loc):
    if loc.gfid != NULL_GFID or loc.inode is None:
        return loc.gfid
    return loc.inode.gfid


def _may_be_one_file(oldloc, newloc):
    """Whether rename's target may be another link of its source's file: then
    rename succeeds and changes nothing (POSIX), and both names stay."""
    if newloc is None or (newloc.inode is None and newloc.gfid == NULL_GFID):
        return False  # no target: the rename makes it
    source, target = _gfid(oldloc), _gfid(newloc)
    return source == NULL_GFID or target == NULL_GFID or source == target


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
        self.missing = self.answer_table("lookup", key="entry")
        self.reconfigure(self.options)

    def reconfigure(self, options):
        self.timeout = _option(options, "cache-timeout", 60, float)
        self.missing.limit = _option(options, "cache-limit", 65536, int)

    # -- the cache ------------------------------------------------------------
    def _snapshot(self, key):
        """What a fop must remember to record key as missing when it returns."""
        return None if key is None else (key, self.missing.token(key[0]))

    def _add(self, snapshot):
        """Records a name as missing, unless its directory changed since snapshot."""
        if snapshot is not None:
            (pargfid, name), token = snapshot
            self.missing.add(pargfid, name, errno=errno.ENOENT, ttl=self.timeout, token=token)

    # -- lookups: only those the host did not answer reach Python --------------
    def lookup_fop(self, frame, this, loc, xdata):
        frame.local = self._snapshot(_key(loc))
        frame.wind(loc, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        if op_ret < 0 and op_errno == errno.ENOENT:
            self._add(frame.local)
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    # Entry fops that can make a name exist need no method: the host drops
    # their target from the table before winding them.

    # -- entry fops that make a name missing ------------------------------------
    def rename_fop(self, frame, this, oldloc, newloc, xdata):
        # Onto another link of its own file, the source stays.
        frame.local = None if _may_be_one_file(oldloc, newloc) else self._snapshot(_key(oldloc))
        frame.wind(oldloc, newloc, xdata)

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
        # (Upcalls are handled by the host: the table drops the directory.)
        if event in ("child_up", "child_down", "some_descendent_down", "some_descendent_up"):
            self.missing.clear()

    def dump(self):
        stats = self.missing.stats()
        return {
            "hits": stats["hits"],
            "misses": stats["misses"],
            "entries": stats["entries"],
            "evictions": stats["evicted"],
            "invalidations": stats["invalidated"],
            "refused": stats["refused"],
            "cache-timeout": self.timeout,
            "cache-limit": self.missing.limit,
        }
