"""A translator's life, for tests/test_lifecycle.py: init, reconfigure,
reload, dump and fini, each of which can recurse deeply (option deep,
e.g. "init,dump"); requests kept by Python (the frame held in
self.kept); values kept past the end of the graph; a cache that a reload
must free (option cache-mb). What happened goes, one line per event, to
the file named by option record."""

import asyncio
import errno
import sys
import threading
import time

import glupy

VERSION = "1"
# Recursion through a C builtin uses the C stack at every level: about
# 3 KiB a level, so 1200 levels need ~3.6 MiB, more than GlusterFS's
# threads have under a 1 MiB stack limit, well within the 8 MiB glupy
# promises.
DEPTH = 1200
sys.setrecursionlimit(max(sys.getrecursionlimit(), 3 * DEPTH))

# Values kept past the end of the graph (module level: not cleared by fini).
KEPT_VALUES: dict = {}


def deep(n=0):
    if n >= DEPTH:
        return n
    return sorted([n + 1], key=deep)[0]


def thread_name():
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.deep = set(self.options.get("deep", "").split(","))
        if "init" in self.deep:
            deep()
        self.cache = b"c" * (int(self.options.get("cache-mb", "0")) << 20)
        self.kept = {}
        self.lock = threading.Lock()
        self.record(f"init {VERSION}")

    def record(self, line):
        path = self.options.get("record")
        if path:
            with open(path, "a") as f:
                f.write(line + "\n")

    def reconfigure(self, options):
        self.deep = set(options.get("deep", "").split(","))
        if "reconfigure" in self.deep:
            deep()
        self.record("reconfigure")

    def dump(self):
        if "dump" in self.deep:
            deep()
        if self.options.get("dump-forge"):  # lines that try to forge others
            return {"version": VERSION, "key\nfop.forged": "value\nfop.forged=calls=1",
                    "a=b": "c", "big": "x" * 10000, "k" * 5000: "long key"}
        time.sleep(float(self.options.get("dump-seconds", "0")))
        return {"version": VERSION, "kept": len(self.kept)}

    def fini(self):
        if "fini" in self.deep:
            deep()
        self.record(f"fini {VERSION} kept={len(self.kept)}")
        if KEPT_VALUES:
            # Used after the graph is gone, from a thread of the module's own
            # (which must not need self: see SAFETY.md, "After fini").
            path = self.options.get("record")

            def record(line):
                with open(path, "a") as f:
                    f.write(line + "\n")

            threading.Timer(0.5, use_kept_values, (record,)).start()

    def _answer(self, frame, name, value):
        frame.unwind(len(value), 0, glupy.Dict({name: value}), None)

    def _keep(self, frame):
        with self.lock:
            self.kept[id(frame)] = frame

    def _release(self, frame):
        with self.lock:
            self.kept.pop(id(frame), None)

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if name == "user.lc.version":
            self._answer(frame, name, VERSION.encode())
        elif name == "user.lc.thread":
            self._answer(frame, name, thread_name().encode())
        elif name == "user.lc.keep":
            # Kept for keep-seconds, then answered from a thread.
            self._keep(frame)

            def later():
                self._release(frame)
                self._answer(frame, name, b"kept")

            threading.Timer(float(self.options.get("keep-seconds", "1")), later).start()
        else:
            frame.wind(loc, name, xdata)

    def lookup_cbk(self, frame, cookie, this, op_ret, op_errno, inode, buf, xdata, postparent):
        if op_ret == 0 and "inode" not in KEPT_VALUES and self.options.get("keep-values"):
            KEPT_VALUES["inode"] = inode
        frame.unwind(op_ret, op_errno, inode, buf, xdata, postparent)

    def writev_fop(self, frame, this, fd, vector, count, offset, flags, iobref, xdata):
        if self.options.get("keep-values"):
            KEPT_VALUES.update(fd=fd, vector=vector, xdata=xdata or glupy.Dict({"k": b"v"}))
        frame.wind(fd, vector, count, offset, flags, iobref, xdata)

    def ftruncate_fop(self, frame, this, fd, offset, xdata):
        # Kept and never answered: the end of the graph must answer it.
        self._keep(frame)

    async def fsync_fop(self, frame, this, fd, datasync, xdata):
        # Never finishes: the end of the graph must cancel it.
        await asyncio.sleep(3600)

    if VERSION == "1":
        # Only the first version intercepts statfs (a reload drops it).
        def statfs_fop(self, frame, this, loc, xdata):
            frame.wind(loc, xdata)


def use_kept_values(record):
    for name, value in sorted(KEPT_VALUES.items()):
        try:
            if name == "vector":
                bytes(value)
            elif name == "xdata":
                list(value.keys())
            else:
                value.gfid if name == "inode" else value.flags
            record(f"{name}: usable")
        except RuntimeError as e:
            record(f"{name}: RuntimeError: {e}")
    KEPT_VALUES.clear()  # dropped: nothing may be released into a freed graph
    record("values dropped")
