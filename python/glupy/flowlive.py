"""What the live page and /metrics of `python3 -m glupy.flow --http` show.

Records (dicts from examples/profiler.py) are folded, as they arrive, into:
- one point per second: per fop its calls, errors and latency percentiles,
  and per source its records (the page's time series, 15 minutes kept);
- per (volume, host, source, fop): calls, latency histogram, errors by errno
  (the Prometheus counters, kept for the life of the collector);
- the busiest files and directories, and errors by fop and errno.
A point's time is when the collector received its records (the profiler
ships them at most flush-interval, 1 s by default, after the fop).
"""

import bisect
import errno
import threading
import time
from collections import Counter

STEP = 1  # seconds per point
KEPT_STEPS = 900  # 15 minutes of points
# Latency histogram bounds (microseconds; exported in seconds): from a cached
# stat (tens of µs) to a slow disk or a network stall (seconds).
LATENCY_BOUNDS_US = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
                     100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000)
SAMPLES_PER_STEP = 20000  # latencies kept per fop and point for its percentiles
PERCENTILES = (50, 90, 99)
BUSIEST_KEPT = 20000  # distinct files (or directories) counted before pruning
BUSIEST_AFTER_PRUNING = 5000


def percentile(ordered, p):
    """Nearest-rank percentile of a sorted list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n)
    return ordered[rank - 1]


def errno_name(number):
    return errno.errorcode.get(number, str(number))


def source_of(record):
    """The process a record comes from: the profiler's "source" (e.g.
    "brick:/data/b1"), else its translator's name (older profilers)."""
    return str(record.get("source") or record.get("translator") or "?")


def parent_of(path):
    head = path.rpartition("/")[0]
    return head or "/"


class SeriesKey:
    """Counters of one (volume, host, source, fop): calls, latency sum and
    histogram (one slot per bound, then +Inf), and errors by errno."""

    __slots__ = ("calls", "latency_sum_us", "buckets", "errors")

    def __init__(self):
        self.calls = 0
        self.latency_sum_us = 0
        self.buckets = [0] * (len(LATENCY_BOUNDS_US) + 1)
        self.errors = Counter()


class Busiest:
    """Approximate top counts of an unbounded set of names (files, directories):
    when too many names are counted, only the largest counts are kept."""

    def __init__(self):
        self.counts = Counter()

    def add(self, name):
        self.counts[name] += 1
        if len(self.counts) > BUSIEST_KEPT:
            self.counts = Counter(dict(self.counts.most_common(BUSIEST_AFTER_PRUNING)))

    def top(self, n):
        return [{"path": p, "count": c} for p, c in self.counts.most_common(n)]


class Live:
    """Everything the page and /metrics need; add() from the receiving thread,
    snapshot()/metrics from HTTP threads (one lock)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.lock = threading.Lock()
        self.instance = f"{clock():.6f}"  # a restarted collector has another one
        self.started = clock()
        self.records = self.unreadable = 0
        self.points = []  # closed steps, oldest first
        self.step = None  # the step being filled
        self.step_fops = {}  # fop -> [calls, errors, latencies]
        self.step_sources = Counter()
        self.series = {}  # (volume, host, source, fop) -> SeriesKey
        self.errors = {}  # (fop, errno name) -> [count, last seen]
        self.sources = {}  # source id -> {...}
        self.files, self.directories = Busiest(), Busiest()

    # -- receiving --------------------------------------------------------------
    def add_records(self, records, unreadable=0):
        """Folds a batch of parsed records (dicts) in; returns how many were usable."""
        now = self.clock()
        used = 0
        with self.lock:
            self._advance(now)
            self.unreadable += unreadable
            for record in records:
                try:
                    self._add(record, now)
                    used += 1
                except (KeyError, TypeError, ValueError, AttributeError):
                    self.unreadable += 1
            self.records += used
        return used

    def _add(self, record, now):
        # Everything that can fail on a malformed record is read before counting.
        fop = str(record["fop"])
        latency = int(record.get("latency_us", 0))
        op_ret = int(record.get("op_ret", 0))
        op_errno = int(record.get("op_errno", 0)) if op_ret < 0 else 0
        path = record.get("path")
        host, source, volume = str(record.get("host", "?")), source_of(record), \
            str(record.get("volume", ""))
        key = (volume, host, source, fop)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = SeriesKey()
        series.calls += 1
        series.latency_sum_us += latency
        series.buckets[bisect.bisect_left(LATENCY_BOUNDS_US, latency)] += 1
        step = self.step_fops.get(fop)
        if step is None:
            step = self.step_fops[fop] = [0, 0, []]
        step[0] += 1
        if len(step[2]) < SAMPLES_PER_STEP:
            step[2].append(latency)
        source_id = f"{host}:{source}"
        self.step_sources[source_id] += 1
        seen = self.sources.get(source_id)
        if seen is None:
            seen = self.sources[source_id] = {"host": host, "source": source, "volumes": set(),
                                              "records": 0, "errors": 0, "last_seen": now}
        seen["records"] += 1
        seen["last_seen"] = now
        seen["volumes"].add(volume)
        if op_ret < 0:
            name = errno_name(op_errno)
            series.errors[name] += 1
            step[1] += 1
            seen["errors"] += 1
            counted = self.errors.get((fop, name))
            if counted is None:
                counted = self.errors[(fop, name)] = [0, now]
            counted[0] += 1
            counted[1] = now
        if isinstance(path, str) and path.startswith("/"):
            self.files.add(path)
            self.directories.add(parent_of(path))

    # -- steps ------------------------------------------------------------------
    def _advance(self, now):
        """Closes the step being filled (and empty ones since) once time passed it."""
        step = int(now // STEP)
        if self.step is None:
            self.step = step
            return
        if step <= self.step:
            return
        self.points.append(self._close_step(self.step))
        empty_from = max(self.step + 1, step - KEPT_STEPS)
        self.points.extend({"t": s * STEP, "fops": {}, "sources": {}}
                           for s in range(empty_from, step))
        del self.points[:-KEPT_STEPS]
        self.step = step

    def _close_step(self, step):
        fops = {}
        for fop, (calls, errors, latencies) in self.step_fops.items():
            latencies.sort()
            fops[fop] = [calls, errors, *(percentile(latencies, p) for p in PERCENTILES)]
        point = {"t": step * STEP, "fops": fops, "sources": dict(self.step_sources)}
        self.step_fops = {}
        self.step_sources = Counter()
        return point

    # -- reading ----------------------------------------------------------------
    def snapshot(self, after=None, top=15):
        """The page's data: points after `after` (epoch seconds; all if None),
        and the current tables."""
        with self.lock:
            now = self.clock()
            self._advance(now)
            points = [p for p in self.points if after is None or p["t"] > after]
            errors = [{"fop": fop, "errno": name, "count": count, "last_seen": last}
                      for (fop, name), (count, last) in self.errors.items()]
            sources = [{"id": sid, "host": s["host"], "source": s["source"],
                        "volumes": sorted(s["volumes"]), "records": s["records"],
                        "errors": s["errors"], "last_seen": s["last_seen"]}
                       for sid, s in self.sources.items()]
            totals = {}
            for (_, _, _, fop), series in self.series.items():
                calls, errs = totals.get(fop, (0, 0))
                totals[fop] = (calls + series.calls, errs + sum(series.errors.values()))
            return {
                "instance": self.instance, "now": now, "started": self.started, "step": STEP,
                "kept": KEPT_STEPS * STEP, "records": self.records, "unreadable": self.unreadable,
                "points": points,
                "totals": {fop: {"calls": c, "errors": e} for fop, (c, e) in totals.items()},
                "errors": sorted(errors, key=lambda e: -e["count"]),
                "sources": sorted(sources, key=lambda s: s["id"]),
                "busiest_files": self.files.top(top),
                "busiest_directories": self.directories.top(top),
            }

    def series_snapshot(self):
        """[(volume, host, source, fop, calls, latency_sum_us, buckets, errors)]"""
        with self.lock:
            return [(*key, s.calls, s.latency_sum_us, list(s.buckets), dict(s.errors))
                    for key, s in self.series.items()]

    def source_snapshot(self):
        with self.lock:
            return [(s["host"], s["source"], s["records"], s["last_seen"])
                    for s in self.sources.values()]
