#!/usr/bin/python3
"""A file-tree workload with a model of what every file must contain.

Workers each own a directory and, from their own seeded random stream,
create, write, overwrite, truncate, rename (also over existing names), link,
unlink, set and remove xattrs; every operation is applied to an in-memory
model too. Reader threads read other workers' files concurrently and check
them against the model. At the end every file is read back and compared
(sha256, size, link count, user.* xattrs); the manifest digest is the same
for the same seed and operation counts on any correct file system, which is
how a run on a glupy volume is compared with one on a plain volume.

    filetree.py DIR --seconds 60 [--workers 4] [--readers 2] [--seed 1]
    filetree.py DIR --ops 120,118,125,119      # replay exactly these counts

Prints one JSON object: ops per worker, reads, errors, manifest digest.
Exit status 0 only if nothing went wrong.
"""

import argparse
import hashlib
import json
import os
import random
import sys
import threading
import time

MAX_FILE = 256 * 1024
MAX_NAMES = 150  # per worker
XATTR_KEYS = [f"user.k{n}" for n in range(4)]
# Off with --no-nlink: on a distributed (DHT) volume GlusterFS reports link
# counts of hard-linked files that differ from POSIX's, with or without glupy.
CHECK_NLINK = True


class Inode:
    def __init__(self, data=b""):
        self.data = bytearray(data)
        self.xattrs = {}


class Worker:
    """One directory, one random stream, one model."""

    OPS = (("create", 4), ("write_at", 5), ("truncate", 2), ("rename", 2), ("rename_over", 1),
           ("link", 2), ("unlink", 2), ("setxattr", 2), ("removexattr", 1), ("verify", 3))

    def __init__(self, root, index, seed):
        self.index = index
        self.dir = os.path.join(root, f"w{index:02d}")
        self.rng = random.Random(seed * 1000 + index)
        self.names = {}  # name -> Inode
        self.lock = threading.Lock()
        self.ops = 0
        self.counter = 0
        self.errors = []
        self.bytes_written = 0
        self.choices = [op for op, weight in self.OPS for _ in range(weight)]

    # -- helpers

    def path(self, name):
        return os.path.join(self.dir, name)

    def new_name(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def pick(self):
        return self.rng.choice(sorted(self.names)) if self.names else None

    def links(self, inode):
        return sum(1 for other in self.names.values() if other is inode)

    def fail(self, what):
        self.errors.append(what)

    # -- operations (each applied to the file system and to the model)

    def op_create(self):
        name = self.new_name("f")
        data = self.rng.randbytes(self.rng.randint(0, MAX_FILE))
        with open(self.path(name), "wb") as stream:
            done = 0
            while done < len(data):
                step = self.rng.randint(1, 65536)
                stream.write(data[done:done + step])
                done += step
        self.names[name] = Inode(data)
        self.bytes_written += len(data)

    def op_write_at(self):
        name = self.pick()
        if name is None:
            return self.op_create()
        inode = self.names[name]
        offset = self.rng.randint(0, len(inode.data))
        chunk = self.rng.randbytes(self.rng.randint(1, 65536))
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            os.pwrite(fd, chunk, offset)
        finally:
            os.close(fd)
        inode.data[offset:offset + len(chunk)] = chunk
        self.bytes_written += len(chunk)

    def op_truncate(self):
        name = self.pick()
        if name is None:
            return None
        inode = self.names[name]
        size = self.rng.randint(0, min(MAX_FILE, 2 * len(inode.data) + 1))
        os.truncate(self.path(name), size)
        if size < len(inode.data):
            del inode.data[size:]
        else:
            inode.data.extend(bytes(size - len(inode.data)))
        return None

    def op_rename(self):
        name = self.pick()
        if name is None:
            return None
        new = self.new_name("r")
        os.rename(self.path(name), self.path(new))
        self.names[new] = self.names.pop(name)
        return None

    def op_rename_over(self):
        if len(self.names) < 2:
            return None
        source, target = self.rng.sample(sorted(self.names), 2)
        if self.names[source] is self.names[target]:
            return None  # rename between links of one file does nothing (POSIX)
        os.rename(self.path(source), self.path(target))
        self.names[target] = self.names.pop(source)
        return None

    def op_link(self):
        name = self.pick()
        if name is None:
            return None
        new = self.new_name("l")
        os.link(self.path(name), self.path(new))
        self.names[new] = self.names[name]
        return None

    def op_unlink(self):
        if len(self.names) < 6:
            return None
        name = self.pick()
        os.unlink(self.path(name))
        del self.names[name]
        return None

    def op_setxattr(self):
        name = self.pick()
        if name is None:
            return None
        key = self.rng.choice(XATTR_KEYS)
        value = self.rng.randbytes(self.rng.randint(1, 200))
        os.setxattr(self.path(name), key, value)
        self.names[name].xattrs[key] = value
        return None

    def op_removexattr(self):
        name = self.pick()
        if name is None or not self.names[name].xattrs:
            return None
        key = self.rng.choice(sorted(self.names[name].xattrs))
        os.removexattr(self.path(name), key)
        del self.names[name].xattrs[key]
        return None

    def op_verify(self):
        name = self.pick()
        if name is not None:
            self.check(name)

    # -- checks

    def check(self, name):
        """The file system shows what the model says for name."""
        inode = self.names[name]
        path = self.path(name)
        with open(path, "rb") as stream:
            data = stream.read()
        if data != inode.data:
            self.fail(f"{path}: content differs ({len(data)} bytes, expected {len(inode.data)})")
        st = os.stat(path)
        if CHECK_NLINK and st.st_nlink != self.links(inode):
            self.fail(f"{path}: nlink {st.st_nlink}, expected {self.links(inode)}")
        xattrs = {key: os.getxattr(path, key) for key in os.listxattr(path) if key.startswith("user.")}
        if xattrs != inode.xattrs:
            self.fail(f"{path}: xattrs {sorted(xattrs)} expected {sorted(inode.xattrs)}")

    def step(self):
        op = self.rng.choice(self.choices)
        if op in ("create", "link") and len(self.names) >= MAX_NAMES:
            op = "unlink"  # keeps the tree (and the final check) bounded
        with self.lock:
            try:
                getattr(self, "op_" + op)()
            except OSError as error:
                self.fail(f"{op}: {error}")
            self.ops += 1

    def run(self, deadline, limit):
        os.makedirs(self.dir, exist_ok=True)
        while (limit is None and time.monotonic() < deadline) or (limit is not None and self.ops < limit):
            self.step()

    def final_check(self):
        listed = sorted(os.listdir(self.dir))
        if listed != sorted(self.names):
            missing = sorted(set(self.names) - set(listed))
            extra = sorted(set(listed) - set(self.names))
            self.fail(f"{self.dir}: missing {missing[:10]} extra {extra[:10]}")
        for name in sorted(self.names):
            try:
                self.check(name)
            except OSError as error:
                self.fail(f"final check of {name}: {error}")

    def manifest(self):
        return {f"w{self.index:02d}/{name}": [hashlib.sha256(inode.data).hexdigest(), len(inode.data),
                                              self.links(inode),
                                              {k: v.hex() for k, v in sorted(inode.xattrs.items())}]
                for name, inode in sorted(self.names.items())}


def reader(workers, stop, seed, stats):
    """Reads random files of random workers while they work."""
    rng = random.Random(seed)
    while not stop.is_set():
        worker = rng.choice(workers)
        with worker.lock:
            if not worker.names:
                continue
            name = rng.choice(sorted(worker.names))  # not the worker's stream
            try:
                worker.check(name)
                stats["reads"] += 1
            except OSError as error:
                worker.fail(f"reader: {name}: {error}")


def run(root, seconds, workers, readers, seed, ops):
    limits = ops or [None] * workers
    pool = [Worker(root, index, seed) for index in range(len(limits))]
    deadline = time.monotonic() + seconds
    stop, stats = threading.Event(), {"reads": 0}
    threads = [threading.Thread(target=w.run, args=(deadline, limit)) for w, limit in zip(pool, limits)]
    threads += [threading.Thread(target=reader, args=(pool, stop, seed + n, stats))
                for n in range(readers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads[:len(pool)]:
        thread.join()
    stop.set()
    for thread in threads[len(pool):]:
        thread.join()
    elapsed = time.monotonic() - started
    for worker in pool:
        worker.final_check()
    manifest = {}
    for worker in pool:
        manifest.update(worker.manifest())
    errors = [error for worker in pool for error in worker.errors]
    return {
        "ops": [worker.ops for worker in pool],
        "reads": stats["reads"],
        "seconds": round(elapsed, 1),
        "ops_per_second": round(sum(w.ops for w in pool) / elapsed, 1),
        "bytes_written": sum(w.bytes_written for w in pool),
        "files": len(manifest),
        "manifest": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest(),
        "errors": errors[:50],
        "error_count": len(errors),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ops", help="comma-separated op counts per worker (replay)")
    parser.add_argument("--no-nlink", action="store_true", help="do not check link counts")
    args = parser.parse_args()
    global CHECK_NLINK
    CHECK_NLINK = not args.no_nlink
    ops = [int(n) for n in args.ops.split(",")] if args.ops else None
    result = run(args.root, args.seconds, args.workers, args.readers, args.seed, ops)
    print(json.dumps(result))
    return 0 if result["error_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
