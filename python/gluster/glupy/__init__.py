"""gluster.glupy: translators written for Glupy 1 (GlusterFS 3.5 to 5.x) run
unchanged on glupy.

A Glupy 1 translator looks like this::

    from gluster.glupy import *

    class xlator(Translator):
        def __init__(self, c_this):
            Translator.__init__(self, c_this)

        def lookup_fop(self, frame, this, loc, xdata):
            print(loc.contents.path)
            dl.wind_lookup(frame, POINTER(xlator_t)(), loc, xdata)
            return 0

        def lookup_cbk(self, frame, cookie, this, op_ret, op_errno,
                       inode, buf, xdata, postparent):
            dl.unwind_lookup(frame, cookie, this, op_ret, op_errno,
                             inode, buf, xdata, postparent)
            return 0

How it maps onto glupy:

- ``Translator`` is a ``glupy.Translator``. Every ``<fop>_fop``/``<fop>_cbk``
  a subclass defines is wrapped, keeping its signature (the host checks it):
  the host's values reach the old code as ctypes pointers at their C structs
  (``POINTER(loc_t)``, ``POINTER(iatt_t)``, ``POINTER(inode_t)``,
  ``POINTER(fd_t)``, ``POINTER(dict_t)``), strings as bytes (as ctypes'
  ``c_char_p`` gave them on Python 3), missing values as NULL pointers.
  Values without a C struct of their own (vectors, iobrefs, dirent lists,
  statvfs, ``this``) are opaque pointers that must not be dereferenced.
- The originals are held in ``frame.local`` until the request is answered,
  which keeps the C memory the pointers show alive, and lets
  ``dl.wind_<fop>`` / ``dl.unwind_<fop>`` hand the originals back to
  ``frame.wind`` / ``frame.unwind``. Pointers a request did not receive
  cannot be passed on. (So Glupy 1 code must not use ``frame.local``.)
- ``frame`` is the ``glupy.Frame`` itself; ``dl.get_id(frame)`` is
  ``frame.id``, ``dl.get_rootunique(frame)`` is ``frame.unique``.
- Nothing here calls C: ``dl`` is Python. Glupy 1 code that sets
  ``dl.get_id.restype`` or ``argtypes`` keeps working (those are ignored).
- The structs are read-only views: writing a ``loc_t`` field corrupts the
  request (an ``iatt_t`` is a private copy: writing it changes what is
  passed on, as in Glupy 1).

New in Glupy 1 code: ``self.options`` (the volfile options) and ``self.log``.
"""

import functools as _functools
import inspect as _inspect
import os  # noqa: F401  (Glupy 1 translators got os and sys from import *)
import sys  # noqa: F401
from ctypes import *  # noqa: F401,F403  (and ctypes: POINTER, c_long, ...)
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_int64,
    c_uint,
    c_uint8,
    c_uint32,
    c_uint64,
    c_ubyte,
    c_void_p,
)
import ctypes as _ctypes

import glupy as _glupy
from glupy import GLUPY_V1_FOPS  # noqa: F401

_FOPS = _glupy.FOPS

# ---------------------------------------------------------------- structs
# The layouts of GlusterFS 10.x and 11.x on x86_64; src/compat_layout.rs checks
# every field against the host's bindings of the installed headers.


def _gluster_major():
    """The major version of the GlusterFS whose memory these structs show:
    the one the host was built for, or outside a host the installed
    libglusterfs (10.x exports dict_set_bin; 11.x made it an inline)."""
    hosted = getattr(sys.modules.get("glupy._glupy"), "GLUSTERFS_VERSION", None)
    if hosted:
        return int(hosted.split(".")[0])
    try:
        lib = _ctypes.CDLL("libglusterfs.so.0")
    except OSError:
        return 10
    return 10 if hasattr(lib, "dict_set_bin") else 11


_GLUSTER_MAJOR = _gluster_major()

uuid_t = c_ubyte * 16


class _Opaque(Structure):
    """A struct whose contents Python never reads."""

    _fields_ = []


class xlator_t(_Opaque):
    pass


class call_frame_t(_Opaque):
    pass


class dict_t(_Opaque):
    pass


class gf_dirent_t(_Opaque):
    pass


class iobref_t(_Opaque):
    pass


class iovec_t(_Opaque):
    pass


class statvfs_t(_Opaque):
    pass


class gf_flock_t(_Opaque):
    pass


class gf_lease_t(_Opaque):
    pass


class lock_migration_info_t(_Opaque):
    pass


class list_head(Structure):
    pass


list_head._fields_ = [("next", POINTER(list_head)), ("prev", POINTER(list_head))]


class inode_t(Structure):
    """The first fields of inode_t (the rest is GlusterFS's business)."""

    _fields_ = [("table", c_void_p), ("gfid", uuid_t)]


class fd_t(Structure):
    """The first fields of fd_t."""

    _fields_ = [
        ("pid", c_uint64),
        ("flags", c_int32),
        # gf_atomic_int64_t in 10.x, gf_atomic_uint32_t in 11.x
        ("refcount", c_int64 if _GLUSTER_MAJOR < 11 else c_uint32),
        ("inode_list", list_head),
        ("inode", POINTER(inode_t)),
    ]


class loc_t(Structure):
    _fields_ = [
        ("path", c_char_p),
        ("name", c_char_p),
        ("inode", POINTER(inode_t)),
        ("parent", POINTER(inode_t)),
        ("gfid", uuid_t),
        ("pargfid", uuid_t),
    ]


class rwxperm_t(Structure):
    # Glupy 1 called the exec bit "execn".
    _fields_ = [("read", c_uint8, 1), ("write", c_uint8, 1), ("execn", c_uint8, 1)]


class ia_prot_t(Structure):
    _fields_ = [
        ("suid", c_uint8, 1),
        ("sgid", c_uint8, 1),
        ("sticky", c_uint8, 1),
        ("owner", rwxperm_t),
        ("group", rwxperm_t),
        ("other", rwxperm_t),
    ]


# ia_type_t
(IA_INVAL, IA_IFREG, IA_IFDIR, IA_IFLNK, IA_IFBLK, IA_IFCHR, IA_IFIFO, IA_IFSOCK) = range(8)


class iatt_t(Structure):
    """struct iatt as of GlusterFS 4.x (Glupy 1's copy predated it)."""

    _fields_ = [
        ("ia_flags", c_uint64),
        ("ia_ino", c_uint64),
        ("ia_dev", c_uint64),
        ("ia_rdev", c_uint64),
        ("ia_size", c_uint64),
        ("ia_nlink", c_uint32),
        ("ia_uid", c_uint32),
        ("ia_gid", c_uint32),
        ("ia_blksize", c_uint32),
        ("ia_blocks", c_uint64),
        ("ia_atime", c_int64),
        ("ia_mtime", c_int64),
        ("ia_ctime", c_int64),
        ("ia_btime", c_int64),
        ("ia_atime_nsec", c_uint32),
        ("ia_mtime_nsec", c_uint32),
        ("ia_ctime_nsec", c_uint32),
        ("ia_btime_nsec", c_uint32),
        ("ia_attributes", c_uint64),
        ("ia_attributes_mask", c_uint64),
        ("ia_gfid", uuid_t),
        ("ia_type", c_uint),
        ("ia_prot", ia_prot_t),
    ]

    @property
    def ia_no(self):
        """Glupy 1's (misspelt) name of ia_ino."""
        return self.ia_ino


iatt = iatt_t

# What each fop/callback argument is a pointer to, by its name in glupy.FOPS.
_POINTEES = {
    **dict.fromkeys(("loc", "oldloc", "newloc"), loc_t),
    **dict.fromkeys(("fd", "fd_in", "fd_out"), fd_t),
    "inode": inode_t,
    **dict.fromkeys(("xdata", "dict", "xattr"), dict_t),
    **dict.fromkeys(
        (
            "buf",
            "prebuf",
            "postbuf",
            "preparent",
            "postparent",
            "stbuf",
            "preoldparent",
            "postoldparent",
            "prenewparent",
            "postnewparent",
            "preop_stbuf",
            "postop_stbuf",
            "prebuf_dst",
            "postbuf_dst",
        ),
        iatt_t,
    ),
    "vector": iovec_t,
    "iobref": iobref_t,
    "entries": gf_dirent_t,
    "flock": gf_flock_t,
    "lease": gf_lease_t,
    "locklist": lock_migration_info_t,
}


def _pointee(fop, name):
    if fop == "statfs" and name == "buf":
        return statvfs_t
    return _POINTEES.get(name)


# ------------------------------------------------- values held per request


class _HeldValues:
    """The host's values one request gave its Glupy 1 code, by the address
    its ctypes pointer shows. Holding them keeps that memory alive."""

    def __init__(self):
        self.by_address = {}

    def pointer(self, value, pointee):
        # Values without a C struct are shown at their object's address:
        # their pointee types have no fields, so nothing reads it.
        address = getattr(value, "address", None) or id(value)
        self.by_address[address] = value
        return POINTER(pointee)(pointee.from_address(address))

    def to_ctypes(self, fop, names, values):
        return [self._one_to_ctypes(fop, n, v) for n, v in zip(names, values)]

    def _one_to_ctypes(self, fop, name, value):
        pointee = _pointee(fop, name)
        if value is None:
            return POINTER(pointee)() if pointee else None
        if isinstance(value, str):
            return os.fsencode(value)
        if pointee is None:
            return value  # ints, and bytes (rchecksum)
        return self.pointer(value, pointee)

    def from_ctypes(self, what, names, values):
        return [self._one_from_ctypes(what, n, v) for n, v in zip(names, values)]

    def _one_from_ctypes(self, what, name, value):
        if isinstance(value, c_void_p):
            return self._original(what, name, value.value)
        if isinstance(value, _ctypes._Pointer):
            return self._original(what, name, _ctypes.addressof(value.contents) if value else None)
        if isinstance(value, _ctypes._SimpleCData):
            return value.value  # c_int(2), c_char_p(b"x"), ...
        return value  # None, ints, bytes, str, or glupy values

    def _original(self, what, name, address):
        if not address:
            return None
        try:
            return self.by_address[address]
        except KeyError:
            raise ValueError(
                f"{what}: argument {name!r} (0x{address:x}) is not a value this request "
                f"was given; Glupy 1 code can only pass on the pointers it received "
                f"(or None)"
            ) from None


def _held_values(frame):
    held = frame.local
    if not isinstance(held, _HeldValues):
        held = _HeldValues()
        frame.local = held
    return held


# ------------------------------------------------------------------ dl


def _check_count(what, names, values):
    if len(values) != len(names):
        raise TypeError(
            f"{what} takes {len(names)} arguments after the frame ({', '.join(names)}), "
            f"got {len(values)}"
        )


def _child_name(fop, xl):
    """Glupy 1 wound to the first child with a NULL xlator; a name picks one."""
    if xl is None or isinstance(xl, str):
        return xl
    if isinstance(xl, c_void_p) and not xl.value:
        return None
    if isinstance(xl, _ctypes._Pointer) and not xl:
        return None
    raise TypeError(
        f"dl.wind_{fop}: the xlator must be POINTER(xlator_t)() (the first child) "
        f"or a child's name, not {xl!r}"
    )


def _make_wind(fop):
    names = _FOPS[fop][0]
    what = f"dl.wind_{fop}"

    def wind(frame, xl, *args):
        _check_count(what, ("xl",) + names, (xl,) + args)
        values = _held_values(frame).from_ctypes(what, names, args)
        frame.wind(*values, child=_child_name(fop, xl))

    wind.__name__ = wind.__qualname__ = f"wind_{fop}"
    wind.__doc__ = f"wind_{fop}(frame, xl, {', '.join(names)}): STACK_WIND to a child."
    return wind


def _make_unwind(fop):
    names = _FOPS[fop][1]
    what = f"dl.unwind_{fop}"

    def unwind(frame, cookie, this, op_ret, op_errno, *args):
        _check_count(what, names, args)
        held = _held_values(frame)
        op_ret, op_errno = held.from_ctypes(what, ("op_ret", "op_errno"), (op_ret, op_errno))
        frame.unwind(int(op_ret), int(op_errno), *held.from_ctypes(what, names, args))

    unwind.__name__ = unwind.__qualname__ = f"unwind_{fop}"
    unwind.__doc__ = (
        f"unwind_{fop}(frame, cookie, this, op_ret, op_errno, {', '.join(names)}): "
        f"STACK_UNWIND_STRICT (cookie and this are not needed)."
    )
    return unwind


def _frame_field(what, frame, field):
    if not hasattr(frame, "wind"):
        raise TypeError(f"dl.{what} takes the frame a fop or callback was given, not {frame!r}")
    return getattr(frame, field)


def get_id(frame):
    """An id of the request, the same in its fop and its callback."""
    return _frame_field("get_id", frame, "id")


def get_rootunique(frame):
    """The request's unique number (call_stack_t.unique)."""
    return _frame_field("get_rootunique", frame, "unique")


class _Dl:
    """Glupy 1's ctypes handle on glupy.so, now plain Python functions:
    wind_<fop>, unwind_<fop>, get_id and get_rootunique."""

    def __getattr__(self, name):
        raise AttributeError(
            f"gluster.glupy.dl has no {name!r}: it offers wind_<fop>, unwind_<fop>, "
            f"get_id and get_rootunique (fops and callbacks register themselves by "
            f"their method names)"
        )


dl = _Dl()
for _fop in _FOPS:
    setattr(dl, "wind_" + _fop, _make_wind(_fop))
    setattr(dl, "unwind_" + _fop, _make_unwind(_fop))
dl.get_id = get_id
dl.get_rootunique = get_rootunique
del _fop

# ----------------------------------------------------------- Translator


def _wrap_fop(fop, method):
    names = _FOPS[fop][0]

    @_functools.wraps(method)
    def fop_with_ctypes_values(self, frame, this, *args):
        held = _held_values(frame)
        this = held.pointer(this, xlator_t)
        return method(self, frame, this, *held.to_ctypes(fop, names, args))

    return fop_with_ctypes_values


def _wrap_cbk(fop, method):
    names = _FOPS[fop][1]

    @_functools.wraps(method)
    def cbk_with_ctypes_values(self, frame, cookie, this, op_ret, op_errno, *args):
        held = _held_values(frame)
        this = held.pointer(this, xlator_t)
        return method(self, frame, cookie, this, op_ret, op_errno, *held.to_ctypes(fop, names, args))

    return cbk_with_ctypes_values


def _glupy1_method(name, value):
    """value, wrapped if it is a fop or callback in Glupy 1 terms."""
    fop, side = name[:-4], name[-3:]
    if not (name[-4:] in ("_fop", "_cbk") and fop in _FOPS and _inspect.isfunction(value)):
        return value  # anything else is the host's to accept or refuse
    if getattr(value, "_glupy1_wrapped", False):
        return value
    wrapped = (_wrap_fop if side == "fop" else _wrap_cbk)(fop, value)
    # The host checks the arity of what it will call: show it the original's.
    wrapped.__signature__ = _inspect.signature(value)
    wrapped._glupy1_wrapped = True
    return wrapped


class _WrapsLateMethods(type):
    """Glupy 1 registered the methods a class had when it was instantiated,
    so methods assigned to the class after its definition count too."""

    def __setattr__(cls, name, value):
        super().__setattr__(name, _glupy1_method(name, value))


class Translator(_glupy.Translator, metaclass=_WrapsLateMethods):
    """Base class of a Glupy 1 ``xlator``; ``c_this`` is the ``glupy.Xlator``."""

    def __init__(self, c_this=None):
        _glupy.Translator.__init__(self, c_this)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            wrapped = _glupy1_method(name, value)
            if wrapped is not value:
                type.__setattr__(cls, name, wrapped)
