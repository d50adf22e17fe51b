"""Refuses code that a user other than root could change.

Translators run as root, so a module, or any directory or symlink on the
way to it, that another user can write or replace would let that user run
code as root. The rule is OpenSSH's StrictModes, applied from / down to the
file and through every symlink met (the link and its target's path): each
component is owned by root (or by the user the process runs as) and is not
writable by its group or by others (POSIX ACLs that grant write show as a
group-writable mode). One exception, as in systemd's safe path resolution: a
directory writable by others but sticky (/tmp) may be passed through, since
the component under it must be root's and nobody else may rename or remove
it there. A directory modules are imported from must not be writable at
all, sticky or not: another user could add a module to it.

Files are read through the descriptor that was checked (fstat), so what is
compiled is what was checked.
"""

import errno
import os
import pwd
import stat

MAX_SYMLINKS = 40
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class Untrusted(Exception):
    """A path another user could change; the message names it and the fix."""


def trusted_uids():
    """Root, and the user this process runs as (no one gains anything)."""
    return frozenset({0, os.geteuid()})


def _owner(uid):
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _writers(mode):
    who = [name for bit, name in ((stat.S_IWGRP, "its group"), (stat.S_IWOTH, "other users")) if mode & bit]
    return " and ".join(who)


def check_node(path, st, trusted, passed_through=False):
    """Raises Untrusted unless st (of path) is trusted's and not writable by others.

    passed_through: path is a directory only walked through, which may be
    sticky and writable by others (the component under it is checked too).
    """
    if st.st_uid not in trusted:
        chown = "chown -h root" if stat.S_ISLNK(st.st_mode) else "chown root"
        raise Untrusted(f"{path} is owned by {_owner(st.st_uid)}, not by root: run '{chown} {path}'")
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & OTHERS_WRITE:
        return  # a symlink's own mode is never used
    if passed_through and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return
    raise Untrusted(
        f"{path} is writable by {_writers(st.st_mode)} (mode {stat.S_IMODE(st.st_mode):04o}): "
        f"run 'chmod g-w,o-w {path}'"
    )


def resolve(path, trusted):
    """(real path, lstat) of absolute path, after checking every directory
    walked through and every symlink followed on the way; the last component
    itself is left to the caller."""
    pending = [part for part in reversed(path.split("/")) if part]
    current, st = "/", os.lstat("/")
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":  # every prefix of current was checked on the way down
            current = os.path.dirname(current)
            st = os.lstat(current)
            continue
        check_node(current, st, trusted, passed_through=True)
        candidate = os.path.join(current, part)
        found = os.lstat(candidate)
        if stat.S_ISLNK(found.st_mode):
            check_node(candidate, found, trusted)
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                current, st = "/", os.lstat("/")
            pending.extend(part for part in reversed(target.split("/")) if part)
            continue
        current, st = candidate, found
    return current, st


def check_dir(path, trusted):
    """The real path of directory path, which only trusted users can change."""
    real, st = resolve(path, trusted)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    check_node(real, st, trusted)
    return real


def read_file(path, trusted):
    """(real path, contents) of a file only trusted users can change, read
    from the descriptor whose owner and mode were checked."""
    real, st = resolve(path, trusted)
    if not stat.S_ISREG(st.st_mode):
        raise Untrusted(f"{real} is not a regular file")
    check_node(real, st, trusted)
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise Untrusted(f"{real} was replaced while it was being checked")
        check_node(real, opened, trusted)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return real, b"".join(chunks)
    finally:
        os.close(fd)
