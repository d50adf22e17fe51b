"""Cold files moved to a store and brought back on access.

The pieces examples/archive.py (the brick-side translator) and the archiving
command share:

- ``Store``: where archived content lives; subclass it (put/get/delete) for
  S3, Swift, another file system...; ``LocalDirectoryStore`` keeps the
  content in a directory (``dir:/archive``).
- ``AsyncStore``: the same with coroutines, for examples/archive_async.py and
  asyncio client libraries; ``AsyncLocalDirectoryStore`` is ``dir:`` for it.
  Either kind works with either translator and the command:
  ``AsyncStoreAdapter`` awaits a Store's calls on threads, ``BlockingStore``
  runs an AsyncStore's coroutines on a loop of its own.
- the backend-file work: ``archive_file`` uploads a file of the brick, marks it
  and truncates it to a stub; ``restore_file`` (``restore_file_async``)
  downloads the content back into the stub and removes the marks.
- the command, run on the brick's server:

    python3 -m glupy.archive archive --brick /data/brick --store dir:/archive --older-than 30
    python3 -m glupy.archive list    --brick /data/brick
    python3 -m glupy.archive restore --brick /data/brick --store dir:/archive [PATH ...]

A stub is a backend file with the xattr ``trusted.glupy.archive`` (the store
key), ``trusted.glupy.archive.size`` (the real size) and
``trusted.glupy.archive.mtime`` (the real mtime, ns); it is truncated to 0
bytes and keeps its mtime, so it stays cold.
"""

import argparse
import asyncio
import builtins
import errno
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
from typing import NamedTuple

KEY_XATTR = "trusted.glupy.archive"
SIZE_XATTR = "trusted.glupy.archive.size"
MTIME_XATTR = "trusted.glupy.archive.mtime"
MARKS = (KEY_XATTR, SIZE_XATTR, MTIME_XATTR)
GFID_XATTR = "trusted.gfid"
# Directories of a brick that hold GlusterFS's own files, not the volume's.
INTERNAL_DIRS = (".glusterfs", ".trashcan")
NO_XATTR = (errno.ENODATA, errno.ENOENT, errno.ENOTSUP)
CHUNK_BYTES = 1 << 20


class StoreError(Exception):
    """The store cannot give or take some content."""


# --------------------------------------------------------------------- stores

class Store:
    """Where archived content lives; one object per translator or command.

    ``location`` is the part of the store spec after ``SCHEME:`` (or the whole
    spec when a class is named); ``options`` are the ``store-*`` volfile
    options (or ``--store-option KEY=VALUE``), without the prefix. Methods run
    on Python threads of the brick, several at once: make them thread-safe.
    Keys are the files' gfids (36-character UUID strings).
    """

    def __init__(self, location, options=None):
        self.location = location
        self.options = dict(options or {})

    def put(self, key, source):
        """Stores everything readable from the binary file object source under key."""
        raise NotImplementedError

    def get(self, key, target):
        """Writes key's content into the binary, seekable file object target
        (an empty file; writing pieces at their offsets is fine); raises
        StoreError if the store does not have it."""
        raise NotImplementedError

    def delete(self, key):
        """Forgets key (no error if it is not there)."""
        raise NotImplementedError

    def close(self):
        """Releases connections; the store is not used afterwards."""

    def __str__(self):
        return f"{type(self).__name__}({self.location})"


class LocalDirectoryStore(Store):
    """Content in files ROOT/<first 2 characters of the key>/<key>.

    Uploads are written to a temporary file and renamed, so a key is either
    complete or absent.
    """

    def __init__(self, location, options=None):
        super().__init__(location, options)
        if not location or not os.path.isabs(location):
            raise ValueError(f"store dir:{location}: the directory must be an absolute path")
        self.root = location

    def path(self, key):
        if not key or "/" in key or key.startswith("."):
            raise StoreError(f"{key!r} is not a store key")
        return os.path.join(self.root, key[:2], key)

    def put(self, key, source):
        upload = self.start_upload(key)
        try:
            shutil.copyfileobj(source, upload.stream, CHUNK_BYTES)
            upload.commit()
        except BaseException:
            upload.abort()
            raise

    def get(self, key, target):
        with self.open_content(key) as source:
            shutil.copyfileobj(source, target, CHUNK_BYTES)

    def delete(self, key):
        _unlink_quietly(self.path(key))

    # The steps of put and get, for AsyncLocalDirectoryStore too.
    def start_upload(self, key):
        """An _Upload of key: a temporary file to fill, then commit or abort."""
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".upload-")
        return _Upload(os.fdopen(fd, "wb"), temporary, target)

    def open_content(self, key):
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise StoreError(f"{self}: no content for key {key}") from None


class _Upload:
    """A key being uploaded: complete (renamed into place) or absent."""

    def __init__(self, stream, temporary, target):
        self.stream, self.temporary, self.target = stream, temporary, target

    def commit(self):
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.rename(self.temporary, self.target)

    def abort(self):
        self.stream.close()
        _unlink_quietly(self.temporary)


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------- asyncio stores

class AsyncStore:
    """Store's contract with coroutines: where archived content lives, for
    code on an asyncio loop (examples/archive_async.py).

    Its coroutines run on the glupy event loop, which serves every translator
    of the process: never block it. Talk to the network through asyncio
    libraries (aiohttp, aiobotocore...) and run blocking work with
    ``await self.run(function, *args)``, on ``self.executor`` (the
    translator's download threads; None: the loop's default executor).
    ``source`` and ``target`` are ordinary binary file objects of the brick's
    disk; ``await self.run(target.write, chunk)`` keeps big writes off the loop.
    """

    executor = None  # set by whoever opens the store

    def __init__(self, location, options=None):
        self.location = location
        self.options = dict(options or {})

    async def put(self, key, source):
        """Stores everything readable from the binary file object source under key."""
        raise NotImplementedError

    async def get(self, key, target):
        """Writes key's content into the binary, seekable file object target
        (an empty file; writing pieces at their offsets is fine); raises
        StoreError if the store does not have it."""
        raise NotImplementedError

    async def delete(self, key):
        """Forgets key (no error if it is not there)."""
        raise NotImplementedError

    async def close(self):
        """Releases connections; the store is not used afterwards."""

    async def run(self, function, *args):
        """function(*args) on self.executor, awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def __str__(self):
        return f"{type(self).__name__}({self.location})"


class AsyncLocalDirectoryStore(AsyncStore):
    """LocalDirectoryStore (``dir:``) for asyncio: the same files, copied a
    chunk at a time on executor threads, so a cancelled download (a deadline)
    stops at the next chunk instead of running on in a thread."""

    def __init__(self, location, options=None):
        super().__init__(location, options)
        self.files = LocalDirectoryStore(location, options)  # paths, checks, steps
        self.root = self.files.root

    async def put(self, key, source):
        upload = await self.run(self.files.start_upload, key)
        try:
            await self.copy(source, upload.stream)
            await self.run(upload.commit)
        except BaseException:
            await self.run(upload.abort)
            raise

    async def get(self, key, target):
        source = await self.run(self.files.open_content, key)
        try:
            await self.copy(source, target)
        finally:
            await self.run(source.close)

    async def delete(self, key):
        await self.run(self.files.delete, key)

    async def copy(self, source, target):
        while True:
            chunk = await self.run(source.read, CHUNK_BYTES)
            if not chunk:
                return
            await self.run(target.write, chunk)


class AsyncStoreAdapter(AsyncStore):
    """A (sync) Store awaited from asyncio code: each call runs on
    self.executor. A cancelled call still holds its thread until the Store
    returns: threads cannot be interrupted."""

    def __init__(self, store):
        super().__init__(store.location, store.options)
        self.store = store

    async def put(self, key, source):
        await self.run(self.store.put, key, source)

    async def get(self, key, target):
        await self.run(self.store.get, key, target)

    async def delete(self, key):
        await self.run(self.store.delete, key)

    async def close(self):
        await self.run(self.store.close)

    def __str__(self):
        return str(self.store)


class BlockingStore(Store):
    """An AsyncStore called from sync code (examples/archive.py, the command):
    its coroutines run on an event loop of its own, on one thread, so the
    sessions it opens stay on one loop."""

    def __init__(self, store):
        super().__init__(store.location, store.options)
        self.store = store
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="glupy-archive-store",
                                       daemon=True)
        self.thread.start()

    def wait(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def put(self, key, source):
        self.wait(self.store.put(key, source))

    def get(self, key, target):
        self.wait(self.store.get(key, target))

    def delete(self, key):
        self.wait(self.store.delete(key))

    def close(self):
        try:
            self.wait(self.store.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()

    def __str__(self):
        return str(self.store)


# Schemes of store specs; any other store is chosen by its class's dotted name.
SCHEMES = {"dir": LocalDirectoryStore}
ASYNC_SCHEMES = {"dir": AsyncLocalDirectoryStore}


def _import_as_caller(name):
    """Module name as the translator calling would import it: through the
    nearest `__import__` on the stack that is not Python's own (a glupy
    translator's also finds the modules of its module-path)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_builtins.get("__import__") is builtins.__import__:
        frame = frame.f_back
    importer = frame.f_builtins["__import__"] if frame is not None else builtins.__import__
    return importer(name, fromlist=("__name__",))


def load_class(dotted):
    """The class named "package.module.Class" (or "package.module:Class"):
    a Store or an AsyncStore."""
    module_name, sep, attribute = dotted.rpartition(":") if ":" in dotted else dotted.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"store class {dotted!r} is not a dotted name like mypackage.mymodule.MyStore")
    try:
        module = _import_as_caller(module_name)
    except ImportError as error:
        raise ValueError(f"store class {dotted!r}: cannot import {module_name}: {error}") from None
    cls = getattr(module, attribute, None)
    if not isinstance(cls, type) or not issubclass(cls, (Store, AsyncStore)):
        raise ValueError(f"store class {dotted!r} is not a subclass of glupy.archive.Store "
                         "or glupy.archive.AsyncStore")
    return cls


def _new_store(spec, store_class, options, schemes):
    if store_class:
        return load_class(store_class)(spec, options)
    scheme, _, location = (spec or "").partition(":")
    if scheme not in schemes:
        known = ", ".join(f"{name}:..." for name in schemes)
        raise ValueError(f"store {spec!r}: unknown scheme (known: {known}; or name a store class)")
    return schemes[scheme](location, options)


def open_store(spec, store_class=None, options=None):
    """A Store from a spec ("dir:/archive"), or from store_class and its
    location; an AsyncStore class comes wrapped in a BlockingStore."""
    store = _new_store(spec, store_class, options, SCHEMES)
    return BlockingStore(store) if isinstance(store, AsyncStore) else store


def store_from_volfile(options, opener=open_store):
    """The store the volfile options store, store-class and store-KEY name,
    opened by opener (open_store or open_async_store)."""
    if not options.get("store"):
        raise ValueError("option store is missing, e.g. option store dir:/archive")
    extra = {key[len("store-"):]: value for key, value in options.items()
             if key.startswith("store-") and key != "store-class"}
    return opener(options["store"], options.get("store-class"), extra)


def open_async_store(spec, store_class=None, options=None, executor=None):
    """An AsyncStore from a spec or store_class, as open_store; a Store class
    comes wrapped in an AsyncStoreAdapter. Blocking work runs on executor."""
    store = _new_store(spec, store_class, options, ASYNC_SCHEMES)
    if isinstance(store, Store):
        store = AsyncStoreAdapter(store)
    store.executor = executor
    return store


# ----------------------------------------------------------- backend files

def backend_path(brick, gfid):
    """The brick's hard link of the file with this gfid (16 bytes)."""
    text = str(uuid.UUID(bytes=bytes(gfid)))
    return os.path.join(brick, ".glusterfs", text[0:2], text[2:4], text)


def _getxattr(path, name):
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError as error:
        if error.errno in NO_XATTR:
            return None
        raise


def archive_key(path):
    """The store key of a stub, None for any other file."""
    value = _getxattr(path, KEY_XATTR)
    return value.decode() if value else None


def archived_size(path):
    """The real size of a stub, None for any other file."""
    if archive_key(path) is None:
        return None
    value = _getxattr(path, SIZE_XATTR)
    return int(value) if value else None


def archive_file(path, store):
    """Uploads a backend file, marks it and truncates it. Returns the key, or
    None with a reason when the file was not archived."""
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        return None, "not a regular file"
    if archive_key(path) is not None:
        return None, "already archived"
    if before.st_size == 0:
        return None, "empty"
    gfid = _getxattr(path, GFID_XATTR)
    if not gfid or len(gfid) != 16:
        return None, "no trusted.gfid (not created through GlusterFS)"
    key = str(uuid.UUID(bytes=gfid))
    with open(path, "rb") as source:
        store.put(key, source)
    after = os.lstat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        store.delete(key)
        return None, "modified while archiving"
    # The key goes last: a file is a stub only once its size is recorded.
    os.setxattr(path, SIZE_XATTR, str(before.st_size).encode(), follow_symlinks=False)
    os.setxattr(path, MTIME_XATTR, str(before.st_mtime_ns).encode(), follow_symlinks=False)
    os.setxattr(path, KEY_XATTR, key.encode(), follow_symlinks=False)
    os.truncate(path, 0)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns), follow_symlinks=False)
    return key, None


class Stub(NamedTuple):
    """What restoring a stub needs to know."""
    key: str
    size: int
    mtime_ns: int
    atime_ns: int


def read_stub(path):
    """The Stub of a backend file, None if it is not one."""
    key = archive_key(path)
    if key is None:
        return None
    size = int(_getxattr(path, SIZE_XATTR) or b"-1")
    mtime = _getxattr(path, MTIME_XATTR)
    if size < 0:
        raise StoreError(f"{path}: archived without {SIZE_XATTR}")
    before = os.lstat(path)
    return Stub(key, size, int(mtime) if mtime else before.st_mtime_ns, before.st_atime_ns)


def open_emptied(path):
    """A stub opened for its content to be written back."""
    target = open(path, "r+b")
    target.truncate(0)  # drop what a failed attempt may have left
    return target


def check_restored(target, stub, store):
    target.flush()
    written = os.fstat(target.fileno()).st_size  # stores may write out of order
    if written != stub.size:
        raise StoreError(f"{store} gave {written} bytes for {stub.key}, expected {stub.size}")
    os.fsync(target.fileno())


def unstub(path, stub):
    """The restored file gets its mtime back and stops being a stub."""
    os.utime(path, ns=(stub.atime_ns, stub.mtime_ns), follow_symlinks=False)
    drop_marks(path)


def restore_file(path, store):
    """Downloads a stub's content back into it and removes the marks.
    Returns False if the file was not (or no longer) a stub."""
    stub = read_stub(path)
    if stub is None:
        return False
    with open_emptied(path) as target:
        store.get(stub.key, target)
        check_restored(target, stub, store)
    unstub(path, stub)
    return True


async def restore_file_async(path, store, executor=None):
    """restore_file with an AsyncStore: the download is awaited, the work on
    the backend file (open, fsync, xattrs) runs on executor's threads."""
    loop = asyncio.get_running_loop()
    stub = await loop.run_in_executor(executor, read_stub, path)
    if stub is None:
        return False
    target = await loop.run_in_executor(executor, open_emptied, path)
    try:
        await store.get(stub.key, target)
        await loop.run_in_executor(executor, check_restored, target, stub, store)
    finally:
        # On a thread: a write of a cancelled download may still hold the file.
        await loop.run_in_executor(executor, target.close)
    await loop.run_in_executor(executor, unstub, path, stub)
    return True


def drop_marks(path):
    """Makes a stub an ordinary (empty) file: for truncation to 0 and O_TRUNC."""
    for name in MARKS:  # the key first: without it the file is no stub
        try:
            os.removexattr(path, name, follow_symlinks=False)
        except OSError as error:
            if error.errno not in NO_XATTR:
                raise


def volume_files(brick):
    """(path relative to the brick, absolute path) of the volume's regular
    files, each inode once, GlusterFS's internal directories skipped."""
    seen = set()
    for directory, subdirs, files in os.walk(brick):
        if directory == brick:
            subdirs[:] = [d for d in subdirs if d not in INTERNAL_DIRS]
        subdirs.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                yield os.path.relpath(path, brick), path, st


# -------------------------------------------------------------------- command

def skip_reason(path, st, cutoff, min_size):
    """Why the command leaves a file alone, or None to archive it."""
    if archive_key(path) is not None:
        return "already archived"
    if st.st_mtime > cutoff:
        return "modified recently"
    if st.st_size < max(min_size, 1):
        return "empty" if st.st_size == 0 else f"smaller than {min_size} bytes"
    return None


def command_archive(args, store, out):
    cutoff = time.time() - args.older_than * 86400
    archived = skipped = failed = total = 0
    for name, path, st in volume_files(args.brick):
        try:
            reason = skip_reason(path, st, cutoff, args.min_size)
            key = None
            if reason is None and args.dry_run:
                print(f"would archive {name} ({st.st_size} bytes)", file=out)
                continue
            if reason is None:
                key, reason = archive_file(path, store)
        except (OSError, StoreError) as error:
            print(f"FAILED {name}: {error}", file=out)
            failed += 1
            continue
        if key is None:
            skipped += 1
            if args.verbose:
                print(f"skipped {name}: {reason}", file=out)
            continue
        archived += 1
        total += st.st_size
        print(f"archived {name} ({st.st_size} bytes) as {key}", file=out)
    print(f"{archived} files archived ({total} bytes), {skipped} skipped, {failed} failed", file=out)
    return 1 if failed else 0


def command_restore(args, store, out):
    wanted = [os.path.normpath(p.lstrip("/")) for p in args.paths]
    restored = failed = 0
    for name, path, _st in volume_files(args.brick):
        if wanted and name not in wanted:
            continue
        try:
            if restore_file(path, store):
                restored += 1
                print(f"restored {name}", file=out)
        except (OSError, StoreError) as error:
            print(f"FAILED {name}: {error}", file=out)
            failed += 1
    print(f"{restored} files restored, {failed} failed", file=out)
    return 1 if failed else 0


def command_list(args, _store, out):
    count = 0
    for name, path, _st in volume_files(args.brick):
        key = archive_key(path)
        if key is not None:
            count += 1
            print(f"{archived_size(path)}\t{key}\t{name}", file=out)
    print(f"{count} files archived", file=sys.stderr)
    return 0


def store_options(pairs):
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--store-option {pair!r} is not KEY=VALUE")
        options[key] = value
    return options


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python3 -m glupy.archive",
                                     description="Archive cold files of a brick to a store.")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub, needs_store=True):
        sub.add_argument("--brick", required=True, help="the brick directory (storage/posix)")
        if needs_store:
            sub.add_argument("--store", required=True, help="store spec, e.g. dir:/archive")
            sub.add_argument("--store-class", help="dotted name of a glupy.archive.Store subclass")
            sub.add_argument("--store-option", action="append", default=[], metavar="KEY=VALUE",
                             help="an option for the store (repeatable)")
        return sub

    archive = common(commands.add_parser("archive", help="move cold files to the store"))
    archive.add_argument("--older-than", type=float, required=True, metavar="DAYS",
                         help="archive files not modified for this many days")
    archive.add_argument("--min-size", type=int, default=1, metavar="BYTES",
                         help="leave smaller files alone (default 1)")
    archive.add_argument("--dry-run", action="store_true", help="only say what would be archived")
    archive.add_argument("-v", "--verbose", action="store_true", help="say why files are skipped")
    restore = common(commands.add_parser("restore", help="bring files back from the store"))
    restore.add_argument("paths", nargs="*", help="paths in the volume (default: every stub)")
    common(commands.add_parser("list", help="show the archived files"), needs_store=False)
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.brick, ".glusterfs")):
        parser.error(f"--brick {args.brick}: not a brick directory (it has no .glusterfs)")
    if getattr(args, "older_than", 0) < 0:
        parser.error("--older-than must not be negative")
    return args


COMMANDS = {"archive": command_archive, "restore": command_restore, "list": command_list}


def main(argv=None, out=sys.stdout):
    args = parse_args(argv)
    args.brick = os.path.abspath(args.brick)
    store = None
    if hasattr(args, "store"):
        try:
            store = open_store(args.store, args.store_class, store_options(args.store_option))
        except (ValueError, argparse.ArgumentTypeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        return COMMANDS[args.command](args, store, out)
    finally:
        if store is not None:
            store.close()


if __name__ == "__main__":
    # Run the module as glupy.archive, not as this __main__ copy: store
    # classes named by --store-class subclass glupy.archive's classes.
    from glupy import archive as _importable

    sys.exit(_importable.main())
