# Type stubs for glupy. The fop methods of Translator are generated from
# src/fops.table; edit the table, then run `make generate`.
from typing import Any, Awaitable, Generic, Iterator, Mapping, TypeVar

API_VERSION: int
HOSTED: bool
FOPS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]]
GLUPY_V1_FOPS: tuple[str, ...]

class FopError(OSError):
    def __init__(self, errno: int, message: str | None = ...) -> None: ...

class Xlator:
    """The GlusterFS translator a glupy module runs in (`this`)."""
    name: str
    type: str
    children: list[str]
    options: dict[str, str]

class Reply:
    """A callback's arguments, as `await frame.wind(...)` returns them in an
    async def fop method; return one to answer the request."""
    fop: str
    op_ret: int
    op_errno: int
    args: tuple[Any, ...]
    def __init__(self, fop: str, op_ret: int, op_errno: int, args: tuple[Any, ...]) -> None: ...
    def replace(self, **changes: Any) -> Reply: ...

_R = TypeVar("_R", bound=Reply)

# BEGIN generated reply classes (make generate)
class StatReply(Reply):
    buf: Iatt | None
    xdata: Dict | None
class ReadlinkReply(Reply):
    path: str | None
    buf: Iatt | None
    xdata: Dict | None
class MknodReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class MkdirReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class UnlinkReply(Reply):
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class RmdirReply(Reply):
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class SymlinkReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class RenameReply(Reply):
    buf: Iatt | None
    preoldparent: Iatt | None
    postoldparent: Iatt | None
    prenewparent: Iatt | None
    postnewparent: Iatt | None
    xdata: Dict | None
class LinkReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class TruncateReply(Reply):
    prebuf: Iatt | None
    postbuf: Iatt | None
    xdata: Dict | None
class OpenReply(Reply):
    fd: Fd
    xdata: Dict | None
class ReadvReply(Reply):
    vector: Vector
    count: int
    stbuf: Iatt | None
    iobref: Iobref | None
    xdata: Dict | None
class WritevReply(Reply):
    prebuf: Iatt | None
    postbuf: Iatt | None
    xdata: Dict | None
class StatfsReply(Reply):
    buf: Statvfs | None
    xdata: Dict | None
class FlushReply(Reply):
    xdata: Dict | None
class FsyncReply(Reply):
    prebuf: Iatt | None
    postbuf: Iatt | None
    xdata: Dict | None
class SetxattrReply(Reply):
    xdata: Dict | None
class GetxattrReply(Reply):
    dict: Dict | None
    xdata: Dict | None
class RemovexattrReply(Reply):
    xdata: Dict | None
class OpendirReply(Reply):
    fd: Fd
    xdata: Dict | None
class FsyncdirReply(Reply):
    xdata: Dict | None
class AccessReply(Reply):
    xdata: Dict | None
class CreateReply(Reply):
    fd: Fd
    inode: Inode | None
    buf: Iatt | None
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class FtruncateReply(Reply):
    prebuf: Iatt | None
    postbuf: Iatt | None
    xdata: Dict | None
class FstatReply(Reply):
    buf: Iatt | None
    xdata: Dict | None
class LkReply(Reply):
    flock: Flock | None
    xdata: Dict | None
class LookupReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    xdata: Dict | None
    postparent: Iatt | None
class ReaddirReply(Reply):
    entries: list[Dirent] | None
    xdata: Dict | None
class InodelkReply(Reply):
    xdata: Dict | None
class FinodelkReply(Reply):
    xdata: Dict | None
class EntrylkReply(Reply):
    xdata: Dict | None
class FentrylkReply(Reply):
    xdata: Dict | None
class XattropReply(Reply):
    xattr: Dict | None
    xdata: Dict | None
class FxattropReply(Reply):
    xattr: Dict | None
    xdata: Dict | None
class FgetxattrReply(Reply):
    dict: Dict | None
    xdata: Dict | None
class FsetxattrReply(Reply):
    xdata: Dict | None
class RchecksumReply(Reply):
    weak_checksum: int
    strong_checksum: bytes | None
    xdata: Dict | None
class SetattrReply(Reply):
    preop_stbuf: Iatt | None
    postop_stbuf: Iatt | None
    xdata: Dict | None
class FsetattrReply(Reply):
    preop_stbuf: Iatt | None
    postop_stbuf: Iatt | None
    xdata: Dict | None
class ReaddirpReply(Reply):
    entries: list[Dirent] | None
    xdata: Dict | None
class FremovexattrReply(Reply):
    xdata: Dict | None
class FallocateReply(Reply):
    preop_stbuf: Iatt | None
    postop_stbuf: Iatt | None
    xdata: Dict | None
class DiscardReply(Reply):
    preop_stbuf: Iatt | None
    postop_stbuf: Iatt | None
    xdata: Dict | None
class ZerofillReply(Reply):
    preop_stbuf: Iatt | None
    postop_stbuf: Iatt | None
    xdata: Dict | None
class IpcReply(Reply):
    xdata: Dict | None
class SeekReply(Reply):
    offset: int
    xdata: Dict | None
class LeaseReply(Reply):
    lease: Lease | None
    xdata: Dict | None
class GetactivelkReply(Reply):
    locklist: list[ActiveLock] | None
    xdata: Dict | None
class SetactivelkReply(Reply):
    xdata: Dict | None
class PutReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    preparent: Iatt | None
    postparent: Iatt | None
    xdata: Dict | None
class IcreateReply(Reply):
    inode: Inode | None
    buf: Iatt | None
    xdata: Dict | None
class NamelinkReply(Reply):
    prebuf: Iatt | None
    postbuf: Iatt | None
    xdata: Dict | None
class CopyFileRangeReply(Reply):
    stbuf: Iatt | None
    prebuf_dst: Iatt | None
    postbuf_dst: Iatt | None
    xdata: Dict | None
# END generated reply classes

class Frame(Generic[_R]):
    """One request. Answer it exactly once: wind it (and answer in the
    callback), unwind it, raise FopError, or keep it and finish it later
    from any thread. Dropped unanswered, it is answered EIO. In an async def
    fop method, wind() returns an awaitable of the reply."""
    local: Any
    fop: str
    state: str
    answered: bool
    unique: int
    pid: int
    uid: int
    gid: int
    id: int
    def wind(self, *args: Any, child: str | None = ...) -> Awaitable[_R]: ...
    def wind_fop(self, fop: str, *args: Any, child: str | None = ...) -> Awaitable[Reply]: ...
    def unwind(self, op_ret: int, op_errno: int, *args: Any) -> None: ...
    def error(self, errno: int) -> None: ...

class Inode:
    gfid: bytes
    ia_type: int
    type: str
    path: str | None
    ctx: Any

class Fd:
    inode: Inode | None
    flags: int
    pid: int
    ctx: Any

class Loc:
    path: str | None
    name: str | None
    gfid: bytes
    pargfid: bytes
    inode: Inode | None
    parent: Inode | None
    def __init__(self, path: str, inode: Inode | None = ..., parent: Inode | None = ..., gfid: bytes | None = ..., pargfid: bytes | None = ...) -> None: ...
    def copy(self, path: str | None = ..., inode: Inode | None = ..., parent: Inode | None = ...) -> Loc: ...

class Iatt:
    type: str
    ia_type: int
    gfid: bytes
    st_mode: int
    mode: int
    st_ino: int
    st_dev: int
    st_rdev: int
    st_size: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_blksize: int
    st_blocks: int
    ia_ino: int
    ia_dev: int
    ia_rdev: int
    ia_size: int
    ia_nlink: int
    ia_uid: int
    ia_gid: int
    ia_blksize: int
    ia_blocks: int
    st_atime: float
    st_mtime: float
    st_ctime: float
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    def copy(self) -> Iatt: ...

class Dict:
    """xdata and xattrs: str keys, bytes values (str and int accepted)."""
    def __init__(self, mapping: Mapping[str, bytes | str | int] | None = ...) -> None: ...
    def __getitem__(self, key: str) -> bytes: ...
    def __setitem__(self, key: str, value: bytes | str | int) -> None: ...
    def __delitem__(self, key: str) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def get(self, key: str, default: Any = ...) -> Any: ...
    def get_int(self, key: str, default: int | None = ...) -> int | None: ...
    def keys(self) -> list[str]: ...
    def items(self) -> list[tuple[str, bytes]]: ...
    def to_dict(self) -> dict[str, bytes]: ...
    def copy(self) -> Dict: ...

class Vector:
    """The data of readv/writev; bytes(v) copies, memoryview(v) does not."""
    count: int
    def __init__(self, data: bytes) -> None: ...
    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def tobytes(self) -> bytes: ...

class Iobref: ...

class Dirent:
    name: str
    d_ino: int
    d_off: int
    d_type: int
    stat: Iatt | None
    inode: Inode | None
    dict: Dict | None
    def __init__(self, name: str, d_ino: int = ..., d_off: int = ..., d_type: int = ..., stat: Iatt | None = ..., inode: Inode | None = ..., dict: Dict | None = ...) -> None: ...

class Flock:
    l_type: int
    l_whence: int
    l_start: int
    l_len: int
    l_pid: int
    l_owner: bytes

class Statvfs:
    f_bsize: int
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_favail: int
    f_fsid: int
    f_flag: int
    f_namemax: int

class Lease:
    cmd: int
    lease_type: int
    lease_id: bytes
    lease_flags: int

class AnswerTable:
    """Answers the host gives without Python (Translator.answer_table)."""
    fop: str
    key: str
    limit: int
    def add(self, *key: bytes | str, errno: int, ttl: float, token: int | None = ...) -> bool: ...
    def token(self, scope: bytes) -> int: ...
    def drop(self, *key: bytes | str) -> None: ...
    def clear(self) -> None: ...
    def get(self, *key: bytes | str) -> int | None: ...
    def stats(self) -> dict[str, int]: ...
    def __len__(self) -> int: ...

class ActiveLock:
    """One lock of getactivelk's reply (and setactivelk's list), copied."""
    flock: Flock
    client_uid: bytes
    lk_flags: int
    def __init__(self, flock: Flock, client_uid: bytes = ..., lk_flags: int = ...) -> None: ...

def errno_name(code: int) -> str: ...
def loop() -> Any:
    """The asyncio event loop async def fop methods run on (started on first use)."""

class Translator:
    xl: Xlator
    name: str
    options: dict[str, str]
    children: list[str]
    log: Any
    def __init__(self, xl: Xlator | None = ...) -> None: ...
    def answer_table(self, fop: str, key: str = ..., limit: int = ...) -> AnswerTable: ...
    def wind(self, frame: Frame[Any], *args: Any, child: str | None = ...) -> None: ...
    def unwind(self, frame: Frame[Any], op_ret: int, op_errno: int, *args: Any) -> None: ...
    # BEGIN generated fop methods (make generate)
    def stat_fop(self, frame: Frame[StatReply], this: Xlator, loc: Loc, xdata: Dict | None) -> object: ...
    def stat_cbk(self, frame: Frame[StatReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, buf: Iatt | None, xdata: Dict | None) -> object: ...
    def readlink_fop(self, frame: Frame[ReadlinkReply], this: Xlator, loc: Loc, size: int, xdata: Dict | None) -> object: ...
    def readlink_cbk(self, frame: Frame[ReadlinkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, path: str | None, buf: Iatt | None, xdata: Dict | None) -> object: ...
    def mknod_fop(self, frame: Frame[MknodReply], this: Xlator, loc: Loc, mode: int, rdev: int, umask: int, xdata: Dict | None) -> object: ...
    def mknod_cbk(self, frame: Frame[MknodReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def mkdir_fop(self, frame: Frame[MkdirReply], this: Xlator, loc: Loc, mode: int, umask: int, xdata: Dict | None) -> object: ...
    def mkdir_cbk(self, frame: Frame[MkdirReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def unlink_fop(self, frame: Frame[UnlinkReply], this: Xlator, loc: Loc, xflags: int, xdata: Dict | None) -> object: ...
    def unlink_cbk(self, frame: Frame[UnlinkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def rmdir_fop(self, frame: Frame[RmdirReply], this: Xlator, loc: Loc, xflags: int, xdata: Dict | None) -> object: ...
    def rmdir_cbk(self, frame: Frame[RmdirReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def symlink_fop(self, frame: Frame[SymlinkReply], this: Xlator, linkname: str | None, loc: Loc, umask: int, xdata: Dict | None) -> object: ...
    def symlink_cbk(self, frame: Frame[SymlinkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def rename_fop(self, frame: Frame[RenameReply], this: Xlator, oldloc: Loc, newloc: Loc, xdata: Dict | None) -> object: ...
    def rename_cbk(self, frame: Frame[RenameReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, buf: Iatt | None, preoldparent: Iatt | None, postoldparent: Iatt | None, prenewparent: Iatt | None, postnewparent: Iatt | None, xdata: Dict | None) -> object: ...
    def link_fop(self, frame: Frame[LinkReply], this: Xlator, oldloc: Loc, newloc: Loc, xdata: Dict | None) -> object: ...
    def link_cbk(self, frame: Frame[LinkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def truncate_fop(self, frame: Frame[TruncateReply], this: Xlator, loc: Loc, offset: int, xdata: Dict | None) -> object: ...
    def truncate_cbk(self, frame: Frame[TruncateReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, prebuf: Iatt | None, postbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def open_fop(self, frame: Frame[OpenReply], this: Xlator, loc: Loc, flags: int, fd: Fd, xdata: Dict | None) -> object: ...
    def open_cbk(self, frame: Frame[OpenReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, fd: Fd, xdata: Dict | None) -> object: ...
    def readv_fop(self, frame: Frame[ReadvReply], this: Xlator, fd: Fd, size: int, offset: int, flags: int, xdata: Dict | None) -> object: ...
    def readv_cbk(self, frame: Frame[ReadvReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, vector: Vector, count: int, stbuf: Iatt | None, iobref: Iobref | None, xdata: Dict | None) -> object: ...
    def writev_fop(self, frame: Frame[WritevReply], this: Xlator, fd: Fd, vector: Vector, count: int, offset: int, flags: int, iobref: Iobref | None, xdata: Dict | None) -> object: ...
    def writev_cbk(self, frame: Frame[WritevReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, prebuf: Iatt | None, postbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def statfs_fop(self, frame: Frame[StatfsReply], this: Xlator, loc: Loc, xdata: Dict | None) -> object: ...
    def statfs_cbk(self, frame: Frame[StatfsReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, buf: Statvfs | None, xdata: Dict | None) -> object: ...
    def flush_fop(self, frame: Frame[FlushReply], this: Xlator, fd: Fd, xdata: Dict | None) -> object: ...
    def flush_cbk(self, frame: Frame[FlushReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def fsync_fop(self, frame: Frame[FsyncReply], this: Xlator, fd: Fd, datasync: int, xdata: Dict | None) -> object: ...
    def fsync_cbk(self, frame: Frame[FsyncReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, prebuf: Iatt | None, postbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def setxattr_fop(self, frame: Frame[SetxattrReply], this: Xlator, loc: Loc, dict: Dict | None, flags: int, xdata: Dict | None) -> object: ...
    def setxattr_cbk(self, frame: Frame[SetxattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def getxattr_fop(self, frame: Frame[GetxattrReply], this: Xlator, loc: Loc, name: str | None, xdata: Dict | None) -> object: ...
    def getxattr_cbk(self, frame: Frame[GetxattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, dict: Dict | None, xdata: Dict | None) -> object: ...
    def removexattr_fop(self, frame: Frame[RemovexattrReply], this: Xlator, loc: Loc, name: str | None, xdata: Dict | None) -> object: ...
    def removexattr_cbk(self, frame: Frame[RemovexattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def opendir_fop(self, frame: Frame[OpendirReply], this: Xlator, loc: Loc, fd: Fd, xdata: Dict | None) -> object: ...
    def opendir_cbk(self, frame: Frame[OpendirReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, fd: Fd, xdata: Dict | None) -> object: ...
    def fsyncdir_fop(self, frame: Frame[FsyncdirReply], this: Xlator, fd: Fd, datasync: int, xdata: Dict | None) -> object: ...
    def fsyncdir_cbk(self, frame: Frame[FsyncdirReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def access_fop(self, frame: Frame[AccessReply], this: Xlator, loc: Loc, mask: int, xdata: Dict | None) -> object: ...
    def access_cbk(self, frame: Frame[AccessReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def create_fop(self, frame: Frame[CreateReply], this: Xlator, loc: Loc, flags: int, mode: int, umask: int, fd: Fd, xdata: Dict | None) -> object: ...
    def create_cbk(self, frame: Frame[CreateReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, fd: Fd, inode: Inode | None, buf: Iatt | None, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def ftruncate_fop(self, frame: Frame[FtruncateReply], this: Xlator, fd: Fd, offset: int, xdata: Dict | None) -> object: ...
    def ftruncate_cbk(self, frame: Frame[FtruncateReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, prebuf: Iatt | None, postbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def fstat_fop(self, frame: Frame[FstatReply], this: Xlator, fd: Fd, xdata: Dict | None) -> object: ...
    def fstat_cbk(self, frame: Frame[FstatReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, buf: Iatt | None, xdata: Dict | None) -> object: ...
    def lk_fop(self, frame: Frame[LkReply], this: Xlator, fd: Fd, cmd: int, flock: Flock | None, xdata: Dict | None) -> object: ...
    def lk_cbk(self, frame: Frame[LkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, flock: Flock | None, xdata: Dict | None) -> object: ...
    def lookup_fop(self, frame: Frame[LookupReply], this: Xlator, loc: Loc, xdata: Dict | None) -> object: ...
    def lookup_cbk(self, frame: Frame[LookupReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, xdata: Dict | None, postparent: Iatt | None) -> object: ...
    def readdir_fop(self, frame: Frame[ReaddirReply], this: Xlator, fd: Fd, size: int, offset: int, xdata: Dict | None) -> object: ...
    def readdir_cbk(self, frame: Frame[ReaddirReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, entries: list[Dirent] | None, xdata: Dict | None) -> object: ...
    def inodelk_fop(self, frame: Frame[InodelkReply], this: Xlator, volume: str | None, loc: Loc, cmd: int, flock: Flock | None, xdata: Dict | None) -> object: ...
    def inodelk_cbk(self, frame: Frame[InodelkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def finodelk_fop(self, frame: Frame[FinodelkReply], this: Xlator, volume: str | None, fd: Fd, cmd: int, flock: Flock | None, xdata: Dict | None) -> object: ...
    def finodelk_cbk(self, frame: Frame[FinodelkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def entrylk_fop(self, frame: Frame[EntrylkReply], this: Xlator, volume: str | None, loc: Loc, basename: str | None, cmd: int, type: int, xdata: Dict | None) -> object: ...
    def entrylk_cbk(self, frame: Frame[EntrylkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def fentrylk_fop(self, frame: Frame[FentrylkReply], this: Xlator, volume: str | None, fd: Fd, basename: str | None, cmd: int, type: int, xdata: Dict | None) -> object: ...
    def fentrylk_cbk(self, frame: Frame[FentrylkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def xattrop_fop(self, frame: Frame[XattropReply], this: Xlator, loc: Loc, optype: int, xattr: Dict | None, xdata: Dict | None) -> object: ...
    def xattrop_cbk(self, frame: Frame[XattropReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xattr: Dict | None, xdata: Dict | None) -> object: ...
    def fxattrop_fop(self, frame: Frame[FxattropReply], this: Xlator, fd: Fd, optype: int, xattr: Dict | None, xdata: Dict | None) -> object: ...
    def fxattrop_cbk(self, frame: Frame[FxattropReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xattr: Dict | None, xdata: Dict | None) -> object: ...
    def fgetxattr_fop(self, frame: Frame[FgetxattrReply], this: Xlator, fd: Fd, name: str | None, xdata: Dict | None) -> object: ...
    def fgetxattr_cbk(self, frame: Frame[FgetxattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, dict: Dict | None, xdata: Dict | None) -> object: ...
    def fsetxattr_fop(self, frame: Frame[FsetxattrReply], this: Xlator, fd: Fd, dict: Dict | None, flags: int, xdata: Dict | None) -> object: ...
    def fsetxattr_cbk(self, frame: Frame[FsetxattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def rchecksum_fop(self, frame: Frame[RchecksumReply], this: Xlator, fd: Fd, offset: int, len: int, xdata: Dict | None) -> object: ...
    def rchecksum_cbk(self, frame: Frame[RchecksumReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, weak_checksum: int, strong_checksum: bytes | None, xdata: Dict | None) -> object: ...
    def setattr_fop(self, frame: Frame[SetattrReply], this: Xlator, loc: Loc, stbuf: Iatt | None, valid: int, xdata: Dict | None) -> object: ...
    def setattr_cbk(self, frame: Frame[SetattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preop_stbuf: Iatt | None, postop_stbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def fsetattr_fop(self, frame: Frame[FsetattrReply], this: Xlator, fd: Fd, stbuf: Iatt | None, valid: int, xdata: Dict | None) -> object: ...
    def fsetattr_cbk(self, frame: Frame[FsetattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preop_stbuf: Iatt | None, postop_stbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def readdirp_fop(self, frame: Frame[ReaddirpReply], this: Xlator, fd: Fd, size: int, offset: int, xdata: Dict | None) -> object: ...
    def readdirp_cbk(self, frame: Frame[ReaddirpReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, entries: list[Dirent] | None, xdata: Dict | None) -> object: ...
    def fremovexattr_fop(self, frame: Frame[FremovexattrReply], this: Xlator, fd: Fd, name: str | None, xdata: Dict | None) -> object: ...
    def fremovexattr_cbk(self, frame: Frame[FremovexattrReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def fallocate_fop(self, frame: Frame[FallocateReply], this: Xlator, fd: Fd, keep_size: int, offset: int, len: int, xdata: Dict | None) -> object: ...
    def fallocate_cbk(self, frame: Frame[FallocateReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preop_stbuf: Iatt | None, postop_stbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def discard_fop(self, frame: Frame[DiscardReply], this: Xlator, fd: Fd, offset: int, len: int, xdata: Dict | None) -> object: ...
    def discard_cbk(self, frame: Frame[DiscardReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preop_stbuf: Iatt | None, postop_stbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def zerofill_fop(self, frame: Frame[ZerofillReply], this: Xlator, fd: Fd, offset: int, len: int, xdata: Dict | None) -> object: ...
    def zerofill_cbk(self, frame: Frame[ZerofillReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, preop_stbuf: Iatt | None, postop_stbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def ipc_fop(self, frame: Frame[IpcReply], this: Xlator, op: int, xdata: Dict | None) -> object: ...
    def ipc_cbk(self, frame: Frame[IpcReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def seek_fop(self, frame: Frame[SeekReply], this: Xlator, fd: Fd, offset: int, what: int, xdata: Dict | None) -> object: ...
    def seek_cbk(self, frame: Frame[SeekReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, offset: int, xdata: Dict | None) -> object: ...
    def lease_fop(self, frame: Frame[LeaseReply], this: Xlator, loc: Loc, lease: Lease | None, xdata: Dict | None) -> object: ...
    def lease_cbk(self, frame: Frame[LeaseReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, lease: Lease | None, xdata: Dict | None) -> object: ...
    def getactivelk_fop(self, frame: Frame[GetactivelkReply], this: Xlator, loc: Loc, xdata: Dict | None) -> object: ...
    def getactivelk_cbk(self, frame: Frame[GetactivelkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, locklist: list[ActiveLock] | None, xdata: Dict | None) -> object: ...
    def setactivelk_fop(self, frame: Frame[SetactivelkReply], this: Xlator, loc: Loc, locklist: list[ActiveLock] | None, xdata: Dict | None) -> object: ...
    def setactivelk_cbk(self, frame: Frame[SetactivelkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, xdata: Dict | None) -> object: ...
    def put_fop(self, frame: Frame[PutReply], this: Xlator, loc: Loc, mode: int, umask: int, flags: int, vector: Vector, count: int, offset: int, iobref: Iobref | None, xattr: Dict | None, xdata: Dict | None) -> object: ...
    def put_cbk(self, frame: Frame[PutReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, preparent: Iatt | None, postparent: Iatt | None, xdata: Dict | None) -> object: ...
    def icreate_fop(self, frame: Frame[IcreateReply], this: Xlator, loc: Loc, mode: int, xdata: Dict | None) -> object: ...
    def icreate_cbk(self, frame: Frame[IcreateReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, inode: Inode | None, buf: Iatt | None, xdata: Dict | None) -> object: ...
    def namelink_fop(self, frame: Frame[NamelinkReply], this: Xlator, loc: Loc, xdata: Dict | None) -> object: ...
    def namelink_cbk(self, frame: Frame[NamelinkReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, prebuf: Iatt | None, postbuf: Iatt | None, xdata: Dict | None) -> object: ...
    def copy_file_range_fop(self, frame: Frame[CopyFileRangeReply], this: Xlator, fd_in: Fd, off_in: int, fd_out: Fd, off_out: int, len: int, flags: int, xdata: Dict | None) -> object: ...
    def copy_file_range_cbk(self, frame: Frame[CopyFileRangeReply], cookie: object, this: Xlator, op_ret: int, op_errno: int, stbuf: Iatt | None, prebuf_dst: Iatt | None, postbuf_dst: Iatt | None, xdata: Dict | None) -> object: ...
    # END generated fop methods
