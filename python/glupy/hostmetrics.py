"""`glupy status --prometheus`: the host's own counters of every glupy
translator running on this machine, in the Prometheus exposition format.

The counters live in each process's statedump section
[xlator.features.glupy.NAME.priv] (src/statedump.rs): per fop
"calls= answered= errors= exceptions= dropped= python_calls= python_avg_us=",
and the translator's dump() as python.KEY=VALUE. A statedump is asked for
with SIGUSR1, its path and sections set by /var/run/gluster/glusterdump.PID.options
(only the translators' private sections: small and quick). Only processes
whose running graph (in their log) has a glupy translator are asked.
"""

import os
import re
import signal
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

DUMP_OPTIONS_DIR = Path("/var/run/gluster")  # glusterfs's DEFAULT_VAR_RUN_DIRECTORY
DUMP_TIMEOUT = 10.0
SECTION = re.compile(r"^xlator\.features\.glupy\.(?P<name>.+)\.priv$")
PROCESS_LABELS = ["kind", "volume", "serves"]
LABELS = PROCESS_LABELS + ["translator", "module"]
# statedump key -> (metric, help, scale)
FOP_COUNTERS = {
    "calls": ("glupy_fop_calls", "Fops that reached the translator.", 1),
    "answered": ("glupy_fop_answered", "Requests the translator answered.", 1),
    "errors": ("glupy_fop_errors", "Requests answered with an error.", 1),
    "exceptions": ("glupy_fop_exceptions",
                   "Python exceptions that were bugs (answered EIO, logged).", 1),
    "dropped": ("glupy_fop_dropped", "Frames dropped by Python without an answer (answered EIO).", 1),
    "python_calls": ("glupy_fop_python_calls", "Calls into Python (fop and callback methods).", 1),
}


class DumpError(Exception):
    pass


def take_statedump(pid, timeout=DUMP_TIMEOUT):
    """The text of a statedump of pid holding the translators' private sections."""
    DUMP_OPTIONS_DIR.mkdir(parents=True, exist_ok=True)
    options = DUMP_OPTIONS_DIR / f"glusterdump.{pid}.options"
    with tempfile.TemporaryDirectory(prefix="glupy-statedump-") as directory:
        options.write_text(f"path={directory}\npriv=yes\n")
        try:
            os.kill(pid, signal.SIGUSR1)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                # Written to dumpXXXXXX, renamed to NAME.PID.dump.SECONDS when complete.
                done = list(Path(directory).glob(f"*.{pid}.dump.*"))
                if done:
                    return done[0].read_text(errors="replace")
                time.sleep(0.05)
        except ProcessLookupError:
            raise DumpError(f"pid {pid} is gone") from None
        finally:
            options.unlink(missing_ok=True)
    raise DumpError(f"pid {pid} wrote no statedump within {timeout:.0f} s")


def glupy_sections(text):
    """{translator name: {key: value}} of a statedump's glupy sections."""
    found, current = {}, None
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            match = SECTION.match(line[1:-1])
            current = found.setdefault(match["name"], {}) if match else None
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key] = value
    return found


def fop_counters(section):
    """{fop: {counter: number}} from the fop.NAME=k=v ... lines."""
    fops = {}
    for key, value in section.items():
        if key.startswith("fop."):
            fops[key[4:]] = {k: float(v) for k, _, v in
                             (word.partition("=") for word in value.split()) if _}
    return fops


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


class HostCollector:
    """Metric families of the dumps of processes (from cli.process_status)."""

    def __init__(self, processes, dump=take_statedump):
        self.processes = processes
        self.dump = dump

    def describe(self):  # so that registering does not collect (and dump) once more
        return []

    def collect(self):
        ok = GaugeMetricFamily("glupy_statedump_ok",
                               "1 if the process's statedump was read, else 0.",
                               labels=PROCESS_LABELS + ["pid"])
        counters = {key: CounterMetricFamily(name, doc, labels=LABELS + ["fop"])
                    for key, (name, doc, _) in FOP_COUNTERS.items()}
        python_seconds = CounterMetricFamily(
            "glupy_fop_python_seconds",
            "Time spent in Python for this fop (python_calls x python_avg_us: 0.1 us rounding).",
            labels=LABELS + ["fop"])
        dump_values = GaugeMetricFamily(
            "glupy_translator_dump_value", "Numeric values of the translator's own dump().",
            labels=LABELS + ["key"])
        for proc in self.processes:
            process = [proc.get("kind") or "", proc.get("volume") or "", proc.get("serves") or ""]
            try:
                sections = glupy_sections(self.dump(proc["pid"]))
            except (DumpError, OSError):
                ok.add_metric(process + [str(proc["pid"])], 0)
                continue
            ok.add_metric(process + [str(proc["pid"])], 1)
            for name, section in sorted(sections.items()):
                labels = process + [name, section.get("module", "")]
                for fop, values in sorted(fop_counters(section).items()):
                    for key, family in counters.items():
                        if key in values:
                            family.add_metric(labels + [fop], values[key])
                    python_seconds.add_metric(
                        labels + [fop],
                        values.get("python_calls", 0) * values.get("python_avg_us", 0) / 1e6)
                for key, value in sorted(section.items()):
                    if key.startswith("python.") and number(value) is not None:
                        dump_values.add_metric(labels + [key[7:]], number(value))
        yield ok
        yield from counters.values()
        yield python_seconds
        yield dump_values


def registry_for(processes, volumes=(), dump=take_statedump):
    """A registry over the processes running glupy (of those volumes, if given)."""
    chosen = [p for p in processes if p.get("glupy")
              and (not volumes or p.get("volume") in volumes)]
    registry = CollectorRegistry()
    registry.register(HostCollector(chosen, dump))
    return registry


def run(processes, volumes, textfile=None):
    """Prints the exposition, or writes it atomically to textfile (for
    node_exporter's textfile collector)."""
    registry = registry_for(processes, volumes)
    if textfile:
        write_to_textfile(textfile, registry)
    else:
        os.write(1, generate_latest(registry))
    return 0
