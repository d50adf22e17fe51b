#!/usr/bin/python3
"""glupy's benchmarks (make bench): what a Python translator costs, against
no translator and against GlusterFS's C translators.

Each configuration is a brick (posix -> locks -> [translator] -> io-threads
-> protocol/server on 127.0.0.1, on tmpfs) and a client graph (protocol/client
-> [translators]) loaded by the C gfapi driver (target/bench/gfbench, built
from bench/gfbench.c). A round starts a fresh brick for every configuration
of an experiment and runs ONE driver process against all of them: for each
operation it measures the configurations in turn, in short slices (A B C,
B C A, ...), so that configurations compared with each other see the same
machine load. A round's figure for a configuration is its total operations
over its total measured time; a ratio is taken within a round. Reported:
the median over rounds (min–max).

    bench/run.py [--quick] [--only EXPERIMENT,...] [--rounds N] [--workdir DIR]

Environment (make bench): BENCH_QUICK=1, BENCH_ONLY=..., BENCH_ROUNDS=N,
BENCH_DIR=DIR. Results: target/bench/<mode>-<time>.{md,json}.
"""

import argparse
import dataclasses
import hashlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "tests"))

import glusterlib  # noqa: E402  (the test harness: bricks stopped by pid)

DRIVER = ROOT / "target" / "bench" / "gfbench"
RESULTS = ROOT / "target" / "bench"
XLATORS = BENCH / "xlators"
EXAMPLES = ROOT / "examples"
MIB = 1 << 20


# ------------------------------------------------------------ configurations

def glupy(module, path=XLATORS, **options):
    opts = {"module-name": module, "module-path": str(path)}
    opts.update(options)
    return ("features/glupy", opts)


IO_THREADS = ("performance/io-threads", {})


@dataclass
class Config:
    """A brick graph (layers between locks and io-threads, bottom to top)
    and a client graph (layers above protocol/client)."""
    name: str
    brick: list = field(default_factory=list)
    client: list = field(default_factory=list)
    describe: str = ""

    def brick_layers(self):
        return [*self.brick, IO_THREADS]

    def has_glupy(self):
        return any(layer[0] == "features/glupy" for layer in self.brick + self.client)

    def built_as(self, xlator):
        """The same config with every features/glupy layer loaded from
        features/<xlator>.so (a candidate build of the host)."""
        def swap(layers):
            return [(f"features/{xlator}", *layer[1:]) if layer[0] == "features/glupy"
                    else layer for layer in layers]
        return Config(f"{self.name}-{xlator}", swap(self.brick), swap(self.client),
                      f"{self.describe}; features/{xlator}.so")


NONE = Config("none", describe="no translator")


@dataclass
class Mode:
    name: str
    rounds: int
    slices: int         # per operation and configuration, in each round
    seconds: float      # per slice
    warmup: float       # before a configuration's first slice of an operation
    storm_lookups: int
    rss_fops: int
    soak_seconds: float


QUICK = Mode("quick", rounds=2, slices=2, seconds=1.0, warmup=0.3, storm_lookups=30_000,
             rss_fops=200_000, soak_seconds=20)
FULL = Mode("full", rounds=4, slices=3, seconds=1.5, warmup=0.5, storm_lookups=100_000,
            rss_fops=1_000_000, soak_seconds=600)


# ------------------------------------------------------------------ running

class BenchError(RuntimeError):
    """A measurement did not complete (driver failed, errors, a stall)."""


def process_cpu_seconds(pid):
    """CPU time of all of pid's threads, from their schedstat (nanoseconds;
    /proc/PID/stat counts in 10 ms ticks, too coarse for one slice)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0.0
    for task in tasks:
        text = glusterlib.read_text(f"/proc/{pid}/task/{task}/schedstat").split()
        total += int(text[0]) if text else 0
    return total / 1e9


def process_rss_kb(pid):
    for line in glusterlib.read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def parse_fields(line):
    """'result op=x n=1 ...' -> {'op': 'x', 'n': 1, ...} (numbers converted)."""
    values = {}
    for item in line.split()[1:]:
        key, _, value = item.partition("=")
        try:
            values[key] = float(value) if "." in value else int(value)
        except ValueError:
            values[key] = value
    return values


@dataclass
class Round:
    """What one driver run against fresh bricks produced."""
    index: int
    job: str
    results: list        # one dict per slice: the driver's result line + brick samples
    progress: list       # (seconds, client ops, brick RSS KiB, max stall) per progress line
    brick_dumps: dict    # config -> {section: {key: value}} of glupy sections
    client_dumps: dict   # "config/op" -> {section: {key: value}}


def run_round(workdir, index, job, configs, driver_args, timeout):
    """Starts a fresh brick per config, runs the driver against all of them."""
    workdir = Path(workdir)
    bricks = {}
    try:
        for config in configs:
            bricks[config.name] = glusterlib.Brick(
                workdir / config.name, config.brick_layers(), name=config.name).start()
        client_dir = workdir / "client"
        client_dir.mkdir()
        command = [str(DRIVER), "--workdir", str(client_dir), "--dump", *driver_args]
        for config in configs:
            volfile = bricks[config.name].client_volfile(
                client_dir / f"{config.name}.vol", config.client, f"c-{config.name}")
            command += ["--volume", f"{config.name}={volfile}"]
        results, progress = _drive(command, bricks, timeout, client_dir)
        # Bricks with a layer below io-threads (glupy, or a candidate build).
        brick_dumps = {name: _glupy_sections(brick) for name, brick in bricks.items()
                       if len(brick.layers) > 1}
        client_dumps = {f"{r['vol']}/{r['op']}": _dump_sections(r["dump"])
                        for r in results if r["dump"] != "-"}
        return Round(index, job, results, progress, brick_dumps, client_dumps)
    finally:
        for brick in bricks.values():
            brick.stop()


def _drive(command, bricks, timeout, workdir):
    results, progress, marks = [], [], {}
    started = time.monotonic()
    errors_file = workdir / "driver.err"
    with open(errors_file, "w") as errors:
        driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                                  cwd=workdir)
        try:
            for line in driver.stdout:
                _on_line(line.strip(), bricks, marks, results, progress, started)
                if time.monotonic() - started > timeout:
                    raise BenchError(f"driver still running after {timeout:.0f}s")
            driver.wait(timeout=30)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    error_text = errors_file.read_text()
    if driver.returncode != 0:
        raise BenchError(f"driver exit {driver.returncode}: {' '.join(command)}\n{error_text}"
                         f"\nlast progress: {progress[-1:]}")
    bad = [r for r in results if r["errors"]]
    if bad:
        raise BenchError(f"driver reported errors: {bad}\n{error_text}")
    return results, progress


def _on_line(line, bricks, marks, results, progress, started):
    """Samples the bricks at the driver's marks; collects results/progress."""
    kind = line.split(" ", 1)[0]
    if kind == "mark":  # "mark start|end vol=NAME op=..."
        fields = parse_fields(line)
        marks[line.split()[1]] = process_cpu_seconds(bricks[fields["vol"]].pid)
    elif kind == "result":
        fields = parse_fields(line)
        start, end = marks.pop("start", None), marks.pop("end", None)
        if start is not None and end is not None:
            fields["brick_cpu_s"] = end - start
        fields["brick_rss_kb"] = process_rss_kb(bricks[fields["vol"]].pid)
        results.append(fields)
    elif kind == "progress":
        fields = parse_fields(line)
        only = next(iter(bricks.values()))
        progress.append((round(time.monotonic() - started, 1), fields["ops"],
                         process_rss_kb(only.pid), fields["max_stall"]))
    elif kind == "stall":
        raise BenchError(f"the driver saw a stall (deadlock?): {line}")


def _glupy_sections(brick):
    sections = glusterlib.statedump_sections(brick.statedump())
    return {name: values for name, values in sections.items()
            if name.startswith("xlator.features.glupy.")}


def _dump_sections(path):
    if not Path(path).exists():
        return {}
    sections = glusterlib.statedump_sections(Path(path).read_text(errors="replace"))
    return {name: values for name, values in sections.items()
            if name.startswith("xlator.features.glupy.")
            or name.startswith("performance/nl-cache")}


def keep_logs(workdir, name):
    """Copies a failed round's logs, volfiles and dumps (not the bricks'
    data) to target/bench/NAME-<time>; returns where."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = RESULTS / f"{name}-{stamp}"
    shutil.copytree(workdir, kept, ignore=shutil.ignore_patterns("brick"),
                    dirs_exist_ok=True)
    return kept


# ---------------------------------------------------------------- statistics

def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt(stat, digits=0):
    if stat is None:
        return "-"
    pattern = f"{{:,.{digits}f}}"
    return (f"{pattern.format(stat['median'])} "
            f"({pattern.format(stat['min'])}–{pattern.format(stat['max'])})")


def fmt_ratio(stat):
    if stat is None:
        return "-"
    return f"{stat['median']:.3f} ({stat['min']:.3f}–{stat['max']:.3f})"


def aggregate(slices, key):
    """One round's value of key over the slices of one measurement."""
    ops = sum(s["ops"] for s in slices)
    seconds = sum(s["seconds"] for s in slices)
    if not ops or not seconds:
        return None
    if key == "ops_per_s":
        return ops / seconds
    if key == "mib_per_s":
        return sum(s["mib_per_s"] * s["seconds"] for s in slices) / seconds
    if key == "latency_us":  # per operation, as one thread sees it
        return 1e6 * slices[0]["threads"] * seconds / ops
    if key == "brick_cpu_us":
        return 1e6 * sum(s.get("brick_cpu_s", 0) for s in slices) / ops
    if key == "client_cpu_us":
        return 1e6 * sum(s["cpu_s"] for s in slices) / ops
    if key in ("rss_kb", "brick_rss_kb"):
        return slices[-1][key]
    if key == "rss_delta_kb":
        return slices[0][key]
    raise KeyError(key)


class Table:
    """A markdown table."""

    def __init__(self, *headers):
        self.lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]

    def row(self, *cells):
        self.lines.append("| " + " | ".join(str(c) for c in cells) + " |")

    def text(self):
        return "\n".join(self.lines)


# ---------------------------------------------------------------- experiments

@dataclass
class Job:
    """One driver run per round: these configs, these driver arguments."""
    name: str
    configs: list
    args: list
    timeout: float


class Experiment:
    """Configurations measured side by side for several rounds."""
    name = ""
    title = ""
    baseline = "none"

    compares_candidates = True  # with --candidate, add a twin of each glupy config

    def __init__(self, mode, workdir, candidates=()):
        self.mode, self.workdir = mode, Path(workdir) / self.name
        self.candidates = candidates if self.compares_candidates else ()
        self.rounds = []
        self.error = None  # why the experiment stopped early, if it did

    def base_configs(self):
        raise NotImplementedError

    def configs(self):
        configs = self.base_configs()
        return configs + [config.built_as(xlator) for xlator in self.candidates
                          for config in configs if config.has_glupy()]

    def jobs(self):
        raise NotImplementedError

    def round_count(self):
        return self.mode.rounds

    def run(self, log):
        for index in range(self.round_count()):
            for job in self.jobs():
                # The driver rotates the order slice by slice; rotating the
                # volume list too varies who goes first in count mode.
                shift = index % len(job.configs)
                configs = job.configs[shift:] + job.configs[:shift]
                workdir = self.workdir / f"r{index}-{job.name}"
                started = time.monotonic()
                try:
                    result = run_round(workdir, index, job.name, configs, job.args,
                                       job.timeout)
                except (BenchError, glusterlib.GlusterError) as error:
                    kept = keep_logs(workdir, f"failed-{self.name}-r{index}-{job.name}")
                    raise BenchError(f"{str(error).splitlines()[0]} (logs: {kept})\n"
                                     f"{error}") from None
                self.rounds.append(result)
                log(f"  {self.name} round {index + 1}/{self.round_count()} {job.name}: "
                    f"{time.monotonic() - started:.0f}s; " + self.brief(result))
                shutil.rmtree(workdir, ignore_errors=True)

    def brief(self, result):
        ops = {}
        for r in result.results:
            ops.setdefault((r["op"], r["threads"]), {}).setdefault(r["vol"], []).append(r)
        return "; ".join(
            f"{op}:{threads} " + " ".join(f"{vol} {aggregate(s, 'ops_per_s'):,.0f}"
                                          for vol, s in by_vol.items())
            for (op, threads), by_vol in ops.items())

    # -- collected values

    def values(self, config, op, threads, key="ops_per_s", job=None, slice_index=None):
        """{round: value} of one measurement (of one of its slices if given)."""
        found = {}
        for result in self.rounds:
            if job and result.job != job:
                continue
            slices = [r for r in result.results
                      if r["vol"] == config and r["op"] == op and r["threads"] == threads
                      and slice_index in (None, r["slice"])]
            if slices:
                found[result.index] = aggregate(slices, key)
        return found

    def stat(self, config, op, threads, key="ops_per_s", job=None, slice_index=None):
        return summary(self.values(config, op, threads, key, job, slice_index).values())

    def ratio(self, config, op, threads, key="ops_per_s", job=None, baseline=None,
              slice_index=None):
        """config / baseline within each round, summarised."""
        base = self.values(baseline or self.baseline, op, threads, key, job, slice_index)
        mine = self.values(config, op, threads, key, job, slice_index)
        return summary([mine[r] / base[r] for r in mine if base.get(r)])

    def difference(self, config, op, threads, key, job=None):
        base = self.values(self.baseline, op, threads, key, job)
        mine = self.values(config, op, threads, key, job)
        return summary([mine[r] - base[r] for r in mine if base.get(r) is not None])

    def added_ratio(self, config, other, op, threads, key):
        """(config − baseline) / (other − baseline) within each round,
        summarised: what config adds against what other adds."""
        base = self.values(self.baseline, op, threads, key)
        mine = self.values(config, op, threads, key)
        theirs = self.values(other, op, threads, key)
        return summary([(mine[r] - base[r]) / (theirs[r] - base[r]) for r in mine
                        if base.get(r) is not None and theirs.get(r) is not None
                        and theirs[r] != base[r]])

    def report(self):
        raise NotImplementedError

    def to_json(self):
        return {"error": self.error,
                "rounds": [dataclasses.asdict(result) for result in self.rounds]}


def timed_args(mode, ops, slices=None, **extra):
    args = ["--op", ops, "--seconds", str(mode.seconds), "--warmup", str(mode.warmup),
            "--slices", str(slices or mode.slices)]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def timed_timeout(mode, ops, configs, slices=None):
    per_config = (slices or mode.slices) * mode.seconds + mode.warmup + 5
    return 120 + len(ops.split(",")) * len(configs) * per_config * 3


def timed_job(mode, configs, ops, slices=None, name="ops", **extra):
    return Job(name, configs, timed_args(mode, ops, slices, **extra),
               timed_timeout(mode, ops, configs, slices))


def op_specs(ops):
    """'lookup:4,stat:1' -> [('lookup', 4), ('stat', 1)]."""
    return [(spec.split(":")[0], int(spec.split(":")[1])) for spec in ops.split(",")]


class Passthrough(Experiment):
    name = "passthrough"
    title = "1. Pass-through: glupy with a module that defines no fop"
    OPS = "lookup:4,stat:4,create:4,write4k:4,read4k:4"

    def base_configs(self):
        return [NONE,
                Config("nofops", [glupy("nofops")],
                       describe="features/glupy running bench/xlators/nofops.py"),
                # What any translator layer costs: barrier (off) leaves lookup,
                # stat, create and readv to GlusterFS's defaults too, and only
                # checks a flag in writev.
                Config("c-barrier", [("features/barrier", {})],
                       describe="features/barrier, off (a C translator whose lookup, stat, "
                                "create and readv are GlusterFS's defaults)")]

    def jobs(self):
        # Twice the slices: the target (2 %) is finer than the others.
        return [timed_job(self.mode, self.configs(), self.OPS, slices=2 * self.mode.slices)]

    def report(self):
        variants = [c.name for c in self.configs() if c.name != "none"]
        table = Table("operation (4 threads)", "none ops/s",
                      *[f"{name} ops/s, ratio to none" for name in variants],
                      "brick CPU µs/op: none", *variants)
        for op, threads in op_specs(self.OPS):
            table.row(op, fmt(self.stat("none", op, threads)),
                      *[f"{fmt(self.stat(name, op, threads))} "
                        f"**{fmt_ratio(self.ratio(name, op, threads))}**" for name in variants],
                      *[fmt(self.stat(name, op, threads, "brick_cpu_us"), 1)
                        for name in ["none", *variants]])
        return table.text()


class PythonHandled(Experiment):
    """Configs 2 and 4 and issue 7: lookup and stat through Python."""
    name = "python"
    title = "2, 4 and 7. lookup and stat handled in Python (brick side)"
    OPS = "lookup:1,stat:1,lookup:4,stat:4,lookup:16"

    def base_configs(self):
        sync = "bench/xlators/lookup_stat.py (fop + callback in Python)"
        return [
            NONE,
            Config("sync-auto", [glupy("lookup_stat")], describe=sync + ", python-thread auto"),
            Config("sync-pool", [glupy("lookup_stat", **{"python-thread": "pool"})],
                   describe=sync + ", python-thread pool"),
            Config("sync-caller", [glupy("lookup_stat", **{"python-thread": "caller"})],
                   describe=sync + ", python-thread caller"),
            Config("fop-only", [glupy("lookup_stat_fop")],
                   describe="bench/xlators/lookup_stat_fop.py (fop only, the reply goes "
                            "straight up), auto"),
            Config("async", [glupy("lookup_stat_async")],
                   describe="bench/xlators/lookup_stat_async.py (async def fop: "
                            "`return await frame.wind(...)`), auto"),
        ]

    def jobs(self):
        return [timed_job(self.mode, self.configs(), self.OPS)]

    def variants(self):
        return [c.name for c in self.configs() if c.name != "none"]

    def report(self):
        return "\n\n".join([self.throughput_table(), self.cost_table(), self.scaling_table()])

    def throughput_table(self):
        table = Table("config", *[f"{op} {t} thr. ops/s (ratio)" for op, t in op_specs(self.OPS)])
        table.row("none", *[fmt(self.stat("none", op, t)) for op, t in op_specs(self.OPS)])
        for name in self.variants():
            table.row(name, *[f"{fmt(self.stat(name, op, t))} "
                              f"**{fmt_ratio(self.ratio(name, op, t))}**"
                              for op, t in op_specs(self.OPS)])
        return "Throughput as the client sees it (ratio to none in bold):\n\n" + table.text()

    def cost_table(self):
        table = Table("config", "op", "added latency µs/op (1 thread)",
                      "added brick CPU µs/op (1 thread)", "python_avg_us (statedump)")
        for name in self.variants():
            for op in ("lookup", "stat"):
                table.row(name, op, fmt(self.difference(name, op, 1, "latency_us"), 1),
                          fmt(self.difference(name, op, 1, "brick_cpu_us"), 1),
                          self.python_avg(name, op))
        return ("Cost per fop. Added latency: 1e6/ops_per_s(config) − 1e6/ops_per_s(none) "
                "at 1 thread. Added brick CPU: the brick's CPU time per op minus none's. "
                "python_avg_us: the host's clock around each call of a Python method, fop "
                "and callback averaged together (for a fop that winds, it includes the "
                "wind when the reply comes back on the same thread):\n\n" + table.text()
                + self.async_against_sync())

    def async_against_sync(self):
        """Issue 14, item 2 (target ≤ 2×), taken within each round: a sync
        figure that moves from round to round moves the ratio with it."""
        if not {"async", "sync-auto"} <= set(self.variants()):
            return ""
        ratios = ", ".join(
            f"{op} {fmt_ratio(self.added_ratio('async', 'sync-auto', op, 1, 'brick_cpu_us'))}"
            for op in ("lookup", "stat"))
        return ("\n\nAdded brick CPU of async against sync-auto at 1 thread, within each "
                f"round (issue 14, item 2: ≤ 2×): {ratios}")

    def scaling_table(self):
        table = Table("config", "lookup 1 thread", "4 threads", "16 threads", "16 / 1",
                      "16 / 4")
        for name in ["none", *self.variants()]:
            one, four, sixteen = (self.values(name, "lookup", t) for t in (1, 4, 16))
            table.row(name, *[fmt(self.stat(name, "lookup", t)) for t in (1, 4, 16)],
                      fmt_ratio(summary([sixteen[r] / one[r] for r in sixteen if r in one])),
                      fmt_ratio(summary([sixteen[r] / four[r] for r in sixteen if r in four])))
        return "Concurrency (config 4): lookups/s by client threads:\n\n" + table.text()

    def python_avg(self, config, op):
        values = []
        for result in self.rounds:
            for section in result.brick_dumps.get(config, {}).values():
                entry = section.get(f"fop.{op}")
                if entry:
                    fields = dict(item.split("=") for item in entry.split())
                    values.append(float(fields["python_avg_us"]))
        return fmt(summary(values), 1)


class NegativeLookups(Experiment):
    """Config 3: a storm of lookups of missing names, client-side caches."""
    name = "negative"
    title = "3. Negative lookups: no cache, C nl-cache, examples/negative.py (client side)"
    NAME_SETS = (200, 10_000)
    THREADS = (1, 4, 16)
    BOUNDED_LIMIT = 4096
    # Long enough that no entry expires between a volume's two storms.
    TIMEOUT = "600"

    def base_configs(self):
        negative = (f"examples/negative.py in the client graph, cache-timeout {self.TIMEOUT}")
        return [
            NONE,
            Config("nl-cache", client=[("performance/nl-cache",
                                        {"nl-cache-timeout": self.TIMEOUT})],
                   describe="performance/nl-cache in the client graph, nl-cache-timeout "
                            f"{self.TIMEOUT} (other options: defaults)"),
            Config("negative-auto", client=[glupy("negative", EXAMPLES, **{
                "cache-timeout": self.TIMEOUT})], describe=negative + ", python-thread auto"),
            Config("negative-caller", client=[glupy("negative", EXAMPLES, **{
                "cache-timeout": self.TIMEOUT, "python-thread": "caller"})],
                describe=negative + ", python-thread caller"),
            Config("python-floor", client=[glupy("enoent_floor")],
                   describe="bench/xlators/enoent_floor.py in the client graph: answers ENOENT "
                            "for the storm's names without any cache (the ceiling for a hit "
                            "answered in Python), python-thread auto"),
            Config("negative-bounded", client=[glupy("negative", EXAMPLES, **{
                "cache-timeout": self.TIMEOUT, "cache-limit": str(self.BOUNDED_LIMIT)})],
                describe=negative + f", cache-limit {self.BOUNDED_LIMIT} (10,000 names only: "
                                    "the bound holds, and an LRU cycled over more names than "
                                    "it holds never hits)"),
        ]

    def jobs(self):
        jobs = []
        for names in self.NAME_SETS:
            configs = [c for c in self.configs()
                       if not c.name.startswith("negative-bounded")
                       or names > self.BOUNDED_LIMIT]
            if names != min(self.NAME_SETS):  # the floor has no cache: one name set says it all
                configs = [c for c in configs if not c.name.startswith("python-floor")]
            # Two storms per configuration and thread count (threads sharing
            # one client): the first storm of 1 thread finds the cache empty.
            ops = ",".join(f"missing:{t}" for t in self.THREADS)
            args = ["--op", ops, "--count", str(self.mode.storm_lookups),
                    "--names", str(names), "--slices", "2"]
            jobs.append(Job(f"n{names}", configs, args,
                            300 + 2 * len(self.THREADS) * len(configs)
                            * self.mode.storm_lookups / 500))
        return jobs

    def report(self):
        table = Table("config", "names", "threads", "storm lookups/s", "ratio to none",
                      "ratio to nl-cache", "client CPU µs/lookup",
                      "cache at the end (last round)")
        for names in self.NAME_SETS:
            job = f"n{names}"
            for config in self.configs():
                if self.stat(config.name, "missing", 1, job=job) is None:
                    continue
                rows = [(1, 0, "1 (1st storm: empty cache)")] + [
                    (t, 1, str(t)) for t in self.THREADS]
                for threads, index, label in rows:
                    table.row(config.name, f"{names:,}", label,
                              fmt(self.stat(config.name, "missing", threads, job=job,
                                            slice_index=index)),
                              fmt_ratio(self.ratio(config.name, "missing", threads, job=job,
                                                   slice_index=index)),
                              fmt_ratio(self.ratio(config.name, "missing", threads, job=job,
                                                   baseline="nl-cache", slice_index=index)),
                              fmt(self.stat(config.name, "missing", threads, "client_cpu_us",
                                            job, index), 1),
                              self.cache_state(config.name, job) if threads == 16 else "")
        return (f"Storms of {self.mode.storm_lookups:,} lookups of missing names "
                "(glfs_stat of /gfbench/missing/not-here-N.py, N cycling over the names) "
                "from 1, 4 and 16 threads sharing one gfapi client, every configuration in "
                "the same driver process, one after another; each configuration and thread "
                "count gets two storms (the table shows the second: a warm cache), and the "
                "first storm of 1 thread, which finds the cache empty:\n\n" + table.text())

    def cache_state(self, config, job):
        for result in reversed(self.rounds):
            if result.job != job:
                continue
            for values in result.client_dumps.get(f"{config}/missing", {}).values():
                if "consumed_cache_size" in values:
                    return (f"nl-cache consumed_cache_size={values['consumed_cache_size']} "
                            f"bytes (cache_limit={values['cache_limit']}), "
                            f"hits={values['negative_lookup_hit_count']}")
                if "python.entries" in values:
                    return (f"entries={values['python.entries']} "
                            f"(cache-limit={values['python.cache-limit']}), "
                            f"hits={values['python.hits']}, "
                            f"evictions={values['python.evictions']}")
        return "-"


class DataPath(Experiment):
    """Config 5: 1 MiB sequential I/O through writev/readv in Python."""
    name = "datapath"
    title = "5. Data path: 1 MiB sequential write and read, writev/readv in Python"
    OPS = "seqwrite:1,seqread:1"

    def base_configs(self):
        return [
            NONE,
            Config("view", [glupy("datapath", inspect="view")],
                   describe="bench/xlators/datapath.py, memoryview of the data (no copy)"),
            Config("copy", [glupy("datapath", inspect="copy")],
                   describe="bench/xlators/datapath.py, bytes(vector) (a copy, asked for)"),
        ]

    def jobs(self):
        return [timed_job(self.mode, self.configs(), self.OPS, io_size=MIB,
                          file_size=64 * MIB)]

    def report(self):
        table = Table("config", "write MiB/s", "ratio", "read MiB/s", "ratio",
                      "brick CPU µs per MiB written", "per MiB read")
        for config in self.configs():
            name = config.name
            table.row(name, fmt(self.stat(name, "seqwrite", 1, "mib_per_s")),
                      fmt_ratio(self.ratio(name, "seqwrite", 1, "mib_per_s")),
                      fmt(self.stat(name, "seqread", 1, "mib_per_s")),
                      fmt_ratio(self.ratio(name, "seqread", 1, "mib_per_s")),
                      fmt(self.stat(name, "seqwrite", 1, "brick_cpu_us")),
                      fmt(self.stat(name, "seqread", 1, "brick_cpu_us")))
        return ("1 thread, 1 MiB per call, over a 64 MiB file (page cache, tmpfs brick):\n\n"
                + table.text())


class Memory(Experiment):
    """Config 6: brick RSS over a long run of fops through Python."""
    name = "memory"
    title = "6. Memory: brick RSS over many fops through a Python translator"
    compares_candidates = False

    def round_count(self):
        return 1

    def base_configs(self):
        return [NONE, Config("allfops", [glupy("allfops")],
                             describe="bench/xlators/allfops.py: every fop and callback "
                                      "in Python")]

    def jobs(self):
        args = ["--op", "mixed:4", "--count", str(self.mode.rss_fops), "--progress", "2"]
        timeout = 600 + self.mode.rss_fops / 200
        return [Job(f"mixed-{c.name}", [c], args, timeout) for c in self.configs()]

    def report(self):
        table = Table("config", "client ops", "fops through Python",
                      "brick RSS KiB at 10% / 20% / 50% / 100% of the run",
                      "growth from 20% to 100% (KiB)", "ops/s")
        for result in self.rounds:
            final = result.results[-1]
            total = final["ops"]
            samples = [(p[1], p[2]) for p in result.progress if p[2]]
            samples.append((total, final["brick_rss_kb"]))

            def rss_at(fraction):
                return next(rss for ops, rss in samples if ops >= fraction * total)

            points = [rss_at(f) for f in (0.1, 0.2, 0.5, 1.0)]
            table.row(final["vol"], f"{total:,}", self.python_fops(result),
                      " / ".join(f"{p:,}" for p in points),
                      f"{points[3] - points[1]:+,}", f"{final['ops_per_s']:,.0f}")
        return ("Mixed load from 4 threads (lookup, stat, 4 KiB write and read, "
                "missing-name lookup, create + unlink); the brick's VmRSS sampled every "
                "2 s. With allfops every fop enters Python twice (fop and callback):\n\n"
                + table.text())

    @staticmethod
    def python_fops(result):
        """Fops the glupy layer saw (the statedump's calls= summed over fops)."""
        total = 0
        for section in result.brick_dumps.get(result.results[-1]["vol"], {}).values():
            for key, value in section.items():
                if key.startswith("fop."):
                    total += int(dict(item.split("=") for item in value.split())["calls"])
        return f"{total:,}" if total else "-"


class Soak(Experiment):
    """Config 4, the other half: no deadlock under long mixed load."""
    name = "soak"
    title = "4b. No deadlock: mixed load from 16 threads through Python on both sides"
    compares_candidates = False

    def round_count(self):
        return 1

    def base_configs(self):
        return [Config("allfops-negative", [glupy("allfops")], [glupy("negative", EXAMPLES)],
                       describe="brick: bench/xlators/allfops.py; client: examples/negative.py")]

    def jobs(self):
        args = ["--op", "mixed:16", "--seconds", str(self.mode.soak_seconds), "--warmup", "1",
                "--progress", "10", "--stall-limit", "60"]
        return [Job("mixed", self.configs(), args, self.mode.soak_seconds + 300)]

    def report(self):
        table = Table("config", "seconds", "client ops", "ops/s",
                      "slowest 10 s interval ops/s", "longest a thread waited (s)")
        for result in self.rounds:
            final = result.results[-1]
            points = result.progress
            rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(points, points[1:])
                     if b[0] > a[0] and b[1] >= a[1]]
            table.row(final["vol"], f"{final['seconds']:.0f}", f"{final['ops']:,}",
                      f"{final['ops_per_s']:,.0f}", f"{min(rates):,.0f}" if rates else "-",
                      f"{final['max_stall']:.2f}")
        return ("16 client threads, mixed operations; the driver fails the run if any "
                "thread makes no progress for 60 s:\n\n" + table.text())


EXPERIMENTS = [Passthrough, PythonHandled, NegativeLookups, DataPath, Memory, Soak]


# -------------------------------------------------------------- the machine

def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in
                glusterlib.read_text("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    version = subprocess.run([glusterlib.GLUSTERFSD, "--version"], capture_output=True,
                             text=True).stdout.splitlines()
    python = subprocess.run(["/usr/bin/python3", "--version"], capture_output=True, text=True)
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    xlatordir = subprocess.run([glusterlib.GLUSTERFS, "--print-xlatordir"],
                               capture_output=True, text=True).stdout.strip()
    host = Path(xlatordir, "features", "glupy.so")
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "glusterfs": version[0] if version else "?",
        "python": python.stdout.strip(),
        "git": git.stdout.strip(),
        "glupy_so": (f"{hashlib.sha256(host.read_bytes()).hexdigest()[:12]}, installed "
                     f"{datetime.datetime.fromtimestamp(host.stat().st_mtime):%Y-%m-%d %H:%M}"
                     if host.exists() else "missing"),
    }


def load_snapshot():
    """Load average and the busiest other processes: was the machine shared?"""
    busy = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                          capture_output=True, text=True).stdout.splitlines()[:6]
    cpu = glusterlib.read_text("/proc/stat").splitlines()[0].split()[1:]
    return {"loadavg": glusterlib.read_text("/proc/loadavg").split()[:3],
            "busiest": [line.strip() for line in busy],
            # All CPUs' time and the part a hypervisor gave to other
            # machines (steal), in clock ticks since boot.
            "cpu_ticks": sum(int(v) for v in cpu[:8]), "steal_ticks": int(cpu[7])}


def stolen_share(before, after):
    """The share of the machine's CPU time a hypervisor took during the run
    (its vCPUs waiting while other machines ran): None if not recorded."""
    if "cpu_ticks" not in before or "cpu_ticks" not in after:
        return None
    total = after["cpu_ticks"] - before["cpu_ticks"]
    return (after["steal_ticks"] - before["steal_ticks"]) / total if total > 0 else None


# --------------------------------------------------------------------- main

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                        help="comma-separated: " + ",".join(e.name for e in EXPERIMENTS))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS") or 0))
    parser.add_argument("--candidate", default=os.environ.get("BENCH_CANDIDATE", ""),
                        help="comma-separated NAMEs of candidate host builds installed as "
                             "XLATORDIR/features/NAME.so: each glupy configuration is also "
                             "measured with them, side by side")
    parser.add_argument("--workdir", default=os.environ.get("BENCH_DIR", ""),
                        help="where bricks live (default: a new directory in /dev/shm)")
    return parser.parse_args()


def selected(only):
    names = [n for n in only.split(",") if n]
    unknown = set(names) - {e.name for e in EXPERIMENTS}
    if unknown:
        sys.exit(f"unknown experiment(s) {sorted(unknown)}: "
                 f"use {','.join(e.name for e in EXPERIMENTS)}")
    return [e for e in EXPERIMENTS if not names or e.name in names]


def write_report(path, mode, info, before, after, experiments, elapsed):
    lines = [f"# glupy benchmarks ({mode.name} mode)", "",
             f"- machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, "
             f"Linux {info['kernel']}; {info['glusterfs']}; {info['python']}; git {info['git']}; "
             f"features/glupy.so {info['glupy_so']}",
             f"- load average before: {' '.join(before['loadavg'])}, after: "
             f"{' '.join(after['loadavg'])}; busiest processes at start (%CPU): "
             + "; ".join(before["busiest"]),
             f"- CPU time taken by the hypervisor (steal) during the run: "
             + (f"{stolen:.1%}" if (stolen := stolen_share(before, after)) is not None
                else "not recorded"),
             f"- {mode.rounds} rounds, {mode.slices} slices of {mode.seconds} s per operation "
             f"and configuration in each; total time {elapsed / 60:.1f} min",
             "- figures: median over rounds (min–max); ratios taken within each round", ""]
    for experiment in experiments:
        lines += [f"## {experiment.title}", ""]
        lines += [f"- `{c.name}`: {c.describe}" for c in experiment.configs() if c.describe]
        if experiment.error:
            lines += ["", f"**Stopped early: {experiment.error}**"]
        lines += ["", experiment.report() if experiment.rounds else "(no results)", ""]
    path.write_text("\n".join(lines))


def main():
    args = parse_args()
    if not DRIVER.exists():
        sys.exit(f"{DRIVER} is missing: run `make bench` (it builds the driver)")
    mode = QUICK if args.quick else FULL
    if args.rounds:
        mode = dataclasses.replace(mode, rounds=args.rounds)
    base = Path(args.workdir) if args.workdir else Path("/dev/shm")
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="glupy-bench-", dir=base))
    info, before, started = machine(), load_snapshot(), time.monotonic()
    candidates = tuple(name for name in args.candidate.split(",") if name)
    experiments = [cls(mode, workdir, candidates) for cls in selected(args.only)]

    def log(text):
        print(text, flush=True)

    log(f"glupy benchmarks, {mode.name} mode, {mode.rounds} rounds, in {workdir}")
    try:
        for experiment in experiments:
            log(experiment.title)
            try:
                experiment.run(log)
            except (BenchError, glusterlib.GlusterError) as error:
                experiment.error = str(error).splitlines()[0]
                log(f"  FAILED: {error}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    after, elapsed = load_snapshot(), time.monotonic() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    report = RESULTS / f"{mode.name}-{stamp}.md"
    write_report(report, mode, info, before, after, experiments, elapsed)
    raw = {"mode": dataclasses.asdict(mode), "machine": info, "load_before": before,
           "load_after": after, "elapsed_s": elapsed,
           "experiments": {e.name: e.to_json() for e in experiments}}
    report.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    log("")
    log(report.read_text())
    log(f"written: {report} and {report.with_suffix('.json')}")
    return 1 if any(e.error for e in experiments) else 0


if __name__ == "__main__":
    sys.exit(main())
