"""glupy: GlusterFS translators written in Python.

A translator is a module with ``class xlator(glupy.Translator)``; it defines
``<fop>_fop(self, frame, this, *args)`` and/or
``<fop>_cbk(self, frame, cookie, this, op_ret, op_errno, *args)`` for the
fops it handles. Every other fop passes straight through to the child.
"""

import errno as _errno
import logging as _logging
import os as _os

from ._fops import FOPS, GLUPY_V1_FOPS
from ._aio import Reply, loop

try:  # the host (glupy.so, inside a GlusterFS process) provides these
    from ._glupy import (  # noqa: F401
        ActiveLock,
        AnswerTable,
        Dict,
        Dirent,
        Fd,
        Flock,
        Frame,
        Iatt,
        Inode,
        Iobref,
        Lease,
        Loc,
        Statvfs,
        Vector,
        Xlator,
    )

    HOSTED = True
except ImportError:  # outside GlusterFS: checks, docs and type checking
    HOSTED = False

__all__ = [
    "Translator",
    "FopError",
    "Reply",
    "loop",
    "FOPS",
    "GLUPY_V1_FOPS",
    "HOSTED",
    "ActiveLock",
    "AnswerTable",
    "Dict",
    "Dirent",
    "Fd",
    "Flock",
    "Frame",
    "Iatt",
    "Inode",
    "Iobref",
    "Lease",
    "Loc",
    "Statvfs",
    "Vector",
    "Xlator",
]

API_VERSION = 1


class FopError(OSError):
    """Raise in a fop or callback to answer the request op_ret -1 with errno.

    ``raise FopError(errno.ENOENT)``; any OSError with an errno does the same.
    """

    def __init__(self, errno, message=None):
        super().__init__(errno, message or _os.strerror(errno))


class _InstanceLogger(_logging.Logger):
    """A translator's own logger: named like the shared ``glupy.<name>``
    logger, whose level and handlers it follows, but marking its records
    with the translator's identity, so each line reaches the GlusterFS log
    of the translator's own graph (two glfs instances in one process can
    hold translators of the same name)."""

    def __init__(self, name, log_id):
        super().__init__(name)
        self.parent = _logging.getLogger(name)
        self.glupy_log_id = log_id

    def isEnabledFor(self, level):
        # Not cached: logging clears the caches of registered loggers only.
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()

    def makeRecord(self, *args, **kwargs):
        record = super().makeRecord(*args, **kwargs)
        record.glupy_log_id = self.glupy_log_id
        return record


def _instance_logger(name, log_id):
    if log_id is None:  # outside the host: glupy check, tests
        return _logging.getLogger(name)
    return _InstanceLogger(name, log_id)


class Translator:
    """Base class of ``xlator`` in a glupy module.

    The host builds it with the GlusterFS translator (``this``) as its one
    argument. Attributes: ``xl`` (that translator), ``name``, ``options``
    (every volfile option, str to str, kept current by reconfigure),
    ``children`` (names) and ``log`` (a logging.Logger writing to the
    GlusterFS log of the process).

    Optional methods the host calls: ``reconfigure(options)``,
    ``notify(event, info)`` ("child_up", "child_down", "upcall" with
    info["gfid"], ...), ``dump()`` (a mapping shown in the statedump),
    ``fini()``, ``forget(gfid)``, ``release(gfid)``, ``releasedir(gfid)``.
    """

    def __init__(self, xl=None):
        self.xl = xl
        self.name = getattr(xl, "name", "glupy")
        self.options = getattr(xl, "options", {})
        self.children = list(getattr(xl, "children", []))
        self.log = _instance_logger("glupy." + self.name, getattr(xl, "log_id", None))

    def answer_table(self, fop, key="entry", limit=65536):
        """A table of answers the host gives for ``fop`` without Python.

        Call it in ``__init__``. ``key`` is "entry" ((parent gfid, name) of
        the fop's loc), "name" (the name, in any directory) or "gfid" (the
        loc's or fd's gfid). ``table.add(*key, errno=..., ttl=seconds,
        token=None)`` makes the host answer that request op_ret -1 with the
        errno, before Python and without the GIL, until it expires, is
        dropped (``table.drop(*key)``, ``table.drop(parent)``,
        ``table.clear()``), is pushed out by ``limit`` (oldest first), or a
        create/mknod/mkdir/symlink/link/rename/put of that name (entry
        tables) or an upcall passes through this translator. Pass
        ``token=table.token(parent)``, taken when the fop started, to have
        an ``add`` refused if the directory changed since. Counters:
        ``table.stats()`` and the statedump (``answers.<fop>``).
        """
        xl = self.xl
        if xl is None or not hasattr(xl, "answer_table"):
            raise RuntimeError("answer tables exist only inside GlusterFS (glupy.so)")
        return xl.answer_table(fop, key, limit)

    # Conveniences mirroring Frame's methods, for Glupy-style code.
    def wind(self, frame, *args, child=None):
        """Winds frame's fop to a child (the first unless named)."""
        frame.wind(*args, child=child)

    def unwind(self, frame, op_ret, op_errno, *args):
        """Answers frame with op_ret, op_errno and the callback's arguments."""
        frame.unwind(op_ret, op_errno, *args)


def errno_name(code):
    """'ENOENT' for 2, for log lines."""
    return _errno.errorcode.get(code, str(code))
