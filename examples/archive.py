"""Cold files live in a store; the first access brings them back (cloudsync's job).

Files archived by `python3 -m glupy.archive archive` are stubs on the brick:
empty backend files whose xattrs hold the store key and the real size. This
brick-side translator

- reports the real size of stubs (lookup, stat, fstat, readdirp, setattr,
  link, rename), so clients see the file as it was;
- starts downloading a stub's content when it is opened for reading, and
  holds every fop that needs the content (readv, writev, truncate,
  fallocate, seek, ...) while a Python thread downloads it into the backend
  file directly, removes the marks, and then winds the fop; concurrent
  requests for one file wait for a single download;
- skips the download when the content is about to be thrown away (open with
  O_TRUNC, truncate or ftruncate to 0);
- refuses clients' attempts to set or remove the trusted.glupy.archive* xattrs.

Put it in the brick graph (it writes to the brick's backend files), anywhere
above storage/posix.

Options:
    store             where the content is, e.g. dir:/archive (required)
    store-class       dotted name of a glupy.archive.Store subclass to use
                      instead of a scheme; it gets `store` as its location
    store-*           any other store-KEY option reaches the store as KEY
    brick-path        the brick directory (default: glusterfsd's --brick-name)
    download-threads  downloads run at once (default 4)
"""

import concurrent.futures
import errno
import os
import threading

import glupy
from glupy import archive as cold

NULL_GFID = b"\0" * 16
# Fops that need a file's content, and the arguments naming the file(s).
CONTENT_FOPS = {
    "readv": ("fd",), "writev": ("fd",), "truncate": ("loc",),
    "ftruncate": ("fd",), "fallocate": ("fd",), "discard": ("fd",), "zerofill": ("fd",),
    "seek": ("fd",), "rchecksum": ("fd",), "copy_file_range": ("fd_in", "fd_out"),
}
# Callback arguments that may describe a stub, by fop.
SIZED_RESULTS = {
    "lookup": ("buf",), "stat": ("buf",), "fstat": ("buf",), "link": ("buf",),
    "rename": ("buf",), "setattr": ("preop_stbuf", "postop_stbuf"),
    "fsetattr": ("preop_stbuf", "postop_stbuf"),
}
PROTECTED_XATTRS = "trusted.glupy.archive"


def _brick_from_command_line():
    """glusterfsd's --brick-name, which glusterd and our tests always pass."""
    try:
        with open("/proc/self/cmdline", "rb") as stream:
            words = stream.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    for index, word in enumerate(words):
        if word == "--brick-name" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--brick-name="):
            return word.partition("=")[2]
    return None


def _gfid(target):
    """The gfid of a Loc or Fd's file, or None."""
    if target is None:
        return None
    inode = target.inode
    gfid = inode.gfid if inode is not None else None
    if (not gfid or gfid == NULL_GFID) and isinstance(target, glupy.Loc):
        gfid = target.gfid
    return gfid if gfid and gfid != NULL_GFID else None


def _protected(names):
    return any(name and name.startswith(PROTECTED_XATTRS) for name in names)


def _make_content_fop(fop, names):
    positions = [names.index(n) for n in CONTENT_FOPS[fop]]
    offset_at = names.index("offset") if fop in ("truncate", "ftruncate") else None

    def fop_method(self, frame, this, *args):
        for position in positions:
            gfid = _gfid(args[position])
            if gfid is None or self.stub_key(gfid) is None:
                continue
            if offset_at is not None and args[offset_at] == 0:
                self.discard(gfid)  # truncated to nothing: no need to fetch it
                continue
            self.restore_then(frame, gfid, lambda: fop_method(self, frame, this, *args))
            return
        frame.wind(*args)

    fop_method.__name__ = fop + "_fop"
    return fop_method


def _make_sized_cbk(fop, names):
    positions = [names.index(n) for n in SIZED_RESULTS[fop]]

    def cbk_method(self, frame, cookie, this, op_ret, op_errno, *args):
        if op_ret >= 0:
            for position in positions:
                self.show_real_size(args[position])
        frame.unwind(op_ret, op_errno, *args)

    cbk_method.__name__ = fop + "_cbk"
    return cbk_method


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.lock = threading.Lock()
        self.pending = {}  # gfid -> Future of its download
        self.downloads = self.waiters = self.failures = self.discarded = 0
        self.sizes_shown = 0
        self.brick = self.brick_path(self.options)
        self.store = self.open_store(self.options)
        threads = self.options.get("download-threads", "4")
        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"option download-threads: {threads!r} is not a number of threads")
        self.executor = concurrent.futures.ThreadPoolExecutor(int(threads), "glupy-archive")

    @staticmethod
    def brick_path(options):
        path = options.get("brick-path") or _brick_from_command_line()
        if not path:
            raise ValueError("option brick-path is missing: set it to the storage/posix directory")
        if not os.path.isdir(path):
            raise ValueError(f"option brick-path {path!r} is not a directory")
        return path

    @staticmethod
    def open_store(options):
        if not options.get("store"):
            raise ValueError("option store is missing, e.g. option store dir:/archive")
        extra = {key[len("store-"):]: value for key, value in options.items()
                 if key.startswith("store-") and key != "store-class"}
        return cold.open_store(options["store"], options.get("store-class"), extra)

    def reconfigure(self, options):
        store = self.open_store(options)
        old, self.store = self.store, store
        old.close()

    def fini(self):
        self.executor.shutdown(wait=False)
        self.store.close()

    # -- stubs -------------------------------------------------------------------
    def backend(self, gfid):
        return cold.backend_path(self.brick, gfid)

    def stub_key(self, gfid):
        try:
            return cold.archive_key(self.backend(gfid))
        except OSError:
            return None

    def discard(self, gfid):
        cold.drop_marks(self.backend(gfid))
        with self.lock:
            self.discarded += 1

    def show_real_size(self, iatt):
        if iatt is None or iatt.type != "file" or iatt.st_size != 0:
            return  # a stub is always an empty regular file on the brick
        try:
            size = cold.archived_size(self.backend(iatt.gfid))
        except OSError:
            return
        if size is not None:
            iatt.st_size = size
            iatt.st_blocks = (size + 511) // 512
            with self.lock:
                self.sizes_shown += 1

    def readdirp_cbk(self, frame, cookie, this, op_ret, op_errno, entries, xdata):
        for entry in entries or ():
            self.show_real_size(entry.stat)
        frame.unwind(op_ret, op_errno, entries, xdata)

    def open_fop(self, frame, this, loc, flags, fd, xdata):
        gfid = _gfid(loc)
        if gfid is not None and self.stub_key(gfid) is not None:
            mode = flags & os.O_ACCMODE
            if mode != os.O_RDONLY and flags & os.O_TRUNC:
                self.discard(gfid)  # the content is thrown away: nothing to fetch
            elif mode != os.O_WRONLY:
                self.download(gfid)  # reads follow: start now, they wait for it
        # Write-only opens fetch nothing yet: FUSE sends open(O_TRUNC) as
        # open(O_WRONLY) then truncate(0); a write fetches the content first.
        frame.wind(loc, flags, fd, xdata)

    # -- downloads ------------------------------------------------------------------
    def download(self, gfid, waiting=False):
        """The future of gfid's download, started unless one runs already."""
        with self.lock:
            future = self.pending.get(gfid)
            if future is None:
                future = self.executor.submit(self.restore, gfid)
                self.pending[gfid] = future
            elif waiting:
                self.waiters += 1
        return future

    def restore_then(self, frame, gfid, resume):
        """Calls resume() once gfid's content is back (or fails frame with EIO);
        one download per file however many requests wait for it."""
        future = self.download(gfid, waiting=True)
        future.add_done_callback(lambda done: self.resume(frame, done, resume))

    def restore(self, gfid):
        """Runs on a download thread; failures are logged here, once."""
        try:
            if cold.restore_file(self.backend(gfid), self.store):
                with self.lock:
                    self.downloads += 1
                self.log.info("restored %s from %s", self.backend(gfid), self.store)
        except Exception as error:
            with self.lock:
                self.failures += 1
            self.log.error("cannot restore %s from %s: %s", self.backend(gfid), self.store, error)
            raise
        finally:
            with self.lock:
                self.pending.pop(gfid, None)

    @staticmethod
    def resume(frame, done, resume):
        if done.exception() is None:
            resume()
        else:
            frame.error(errno.EIO)

    # -- the marks are the brick's business ------------------------------------------
    def setxattr_fop(self, frame, this, loc, dict, flags, xdata):
        if _protected(dict.keys() if dict is not None else ()):
            raise glupy.FopError(errno.EPERM)
        frame.wind(loc, dict, flags, xdata)

    def fsetxattr_fop(self, frame, this, fd, dict, flags, xdata):
        if _protected(dict.keys() if dict is not None else ()):
            raise glupy.FopError(errno.EPERM)
        frame.wind(fd, dict, flags, xdata)

    def removexattr_fop(self, frame, this, loc, name, xdata):
        if _protected([name]):
            raise glupy.FopError(errno.EPERM)
        frame.wind(loc, name, xdata)

    def fremovexattr_fop(self, frame, this, fd, name, xdata):
        if _protected([name]):
            raise glupy.FopError(errno.EPERM)
        frame.wind(fd, name, xdata)

    def dump(self):
        with self.lock:
            return {"store": str(self.store), "brick-path": self.brick,
                    "downloads": self.downloads, "waiters": self.waiters,
                    "downloading": len(self.pending), "failures": self.failures,
                    "discarded": self.discarded, "sizes-shown": self.sizes_shown}


for _fop in CONTENT_FOPS:
    setattr(xlator, _fop + "_fop", _make_content_fop(_fop, glupy.FOPS[_fop][0]))
for _fop in SIZED_RESULTS:
    setattr(xlator, _fop + "_cbk", _make_sized_cbk(_fop, glupy.FOPS[_fop][1]))
