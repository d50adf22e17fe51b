"""The profiler seen live (issue 15): `python3 -m glupy.flow --http` in a real
headless browser, its /metrics parsed by prometheus_client, and the host's own
counters through `glupy status --prometheus`."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import glusterlib

HERE = Path(__file__).parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WRITES = 12
MISSING = 5
# gfapi looks a name up before mkdir and creat: two more ENOENT lookups.
ENOENT_LOOKUPS = MISSING + 2


def profiler(sink, name="prof"):
    return ("features/glupy", {"module-name": "profiler", "module-path": str(EXAMPLES),
                               "sink": sink, "flush-interval": "0.1"}, name)


class Collector:
    """`python3 -m glupy.flow --listen udp:... --http ...`, stopped by pid."""

    def __init__(self, workdir, udp_port=0, http_port=0, file=None):
        env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
        self.stderr = open(workdir / f"collector-{time.monotonic_ns()}.err", "w+")
        source = ["--file", str(file)] if file else ["--listen", f"udp:127.0.0.1:{udp_port}"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "glupy.flow", *source,
             "--http", f"127.0.0.1:{http_port}", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        lines = glusterlib.wait_until(self._announced, 15)
        if not lines:
            self.stop()
            raise AssertionError(f"collector did not start: {self._stderr_text()}")
        self.udp_port = None if file else int(lines[0].rpartition(":")[2])
        self.url = lines[1].split()[1]
        self.http_port = int(self.url.rstrip("/").rpartition(":")[2])

    def _stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def _announced(self):
        lines = self._stderr_text().splitlines()
        if len(lines) >= 2 and lines[1].startswith("serving "):
            return lines
        return None

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.read().decode()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def samples(text, name):
    """{labels-tuple: value} of one metric's samples in an exposition text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def total(text, name, **labels):
    return sum(value for key, value in samples(text, name).items()
               if all((k, v) in key for k, v in labels.items()))


@pytest.fixture
def browser(workdir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1400,1700",
                     f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def collector(workdir):
    started = []

    def start(**ports):
        started.append(Collector(workdir, **ports))
        return started[-1]
    yield start
    for one in started:
        one.stop()


def workload(client, top):
    """What the test expects to see: a directory, files written and read,
    lookups of names that do not exist."""
    client.mkdir(top)
    chunk = os.urandom(4096)
    with client.creat(f"{top}/busy.bin") as handle:
        for _ in range(WRITES):
            handle.write(chunk)
    with client.open(f"{top}/busy.bin") as handle:
        assert handle.read(WRITES * 4096) == chunk * WRITES
    for i in range(MISSING):
        with pytest.raises(FileNotFoundError):
            client.stat(f"{top}/missing-{i}")


def chart_totals(driver, chart):
    """{dataset label: sum of its points} of one of the page's charts."""
    return driver.execute_script(
        "const c = window.flow.charts[arguments[0]];"
        "return c ? Object.fromEntries(c.data.datasets.map("
        "  d => [d.label, d.data.reduce((n, p) => n + (p.y || 0), 0)])) : null;", chart)


def page_state(driver):
    return driver.execute_script(
        "const s = window.flow.state, snap = s.snapshot;"
        "const text = id => document.getElementById(id).innerText;"
        "return {updates: s.updates, restarts: s.restarts, status: document.getElementById('status').className,"
        " latency: Object.fromEntries(Object.entries(window.flow.charts.latency).map("
        "   ([fop, c]) => [fop, c.data.datasets.map(d => [d.label, d.data.filter(p => p.y !== null).length])])),"
        " errors: text('error-table'), sources: text('source-table'), files: text('file-table'),"
        " directories: text('directory-table'), records: snap ? snap.records : 0};")


def wait_for(predicate, timeout, what):
    found = glusterlib.wait_until(predicate, timeout, interval=0.2)
    assert found, f"timed out waiting for {what() if callable(what) else what}"
    return found


def test_live_page_charts_the_fops_a_workload_makes_and_metrics_count_them(
        gluster, workdir, collector, browser):
    flow = collector()
    brick = gluster.brick([profiler(f"udp:127.0.0.1:{flow.udp_port}")])
    client = gluster.gfapi(brick)
    browser.get(flow.url)
    wait_for(lambda: page_state(browser)["updates"] > 0, 15, "the page's first update")

    workload(client, "/web")
    # /metrics during the workload: what the first part did, counted exactly.
    first = wait_for(lambda: (lambda m: total(m, "glupy_flow_fop_calls_total", fop="writev")
                              == WRITES and m)(flow.get("metrics")), 10, "writev in /metrics")
    assert total(first, "glupy_flow_fop_calls_total", fop="create") == 1
    assert total(first, "glupy_flow_fop_calls_total", fop="mkdir") == 1
    assert total(first, "glupy_flow_fop_errors_total", fop="lookup", errno="ENOENT") \
        == ENOENT_LOOKUPS
    assert total(first, "glupy_flow_fop_errors_total", fop="writev") == 0
    source = f"brick:{brick.directory}"
    assert total(first, "glupy_flow_fop_latency_seconds_count", fop="writev", source=source) == WRITES
    assert total(first, "glupy_flow_fop_latency_seconds_bucket", fop="writev", le="+Inf") == WRITES
    assert total(first, "glupy_flow_fop_calls_total", fop="readv") >= 1

    client.unlink("/web/busy.bin")
    client.rmdir("/web")
    second = wait_for(lambda: (lambda m: total(m, "glupy_flow_fop_calls_total", fop="rmdir")
                               == 1 and m)(flow.get("metrics")), 10, "rmdir in /metrics")
    assert total(second, "glupy_flow_fop_calls_total", fop="writev") == WRITES
    assert total(second, "glupy_flow_fop_calls_total", fop="unlink") == 1

    # The page: each workload fop drawn with the number of calls it made.
    expected = {"mkdir": 1, "create": 1, "writev": WRITES, "unlink": 1, "rmdir": 1}

    def charted():
        ops = chart_totals(browser, "ops") or {}
        return ops if all(round(ops.get(fop, 0)) == n for fop, n in expected.items()) else None
    ops = wait_for(charted, 15, lambda: f"the ops chart to show {expected}; it shows "
                                        f"{chart_totals(browser, 'ops')}")
    assert ops.get("readv", 0) >= 1 and ops.get("lookup", 0) >= MISSING
    assert chart_totals(browser, "errors")["lookup"] == ENOENT_LOOKUPS
    state = page_state(browser)
    assert state["status"] == "live"
    for fop in ("writev", "lookup"):  # latency percentiles drawn for the busiest fops
        assert dict(state["latency"][fop]).keys() == {"p50", "p90", "p99"}
        assert all(points >= 1 for _, points in state["latency"][fop])
    assert f"lookup\tENOENT\t{ENOENT_LOOKUPS}" in state["errors"]
    assert "/web/busy.bin" in state["files"].split("\n")[1]  # the busiest file
    assert "/web\t" in state["directories"]
    assert source in state["sources"]
    sources = chart_totals(browser, "sources")
    assert sum(sources.values()) == state["records"]
    browser.find_element("css selector", 'button[data-range="60"]').click()  # the last minute
    assert browser.execute_script("return window.flow.charts.ops.options.scales.x.max"
                                  " - window.flow.charts.ops.options.scales.x.min") == 60
    shot = workdir / "flow-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10000
    if os.environ.get("GLUPY_SCREENSHOTS"):
        shutil.copy(shot, os.environ["GLUPY_SCREENSHOTS"])


def test_live_page_survives_the_collector_and_the_brick_restarting(
        gluster, workdir, collector, browser):
    flow = collector()
    brick = gluster.brick([profiler(f"udp:127.0.0.1:{flow.udp_port}")])
    client = gluster.gfapi(brick)
    browser.get(flow.url)
    client.write_file("/before", b"x")
    wait_for(lambda: (chart_totals(browser, "ops") or {}).get("create"), 15, "create charted")

    ports = {"udp_port": flow.udp_port, "http_port": flow.http_port}
    flow.stop()
    wait_for(lambda: page_state(browser)["status"] == "down", 15, "the page to show it is down")
    flow = collector(**ports)
    client.close()
    brick.stop()  # the profiler restarts too
    brick.start()
    client = gluster.gfapi(brick)
    client.write_file("/after", b"y")
    client.setxattr("/after", "user.k", b"v")

    def recovered():
        state = page_state(browser)
        ops = chart_totals(browser, "ops") or {}
        return state if state["status"] == "live" and ops.get("setxattr") == 1 else None
    state = wait_for(recovered, 30, lambda: f"the page to chart the new collector's records: "
                                            f"{page_state(browser)}, {chart_totals(browser, 'ops')}")
    assert state["restarts"] == 1
    # The points from before the restart are still drawn.
    assert chart_totals(browser, "ops")["create"] == 2
    assert "/after" in state["files"] and "/before" not in state["files"]


def test_glupy_status_prometheus_exports_the_hosts_counters(gluster, workdir):
    brick = gluster.brick([profiler(f"file:{workdir / 'flow.jsonl'}")])
    client = gluster.gfapi(brick)
    client.write_file("/f", b"x" * 10)
    for i in range(MISSING):
        with pytest.raises(FileNotFoundError):
            client.stat(f"/nope-{i}")
    textfile = workdir / "glupy.prom"
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    # --pid: other glusterfs processes on the machine are not this test's to signal.
    done = subprocess.run([sys.executable, str(REPO / "bin" / "glupy"), "status", "--prometheus",
                           "--pid", str(brick.pid), "--textfile", str(textfile)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    text = textfile.read_text()
    labels = {"translator": "prof", "module": "profiler", "serves": str(brick.directory)}
    assert total(text, "glupy_fop_calls_total", fop="writev", **labels) == 1
    assert total(text, "glupy_fop_calls_total", fop="create", **labels) == 1
    lookups = total(text, "glupy_fop_calls_total", fop="lookup", **labels)
    assert lookups >= MISSING
    # write_file looks "/f" up first: one more ENOENT.
    assert total(text, "glupy_fop_errors_total", fop="lookup", **labels) == MISSING + 1
    assert total(text, "glupy_fop_exceptions_total", **labels) == 0
    assert total(text, "glupy_fop_python_calls_total", fop="lookup", **labels) == 2 * lookups
    assert total(text, "glupy_fop_python_seconds_total", fop="lookup", **labels) > 0
    assert total(text, "glupy_translator_dump_value", key="sampled", **labels) >= lookups
    assert total(text, "glupy_statedump_ok", serves=str(brick.directory)) == 1
    assert brick.alive()


def test_the_grafana_dashboard_queries_only_metrics_that_exist():
    """Every metric the dashboard's queries name is one the collector's /metrics or
    `glupy status --prometheus` exposes (names, labels; a renamed metric fails here)."""
    import json
    import re
    from glupy import flowlive, flowmetrics, hostmetrics
    live = flowlive.Live()
    live.add_records([{"host": "h", "volume": "v", "source": "brick:/b", "fop": "lookup",
                       "path": "/d/f", "op_ret": -1, "op_errno": errno.ENOENT, "latency_us": 80}])
    dump = ("[xlator.features.glupy.v-glupy.priv]\nmodule=profiler\n"
            "fop.lookup=calls=3 answered=3 errors=1 exceptions=0 dropped=0 python_calls=6 "
            "python_avg_us=12.5\npython.sampled=3\n")
    process = {"pid": 1, "kind": "brick", "volume": "v", "serves": "/b", "glupy": [{}]}
    exposed = {}
    for registry in (flowmetrics.make_registry(live),
                     hostmetrics.registry_for([process], dump=lambda pid: dump)):
        for family in text_string_to_metric_families(
                flowmetrics.exposition(registry).decode()):
            for sample in family.samples:
                exposed.setdefault(sample.name, set()).update(sample.labels)
    dashboard = json.loads((REPO / "docs" / "grafana" / "glupy-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    assert len(queries) >= 12
    for query in queries:
        for name, selector in re.findall(r"(glupy_\w+)(?:\{([^}]*)\})?", query):
            assert name in exposed, f"{name} (in {query!r}) is not exposed"
            for label in re.findall(r"(\w+)\s*=~?", selector):
                assert label in exposed[name], f"{name} has no label {label} ({query!r})"
        for label in re.findall(r"by \(([^)]*)\)", query):
            for name in re.findall(r"glupy_\w+", query):
                assert set(map(str.strip, label.split(","))) <= exposed[name] | {"le"}, query
    # The repeated latency panel and the variables it needs.
    assert any(p.get("repeat") == "fop" for p in dashboard["panels"])
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource", "volume", "fop"}


def test_with_a_file_sink_the_collector_follows_the_file_through_rotation(workdir, collector):
    import json
    sink = workdir / "flow.jsonl"

    def append(path, fop, count):
        with open(path, "a") as stream:
            for _ in range(count):
                stream.write(json.dumps({"host": "h", "fop": fop, "path": "/f", "op_ret": 0,
                                         "latency_us": 5}) + "\n")
    append(sink, "stat", 3)
    flow = collector(file=sink)

    def calls(fop):
        return total(flow.get("metrics"), "glupy_flow_fop_calls_total", fop=fop)
    wait_for(lambda: calls("stat") == 3, 10, "the file's records")
    append(sink, "stat", 2)  # grows
    wait_for(lambda: calls("stat") == 5, 10, "the records appended")
    sink.rename(workdir / "flow.jsonl.1")  # rotated: a new file under the name
    append(sink, "readv", 20)  # larger than the old one: not mistaken for a truncation
    wait_for(lambda: calls("readv") == 20, 10, "the new file's records")
    assert calls("stat") == 5


def test_live_counts_malformed_records_as_unreadable_and_nowhere_else():
    from glupy import flowlive
    live = flowlive.Live(clock=lambda: 1000.0)
    good = {"host": "h", "fop": "stat", "path": "/a/b", "op_ret": -1, "op_errno": errno.EACCES,
            "latency_us": 70}
    odd_path = {"host": "h", "fop": "stat", "path": ["/a"], "latency_us": 30}  # counted, no path
    bad = [{"fop": "stat", "latency_us": "slow"}, {"fop": "stat", "op_ret": -1, "op_errno": "EACCES"},
           {"latency_us": 1}]
    assert live.add_records([good, odd_path, *bad], unreadable=2) == 2
    [(_, _, _, fop, calls, sum_us, buckets, errors)] = live.series_snapshot()
    assert (fop, calls, sum_us, sum(buckets), errors) == ("stat", 2, 100, 2, {"EACCES": 1})
    snapshot = live.snapshot()
    assert (snapshot["records"], snapshot["unreadable"]) == (2, 2 + len(bad))
    assert snapshot["busiest_files"] == [{"path": "/a/b", "count": 1}]
    assert snapshot["busiest_directories"] == [{"path": "/a", "count": 1}]
