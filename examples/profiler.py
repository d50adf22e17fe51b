"""Records every fop that passes, with its latency and result, as JSON.

GlusterFlow's job done right: every fop is covered (fd-based ones too, with
their file's path), each record carries the callback's result and the
latency, and the cost stays bounded: records are sampled, queued without
ever blocking a fop (dropped and counted when the queue is full), and sent in
batches by a background thread.

One JSON object per fop:
    {"host": "server1", "volume": "vol0", "translator": "vol0-profiler",
     "source": "brick:/data/b1", "fop": "writev", "path": "/dir/file", "gfid": "0b8a...", "op_ret": 4096,
     "op_errno": 0, "start": 1700000000.123456, "latency_us": 183,
     "pid": 4242, "uid": 0}
rename and link add "path2" (the new name). "source" is the process the
translator runs in: "brick:BRICK-PATH", "fuse:MOUNTPOINT", else
"PROGRAM:" (a gfapi application, a daemon).

Options:
    sink            where records go (required):
                      file:/var/log/glusterfs/flow.jsonl   JSON lines appended
                      udp:127.0.0.1:9999                   datagrams of JSON lines
                      tcp:collector.example:9999           a stream of JSON lines
    sample-rate     fraction of fops recorded, 0 to 1 (default 1)
    queue-size      records waiting to be sent before new ones are dropped
                    (default 10000)
    batch-size      most records sent at once (default 500)
    flush-interval  seconds a record may wait for its batch to fill (default 1)
    volume-name     the "volume" field (default: this translator's name up to
                    its last "-", which is the volume name in glusterd graphs)
    fops            comma-separated fops to record (default: all)

Read the stream with `python3 -m glupy.flow --listen udp:127.0.0.1:9999`.
"""

import json
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import OrderedDict

import glupy

NULL_GFID = b"\0" * 16
PATHS_KEPT = 65536  # gfid -> path memory for fd-based fops
LOCATORS = ("loc", "oldloc", "fd", "fd_in")  # arguments that name the file
SECOND_LOCATORS = ("newloc", "fd_out")
GFID_RESULTS = ("inode", "buf", "stbuf", "postbuf", "postop_stbuf", "fd")
# Fops whose success tells which path a gfid has now, for later fd-based fops.
NAMING_FOPS = {"lookup", "create", "mkdir", "mknod", "symlink", "link", "open", "opendir"}
UDP_PAYLOAD = 60000  # below the 64 KiB datagram limit


def _option(options, key, default, convert, low, high=None):
    raw = options.get(key, default)
    try:
        value = convert(raw)
    except ValueError:
        raise ValueError(f"option {key}: {raw!r} is not a number") from None
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"option {key}: {raw!r} must be {bounds}")
    return value


def _gfid_text(gfid):
    return str(uuid.UUID(bytes=gfid)) if gfid and gfid != NULL_GFID else ""


def _address(text, what):
    """("host", port) of "host:port" or "[v6]:port"."""
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: {text!r} is not HOST:PORT")
    return host, int(port)


def _process_source():
    """What this process is, from its command line: "brick:/data/b1" (glusterfsd
    --brick-name), "fuse:/mnt/vol" (glusterfs ... MOUNTPOINT), else "PROGRAM:"."""
    try:
        with open("/proc/self/cmdline", "rb") as stream:
            args = [a for a in stream.read().decode(errors="replace").split("\0") if a]
    except OSError:
        return "?:"
    program = os.path.basename(args[0]) if args else "?"
    if "--brick-name" in args[:-1]:
        return "brick:" + args[args.index("--brick-name") + 1]
    if program == "glusterfs" and "--process-name" not in args and len(args) > 1 \
            and args[-1].startswith("/"):
        return "fuse:" + args[-1]
    return program + ":"


# --------------------------------------------------------------------- sinks

class FileSink:
    """Appends JSON lines; reopens the file when it was rotated away."""

    def __init__(self, path):
        if not path.startswith("/"):
            raise ValueError(f"sink file:{path}: the path must be absolute")
        self.path = path
        self.stream = None

    def send(self, lines):
        self._reopen_if_rotated()
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()

    def _reopen_if_rotated(self):
        if self.stream is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(self.stream.fileno()).st_ino:
                    return
            except OSError:
                pass
            self.close()
        self.stream = open(self.path, "a", encoding="utf-8")

    def close(self):
        if self.stream is not None:
            stream, self.stream = self.stream, None
            stream.close()


class UdpSink:
    """Datagrams of newline-separated JSON records."""

    def __init__(self, address):
        self.address = _address(address, "sink udp")
        self.socket = None

    def send(self, lines):
        if self.socket is None:
            family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
            self.socket = socket.socket(family, socket.SOCK_DGRAM)
        for datagram in _datagrams(lines):
            self.socket.sendto(datagram, self.address)

    def close(self):
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def _datagrams(lines):
    chunk, size = [], 0
    for line in lines:
        data = line.encode() + b"\n"
        if chunk and size + len(data) > UDP_PAYLOAD:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(data)
        size += len(data)
    if chunk:
        yield b"".join(chunk)


class TcpSink:
    """A stream of JSON lines; reconnects (at most once a second) after errors."""

    TIMEOUT = 5.0

    def __init__(self, address):
        self.address = _address(address, "sink tcp")
        self.socket = None
        self.next_attempt = 0.0

    def send(self, lines):
        if self.socket is None:
            if time.monotonic() < self.next_attempt:
                raise ConnectionError(f"tcp:{self.address[0]}:{self.address[1]} is down")
            self.next_attempt = time.monotonic() + 1.0
            self.socket = socket.create_connection(self.address, timeout=self.TIMEOUT)
        try:
            self.socket.sendall("".join(line + "\n" for line in lines).encode())
        except OSError:
            self.close()
            raise

    def close(self):
        if self.socket is not None:
            self.socket.close()
            self.socket = None


SINKS = {"file": FileSink, "udp": UdpSink, "tcp": TcpSink}


def make_sink(spec):
    kind, _, rest = (spec or "").partition(":")
    if kind not in SINKS or not rest:
        raise ValueError(f"option sink: {spec!r} is not file:/PATH, udp:HOST:PORT or tcp:HOST:PORT")
    return SINKS[kind](rest)


# -------------------------------------------------------------------- sender

class Sender:
    """A bounded queue of records and the thread that ships them in batches."""

    def __init__(self, sink, queue_size, batch_size, flush_interval, log):
        self.sink = sink
        self.queue = queue.Queue(maxsize=queue_size)
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.log = log
        self.counts_lock = threading.Lock()
        self.queued = self.dropped = self.sent = self.failed = 0
        self.last_error = ""
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="glupy-profiler", daemon=True)
        self.thread.start()

    def offer(self, record):
        """Queues a record (a dict); never blocks (a full queue drops it)."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self.counts_lock:
                self.dropped += 1
            return
        with self.counts_lock:
            self.queued += 1

    def stop(self, timeout=2.0):
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self):
        while not (self.stopping.is_set() and self.queue.empty()):
            batch = self._collect()
            if batch:
                self._ship(batch)
        self.sink.close()

    def _collect(self):
        """Waits for one record, then for more until the batch is full or old."""
        try:
            batch = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size and not self.stopping.is_set():
            try:
                batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _ship(self, batch):
        try:
            # Encoded here, off the fop path.
            self.sink.send([json.dumps(record, separators=(",", ":")) for record in batch])
        except Exception as error:  # a sink down must not stop the thread
            with self.counts_lock:
                self.failed += len(batch)
                first = not self.last_error
                self.last_error = f"{type(error).__name__}: {error}"
            if first:
                self.log.warning("profiler sink failed (%s); records are dropped until it works", error)
            return
        with self.counts_lock:
            self.sent += len(batch)

    def counts(self):
        with self.counts_lock:
            return {"queued": self.queued, "dropped": self.dropped, "sent": self.sent,
                    "send-failed": self.failed, "waiting": self.queue.qsize(),
                    "last-error": self.last_error}


# ---------------------------------------------------------------- translator

class Pending:
    """What a sampled fop remembers until its callback."""

    __slots__ = ("start", "started_ns", "path", "path2", "gfid")

    def __init__(self, path, path2, gfid):
        self.start = time.time()
        self.started_ns = time.perf_counter_ns()
        self.path, self.path2, self.gfid = path, path2, gfid


def _make_fop(fop, names):
    locator = next((i for i, n in enumerate(names) if n in LOCATORS), None)
    second = next((i for i, n in enumerate(names) if n in SECOND_LOCATORS), None)

    def fop_method(self, frame, this, *args):
        if fop in self.recorded and self.sample():
            target = args[locator] if locator is not None else None
            path, gfid = self.describe(target)
            path2 = self.describe(args[second])[0] if second is not None else None
            frame.local = Pending(path, path2, gfid)
        frame.wind(*args)

    fop_method.__name__ = fop + "_fop"
    return fop_method


def _make_cbk(fop, names):
    results = [i for i, n in enumerate(names) if n in GFID_RESULTS]

    def cbk_method(self, frame, cookie, this, op_ret, op_errno, *args):
        pending = frame.local
        if isinstance(pending, Pending):
            latency_us = (time.perf_counter_ns() - pending.started_ns) // 1000
            if op_ret >= 0:
                if not pending.gfid:
                    pending.gfid = self.result_gfid(args, results)
                if fop in NAMING_FOPS:
                    self.remember(pending.gfid, pending.path)
                elif fop == "rename":
                    self.remember(pending.gfid, pending.path2)
            self.record(frame, fop, pending, op_ret, op_errno, latency_us)
        frame.unwind(op_ret, op_errno, *args)

    cbk_method.__name__ = fop + "_cbk"
    return cbk_method


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.host = socket.gethostname()
        self.source = _process_source()
        self.paths_lock = threading.Lock()
        self.paths = OrderedDict()  # gfid bytes -> last path seen
        self.counts_lock = threading.Lock()
        self.sampled = self.skipped = 0
        self.sender, self.sender_settings = None, None
        self.reconfigure(self.options)

    def reconfigure(self, options):
        rate = _option(options, "sample-rate", 1, float, 0.0, 1.0)
        queue_size = _option(options, "queue-size", 10000, int, 1)
        batch_size = _option(options, "batch-size", 500, int, 1)
        flush_interval = _option(options, "flush-interval", 1, float, 0.0)
        sink = make_sink(options.get("sink"))
        wanted = {f.strip() for f in options.get("fops", "").split(",") if f.strip()}
        unknown = wanted - set(glupy.FOPS)
        if unknown:
            raise ValueError(f"option fops: no such fop: {', '.join(sorted(unknown))}")
        self.volume = options.get("volume-name") or self.name.rpartition("-")[0] or self.name
        self.recorded = wanted or set(glupy.FOPS)
        self.sample_rate = rate
        settings = (options.get("sink"), queue_size, batch_size, flush_interval)
        if settings != self.sender_settings:  # keep the queue and counts otherwise
            old = self.sender
            self.sender = Sender(sink, queue_size, batch_size, flush_interval, self.log)
            self.sender_settings = settings
            if old is not None:
                old.stop()

    def fini(self):
        if self.sender is not None:
            self.sender.stop()

    def sample(self):
        chosen = self.sample_rate >= 1.0 or random.random() < self.sample_rate
        with self.counts_lock:
            if chosen:
                self.sampled += 1
            else:
                self.skipped += 1
        return chosen

    # -- paths -------------------------------------------------------------------
    def describe(self, target):
        """(path, gfid bytes) of a Loc or an Fd (fds have no path of their own)."""
        if target is None:
            return None, b""
        inode = target.inode
        gfid = inode.gfid if inode is not None else b""
        path = None
        if isinstance(target, glupy.Loc):
            path = target.path
            if not gfid or gfid == NULL_GFID:
                gfid = target.gfid
        if (not path or path.startswith("<gfid:")) and inode is not None:
            path = inode.path or path
        if (not path or path.startswith("<gfid:")) and gfid:
            with self.paths_lock:
                path = self.paths.get(gfid, path)
        if gfid == NULL_GFID:
            gfid = b""
        return path, gfid

    def remember(self, gfid, path):
        if not gfid or not path or path.startswith("<gfid:"):
            return
        with self.paths_lock:
            self.paths[gfid] = path
            self.paths.move_to_end(gfid)
            if len(self.paths) > PATHS_KEPT:
                self.paths.popitem(last=False)

    def forget(self, gfid):
        with self.paths_lock:
            self.paths.pop(gfid, None)

    @staticmethod
    def result_gfid(args, positions):
        for index in positions:
            value = args[index]
            owner = value.inode if isinstance(value, glupy.Fd) else value
            gfid = getattr(owner, "gfid", None)
            if gfid and gfid != NULL_GFID:
                return gfid
        return b""

    # -- records -----------------------------------------------------------------
    def record(self, frame, fop, pending, op_ret, op_errno, latency_us):
        entry = {
            "host": self.host, "volume": self.volume, "translator": self.name,
            "source": self.source,
            "fop": fop, "path": pending.path, "gfid": _gfid_text(pending.gfid),
            "op_ret": op_ret, "op_errno": op_errno, "start": round(pending.start, 6),
            "latency_us": latency_us, "pid": frame.pid, "uid": frame.uid,
        }
        if pending.path2 is not None:
            entry["path2"] = pending.path2
        self.sender.offer(entry)

    def dump(self):
        with self.counts_lock:
            sampled, skipped = self.sampled, self.skipped
        return {"sampled": sampled, "skipped": skipped,
                "sample-rate": self.sample_rate, "paths-known": len(self.paths),
                **self.sender.counts()}


for _fop, (_args, _cbk_args, _) in glupy.FOPS.items():
    setattr(xlator, _fop + "_fop", _make_fop(_fop, _args))
    setattr(xlator, _fop + "_cbk", _make_cbk(_fop, _cbk_args))
