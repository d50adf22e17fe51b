"""Receives the records of examples/profiler.py and shows what the volume does.

    python3 -m glupy.flow --listen udp:127.0.0.1:9999
    python3 -m glupy.flow --listen tcp:0.0.0.0:9999 --interval 2
    python3 -m glupy.flow --file /var/log/glusterfs/flow.jsonl --once --json
    python3 -m glupy.flow --listen udp:0.0.0.0:9999 --http 127.0.0.1:8080 --quiet

Every --interval seconds it prints, per fop, the count, the rate, the errors
and the latency percentiles (p50/p90/p99, microseconds), then the busiest
files. --json prints each report as one JSON object per line instead (for
scripts and tests); --once prints only the final report; --duration ends
after that many seconds (SIGINT and SIGTERM end it too, with a final report).
The address actually listened on is written to stderr first
("listening on udp:127.0.0.1:PORT"), so port 0 picks a free port.

--http HOST:PORT also serves a live page of charts and /metrics for
Prometheus (glupy/flowweb.py; "serving http://HOST:PORT/" on stderr); with
--file it then follows the file as it grows (and is rotated).
"""

import argparse
import json
import os
import random
import selectors
import signal
import socket
import sys
import time
from collections import Counter, defaultdict

LATENCY_SAMPLES = 10000  # kept per fop (reservoir sampling beyond that)
PERCENTILES = (50, 90, 99)


class FopStats:
    def __init__(self):
        self.count = self.errors = 0
        self.max_us = 0
        self.latencies = []
        self.seen = 0  # latencies offered to the reservoir

    def add(self, latency_us, failed):
        self.count += 1
        self.errors += failed
        self.max_us = max(self.max_us, latency_us)
        self.seen += 1
        if len(self.latencies) < LATENCY_SAMPLES:
            self.latencies.append(latency_us)
        else:  # each latency seen stays with equal probability
            slot = random.randrange(self.seen)
            if slot < LATENCY_SAMPLES:
                self.latencies[slot] = latency_us

    def percentiles(self):
        ordered = sorted(self.latencies)
        return {f"p{p}_us": percentile(ordered, p) for p in PERCENTILES}


def percentile(ordered, p):
    """Nearest-rank percentile of a sorted list (0 when empty)."""
    if not ordered:
        return 0
    rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n)
    return ordered[rank - 1]


class Summary:
    """Everything received so far."""

    def __init__(self, top=10):
        self.top = top
        self.started = time.monotonic()
        self.records = self.bad = 0
        self.fops = defaultdict(FopStats)
        self.files = Counter()
        self.hosts = Counter()
        self.last_counts = {}
        self.last_time = self.started

    def add_line(self, line):
        records, bad = parse_batch(line)
        self.add_records(records, bad)

    def add_records(self, records, unreadable=0):
        self.bad += unreadable
        for record in records:
            self.add(record)

    def add(self, record):
        try:
            fop = str(record["fop"])
            latency = int(record.get("latency_us", 0))
            failed = int(record.get("op_ret", 0)) < 0
        except (ValueError, KeyError, TypeError, AttributeError):
            self.bad += 1
            return
        self.records += 1
        self.fops[fop].add(latency, failed)
        path = record.get("path") or record.get("gfid")
        if path:
            self.files[path] += 1
        self.hosts[str(record.get("host", "?"))] += 1

    def report(self):
        """The summary as a JSON-ready dict (rates since the previous report)."""
        now = time.monotonic()
        span = max(now - self.last_time, 1e-9)
        fops = {}
        for name, stats in sorted(self.fops.items()):
            rate = (stats.count - self.last_counts.get(name, 0)) / span
            fops[name] = {"count": stats.count, "errors": stats.errors,
                          "rate": round(rate, 1), **stats.percentiles(), "max_us": stats.max_us}
        self.last_counts = {name: stats.count for name, stats in self.fops.items()}
        self.last_time = now
        return {
            "elapsed": round(now - self.started, 3), "records": self.records,
            "bad": self.bad, "hosts": dict(self.hosts), "fops": fops,
            "busiest": [{"path": p, "count": c} for p, c in self.files.most_common(self.top)],
        }


def format_report(report):
    lines = [f"{report['records']} records in {report['elapsed']:.0f} s"
             f" from {', '.join(report['hosts']) or 'nobody yet'}"
             + (f" ({report['bad']} unreadable)" if report["bad"] else ""),
             f"{'fop':<16}{'count':>9}{'/s':>9}{'errors':>8}{'p50 us':>9}{'p90 us':>9}"
             f"{'p99 us':>9}{'max us':>9}"]
    by_count = sorted(report["fops"].items(), key=lambda item: -item[1]["count"])
    for name, s in by_count:
        lines.append(f"{name:<16}{s['count']:>9}{s['rate']:>9.1f}{s['errors']:>8}"
                     f"{s['p50_us']:>9}{s['p90_us']:>9}{s['p99_us']:>9}{s['max_us']:>9}")
    if report["busiest"]:
        lines.append("busiest files:")
        lines += [f"{b['count']:>9}  {b['path']}" for b in report["busiest"]]
    return "\n".join(lines)


# ------------------------------------------------------------------- sources

def parse_batch(text):
    """(records, unreadable) of newline-separated JSON objects."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return [], 0
    try:  # one parse for the whole batch: the common case, 3x faster
        records = json.loads("[" + ",".join(lines) + "]")
        if len(records) == len(lines) and all(type(r) is dict for r in records):
            return records, 0
    except ValueError:
        pass
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if type(record) is dict:
            records.append(record)
    return records, len(lines) - len(records)


class Feed:
    """Parses received text and gives the records to every consumer."""

    def __init__(self, *consumers):
        self.consumers = consumers

    def __call__(self, text):
        records, unreadable = parse_batch(text)
        for consumer in self.consumers:
            consumer.add_records(records, unreadable)


def parse_listen(spec):
    kind, _, address = spec.partition(":")
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if kind not in ("udp", "tcp") or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{spec!r} is not udp:HOST:PORT or tcp:HOST:PORT")
    return kind, host, int(port)


class Listener:
    """UDP datagrams or TCP streams of JSON lines, fed to feed(text)."""

    def __init__(self, kind, host, port, feed):
        self.feed = feed
        self.selector = selectors.DefaultSelector()
        self.partial = {}  # TCP connection -> bytes after its last newline
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        kind_flag = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        self.socket = socket.socket(family, kind_flag)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        if kind == "tcp":
            self.socket.listen(64)
            self.selector.register(self.socket, selectors.EVENT_READ, self._accept)
        else:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.selector.register(self.socket, selectors.EVENT_READ, self._datagram)
        bound = self.socket.getsockname()
        shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
        self.address = f"{kind}:{shown}:{bound[1]}"

    def poll(self, timeout):
        for key, _ in self.selector.select(timeout):
            key.data(key.fileobj)

    def _datagram(self, sock):
        data, _ = sock.recvfrom(1 << 16)
        self.feed(data.decode(errors="replace"))

    def _accept(self, sock):
        connection, _ = sock.accept()
        connection.setblocking(False)
        self.partial[connection] = b""
        self.selector.register(connection, selectors.EVENT_READ, self._stream)

    def _stream(self, connection):
        try:
            data = connection.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(connection)
            return
        complete, newline, rest = (self.partial[connection] + data).rpartition(b"\n")
        self.partial[connection] = rest
        if newline:
            self.feed(complete.decode(errors="replace"))

    def _close(self, connection):
        rest = self.partial.pop(connection, b"")
        self.feed(rest.decode(errors="replace"))
        self.selector.unregister(connection)
        connection.close()

    def close(self):
        for connection in list(self.partial):
            self._close(connection)
        self.selector.close()
        self.socket.close()


class Follower:
    """A file of JSON lines read as it grows, reopened when rotated or truncated."""

    def __init__(self, path, feed):
        self.path, self.feed = path, feed
        self.stream = None
        self.partial = b""
        self.address = f"file:{path}"
        self._open()

    def _open(self):
        if self.stream is not None:
            self.stream.close()
        self.stream = open(self.path, "rb")
        self.partial = b""

    def _drain(self):
        data = self.partial + self.stream.read()
        if data.strip():
            self.feed(data.decode(errors="replace"))

    def poll(self, timeout):
        data = self.stream.read(1 << 20)
        if data:
            complete, newline, self.partial = (self.partial + data).rpartition(b"\n")
            if newline:
                self.feed(complete.decode(errors="replace"))
            return
        try:
            replaced = os.stat(self.path).st_ino != os.fstat(self.stream.fileno()).st_ino
            truncated = os.stat(self.path).st_size < self.stream.tell()
        except OSError:
            replaced = truncated = False  # gone for now: keep waiting
        if replaced:
            self._drain()  # what was written to the old file since the last read
        if replaced or truncated:
            self._open()
        else:
            time.sleep(min(timeout, 0.2))

    def close(self):
        self.stream.close()


# ----------------------------------------------------------------------- run

class Stop(Exception):
    pass


def _stop(_signum, _frame):
    raise Stop()


def show(report, as_json, out, clear):
    if as_json:
        out.write(json.dumps(report, sort_keys=True) + "\n")
    else:
        out.write(("\033[H\033[2J" if clear else "") + format_report(report) + "\n\n")
    out.flush()


def serve_http(args, live):
    """Starts the page and /metrics (None without --http)."""
    if not args.http:
        return None
    from . import flowweb  # needs prometheus_client: only imported when asked for
    server = flowweb.start(args.http, live)
    print(f"serving {server.url}", file=sys.stderr, flush=True)
    return server


def listen(args, out):
    summary = Summary(args.top)
    live = None
    if args.http:
        from .flowlive import Live
        live = Live()
    feed = Feed(*(c for c in (summary, live) if c is not None))
    if args.listen:
        listener = Listener(*args.listen, feed)
        print(f"listening on {listener.address}", file=sys.stderr, flush=True)
    else:
        listener = Follower(args.file, feed)
        print(f"following {listener.address}", file=sys.stderr, flush=True)
    server = serve_http(args, live)
    clear = out.isatty() and not args.json
    end = time.monotonic() + args.duration if args.duration else None
    next_report = time.monotonic() + args.interval
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while end is None or time.monotonic() < end:
            wake = min(next_report, end) if end else next_report
            listener.poll(max(0.0, wake - time.monotonic()))
            if time.monotonic() >= next_report:
                if not (args.once or args.quiet):
                    show(summary.report(), args.json, out, clear)
                next_report = time.monotonic() + args.interval
    except Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        listener.close()
        if server is not None:
            server.shutdown()
            server.server_close()
    show(summary.report(), args.json, out, False)


def read_file(args, out):
    summary = Summary(args.top)
    with open(args.file, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            summary.add_line(line)
    show(summary.report(), args.json, out, False)


def parse_http(spec):
    host, _, port = spec.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{spec!r} is not HOST:PORT")
    return host, int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python3 -m glupy.flow",
        description="Live per-fop statistics from the records of examples/profiler.py.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--listen", type=parse_listen, metavar="udp:HOST:PORT|tcp:HOST:PORT",
                        help="receive records sent by the profiler's udp: or tcp: sink")
    source.add_argument("--file", metavar="PATH", help="summarise a file: sink's JSON lines")
    parser.add_argument("--http", type=parse_http, metavar="HOST:PORT",
                        help="serve the live page and /metrics (Prometheus) there; "
                             "with --file, follow the file")
    parser.add_argument("--quiet", action="store_true",
                        help="no periodic text reports (only the final one)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between reports (default 5)")
    parser.add_argument("--duration", type=float, help="stop listening after this many seconds")
    parser.add_argument("--once", action="store_true", help="print only the final report")
    parser.add_argument("--json", action="store_true", help="reports as JSON, one per line")
    parser.add_argument("--top", type=int, default=10, help="busiest files shown (default 10)")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    return args


def main(argv=None, out=sys.stdout):
    args = parse_args(argv)
    try:
        if args.file and not args.http:
            read_file(args, out)
        else:
            listen(args, out)
    except OSError as error:  # a port in use, a file missing: no traceback
        print(f"glupy.flow: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
