"""Cold files moved to a store and brought back on access.

The pieces examples/archive.py (the brick-side translator) and the archiving
command share:

- ``Store``: where archived content lives; subclass it (put/get/delete) for
  S3, Swift, another file system...; ``LocalDirectoryStore`` keeps the
  content in a directory (``dir:/archive``).
- the backend-file work: ``archive_file`` uploads a file of the brick, marks it
  and truncates it to a stub; ``restore_file`` downloads the content back into
  the stub and removes the marks.
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
import errno
import importlib
import os
import shutil
import stat
import sys
import tempfile
import time
import uuid

KEY_XATTR = "trusted.glupy.archive"
SIZE_XATTR = "trusted.glupy.archive.size"
MTIME_XATTR = "trusted.glupy.archive.mtime"
MARKS = (KEY_XATTR, SIZE_XATTR, MTIME_XATTR)
GFID_XATTR = "trusted.gfid"
# Directories of a brick that hold GlusterFS's own files, not the volume's.
INTERNAL_DIRS = (".glusterfs", ".trashcan")
NO_XATTR = (errno.ENODATA, errno.ENOENT, errno.ENOTSUP)


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
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as stream:
                shutil.copyfileobj(source, stream, 1 << 20)
                stream.flush()
                os.fsync(stream.fileno())
            os.rename(temporary, target)
        except BaseException:
            _unlink_quietly(temporary)
            raise

    def get(self, key, target):
        try:
            with open(self.path(key), "rb") as source:
                shutil.copyfileobj(source, target, 1 << 20)
        except FileNotFoundError:
            raise StoreError(f"{self}: no content for key {key}") from None

    def delete(self, key):
        _unlink_quietly(self.path(key))


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# Schemes of store specs; any other store is chosen by its class's dotted name.
SCHEMES = {"dir": LocalDirectoryStore}


def load_class(dotted):
    """The class named "package.module.Class" (or "package.module:Class")."""
    module_name, sep, attribute = dotted.rpartition(":") if ":" in dotted else dotted.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"store class {dotted!r} is not a dotted name like mypackage.mymodule.MyStore")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"store class {dotted!r}: cannot import {module_name}: {error}") from None
    cls = getattr(module, attribute, None)
    if not isinstance(cls, type) or not issubclass(cls, Store):
        raise ValueError(f"store class {dotted!r} is not a subclass of glupy.archive.Store")
    return cls


def open_store(spec, store_class=None, options=None):
    """A Store from a spec ("dir:/archive"), or from store_class and its location."""
    if store_class:
        return load_class(store_class)(spec, options)
    scheme, _, location = (spec or "").partition(":")
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}:..." for name in SCHEMES)
        raise ValueError(f"store {spec!r}: unknown scheme (known: {known}; or name a store class)")
    return SCHEMES[scheme](location, options)


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


def restore_file(path, store):
    """Downloads a stub's content back into it and removes the marks.
    Returns False if the file was not (or no longer) a stub."""
    key = archive_key(path)
    if key is None:
        return False
    size = int(_getxattr(path, SIZE_XATTR) or b"-1")
    mtime = _getxattr(path, MTIME_XATTR)
    if size < 0:
        raise StoreError(f"{path}: archived without {SIZE_XATTR}")
    before = os.lstat(path)
    with open(path, "r+b") as target:
        target.truncate(0)  # drop what a failed attempt may have left
        store.get(key, target)
        target.flush()
        written = os.fstat(target.fileno()).st_size  # stores may write out of order
        if written != size:
            raise StoreError(f"{store} gave {written} bytes for {key}, expected {size}")
        os.fsync(target.fileno())
    mtime_ns = int(mtime) if mtime else before.st_mtime_ns
    os.utime(path, ns=(before.st_atime_ns, mtime_ns), follow_symlinks=False)
    drop_marks(path)
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
    sys.exit(main())
